package netgate

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The socket syscalls with a sockaddr exactly as the program gave it, which
// x/sys/unix's typed wrappers cannot take.

func rawConnect(fd int, sa []byte) error {
	_, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa[0])), uintptr(len(sa)))
	return errOf(e)
}

func rawBind(fd int, sa []byte) error {
	_, _, e := unix.Syscall(unix.SYS_BIND, uintptr(fd), uintptr(unsafe.Pointer(&sa[0])), uintptr(len(sa)))
	return errOf(e)
}

func rawSendto(fd int, data []byte, flags int, sa []byte) (int, error) {
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	n, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(p), uintptr(len(data)), uintptr(flags),
		uintptr(unsafe.Pointer(&sa[0])), uintptr(len(sa)))
	return int(n), errOf(e)
}

func rawSendmsg(fd int, data, control []byte, flags int, sa []byte) (int, error) {
	h := new(unix.Msghdr)
	if len(data) > 0 {
		iov := &unix.Iovec{Base: &data[0]}
		iov.SetLen(len(data))
		h.Iov = iov
		h.SetIovlen(1)
	}
	if len(sa) > 0 {
		h.Name, h.Namelen = &sa[0], uint32(len(sa))
	}
	if len(control) > 0 {
		h.Control = &control[0]
		h.SetControllen(len(control))
	}
	n, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(h)), uintptr(flags))
	return int(n), errOf(e)
}

func errOf(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}
