package sandlock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/sysnum"
)

// A Handler answers seccomp notifications for the syscalls it is registered
// on, in the sandbox's supervisor, after every builtin handler of that
// syscall has answered Continue. Handle is called concurrently from several
// goroutines and must be safe for concurrent use, like an http.Handler.
// See docs/extension-handlers.md.
type Handler = notify.Handler

// HandlerFunc adapts a function to Handler.
type HandlerFunc = notify.HandlerFunc

// HandlerCtx is what a handler knows of one notification: the kernel's
// notification and the listener fd, with helpers to read and write the
// task's memory.
type HandlerCtx = notify.HandlerCtx

// Notif is the kernel's notification (struct seccomp_notif).
type Notif = notify.Notif

// NotifData is the notified syscall (struct seccomp_data).
type NotifData = notify.NotifData

// Action is a handler's answer.
type Action = notify.Action

// Continue passes the notification to the next handler; after the last one
// the kernel runs the syscall.
func Continue() Action { return notify.Continue() }

// Errno fails the syscall with errno e (EPERM if e is 0).
func Errno(e syscall.Errno) Action { return notify.Errno(e) }

// ReturnValue makes the syscall return v without running it.
func ReturnValue(v int64) Action { return notify.ReturnValue(v) }

// InjectFD installs a duplicate of src in the task at fd targetFD at once,
// then goes on like Continue (the next handler decides; after the last, the
// kernel runs the syscall). The supervisor closes src afterwards. If the fd
// cannot be installed, the syscall fails.
func InjectFD(src *os.File, targetFD int) Action { return notify.InjectFD(src, targetFD) }

// InjectFDSend installs a duplicate of src in the task and makes its number
// the syscall's return value. newFDFlags may hold O_CLOEXEC. The supervisor
// closes src afterwards. If the fd cannot be installed, the syscall fails.
func InjectFDSend(src *os.File, newFDFlags uint32) Action {
	return notify.InjectFDSend(src, newFDFlags)
}

// InjectFDSendTracked is InjectFDSend that calls onSuccess with the fd
// number the kernel assigned, before the task resumes and can use it.
func InjectFDSendTracked(src *os.File, newFDFlags uint32, onSuccess func(childFD int)) Action {
	return notify.InjectFDSendTracked(src, newFDFlags, onSuccess)
}

// InjectBytes answers an open-like syscall with a file holding content: a
// rewound memfd sealed against writing, growing and shrinking, installed
// with O_CLOEXEC.
func InjectBytes(content []byte) Action { return notify.InjectBytes(content) }

// KillGroup sends sig to every process of the sandbox and fails the syscall
// with EPERM.
func KillGroup(sig syscall.Signal) Action { return notify.KillGroup(sig) }

// Defer answers later: fn may block (it runs after the handler chain, and
// if it blocks for long another thread takes over the sandbox's other
// notifications), and its Action is sent when it returns. At most
// MaxDeferred are in flight per sandbox (beyond that: EAGAIN); Defer on
// execve, execveat and the fork family fails with EPERM; an fn that
// returns Defer fails with EIO. ctx is cancelled when the sandbox ends; an
// answer for a task that is gone is dropped.
func Defer(fn func(ctx context.Context) Action) Action { return notify.Defer(fn) }

// MaxDeferred bounds the deferred answers in flight per sandbox.
const MaxDeferred = notify.MaxDeferred

// SyscallHandler registers Handler on the syscall numbered Syscall.
type SyscallHandler struct {
	Syscall int64
	Handler Handler
}

// Syscall is a syscall number valid on this architecture.
type Syscall int64

// Errors of handler registration, wrapped in a *SyscallError.
var (
	ErrNegativeSyscall = errors.New("negative syscall number")
	ErrUnknownSyscall  = errors.New("not a syscall of this architecture")
	ErrDeniedSyscall   = errors.New("syscall is denied by the policy; a handler on it could turn the deny into an allow")
)

// SyscallError reports an invalid handler registration.
type SyscallError struct {
	Nr  int64
	Err error
}

func (e *SyscallError) Error() string {
	name := ""
	if n, ok := sysnum.Native().Name(int(e.Nr)); ok && e.Nr >= 0 {
		name = " (" + n + ")"
	}
	return fmt.Sprintf("sandlock: handler on syscall %d%s: %v", e.Nr, name, e.Err)
}

func (e *SyscallError) Unwrap() error { return e.Err }

// CheckSyscall returns nr as a Syscall if it is a syscall of this
// architecture.
func CheckSyscall(nr int64) (Syscall, error) {
	if nr < 0 {
		return 0, &SyscallError{Nr: nr, Err: ErrNegativeSyscall}
	}
	if nr > 1<<20 {
		return 0, &SyscallError{Nr: nr, Err: ErrUnknownSyscall}
	}
	if _, ok := sysnum.Native().Name(int(nr)); !ok {
		return 0, &SyscallError{Nr: nr, Err: ErrUnknownSyscall}
	}
	return Syscall(nr), nil
}

// SyscallNr returns the number of the named syscall on this architecture.
func SyscallNr(name string) (int, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return -1, ErrInvalidString
	}
	nr, ok := sysnum.Native().Nr(name)
	if !ok {
		return -1, fmt.Errorf("sandlock: unknown syscall %q", name)
	}
	return nr, nil
}
