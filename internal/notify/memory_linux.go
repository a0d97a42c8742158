package notify

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/seccomp"
)

func (hc *HandlerCtx) valid() error {
	if seccomp.IDValid(hc.NotifFD, hc.Notif.ID) != nil {
		return ErrTaskGone
	}
	return nil
}

// ReadMem reads n bytes at addr in the task's memory. It checks before and
// after the read that the notification is still pending, so the bytes cannot
// come from a process that reused the pid. A short read (the range runs into
// unmapped memory) returns the bytes read and an error.
func (hc *HandlerCtx) ReadMem(addr uint64, n int) ([]byte, error) {
	if addr == 0 {
		return nil, ErrNullPointer
	}
	if n < 0 {
		return nil, fmt.Errorf("sandlock: negative length %d", n)
	}
	if err := hc.valid(); err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	got, err := readMem(int(hc.Notif.PID), addr, buf)
	if verr := hc.valid(); verr != nil {
		return nil, verr
	}
	if err != nil {
		return buf[:got], err
	}
	return buf, nil
}

// ReadCString reads a NUL-terminated string at addr, at most max bytes
// (without the NUL). It reads page by page, so a string that ends just before
// an unmapped page is read whole; it stops at the NUL or after max bytes.
// NULL, unreadable memory and a task that is gone are errors.
func (hc *HandlerCtx) ReadCString(addr uint64, max int) (string, error) {
	if addr == 0 {
		return "", ErrNullPointer
	}
	if err := hc.valid(); err != nil {
		return "", err
	}
	s, _, err := readCString(int(hc.Notif.PID), addr, max)
	if verr := hc.valid(); verr != nil {
		return "", verr
	}
	return s, err
}

// WriteMem writes b at addr in the task's memory, honouring page
// protections (writing to read-only memory fails with EFAULT), with the same
// pending-notification checks as ReadMem.
func (hc *HandlerCtx) WriteMem(addr uint64, b []byte) error {
	if addr == 0 {
		return ErrNullPointer
	}
	if err := hc.valid(); err != nil {
		return err
	}
	err := writeMem(int(hc.Notif.PID), addr, b)
	if verr := hc.valid(); verr != nil {
		return verr
	}
	return err
}

// pageSize is fixed at start; reading it once avoids a syscall per string.
var pageSize = uint64(os.Getpagesize())

// readMem reads len(buf) bytes at addr of pid with process_vm_readv.
func readMem(pid int, addr uint64, buf []byte) (int, error) {
	if len(buf) == 0 {
		return 0, nil
	}
	local := []unix.Iovec{{Base: &buf[0], Len: uint64(len(buf))}}
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(buf)}}
	n, err := unix.ProcessVMReadv(pid, local, remote, 0)
	if err != nil {
		return 0, fmt.Errorf("sandlock: reading task memory at %#x: %w", addr, err)
	}
	if n < len(buf) {
		return n, fmt.Errorf("sandlock: reading task memory at %#x: short read (%d of %d bytes): %w", addr, n, len(buf), unix.EFAULT)
	}
	return n, nil
}

func writeMem(pid int, addr uint64, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	local := []unix.Iovec{{Base: &b[0], Len: uint64(len(b))}}
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(b)}}
	n, err := unix.ProcessVMWritev(pid, local, remote, 0)
	if err != nil {
		return fmt.Errorf("sandlock: writing task memory at %#x: %w", addr, err)
	}
	if n < len(b) {
		return fmt.Errorf("sandlock: writing task memory at %#x: short write (%d of %d bytes): %w", addr, n, len(b), unix.EFAULT)
	}
	return nil
}

// readCString reads up to max bytes at addr, one page-bounded chunk at a
// time, and stops at the first NUL. terminated reports whether a NUL was
// found within max bytes.
func readCString(pid int, addr uint64, max int) (s string, terminated bool, err error) {
	return scanCString(addr, max, func(at uint64, buf []byte) (int, error) { return readMem(pid, at, buf) })
}

// scanCString is the page-walking core of readCString, separated from the
// process_vm_readv call so it can be tested against synthetic memory.
func scanCString(addr uint64, max int, read func(at uint64, buf []byte) (int, error)) (string, bool, error) {
	if max <= 0 {
		return "", false, nil
	}
	out := make([]byte, 0, min(max, 256))
	chunk := make([]byte, pageSize)
	for len(out) < max {
		at := addr + uint64(len(out))
		if at < addr {
			return "", false, fmt.Errorf("sandlock: string at %#x wraps the address space: %w", addr, unix.EFAULT)
		}
		n := int(pageSize - at%pageSize)
		n = min(n, max-len(out))
		got, err := read(at, chunk[:n])
		for i := 0; i < got; i++ {
			if chunk[i] == 0 {
				return string(append(out, chunk[:i]...)), true, nil
			}
		}
		out = append(out, chunk[:got]...)
		if err != nil {
			return "", false, err
		}
	}
	return string(out), false, nil
}

// ReadPath reads a path argument for a builtin handler: a NUL-terminated
// string of at most PATH_MAX bytes. A longer string is ENAMETOOLONG and
// unreadable memory EFAULT, as the kernel would answer; a task that is gone
// is ErrTaskGone.
func ReadPath(hc *HandlerCtx, addr uint64) (string, error) {
	if addr == 0 {
		return "", unix.EFAULT
	}
	if err := hc.valid(); err != nil {
		return "", err
	}
	s, terminated, err := readCString(int(hc.Notif.PID), addr, unix.PathMax)
	if verr := hc.valid(); verr != nil {
		return "", verr
	}
	if err != nil {
		return "", unix.EFAULT
	}
	if !terminated {
		return "", unix.ENAMETOOLONG
	}
	return s, nil
}

// TaskAlive reports, for builtin handlers, whether hc's notification is
// still pending: checked after opening /proc/<pid>/... entries, it proves
// they belong to the notifying task and not to a process that reused its
// pid.
func TaskAlive(hc *HandlerCtx) error { return hc.valid() }
