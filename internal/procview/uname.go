//go:build linux

package procview

import (
	"context"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/notify"
)

// uname answers uname(2) with the host's answer and the sandbox's name as
// the nodename (what hostname(1) and gethostname print). The answer is
// written into the program's buffer: nothing is left to the kernel.
func (v *View) uname(_ context.Context, hc *notify.HandlerCtx) notify.Action {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return notify.Errno(unix.EFAULT)
	}
	setNodename(&u, v.cfg.Nodename())
	b := unsafe.Slice((*byte)(unsafe.Pointer(&u)), unsafe.Sizeof(u))
	if err := hc.WriteMem(hc.Notif.Data.Args[0], b); err != nil {
		return notify.Errno(unix.EFAULT)
	}
	return notify.ReturnValue(0)
}

// setNodename puts name (at most 64 bytes, as the kernel's) in u.
func setNodename(u *unix.Utsname, name string) {
	clear(u.Nodename[:])
	copy(u.Nodename[:len(u.Nodename)-1], name)
}
