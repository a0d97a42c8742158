//go:build linux

package netgate

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The socket syscalls with a sockaddr exactly as the program gave it, which
// x/sys/unix's typed wrappers cannot take. An empty sockaddr is passed as
// (NULL, 0), as the kernel would get a zero length.

func sockaddrPtr(sa []byte) uintptr {
	if len(sa) == 0 {
		return 0
	}
	return uintptr(unsafe.Pointer(&sa[0]))
}

func rawConnect(fd int, sa []byte) error {
	_, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), sockaddrPtr(sa), uintptr(len(sa)))
	return errOf(e)
}

func rawBind(fd int, sa []byte) error {
	_, _, e := unix.Syscall(unix.SYS_BIND, uintptr(fd), sockaddrPtr(sa), uintptr(len(sa)))
	return errOf(e)
}

func rawSendto(fd int, data []byte, flags int, sa []byte) (int, error) {
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	n, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(p), uintptr(len(data)), uintptr(flags),
		sockaddrPtr(sa), uintptr(len(sa)))
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

// rawGetsockname returns a socket's address exactly as the kernel holds it
// (x/sys's Getsockname cuts an abstract name at its first NUL).
func rawGetsockname(fd int) ([]byte, error) {
	buf := make([]byte, maxSockaddr)
	n := uint32(len(buf))
	_, _, e := unix.Syscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)))
	if e != 0 {
		return nil, e
	}
	return buf[:min(int(n), len(buf))], nil
}

func errOf(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}
