//go:build linux

// Package redirect makes a task that is stopped in a notified syscall run
// another syscall instead, from the supervisor: the copy-on-write workdir
// needs the kernel to exec a file it cannot find by the program's path (a
// file of the upper layer, handed over as a descriptor), which no answer
// of seccomp's can say.
//
// The notification is answered with -ERESTARTNOINTR after a SIGSTOP is
// queued for the thread (the wait for the answer is killable only, so the
// signal waits). On the way back to user space the signal stops the
// thread for its tracer, which replaces the syscall's number and
// arguments and discards the signal; the kernel then restarts the
// syscall, which is the new one. The new syscall is notified like any
// other: it meets every check again.
package redirect

import (
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/notify"
)

// errRestartNoIntr is the kernel's ERESTARTNOINTR: always restarted.
const errRestartNoIntr = 513

// Call is the syscall to run instead.
type Call struct {
	Nr   int
	Args [6]uint64
}

// Table holds one sandbox's pending redirects.
type Table struct {
	mu      sync.Mutex
	pending map[int]request // tid → redirect
	tgid    func(tid int) int
}

type request struct {
	expect int // the syscall answered with ERESTARTNOINTR
	call   Call
}

// New returns a table; tgid names a task's thread group (for tgkill).
func New(tgid func(tid int) int) *Table {
	return &Table{pending: make(map[int]request), tgid: tgid}
}

// Supported reports whether redirects work on this architecture.
func Supported() bool { return supported }

// Arm answers hc's syscall so that its task runs call instead.
func (t *Table) Arm(hc *notify.HandlerCtx, call Call) notify.Action {
	if !supported {
		return notify.Errno(unix.ENOSYS)
	}
	tid := int(hc.Notif.PID)
	tgid := tid
	if t.tgid != nil {
		if g := t.tgid(tid); g > 0 {
			tgid = g
		}
	}
	t.mu.Lock()
	t.pending[tid] = request{expect: int(hc.Notif.Data.Nr), call: call}
	t.mu.Unlock()
	if err := unix.Tgkill(tgid, tid, unix.SIGSTOP); err != nil {
		t.mu.Lock()
		delete(t.pending, tid)
		t.mu.Unlock()
		return notify.Errno(unix.ESRCH)
	}
	return notify.Errno(errRestartNoIntr)
}

// Stop is the tracer's hook at a signal-delivery-stop of tid: for the
// SIGSTOP Arm sent, it rewrites the restarting syscall and discards the
// signal.
func (t *Table) Stop(tid int, sig syscall.Signal) bool {
	if sig != unix.SIGSTOP {
		return false
	}
	t.mu.Lock()
	r, ok := t.pending[tid]
	t.mu.Unlock()
	if !ok {
		return false
	}
	var si siginfo
	if err := getSiginfo(tid, &si); err != nil || si.Signo != int32(unix.SIGSTOP) || si.Code != siTkill || si.Pid != int32(os.Getpid()) {
		return false // someone else's SIGSTOP: ours is still to come
	}
	t.mu.Lock()
	delete(t.pending, tid)
	t.mu.Unlock()
	// If the task is not where Arm left it (a signal handler ran first),
	// the original syscall restarts after it and is notified again.
	rewrite(tid, r.expect, r.call)
	return true
}

// siTkill is SI_TKILL: a signal sent with tkill or tgkill.
const siTkill = -6

// siginfo is the head of siginfo_t for a kill-type signal.
type siginfo struct {
	Signo int32
	Errno int32
	Code  int32
	_     int32
	Pid   int32
	UID   uint32
	_     [112]byte
}
