//go:build linux

package fsmeta

import (
	"encoding/binary"
	"errors"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/taskpath"
)

// Limits the kernel applies to xattr names, values and lists, and to the
// versioned structs of the *at syscalls.
const (
	xattrNameMax  = 255
	xattrSizeMax  = 65536 // XATTR_SIZE_MAX and XATTR_LIST_MAX
	xattrArgsSize = 16    // struct xattr_args, XATTR_ARGS_SIZE_VER0
	fileAttrSize0 = 24    // struct file_attr, FILE_ATTR_SIZE_VER0
	structMax     = 4096  // PAGE_SIZE: larger versioned structs are E2BIG
)

var atFDCWD = unix.AT_FDCWD // as a variable, to convert it to uintptr

// calls lists every syscall the guard serves.
func (g *Guard) calls() []call {
	cwd := taskpath.AtFDCWD
	return []call{
		// Metadata changes.
		{"chmod", true, func(g *Guard, hc *notify.HandlerCtx) (int64, error) {
			return g.chmodAt(hc, cwd, arg(hc, 0), arg(hc, 1), 0)
		}},
		{"fchmodat", true, func(g *Guard, hc *notify.HandlerCtx) (int64, error) {
			return g.chmodAt(hc, arg(hc, 0), arg(hc, 1), arg(hc, 2), 0)
		}},
		{"fchmodat2", true, func(g *Guard, hc *notify.HandlerCtx) (int64, error) {
			return g.chmodAt(hc, arg(hc, 0), arg(hc, 1), arg(hc, 2), arg(hc, 3))
		}},
		{"fchmod", true, (*Guard).fchmod},
		{"chown", true, func(g *Guard, hc *notify.HandlerCtx) (int64, error) {
			return g.chownAt(hc, cwd, arg(hc, 0), arg(hc, 1), arg(hc, 2), 0)
		}},
		{"lchown", true, func(g *Guard, hc *notify.HandlerCtx) (int64, error) {
			return g.chownAt(hc, cwd, arg(hc, 0), arg(hc, 1), arg(hc, 2), unix.AT_SYMLINK_NOFOLLOW)
		}},
		{"fchownat", true, func(g *Guard, hc *notify.HandlerCtx) (int64, error) {
			return g.chownAt(hc, arg(hc, 0), arg(hc, 1), arg(hc, 2), arg(hc, 3), arg(hc, 4))
		}},
		{"fchown", true, (*Guard).fchown},
		{"utime", true, (*Guard).utime},
		{"utimes", true, func(g *Guard, hc *notify.HandlerCtx) (int64, error) {
			return g.futimesat(hc, cwd, arg(hc, 0), arg(hc, 1))
		}},
		{"futimesat", true, func(g *Guard, hc *notify.HandlerCtx) (int64, error) {
			return g.futimesat(hc, arg(hc, 0), arg(hc, 1), arg(hc, 2))
		}},
		{"utimensat", true, (*Guard).utimensat},
		{"setxattr", true, func(g *Guard, hc *notify.HandlerCtx) (int64, error) { return g.setxattr(hc, false) }},
		{"lsetxattr", true, func(g *Guard, hc *notify.HandlerCtx) (int64, error) { return g.setxattr(hc, true) }},
		{"fsetxattr", true, (*Guard).fsetxattr},
		{"setxattrat", true, (*Guard).setxattrat},
		{"removexattr", true, func(g *Guard, hc *notify.HandlerCtx) (int64, error) { return g.removexattr(hc, false) }},
		{"lremovexattr", true, func(g *Guard, hc *notify.HandlerCtx) (int64, error) { return g.removexattr(hc, true) }},
		{"fremovexattr", true, (*Guard).fremovexattr},
		{"removexattrat", true, (*Guard).removexattrat},
		{"file_setattr", true, func(g *Guard, hc *notify.HandlerCtx) (int64, error) { return g.fileAttr(hc, true) }},
		// Reads Landlock lets through.
		{"getxattr", false, func(g *Guard, hc *notify.HandlerCtx) (int64, error) { return g.getxattr(hc, false) }},
		{"lgetxattr", false, func(g *Guard, hc *notify.HandlerCtx) (int64, error) { return g.getxattr(hc, true) }},
		{"getxattrat", false, (*Guard).getxattrat},
		{"listxattr", false, func(g *Guard, hc *notify.HandlerCtx) (int64, error) { return g.listxattr(hc, false) }},
		{"llistxattr", false, func(g *Guard, hc *notify.HandlerCtx) (int64, error) { return g.listxattr(hc, true) }},
		{"listxattrat", false, (*Guard).listxattrat},
		{"file_getattr", false, func(g *Guard, hc *notify.HandlerCtx) (int64, error) { return g.fileAttr(hc, false) }},
		{"inotify_add_watch", false, (*Guard).inotifyAddWatch},
		{"fanotify_mark", false, (*Guard).fanotifyMark},
		// The ioctls that change a file's attributes through any open
		// descriptor (see IoctlCommands).
		{"ioctl", true, (*Guard).ioctl},
		// fgetxattr and flistxattr are left alone: they read through an
		// open file (never O_PATH), which the program could only open
		// through Landlock or was given.
	}
}

