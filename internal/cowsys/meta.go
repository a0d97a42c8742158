//go:build linux

package cowsys

import (
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/taskpath"
)

// object opens the object a resolved target names, with O_PATH: the
// descriptor's own file, or the merged entry.
func (g *Gate) object(t target) (int, error) {
	if t.fd >= 0 && t.Rel == "" && !g.locatable(t.fd) {
		return unix.Dup(t.fd)
	}
	return g.b.Pin(t.Rel)
}

// stat serves stat, lstat and newfstatat: the merged entry's stat written
// into the program's buffer.
func (g *Gate) stat(hc *notify.HandlerCtx, dirfd, pathAddr, buf, flags uint64) notify.Action {
	if flags&^uint64(unix.AT_SYMLINK_NOFOLLOW|unix.AT_EMPTY_PATH|unix.AT_NO_AUTOMOUNT) != 0 {
		return notify.Errno(unix.EINVAL)
	}
	path, err := readPath(hc, pathAddr)
	if err != nil {
		return fail(err)
	}
	if path == "" && flags&unix.AT_EMPTY_PATH != 0 {
		return notify.Continue() // a descriptor: the kernel's
	}
	t, err := g.resolve(hc, dirfd, path, flags&unix.AT_SYMLINK_NOFOLLOW == 0)
	if err != nil {
		return fail(err)
	}
	defer t.close()
	var st unix.Stat_t
	switch {
	case !t.Inside:
		if !t.Differs && t.fd < 0 {
			return notify.Continue()
		}
		if t.fd >= 0 {
			err = unix.Fstat(t.fd, &st)
		} else {
			err = g.statOutside(hc, t.Abs, flags&unix.AT_SYMLINK_NOFOLLOW != 0, &st)
		}
		if err != nil {
			return fail(err)
		}
	case !t.Exists:
		return notify.Errno(unix.ENOENT)
	case t.kernel() && t.fd < 0:
		return notify.Continue()
	case t.fd >= 0 && !g.locatable(t.fd):
		if err := unix.Fstat(t.fd, &st); err != nil {
			return fail(err)
		}
	default:
		st = t.Entry.Stat
	}
	b := (*[unsafe.Sizeof(st)]byte)(unsafe.Pointer(&st))[:]
	if err := hc.WriteMem(buf, b); err != nil {
		return notify.Errno(unix.EFAULT)
	}
	return notify.ReturnValue(0)
}

// statOutside stats a path outside the workdir named through a symlink of
// the upper layer: resolved like the program's own paths (its /proc/self
// is its own).
func (g *Gate) statOutside(hc *notify.HandlerCtx, abs string, nofollow bool, st *unix.Stat_t) error {
	if g.outside == nil {
		return unix.EXDEV
	}
	pin, err := g.outside.Resolve(hc, 0, abs, nofollow)
	if err != nil {
		return err
	}
	defer unix.Close(pin)
	return unix.Fstat(pin, st)
}

