//go:build linux

package taskpath

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/confine"
	"github.com/sandlock-go/sandlock/internal/notify"
)

// ProcAccess tells whether a supervisor thread with the program's
// credentials, no capabilities and no Landlock domain opens the /proc/<pid>
// entries of another process of the sandbox exactly as the program would.
//
// The kernel guards those entries (environ, maps, mem, fd/…) with its
// ptrace-mode checks: for two processes of the same user, without
// capabilities, same dumpability, they pass natively and for such a thread
// alike, unless a Landlock domain nested inside the sandbox's, or Yama,
// refuses the program. Those two cases are not modelled: once any process
// of the sandbox has restricted itself further (landlock_restrict_self is
// watched for that), or when Yama restricts ptrace, CrossProcess reports
// false and such opens must be refused or left to a thread in the
// program's own Landlock domain. An entry of the program's own thread group
// needs no ptrace access natively, and is never affected. NestedDomain is
// the watch.
type ProcAccess struct {
	yama   bool
	nested atomic.Bool
}

// NewProcAccess reads whether Yama restricts ptrace on this machine.
func NewProcAccess() *ProcAccess { return &ProcAccess{yama: yamaRestricts()} }

// yamaRestricts reports whether Yama limits ptrace beyond the classic
// rules (ptrace_scope above 0).
func yamaRestricts() bool {
	b, err := os.ReadFile("/proc/sys/kernel/yama/ptrace_scope")
	if err != nil {
		return false // no Yama
	}
	return string(bytes.TrimSpace(b)) != "0"
}

// NestedDomain is the handler to put on landlock_restrict_self: a process
// of the sandbox that nests a domain of its own ends CrossProcess.
// Continue: the syscall is the program's to make; nothing is decided on
// its arguments.
func (a *ProcAccess) NestedDomain(context.Context, *notify.HandlerCtx) notify.Action {
	a.nested.Store(true)
	return notify.Continue()
}

// CrossProcess reports whether entries of another process of the sandbox
// may be opened for the program by a thread outside its Landlock domain.
func (a *ProcAccess) CrossProcess() bool { return !a.yama && !a.nested.Load() }

// Reopen opens the inode behind the O_PATH descriptor pin with flags, on
// one of pool's threads (whose rights the kernel then checks, as it would
// check the program's). perm is the mode of an O_TMPFILE file.
func Reopen(pool *confine.Pool, pin int, flags int, perm uint32) (int, error) {
	var fd int
	var err error
	if derr := pool.Do(func() {
		fd, err = unix.Open("/proc/self/fd/"+strconv.Itoa(pin), flags|unix.O_CLOEXEC, perm)
	}); derr != nil {
		return -1, derr
	}
	return fd, err
}

// Inject answers an open with a duplicate of fd, close-on-exec if the
// task's open flags ask for it.
func Inject(fd int, flags int) notify.Action {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return ErrAction(err)
	}
	var fdFlags uint32
	if flags&unix.O_CLOEXEC != 0 {
		fdFlags = unix.O_CLOEXEC
	}
	return notify.InjectFDSend(os.NewFile(uintptr(dup), "sandlock-open"), fdFlags)
}

// pidfdThread is PIDFD_THREAD (Linux 6.9): a pidfd naming one thread, whose
// descriptor table pidfd_getfd then reads.
const pidfdThread = unix.O_EXCL

// DupFD duplicates the task's descriptor fd into the supervisor: the same
// open file (pidfd_getfd), so the supervisor judges and acts on what the
// descriptor is now, whatever the fd number names afterwards. The table
// read is the notifying thread's own (PIDFD_THREAD), or its thread
// group's (tgid) on kernels before 6.9. With fdget, an O_PATH descriptor
// is EBADF, as the kernel's fdget answers. A task that cannot be reached
// (undumpable) is EACCES: fail closed.
func DupFD(hc *notify.HandlerCtx, fd uint64, tgid func(tid int) int, fdget bool) (int, error) {
	if int32(fd) < 0 {
		return -1, unix.EBADF
	}
	tid := int(hc.Notif.PID)
	pidfd, err := unix.PidfdOpen(tid, pidfdThread)
	if err == unix.EINVAL && tgid != nil {
		pidfd, err = unix.PidfdOpen(tgid(tid), 0)
	}
	if err != nil {
		return -1, notify.ErrTaskGone
	}
	defer unix.Close(pidfd)
	dup, err := unix.PidfdGetfd(pidfd, int(int32(fd)), 0)
	if err == unix.EBADF {
		return -1, unix.EBADF
	}
	if err != nil {
		return -1, unix.EACCES
	}
	if err := notify.TaskAlive(hc); err != nil {
		unix.Close(dup)
		return -1, err
	}
	if fdget {
		if fl, err := unix.FcntlInt(uintptr(dup), unix.F_GETFL, 0); err != nil || fl&unix.O_PATH != 0 {
			unix.Close(dup)
			return -1, unix.EBADF
		}
	}
	return dup, nil
}