func arg(hc *notify.HandlerCtx, i int) uint64 { return hc.Notif.Data.Args[i] }

// memErr turns a failed read or write of the task's memory into the
// kernel's EFAULT (or the task being gone).
func memErr(err error) error {
	if errors.Is(err, notify.ErrTaskGone) {
		return notify.ErrTaskGone
	}
	return unix.EFAULT
}

// atFlags rejects flags other than AT_SYMLINK_NOFOLLOW and AT_EMPTY_PATH.
func atFlags(flags uint64) error {
	if uint32(flags)&^(unix.AT_SYMLINK_NOFOLLOW|unix.AT_EMPTY_PATH) != 0 {
		return unix.EINVAL
	}
	return nil
}

// pathAt is the lookup of a *at syscall with AT_SYMLINK_NOFOLLOW and
// AT_EMPTY_PATH flags.
func pathAt(dirfd, addr, flags uint64) pathArg {
	return pathArg{
		dirfd:    dirfd,
		addr:     addr,
		nofollow: flags&unix.AT_SYMLINK_NOFOLLOW != 0,
		empty:    flags&unix.AT_EMPTY_PATH != 0,
	}
}

// chmodAt serves chmod, fchmodat and fchmodat2.
func (g *Guard) chmodAt(hc *notify.HandlerCtx, dirfd, addr, mode, flags uint64) (int64, error) {
	if err := atFlags(flags); err != nil {
		return 0, err
	}
	o, err := g.target(hc, pathAt(dirfd, addr, flags))
	if err != nil {
		return 0, err
	}
	return g.act(hc, o, true, func(pin int) (uintptr, error) {
		r, err := ret(unix.Syscall6(unix.SYS_FCHMODAT2, uintptr(pin), uintptr(unsafe.Pointer(&emptyPath[0])), uintptr(mode), unix.AT_EMPTY_PATH, 0, 0))
		if err == unix.ENOSYS {
			// Before Linux 6.6: through the helper's magic link.
			return ret(unix.Syscall6(unix.SYS_FCHMODAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(procFD(pin))), uintptr(mode), 0, 0, 0))
		}
		return r, err
	}, func(dirfd int, path unsafe.Pointer) (uintptr, error) {
		return ret(unix.Syscall6(unix.SYS_FCHMODAT2, uintptr(dirfd), uintptr(path), uintptr(mode), uintptr(flags), 0, 0))
	})
}

func (g *Guard) fchmod(hc *notify.HandlerCtx) (int64, error) {
	o, err := g.fdObject(hc, arg(hc, 0))
	if err != nil {
		return 0, err
	}
	mode := arg(hc, 1)
	return g.act(hc, o, true, nil, func(fd int, _ unsafe.Pointer) (uintptr, error) {
		return ret(unix.Syscall(unix.SYS_FCHMOD, uintptr(fd), uintptr(mode), 0))
	})
}