// statx serves statx.
func (g *Gate) statx(hc *notify.HandlerCtx) notify.Action {
	dirfd, pathAddr, flags, mask, buf := arg(hc, 0), arg(hc, 1), arg(hc, 2), arg(hc, 3), arg(hc, 4)
	path, err := readPath(hc, pathAddr)
	if err != nil {
		return fail(err)
	}
	if path == "" && flags&unix.AT_EMPTY_PATH != 0 {
		return notify.Continue()
	}
	t, err := g.resolve(hc, dirfd, path, flags&unix.AT_SYMLINK_NOFOLLOW == 0)
	if err != nil {
		return fail(err)
	}
	defer t.close()
	var obj int
	switch {
	case !t.Inside:
		if !t.Differs && t.fd < 0 {
			return notify.Continue()
		}
		if t.fd >= 0 {
			obj, err = unix.Dup(t.fd)
		} else if g.outside != nil {
			obj, err = g.outside.Resolve(hc, 0, t.Abs, flags&unix.AT_SYMLINK_NOFOLLOW != 0)
		} else {
			err = unix.EXDEV
		}
	case !t.Exists:
		return notify.Errno(unix.ENOENT)
	case t.kernel() && t.fd < 0:
		return notify.Continue()
	default:
		obj, err = g.object(t)
	}
	if err != nil {
		return fail(err)
	}
	defer unix.Close(obj)
	var stx unix.Statx_t
	sync := int(flags) & (unix.AT_STATX_FORCE_SYNC | unix.AT_STATX_DONT_SYNC)
	if err := unix.Statx(obj, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW|sync, int(mask), &stx); err != nil {
		return fail(err)
	}
	b := (*[unsafe.Sizeof(stx)]byte)(unsafe.Pointer(&stx))[:]
	if err := hc.WriteMem(buf, b); err != nil {
		return notify.Errno(unix.EFAULT)
	}
	return notify.ReturnValue(0)
}

// access serves access, faccessat and faccessat2: judged on the merged
// entry with the program's rights (a lower file the program may write is
// writable: its writes go to the branch).
func (g *Gate) access(hc *notify.HandlerCtx, dirfd, pathAddr, mode, flags uint64) notify.Action {
	if mode&^uint64(unix.R_OK|unix.W_OK|unix.X_OK) != 0 || flags&^uint64(unix.AT_EACCESS|unix.AT_SYMLINK_NOFOLLOW|unix.AT_EMPTY_PATH) != 0 {
		return notify.Errno(unix.EINVAL)
	}
	path, err := readPath(hc, pathAddr)
	if err != nil {
		return fail(err)
	}
	if path == "" && flags&unix.AT_EMPTY_PATH != 0 {
		return notify.Continue()
	}
	t, err := g.resolve(hc, dirfd, path, flags&unix.AT_SYMLINK_NOFOLLOW == 0)
	if err != nil {
		return fail(err)
	}
	defer t.close()
	switch {
	case !t.Inside:
		if !t.Differs {
			return notify.Continue()
		}
		return notify.Errno(unix.EXDEV)
	case !t.Exists:
		return notify.Errno(unix.ENOENT)
	case t.kernel() && t.fd < 0 && mode&unix.W_OK == 0:
		return notify.Continue()
	}
	obj, err := g.object(t)
	if err != nil {
		return fail(err)
	}
	defer unix.Close(obj)
	if mode == unix.F_OK {
		return notify.ReturnValue(0)
	}
	// The supervisor's real and effective ids are the program's; the
	// effective capabilities (cleared for the program) decide, with
	// AT_EACCESS, whatever the program asked.
	if err := unix.Faccessat(unix.AT_FDCWD, taskpathProc(obj), uint32(mode), unix.AT_EACCESS); err != nil {
		return fail(err)
	}
	return notify.ReturnValue(0)
}

// statfs serves statfs: for the merged view, the workdir's filesystem.
func (g *Gate) statfs(hc *notify.HandlerCtx) notify.Action {
	path, err := readPath(hc, arg(hc, 0))
	if err != nil {
		return fail(err)
	}
	t, err := g.resolve(hc, taskpath.AtFDCWD, path, true)
	if err != nil {
		return fail(err)
	}
	defer t.close()
	if !t.Inside {
		if !t.Differs {
			return notify.Continue()
		}
		return notify.Errno(unix.EXDEV)
	}
	if !t.Exists {
		return notify.Errno(unix.ENOENT)
	}
	if t.kernel() {
		return notify.Continue()
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(g.workdir, &sfs); err != nil {
		return fail(err)
	}
	b := (*[unsafe.Sizeof(sfs)]byte)(unsafe.Pointer(&sfs))[:]
	if err := hc.WriteMem(arg(hc, 1), b); err != nil {
		return notify.Errno(unix.EFAULT)
	}
	return notify.ReturnValue(0)
}
