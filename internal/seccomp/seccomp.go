//go:build linux

// Package seccomp is the kernel interface for seccomp filters and their user
// notification listeners: installing a filter on the calling thread and the
// SECCOMP_IOCTL_NOTIF_* requests a supervisor makes on the listener.
package seccomp

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Resp is struct seccomp_notif_resp.
type Resp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// addFD is struct seccomp_notif_addfd.
type addFD struct {
	ID         uint64
	Flags      uint32
	SrcFD      uint32
	NewFD      uint32
	NewFDFlags uint32
}

// The struct sizes the kernel expects; checked at compile time below.
const (
	sizeofNotif = 80
	sizeofResp  = 24
	sizeofAddFD = 24
)

var (
	_ [sizeofNotif - unsafe.Sizeof(Notif{})]byte
	_ [unsafe.Sizeof(Notif{}) - sizeofNotif]byte
	_ [sizeofResp - unsafe.Sizeof(Resp{})]byte
	_ [sizeofAddFD - unsafe.Sizeof(addFD{})]byte
)

// Flags for Resp.Flags and AddFD.
const (
	FlagContinue = unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE
	addFDSetFD   = unix.SECCOMP_ADDFD_FLAG_SETFD
	addFDSend    = unix.SECCOMP_ADDFD_FLAG_SEND
)

const (
	setModeFilter = 1 // SECCOMP_SET_MODE_FILTER
	ioctlSetFlags = 0x40082104
)

// Install loads prog as a seccomp filter on the calling thread only (no
// TSYNC: the caller confines one locked OS thread and forks from it). With
// listen it asks for a notification listener and returns its fd (O_CLOEXEC);
// it first tries SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, which keeps a
// notified syscall from being restarted by a non-fatal signal once the
// supervisor has read it, and falls back without it on kernels that answer
// EINVAL. The caller must have set PR_SET_NO_NEW_PRIVS.
func Install(prog []unix.SockFilter, listen bool) (int, error) {
	if len(prog) == 0 || len(prog) > 0xffff {
		return -1, fmt.Errorf("seccomp: program of %d instructions", len(prog))
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	var flags uintptr
	if listen {
		flags = unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
	}
	for {
		fd, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, setModeFilter, flags, uintptr(unsafe.Pointer(&fprog)))
		runtime.KeepAlive(prog)
		if errno == unix.EINVAL && flags&unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV != 0 {
			flags &^= unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
			continue
		}
		if errno != 0 {
			if errno == unix.EBUSY {
				return -1, fmt.Errorf("seccomp: %w (another seccomp listener already supervises this process; nested supervised sandboxes need --no-supervisor on the inner one)", errno)
			}
			return -1, fmt.Errorf("seccomp: %w", errno)
		}
		if !listen {
			return -1, nil
		}
		return int(fd), nil
	}
}

// SetSyncWakeUp asks the kernel to wake the supervisor on the notifying
// task's CPU (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, Linux 6.6). The flag is
// passed by value; passed by pointer the kernel refuses it. It reports
// whether the kernel accepted the flag.
func SetSyncWakeUp(listener int) bool {
	return unix.IoctlSetInt(listener, ioctlSetFlags, unix.SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) == nil
}

// Recv reads one notification into n, blocking until one is pending. n is
// zeroed first: the kernel refuses a buffer that is not.
func Recv(listener int, n *Notif) error {
	*n = Notif{}
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(listener), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(n)))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return errno
		}
		return nil
	}
}

// Send answers a notification. ENOENT means the task is gone (or its syscall
// was interrupted); callers drop such answers.
//
// SEND never blocks: it is a raw syscall, without the runtime's bookkeeping
// for a syscall that might (which costs as much as a tenth of a notified
// round trip).
func Send(listener int, r *Resp) error {
	_, _, errno := unix.RawSyscall(unix.SYS_IOCTL, uintptr(listener), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(r)))
	if errno != 0 {
		return errno
	}
	return nil
}

// IDValid reports whether notification id is still pending, i.e. the task
// that raised it is still blocked in that syscall. Checking it after reading
// a task's memory or /proc entries proves the pid was not recycled meanwhile.
func IDValid(listener int, id uint64) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(listener), unix.SECCOMP_IOCTL_NOTIF_ID_VALID, uintptr(unsafe.Pointer(&id)))
	if errno != 0 {
		return errno
	}
	return nil
}

// AddFD installs src in the notifying task. With send, the new fd also
// becomes the syscall's return value and the notification is answered
// (SECCOMP_ADDFD_FLAG_SEND); otherwise the fd lands at targetFD (or the
// lowest free slot when targetFD < 0) and the notification stays pending.
// newFDFlags may hold O_CLOEXEC. It returns the fd number in the task.
func AddFD(listener int, id uint64, src int, targetFD int, newFDFlags uint32, send bool) (int, error) {
	a := addFD{ID: id, SrcFD: uint32(src), NewFDFlags: newFDFlags}
	if send {
		a.Flags |= addFDSend
	} else if targetFD >= 0 {
		a.Flags |= addFDSetFD
		a.NewFD = uint32(targetFD)
	}
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(listener), unix.SECCOMP_IOCTL_NOTIF_ADDFD, uintptr(unsafe.Pointer(&a)))
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}