// chownAt serves chown, lchown and fchownat.
func (g *Guard) chownAt(hc *notify.HandlerCtx, dirfd, addr, uid, gid, flags uint64) (int64, error) {
	if err := atFlags(flags); err != nil {
		return 0, err
	}
	o, err := g.target(hc, pathAt(dirfd, addr, flags))
	if err != nil {
		return 0, err
	}
	return g.act(hc, o, true, func(pin int) (uintptr, error) {
		return ret(unix.Syscall6(unix.SYS_FCHOWNAT, uintptr(pin), uintptr(unsafe.Pointer(&emptyPath[0])), uintptr(uid), uintptr(gid), unix.AT_EMPTY_PATH, 0))
	}, func(dirfd int, path unsafe.Pointer) (uintptr, error) {
		return ret(unix.Syscall6(unix.SYS_FCHOWNAT, uintptr(dirfd), uintptr(path), uintptr(uid), uintptr(gid), uintptr(flags), 0))
	})
}

func (g *Guard) fchown(hc *notify.HandlerCtx) (int64, error) {
	o, err := g.fdObject(hc, arg(hc, 0))
	if err != nil {
		return 0, err
	}
	uid, gid := arg(hc, 1), arg(hc, 2)
	return g.act(hc, o, true, nil, func(fd int, _ unsafe.Pointer) (uintptr, error) {
		return ret(unix.Syscall(unix.SYS_FCHOWN, uintptr(fd), uintptr(uid), uintptr(gid)))
	})
}

// utime serves utime(path, struct utimbuf *): whole seconds.
func (g *Guard) utime(hc *notify.HandlerCtx) (int64, error) {
	var ts *[2]unix.Timespec
	if addr := arg(hc, 1); addr != 0 {
		b, err := hc.ReadMem(addr, 16)
		if err != nil {
			return 0, memErr(err)
		}
		ts = &[2]unix.Timespec{{Sec: int64(binary.NativeEndian.Uint64(b))}, {Sec: int64(binary.NativeEndian.Uint64(b[8:]))}}
	}
	return g.utimensAt(hc, taskpath.AtFDCWD, arg(hc, 0), ts, 0)
}

// futimesat serves utimes and futimesat (struct timeval: microseconds).
func (g *Guard) futimesat(hc *notify.HandlerCtx, dirfd, addr, tvAddr uint64) (int64, error) {
	var ts *[2]unix.Timespec
	if tvAddr != 0 {
		b, err := hc.ReadMem(tvAddr, 32)
		if err != nil {
			return 0, memErr(err)
		}
		ts = new([2]unix.Timespec)
		for i := range ts {
			sec, usec := int64(binary.NativeEndian.Uint64(b[16*i:])), int64(binary.NativeEndian.Uint64(b[16*i+8:]))
			// Checked here, as the kernel does before converting: UTIME_NOW
			// and UTIME_OMIT are not microsecond values.
			if usec < 0 || usec >= 1000000 {
				return 0, unix.EINVAL
			}
			ts[i] = unix.Timespec{Sec: sec, Nsec: usec * 1000}
		}
	}
	return g.utimensAt(hc, dirfd, addr, ts, 0)
}

func (g *Guard) utimensat(hc *notify.HandlerCtx) (int64, error) {
	var ts *[2]unix.Timespec
	if addr := arg(hc, 2); addr != 0 {
		b, err := hc.ReadMem(addr, 32)
		if err != nil {
			return 0, memErr(err)
		}
		ts = new([2]unix.Timespec)
		for i := range ts {
			ts[i] = unix.Timespec{Sec: int64(binary.NativeEndian.Uint64(b[16*i:])), Nsec: int64(binary.NativeEndian.Uint64(b[16*i+8:]))}
		}
		if ts[0].Nsec == unix.UTIME_OMIT && ts[1].Nsec == unix.UTIME_OMIT {
			return 0, nil // nothing to do: the kernel does not even look at the path
		}
	}
	return g.utimensAt(hc, arg(hc, 0), arg(hc, 1), ts, arg(hc, 3))
}

