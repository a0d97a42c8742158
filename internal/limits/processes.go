//go:build linux

package limits

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/plan"
	"github.com/sandlock-go/sandlock/internal/sysnum"
)

// DefaultMaxProcesses is the process limit of a sandbox that sets none.
const DefaultMaxProcesses = 64

// Processes caps the number of processes of a sandbox that hold a pid
// (threads do not count). It answers the fork family: a fork that would
// exceed the limit fails with EAGAIN before any process is created.
//
// A process holds its pid until it is reaped, not until it exits: a zombie
// nobody waits for takes a slot of the host's pid space as surely as a
// running process. The live count comes from the tracer, which sees every
// process created and every exit. The tracer does not see reaps (the real
// parent's wait), so each process gets a pidfd when the tracer first knows
// it (it cannot have been reaped then: it is a tracee whose exit the tracer
// has not collected); once it has exited its pidfd is checked lazily, at
// each fork decision, with pidfd_send_signal(pidfd, 0), which fails with
// ESRCH once the process is reaped. A process whose pidfd could not be
// opened counts as unreaped for the rest of the run (fail closed).
//
// A fork let through is reserved until the tracer reports the child, so
// that concurrent forks cannot overshoot; a fork that failed in the kernel
// produces no child, and its reservation lapses.
type Processes struct {
	max int
	// live returns the number of live processes of the sandbox.
	live func() int
	// tgid returns the thread group of a task.
	tgid func(tid int) int
	// now is the clock reservations lapse by (a hook for tests).
	now func() time.Time

	mu       sync.Mutex
	reserved map[int][]time.Time // parent tgid → forks let through, not yet seen
	pidfds   map[int]int         // live process → its pidfd (-1: none could be opened)
	zombies  []int               // pidfds of exited processes not yet known reaped
	closed   bool                // the sandbox has ended: pidfds are closed
}

// reservationLapse is how long a fork let through may take to produce its
// child; after that it has failed.
const reservationLapse = time.Second

// NewProcesses returns the limit. live and tgid come from the tracer.
func NewProcesses(max int, live func() int, tgid func(tid int) int) *Processes {
	return &Processes{max: max, live: live, tgid: tgid, now: time.Now,
		reserved: make(map[int][]time.Time), pidfds: make(map[int]int)}
}

// Register adds the fork-family handlers.
func (p *Processes) Register(b *plan.Builder) {
	for _, name := range []string{"clone", "fork", "vfork"} {
		if nr, ok := sysnum.Native().Nr(name); ok {
			b.Handle(nr, plan.Guard, "process limit", true, p)
		}
	}
}

// Handle decides a fork.
func (p *Processes) Handle(ctx context.Context, hc *notify.HandlerCtx) notify.Action {
	if int(hc.Notif.Data.Nr) == sysnum.Native().MustNr("clone") && hc.Notif.Data.Args[0]&unix.CLONE_THREAD != 0 {
		return notify.Continue() // a thread
	}
	parent := p.tgid(int(hc.Notif.PID))
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	pending := 0
	for g, ts := range p.reserved {
		kept := ts[:0]
		for _, t := range ts {
			if now.Sub(t) < reservationLapse {
				kept = append(kept, t)
			}
		}
		if len(kept) == 0 {
			delete(p.reserved, g)
			continue
		}
		p.reserved[g] = kept
		pending += len(kept)
	}
	if p.live()+p.unreapedLocked()+pending >= p.max {
		return notify.Errno(unix.EAGAIN)
	}
	p.reserved[parent] = append(p.reserved[parent], now)
	return notify.Continue()
}

// Interrupted is called when a fork of thread group parent that was let
// through was interrupted by a signal before it created anything: the
// kernel restarts it, and the restart is judged again, so its reservation
// goes. (Left to lapse, a storm of signals would pile up reservations and
// fail forks with EAGAIN under the limit.)
func (p *Processes) Interrupted(parent int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ts := p.reserved[parent]; len(ts) > 0 {
		p.reserved[parent] = ts[:len(ts)-1]
	}
}

// Forked is called by the tracer when a process of thread group parent has
// created a process: its reservation is now a live process.
func (p *Processes) Forked(parent int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ts := p.reserved[parent]; len(ts) > 0 {
		p.reserved[parent] = ts[1:]
	}
}

// Started is called by the tracer when it first knows process pid, which
// cannot have been reaped yet: the pidfd opened now names it.
func (p *Processes) Started(pid, parent int) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		fd = -1
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		if fd >= 0 {
			unix.Close(fd)
		}
		return
	}
	if old, ok := p.pidfds[pid]; ok && old >= 0 {
		unix.Close(old)
	}
	p.pidfds[pid] = fd
}

// Exited is called by the tracer when process pid has exited (before it
// leaves the live count): it counts on as a zombie until it is reaped.
func (p *Processes) Exited(pid int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fd, ok := p.pidfds[pid]
	if !ok {
		return
	}
	delete(p.pidfds, pid)
	p.zombies = append(p.zombies, fd)
}

// unreapedLocked drops the zombies that have been reaped and returns how
// many are left.
func (p *Processes) unreapedLocked() int {
	kept := p.zombies[:0]
	for _, fd := range p.zombies {
		if fd >= 0 && reaped(fd) {
			unix.Close(fd)
			continue
		}
		kept = append(kept, fd)
	}
	clear(p.zombies[len(kept):])
	p.zombies = kept
	return len(kept)
}

// reaped reports whether the process behind pidfd has been reaped: a
// zombie still takes signal 0, a reaped process is gone (ESRCH).
func reaped(pidfd int) bool {
	return unix.PidfdSendSignal(pidfd, 0, nil, 0) == unix.ESRCH
}

// Close closes every pidfd, once the sandbox has ended.
func (p *Processes) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for pid, fd := range p.pidfds {
		if fd >= 0 {
			unix.Close(fd)
		}
		delete(p.pidfds, pid)
	}
	for _, fd := range p.zombies {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	p.zombies = nil
}
