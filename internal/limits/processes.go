package limits

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/sysnum"
)

// DefaultMaxProcesses is the process limit of a sandbox that sets none.
const DefaultMaxProcesses = 64

// Processes caps the number of live processes of a sandbox (threads do not
// count). It answers the fork family: a fork that would exceed the limit
// fails with EAGAIN before any process is created.
//
// The live count comes from the tracer, which sees every process created
// and every exit. A fork let through is reserved until the tracer reports
// the child, so that concurrent forks cannot overshoot; a fork that failed
// in the kernel produces no child, and its reservation lapses.
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
}

// reservationLapse is how long a fork let through may take to produce its
// child; after that it has failed.
const reservationLapse = time.Second

// NewProcesses returns the limit. live and tgid come from the tracer.
func NewProcesses(max int, live func() int, tgid func(tid int) int) *Processes {
	return &Processes{max: max, live: live, tgid: tgid, now: time.Now, reserved: make(map[int][]time.Time)}
}

// Register adds the fork-family handlers.
func (p *Processes) Register(t *notify.Table) {
	for _, name := range []string{"clone", "fork", "vfork"} {
		if nr, ok := sysnum.Native().Nr(name); ok {
			t.AddBuiltin(nr, "process limit", true, p)
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
	if p.live()+pending >= p.max {
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