// utimensAt sets times (nil: now) on a path, or on dirfd itself for a NULL
// path (futimens).
func (g *Guard) utimensAt(hc *notify.HandlerCtx, dirfd, addr uint64, ts *[2]unix.Timespec, flags uint64) (int64, error) {
	tsp := unsafe.Pointer(ts)
	var o object
	var err error
	if addr == 0 && !taskpath.IsCWD(dirfd) {
		// The descriptor form.
		if flags != 0 {
			return 0, unix.EINVAL
		}
		o, err = g.fdObject(hc, dirfd)
		o.null = true
	} else {
		if err := atFlags(flags); err != nil {
			return 0, err
		}
		o, err = g.target(hc, pathAt(dirfd, addr, flags))
	}
	if err != nil {
		return 0, err
	}
	return g.act(hc, o, true, func(pin int) (uintptr, error) {
		return ret(unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(pin), uintptr(unsafe.Pointer(&emptyPath[0])), uintptr(tsp), unix.AT_EMPTY_PATH, 0, 0))
	}, func(dirfd int, path unsafe.Pointer) (uintptr, error) {
		return ret(unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(dirfd), uintptr(path), uintptr(tsp), uintptr(flags), 0, 0))
	})
}

// readName reads an xattr name as the kernel does: EFAULT for unreadable
// memory, ERANGE for an empty name or one that does not end within 255
// bytes. It returns the name NUL-terminated.
func readName(hc *notify.HandlerCtx, addr uint64) ([]byte, error) {
	s, err := hc.ReadCString(addr, xattrNameMax+1)
	if err != nil {
		return nil, memErr(err)
	}
	if len(s) == 0 || len(s) > xattrNameMax {
		return nil, unix.ERANGE
	}
	return append([]byte(s), 0), nil
}

// xattrSet is a private copy of a set request.
type xattrSet struct {
	name  []byte
	value []byte
	size  uint64
	flags uint64
}

// readSet copies a set request as setxattr_copy does: flags, name, size,
// value, in that order.
func readSet(hc *notify.HandlerCtx, nameAddr, valueAddr, size, flags uint64) (*xattrSet, error) {
	if flags&^uint64(unix.XATTR_CREATE|unix.XATTR_REPLACE) != 0 {
		return nil, unix.EINVAL
	}
	name, err := readName(hc, nameAddr)
	if err != nil {
		return nil, err
	}
	x := &xattrSet{name: name, size: size, flags: flags}
	if size > 0 {
		if size > xattrSizeMax {
			return nil, unix.E2BIG
		}
		if x.value, err = hc.ReadMem(valueAddr, int(size)); err != nil {
			return nil, memErr(err)
		}
	}
	return x, nil
}

// valuePtr is the address of a buffer for a syscall, nil when empty.
func valuePtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

// setxattr serves setxattr and lsetxattr.
func (g *Guard) setxattr(hc *notify.HandlerCtx, nofollow bool) (int64, error) {
	x, err := readSet(hc, arg(hc, 1), arg(hc, 2), arg(hc, 3), arg(hc, 4))
	if err != nil {
		return 0, err
	}
	o, err := g.target(hc, pathArg{dirfd: taskpath.AtFDCWD, addr: arg(hc, 0), nofollow: nofollow})
	if err != nil {
		return 0, err
	}
	return g.act(hc, o, true, x.onPin, nil)
}

// onPin sets the attribute on a pinned object, through the helper's magic
// link to it.
func (x *xattrSet) onPin(pin int) (uintptr, error) {
	defer runtime.KeepAlive(x)
	return ret(unix.Syscall6(unix.SYS_SETXATTR, uintptr(unsafe.Pointer(procFD(pin))), uintptr(unsafe.Pointer(&x.name[0])), uintptr(valuePtr(x.value)), uintptr(x.size), uintptr(x.flags), 0))
}

