package notify

import (
	"context"
	"errors"
	"os"
	"syscall"
)

type actionKind uint8

const (
	actContinue actionKind = iota
	actErrno
	actReturn
	actInjectFD
	actInjectSend
	actInjectBytes
	actKillGroup
	actDefer
)

// Action is a handler's answer to a notification. Build one with Continue,
// Errno, ReturnValue, InjectFD, InjectFDSend, InjectFDSendTracked,
// InjectBytes, KillGroup or Defer. The zero Action is Continue.
type Action struct {
	kind     actionKind
	errno    syscall.Errno
	val      int64
	file     *os.File
	targetFD int
	fdFlags  uint32
	onInject func(childFD int)
	content  []byte
	sig      syscall.Signal
	deferred func(ctx context.Context) Action
}

// Continue passes the notification to the next handler of the chain; after
// the last one, the kernel runs the syscall as the task asked.
func Continue() Action { return Action{kind: actContinue} }

// Errno fails the syscall with e (the task sees -1 and errno e). A zero e is
// EPERM, so that a forgotten errno still fails closed.
func Errno(e syscall.Errno) Action {
	if e == 0 {
		e = syscall.EPERM
	}
	return Action{kind: actErrno, errno: e}
}

// ReturnValue makes the syscall return v without running it.
func ReturnValue(v int64) Action { return Action{kind: actReturn, val: v} }

// InjectFD installs a duplicate of src in the task at fd number targetFD
// (replacing whatever was there) at once, then goes on like Continue: the
// next handler decides, and after the last one the kernel runs the syscall.
// If the fd cannot be installed, the syscall fails. The supervisor closes
// src once it is installed.
func InjectFD(src *os.File, targetFD int) Action {
	return Action{kind: actInjectFD, file: src, targetFD: targetFD}
}

// InjectFDSend installs a duplicate of src in the task and makes its number
// the syscall's return value, as if the syscall had opened it. newFDFlags
// may hold O_CLOEXEC. The supervisor closes src once it is sent.
func InjectFDSend(src *os.File, newFDFlags uint32) Action {
	return Action{kind: actInjectSend, file: src, fdFlags: newFDFlags}
}

// InjectFDSendTracked is InjectFDSend that also reports the fd number the
// kernel assigned: onSuccess runs after the fd is installed and before the
// task resumes, so it can record the number before the task can use it.
func InjectFDSendTracked(src *os.File, newFDFlags uint32, onSuccess func(childFD int)) Action {
	return Action{kind: actInjectSend, file: src, fdFlags: newFDFlags, onInject: onSuccess}
}

// InjectBytes answers an open-like syscall with a file holding content: a
// memfd, rewound and sealed against writes, growth and shrinking, installed
// with O_CLOEXEC so a program the task execs does not inherit it.
func InjectBytes(content []byte) Action {
	return Action{kind: actInjectBytes, content: content}
}

// KillGroup sends sig to every process of the sandbox and fails the syscall
// with EPERM (moot when sig is fatal).
func KillGroup(sig syscall.Signal) Action { return Action{kind: actKillGroup, sig: sig} }

// Defer answers the notification later: fn may block, and its Action is
// sent when it returns. fn runs on the receiver that dispatched the
// notification, after the chain, under the slow-handler watchdog: if it
// runs for longer than SlowAfter another receiver takes over the listener
// (no thread hand-off in the common case, where fn does not block for
// long). At most
// MaxDeferred deferred answers are in flight per sandbox; beyond that the
// syscall fails with EAGAIN. Defer is refused with EPERM on execve, execveat
// and the fork family (a parked exec or fork cannot be answered safely
// later), and an fn that itself returns Defer fails the syscall with EIO.
// ctx is cancelled when the sandbox ends; if the task is gone by the time fn
// returns, its answer is dropped.
func Defer(fn func(ctx context.Context) Action) Action {
	return Action{kind: actDefer, deferred: fn}
}

// MaxDeferred bounds the deferred answers in flight per sandbox.
const MaxDeferred = 64

// IsContinue reports whether a is Continue.
func (a Action) IsContinue() bool { return a.kind == actContinue }

func (a Action) String() string {
	switch a.kind {
	case actContinue:
		return "Continue"
	case actErrno:
		return "Errno(" + a.errno.Error() + ")"
	case actReturn:
		return "ReturnValue"
	case actInjectFD:
		return "InjectFD"
	case actInjectSend:
		return "InjectFDSend"
	case actInjectBytes:
		return "InjectBytes"
	case actKillGroup:
		return "KillGroup"
	case actDefer:
		return "Defer"
	}
	return "Action(?)"
}

// ErrnoOf returns the errno of an Errno action, or 0.
func (a Action) ErrnoOf() syscall.Errno {
	if a.kind == actErrno {
		return a.errno
	}
	return 0
}

// release closes the file an unsent injection owns.
func (a Action) release() {
	if a.file != nil {
		a.file.Close()
	}
}

// ErrnoFor is the errno a syscall fails with for err, an error met while
// judging or performing it: the errno err is or wraps; ENOENT for a task
// that is gone (the answer is dropped, nobody waits for it); fallback for
// anything else (fail closed); 0 for no error. Every builtin maps its
// errors through it.
func ErrnoFor(err error, fallback syscall.Errno) syscall.Errno {
	var e syscall.Errno
	switch {
	case err == nil:
		return 0
	case errors.As(err, &e):
		return e
	case errors.Is(err, ErrTaskGone):
		return syscall.ENOENT
	}
	return fallback
}