func (g *Guard) fsetxattr(hc *notify.HandlerCtx) (int64, error) {
	o, err := g.fdObject(hc, arg(hc, 0))
	if err != nil {
		return 0, err
	}
	x, err := readSet(hc, arg(hc, 1), arg(hc, 2), arg(hc, 3), arg(hc, 4))
	if err != nil {
		o.close()
		return 0, err
	}
	return g.act(hc, o, true, nil, func(fd int, _ unsafe.Pointer) (uintptr, error) {
		defer runtime.KeepAlive(x)
		return ret(unix.Syscall6(unix.SYS_FSETXATTR, uintptr(fd), uintptr(unsafe.Pointer(&x.name[0])), uintptr(valuePtr(x.value)), uintptr(x.size), uintptr(x.flags), 0))
	})
}

// xattrArgs is struct xattr_args.
type xattrArgs struct {
	value uint64
	size  uint32
	flags uint32
}

// readXattrArgs copies the struct xattr_args of setxattrat and getxattrat
// as copy_struct_from_user does: bytes past the struct this kernel
// interface knows must be zero.
func readXattrArgs(hc *notify.HandlerCtx, addr, usize uint64) (xattrArgs, error) {
	if usize < xattrArgsSize {
		return xattrArgs{}, unix.EINVAL
	}
	if usize > structMax {
		return xattrArgs{}, unix.E2BIG
	}
	b, err := hc.ReadMem(addr, int(usize))
	if err != nil {
		return xattrArgs{}, memErr(err)
	}
	for _, c := range b[xattrArgsSize:] {
		if c != 0 {
			return xattrArgs{}, unix.E2BIG
		}
	}
	return xattrArgs{
		value: binary.NativeEndian.Uint64(b),
		size:  binary.NativeEndian.Uint32(b[8:]),
		flags: binary.NativeEndian.Uint32(b[12:]),
	}, nil
}

// xattrAt is the lookup of the xattr *at syscalls: an empty path with
// AT_EMPTY_PATH (or a NULL one) names the open file behind dirfd.
func xattrAt(dirfd, addr, flags uint64) pathArg {
	pa := pathAt(dirfd, addr, flags)
	pa.nullOK, pa.fdget = true, true
	return pa
}

func (g *Guard) setxattrat(hc *notify.HandlerCtx) (int64, error) {
	args, err := readXattrArgs(hc, arg(hc, 4), arg(hc, 5))
	if err != nil {
		return 0, err
	}
	at := arg(hc, 2)
	if err := atFlags(at); err != nil {
		return 0, err
	}
	x, err := readSet(hc, arg(hc, 3), args.value, uint64(args.size), uint64(args.flags))
	if err != nil {
		return 0, err
	}
	o, err := g.target(hc, xattrAt(arg(hc, 0), arg(hc, 1), at))
	if err != nil {
		return 0, err
	}
	return g.act(hc, o, true, x.onPin, func(dirfd int, path unsafe.Pointer) (uintptr, error) {
		a := &xattrArgs{value: uint64(uintptr(valuePtr(x.value))), size: uint32(x.size), flags: uint32(x.flags)}
		defer runtime.KeepAlive(x)
		return ret(unix.Syscall6(unix.SYS_SETXATTRAT, uintptr(dirfd), uintptr(path), uintptr(at), uintptr(unsafe.Pointer(&x.name[0])), uintptr(unsafe.Pointer(a)), xattrArgsSize))
	})
}

// removexattr serves removexattr and lremovexattr.
func (g *Guard) removexattr(hc *notify.HandlerCtx, nofollow bool) (int64, error) {
	name, err := readName(hc, arg(hc, 1))
	if err != nil {
		return 0, err
	}
	o, err := g.target(hc, pathArg{dirfd: taskpath.AtFDCWD, addr: arg(hc, 0), nofollow: nofollow})
	if err != nil {
		return 0, err
	}
	return g.act(hc, o, true, removeOnPin(name), nil)
}

func removeOnPin(name []byte) op {
	return func(pin int) (uintptr, error) {
		return ret(unix.Syscall(unix.SYS_REMOVEXATTR, uintptr(unsafe.Pointer(procFD(pin))), uintptr(unsafe.Pointer(&name[0])), 0))
	}
}

func (g *Guard) fremovexattr(hc *notify.HandlerCtx) (int64, error) {
	o, err := g.fdObject(hc, arg(hc, 0))
	if err != nil {
		return 0, err
	}
	name, err := readName(hc, arg(hc, 1))
	if err != nil {
		o.close()
		return 0, err
	}
	return g.act(hc, o, true, nil, func(fd int, _ unsafe.Pointer) (uintptr, error) {
		return ret(unix.Syscall(unix.SYS_FREMOVEXATTR, uintptr(fd), uintptr(unsafe.Pointer(&name[0])), 0))
	})
}

func (g *Guard) removexattrat(hc *notify.HandlerCtx) (int64, error) {
	at := arg(hc, 2)
	if err := atFlags(at); err != nil {
		return 0, err
	}
	name, err := readName(hc, arg(hc, 3))
	if err != nil {
		return 0, err
	}
	o, err := g.target(hc, xattrAt(arg(hc, 0), arg(hc, 1), at))
	if err != nil {
		return 0, err
	}
	return g.act(hc, o, true, removeOnPin(name), func(dirfd int, path unsafe.Pointer) (uintptr, error) {
		return ret(unix.Syscall6(unix.SYS_REMOVEXATTRAT, uintptr(dirfd), uintptr(path), uintptr(at), uintptr(unsafe.Pointer(&name[0])), 0, 0))
	})
}

// outBuf is a private buffer for a value or list the kernel returns: at
// most what the kernel itself would use of the task's size.
func outBuf(size uint64) []byte {
	return make([]byte, min(size, xattrSizeMax))
}

// copyOut writes the first n bytes the kernel returned back to the task,
// as the kernel would (nothing for a size probe or an empty result).
func copyOut(hc *notify.HandlerCtx, addr uint64, buf []byte, n int64, err error) (int64, error) {
	if err != nil || n <= 0 || len(buf) == 0 {
		return n, err
	}
	if werr := hc.WriteMem(addr, buf[:n]); werr != nil {
		return 0, memErr(werr)
	}
	return n, nil
}

// getxattr serves getxattr and lgetxattr.
func (g *Guard) getxattr(hc *notify.HandlerCtx, nofollow bool) (int64, error) {
	name, err := readName(hc, arg(hc, 1))
	if err != nil {
		return 0, err
	}
	o, err := g.target(hc, pathArg{dirfd: taskpath.AtFDCWD, addr: arg(hc, 0), nofollow: nofollow})
	if err != nil {
		return 0, err
	}
	buf := outBuf(arg(hc, 3))
	n, err := g.act(hc, o, false, getOnPin(name, buf), nil)
	return copyOut(hc, arg(hc, 2), buf, n, err)
}

func getOnPin(name, buf []byte) op {
	return func(pin int) (uintptr, error) {
		defer runtime.KeepAlive(buf)
		return ret(unix.Syscall6(unix.SYS_GETXATTR, uintptr(unsafe.Pointer(procFD(pin))), uintptr(unsafe.Pointer(&name[0])), uintptr(valuePtr(buf)), uintptr(len(buf)), 0, 0))
	}
}

func (g *Guard) getxattrat(hc *notify.HandlerCtx) (int64, error) {
	args, err := readXattrArgs(hc, arg(hc, 4), arg(hc, 5))
	if err != nil {
		return 0, err
	}
	if args.flags != 0 {
		return 0, unix.EINVAL
	}
	at := arg(hc, 2)
	if err := atFlags(at); err != nil {
		return 0, err
	}
	name, err := readName(hc, arg(hc, 3))
	if err != nil {
		return 0, err
	}
	o, err := g.target(hc, xattrAt(arg(hc, 0), arg(hc, 1), at))
	if err != nil {
		return 0, err
	}
	buf := outBuf(uint64(args.size))
	n, err := g.act(hc, o, false, getOnPin(name, buf), func(dirfd int, path unsafe.Pointer) (uintptr, error) {
		a := &xattrArgs{value: uint64(uintptr(valuePtr(buf))), size: uint32(len(buf))}
		defer runtime.KeepAlive(buf)
		return ret(unix.Syscall6(unix.SYS_GETXATTRAT, uintptr(dirfd), uintptr(path), uintptr(at), uintptr(unsafe.Pointer(&name[0])), uintptr(unsafe.Pointer(a)), xattrArgsSize))
	})
	return copyOut(hc, args.value, buf, n, err)
}

// listxattr serves listxattr and llistxattr.
func (g *Guard) listxattr(hc *notify.HandlerCtx, nofollow bool) (int64, error) {
	o, err := g.target(hc, pathArg{dirfd: taskpath.AtFDCWD, addr: arg(hc, 0), nofollow: nofollow})
	if err != nil {
		return 0, err
	}
	buf := outBuf(arg(hc, 2))
	n, err := g.act(hc, o, false, listOnPin(buf), nil)
	return copyOut(hc, arg(hc, 1), buf, n, err)
}

func listOnPin(buf []byte) op {
	return func(pin int) (uintptr, error) {
		defer runtime.KeepAlive(buf)
		return ret(unix.Syscall(unix.SYS_LISTXATTR, uintptr(unsafe.Pointer(procFD(pin))), uintptr(valuePtr(buf)), uintptr(len(buf))))
	}
}

func (g *Guard) listxattrat(hc *notify.HandlerCtx) (int64, error) {
	at := arg(hc, 2)
	if err := atFlags(at); err != nil {
		return 0, err
	}
	o, err := g.target(hc, xattrAt(arg(hc, 0), arg(hc, 1), at))
	if err != nil {
		return 0, err
	}
	buf := outBuf(arg(hc, 4))
	n, err := g.act(hc, o, false, listOnPin(buf), func(dirfd int, path unsafe.Pointer) (uintptr, error) {
		defer runtime.KeepAlive(buf)
		return ret(unix.Syscall6(unix.SYS_LISTXATTRAT, uintptr(dirfd), uintptr(path), uintptr(at), uintptr(valuePtr(buf)), uintptr(len(buf)), 0))
	})
	return copyOut(hc, arg(hc, 3), buf, n, err)
}

// fileAttr serves file_setattr (set) and file_getattr: the struct is
// copied both ways whole, at the task's size; the kernel checks it.
func (g *Guard) fileAttr(hc *notify.HandlerCtx, set bool) (int64, error) {
	at, usize := arg(hc, 4), arg(hc, 3)
	if err := atFlags(at); err != nil {
		return 0, err
	}
	if usize > structMax {
		return 0, unix.E2BIG
	}
	if usize < fileAttrSize0 {
		return 0, unix.EINVAL
	}
	nr := uintptr(unix.SYS_FILE_GETATTR)
	buf := make([]byte, usize)
	if set {
		nr = unix.SYS_FILE_SETATTR
		b, err := hc.ReadMem(arg(hc, 2), int(usize))
		if err != nil {
			return 0, memErr(err)
		}
		buf = b
	}
	o, err := g.target(hc, xattrAt(arg(hc, 0), arg(hc, 1), at))
	if err != nil {
		return 0, err
	}
	n, err := g.act(hc, o, set, func(pin int) (uintptr, error) {
		defer runtime.KeepAlive(buf)
		return ret(unix.Syscall6(nr, uintptr(atFDCWD), uintptr(unsafe.Pointer(procFD(pin))), uintptr(unsafe.Pointer(&buf[0])), uintptr(usize), 0, 0))
	}, func(dirfd int, path unsafe.Pointer) (uintptr, error) {
		defer runtime.KeepAlive(buf)
		return ret(unix.Syscall6(nr, uintptr(dirfd), uintptr(path), uintptr(unsafe.Pointer(&buf[0])), uintptr(usize), uintptr(at), 0))
	})
	if set || err != nil {
		return n, err
	}
	if werr := hc.WriteMem(arg(hc, 2), buf); werr != nil {
		return 0, memErr(werr)
	}
	return n, nil
}

// notifyFD duplicates the task's inotify or fanotify descriptor: EBADF if
// it is not open, EINVAL if it is something else (as the kernel checks
// before looking at the path).
func (g *Guard) notifyFD(hc *notify.HandlerCtx, fd uint64, kind string) (int, error) {
	dup, err := taskpath.DupFD(hc, fd, g.tgid, true)
	if err != nil {
		return -1, err
	}
	if p, err := taskpath.FDPath(dup); err != nil || p != kind {
		unix.Close(dup)
		return -1, unix.EINVAL
	}
	return dup, nil
}

func (g *Guard) inotifyAddWatch(hc *notify.HandlerCtx) (int64, error) {
	ifd, err := g.notifyFD(hc, arg(hc, 0), "anon_inode:inotify")
	if err != nil {
		return 0, err
	}
	defer unix.Close(ifd)
	mask := uint32(arg(hc, 2))
	o, err := g.target(hc, pathArg{dirfd: taskpath.AtFDCWD, addr: arg(hc, 1), nofollow: mask&unix.IN_DONT_FOLLOW != 0})
	if err != nil {
		return 0, err
	}
	return g.act(hc, o, false, func(pin int) (uintptr, error) {
		// The magic link leads to the pinned object itself, symlink or
		// not: following it is what IN_DONT_FOLLOW asked of the path.
		return ret(unix.Syscall(unix.SYS_INOTIFY_ADD_WATCH, uintptr(ifd), uintptr(unsafe.Pointer(procFD(pin))), uintptr(mask&^unix.IN_DONT_FOLLOW)))
	}, nil)
}

func (g *Guard) fanotifyMark(hc *notify.HandlerCtx) (int64, error) {
	ffd, err := g.notifyFD(hc, arg(hc, 0), "anon_inode:[fanotify]")
	if err != nil {
		return 0, err
	}
	defer unix.Close(ffd)
	flags, mask, dirfd, addr := arg(hc, 1), arg(hc, 2), arg(hc, 3), arg(hc, 4)
	mark := func(dirfd int, path unsafe.Pointer) (uintptr, error) {
		return ret(unix.Syscall6(unix.SYS_FANOTIFY_MARK, uintptr(ffd), uintptr(flags), uintptr(mask), uintptr(dirfd), uintptr(path), 0))
	}
	if flags&unix.FAN_MARK_FLUSH != 0 {
		// Removes marks, names no object.
		if g.checkOnly {
			return 0, goOn{}
		}
		var r uintptr
		if derr := g.run(func() { r, err = mark(atFDCWD, nil) }); derr != nil {
			return 0, derr
		}
		return int64(r), err
	}
	var o object
	if addr == 0 {
		// A NULL path marks the open file behind dirfd.
		o, err = g.dirObject(hc, dirfd, true, true)
	} else {
		o, err = g.target(hc, pathArg{dirfd: dirfd, addr: addr, nofollow: flags&unix.FAN_MARK_DONT_FOLLOW != 0})
	}
	if err != nil {
		return 0, err
	}
	return g.act(hc, o, false, func(pin int) (uintptr, error) {
		return ret(unix.Syscall6(unix.SYS_FANOTIFY_MARK, uintptr(ffd), uintptr(flags&^unix.FAN_MARK_DONT_FOLLOW), uintptr(mask), uintptr(atFDCWD), uintptr(unsafe.Pointer(procFD(pin))), 0))
	}, mark)
}
