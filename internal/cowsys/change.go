//go:build linux

package cowsys

import (
	"encoding/binary"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/cow"
	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/taskpath"
)

// Changes of the merged view: done on the branch. A path outside the
// workdir is the kernel's (and the other features'); one that leaves the
// workdir through a symlink of the upper layer cannot be named to the
// kernel and is refused with EXDEV, as a move across filesystems is.

// changeTarget resolves a path argument for a change: ok false means the
// answer is a (Continue for the kernel, or an error).
func (g *Gate) changeTarget(hc *notify.HandlerCtx, dirfd, pathAddr uint64, follow bool) (target, notify.Action, bool) {
	path, err := readPath(hc, pathAddr)
	if err != nil {
		return target{fd: -1}, fail(err), false
	}
	t, err := g.resolve(hc, dirfd, path, follow)
	if err != nil {
		return target{fd: -1}, fail(err), false
	}
	if !t.Inside {
		t.close()
		if !t.Differs && t.fd < 0 {
			return target{fd: -1}, notify.Continue(), false
		}
		if t.fd >= 0 {
			return target{fd: -1}, notify.Continue(), false
		}
		return target{fd: -1}, notify.Errno(unix.EXDEV), false
	}
	return t, notify.Action{}, true
}

// result answers with an operation's outcome.
func result(err error) notify.Action {
	if err != nil {
		return fail(err)
	}
	return notify.ReturnValue(0)
}

// create serves mkdir, mknod and symlink: a new entry of the merged view.
func (g *Gate) create(hc *notify.HandlerCtx, dirfd, pathAddr uint64, mk func(rel string, umask uint32) error) notify.Action {
	t, a, ok := g.changeTarget(hc, dirfd, pathAddr, false)
	if !ok {
		return a
	}
	defer t.close()
	if t.Exists {
		return notify.Errno(unix.EEXIST)
	}
	if err := g.deny(t.Rel, nil, false); err != nil {
		return fail(err)
	}
	return result(mk(t.Rel, taskpath.Umask(hc.Notif.PID)))
}

func (g *Gate) mkdir(hc *notify.HandlerCtx, dirfd, pathAddr, mode uint64) notify.Action {
	return g.create(hc, dirfd, pathAddr, func(rel string, umask uint32) error {
		return g.b.Mkdir(rel, uint32(mode)&0o7777&^umask)
	})
}

func (g *Gate) mknod(hc *notify.HandlerCtx, dirfd, pathAddr, mode, dev uint64) notify.Action {
	return g.create(hc, dirfd, pathAddr, func(rel string, umask uint32) error {
		m := uint32(mode)
		if m&unix.S_IFMT == 0 {
			m |= unix.S_IFREG
		}
		return g.b.Mknod(rel, m&^0o7777|(m&0o7777&^umask), int(dev))
	})
}

func (g *Gate) symlink(hc *notify.HandlerCtx, targetAddr, dirfd, pathAddr uint64) notify.Action {
	target, err := readPath(hc, targetAddr)
	if err != nil {
		return fail(err)
	}
	if target == "" {
		return notify.Errno(unix.ENOENT)
	}
	return g.create(hc, dirfd, pathAddr, func(rel string, _ uint32) error {
		return g.b.Symlink(target, rel)
	})
}

// remove serves unlink, unlinkat and rmdir.
func (g *Gate) remove(hc *notify.HandlerCtx, dirfd, pathAddr uint64, dir bool) notify.Action {
	path, err := readPath(hc, pathAddr)
	if err != nil {
		return fail(err)
	}
	t, a, ok := g.changeTarget(hc, dirfd, pathAddr, false)
	if !ok {
		return a
	}
	defer t.close()
	if !t.Exists {
		return notify.Errno(unix.ENOENT)
	}
	if !dir && strings.HasSuffix(path, "/") {
		if t.Entry.IsDir() {
			return notify.Errno(unix.EISDIR)
		}
		return notify.Errno(unix.ENOTDIR)
	}
	e := t.Entry
	if err := g.deny(t.Rel, &e, false); err != nil {
		return fail(err)
	}
	if dir {
		return result(g.b.Rmdir(t.Rel))
	}
	return result(g.b.Unlink(t.Rel))
}

// twoPaths resolves the two paths of a rename or a link: both in the
// merged view, both the kernel's, or EXDEV.
func (g *Gate) twoPaths(hc *notify.HandlerCtx, d1, p1, d2, p2 uint64, follow1 bool) (t1, t2 target, a notify.Action, ok bool) {
	path1, err := readPath(hc, p1)
	if err != nil {
		return t1, t2, fail(err), false
	}
	path2, err := readPath(hc, p2)
	if err != nil {
		return t1, t2, fail(err), false
	}
	if t1, err = g.resolve(hc, d1, path1, follow1); err != nil {
		return t1, t2, fail(err), false
	}
	if t2, err = g.resolve(hc, d2, path2, false); err != nil {
		t1.close()
		return t1, t2, fail(err), false
	}
	switch {
	case !t1.Inside && !t2.Inside && !t1.Differs && !t2.Differs && t1.fd < 0:
		a = notify.Continue()
	case !t1.Inside || !t2.Inside:
		a = notify.Errno(unix.EXDEV)
	default:
		return t1, t2, a, true
	}
	t1.close()
	t2.close()
	return t1, t2, a, false
}

// rename serves rename, renameat and renameat2.
func (g *Gate) rename(hc *notify.HandlerCtx, d1, p1, d2, p2, flags uint64) notify.Action {
	t1, t2, a, ok := g.twoPaths(hc, d1, p1, d2, p2, false)
	if !ok {
		return a
	}
	defer t1.close()
	defer t2.close()
	if !t1.Exists {
		return notify.Errno(unix.ENOENT)
	}
	e1 := t1.Entry
	if err := g.deny(t1.Rel, &e1, true); err != nil {
		return fail(err)
	}
	var e2 *cow.Entry
	if t2.Exists {
		e := t2.Entry
		e2 = &e
	}
	if err := g.deny(t2.Rel, e2, true); err != nil {
		return fail(err)
	}
	return result(g.b.Rename(t1.Rel, t2.Rel, uint(flags)))
}

// link serves link and linkat.
func (g *Gate) link(hc *notify.HandlerCtx, d1, p1, d2, p2, flags uint64) notify.Action {
	if flags&^uint64(unix.AT_SYMLINK_FOLLOW|unix.AT_EMPTY_PATH) != 0 {
		return notify.Errno(unix.EINVAL)
	}
	if flags&unix.AT_EMPTY_PATH != 0 {
		if path, err := readPath(hc, p1); err == nil && path == "" {
			return g.linkFD(hc, d1, d2, p2)
		}
	}
	t1, t2, a, ok := g.twoPaths(hc, d1, p1, d2, p2, flags&unix.AT_SYMLINK_FOLLOW != 0)
	if !ok {
		return a
	}
	defer t1.close()
	defer t2.close()
	if t1.fd >= 0 && t1.Rel == "" && !g.locatable(t1.fd) {
		// /proc/self/fd/N of an anonymous file (O_TMPFILE): linked in.
		return g.linkHeld(t1.fd, t2)
	}
	if !t1.Exists {
		return notify.Errno(unix.ENOENT)
	}
	if t2.Exists {
		return notify.Errno(unix.EEXIST)
	}
	e1 := t1.Entry
	if err := g.deny(t1.Rel, &e1, true); err != nil {
		return fail(err)
	}
	if err := g.deny(t2.Rel, nil, true); err != nil {
		return fail(err)
	}
	return result(g.b.Link(t1.Rel, t2.Rel))
}

// linkFD serves linkat(fd, "", …, AT_EMPTY_PATH).
func (g *Gate) linkFD(hc *notify.HandlerCtx, fd, d2, p2 uint64) notify.Action {
	path2, err := readPath(hc, p2)
	if err != nil {
		return fail(err)
	}
	t2, err := g.resolve(hc, d2, path2, false)
	if err != nil {
		return fail(err)
	}
	defer t2.close()
	if !t2.Inside {
		if t2.Differs {
			return notify.Errno(unix.EXDEV)
		}
		return notify.Continue()
	}
	dup, err := g.dupFD(hc, fd)
	if err != nil {
		return fail(err)
	}
	defer unix.Close(dup)
	return g.linkHeld(dup, t2)
}

// linkHeld links a file the task holds open as t2.
func (g *Gate) linkHeld(fd int, t2 target) notify.Action {
	if t2.Exists {
		return notify.Errno(unix.EEXIST)
	}
	if err := g.deny(t2.Rel, nil, true); err != nil {
		return fail(err)
	}
	return result(g.b.LinkFile(fd, t2.Rel))
}

// metaTarget resolves the object of a metadata change: a path, or (NULL or
// empty path with AT_EMPTY_PATH, or an fd syscall) a descriptor.
func (g *Gate) metaTarget(hc *notify.HandlerCtx, dirfd, pathAddr uint64, follow, fdOnly, emptyOK bool) (target, notify.Action, bool) {
	if fdOnly || (pathAddr == 0 && emptyOK) {
		return g.fdChangeTarget(hc, dirfd)
	}
	if emptyOK {
		if path, err := readPath(hc, pathAddr); err == nil && path == "" {
			return g.fdChangeTarget(hc, dirfd)
		}
	}
	return g.changeTarget(hc, dirfd, pathAddr, follow)
}

// fdChangeTarget is the object of a descriptor argument: the kernel's
// unless it is an entry of the merged view (a file of the upper layer the
// program opened, or a lower one it opened for reading).
func (g *Gate) fdChangeTarget(hc *notify.HandlerCtx, fd uint64) (target, notify.Action, bool) {
	if taskpath.IsCWD(fd) {
		pl, err := g.cwd(hc)
		if err != nil {
			return target{fd: -1}, fail(err), false
		}
		if !pl.Inside {
			return target{fd: -1}, notify.Continue(), false
		}
		r, err := g.b.Walk(pl, ".", false)
		if err != nil {
			return target{fd: -1}, fail(err), false
		}
		return target{Resolved: r, fd: -1}, notify.Action{}, true
	}
	dup, err := g.dupFD(hc, fd)
	if err != nil {
		return target{fd: -1}, fail(err), false
	}
	t, err := g.fdTarget(dup)
	if err != nil {
		return target{fd: -1}, fail(err), false
	}
	if !t.Inside {
		t.close()
		return target{fd: -1}, notify.Continue(), false
	}
	return t, notify.Action{}, true
}

// change runs a metadata change on the target: on the branch by path, or
// directly on a descriptor's anonymous file of the upper layer.
func (g *Gate) change(t target, byPath func(rel string) error, direct func(fd int) error) notify.Action {
	defer t.close()
	if t.fd >= 0 && t.Rel == "" && !g.locatable(t.fd) {
		return result(direct(t.fd))
	}
	if !t.Exists {
		return notify.Errno(unix.ENOENT)
	}
	e := t.Entry
	if err := g.deny(t.Rel, &e, false); err != nil {
		return fail(err)
	}
	return result(byPath(t.Rel))
}

func (g *Gate) chmod(hc *notify.HandlerCtx, dirfd, pathAddr, mode, flags uint64, fdOnly bool) notify.Action {
	if flags&^uint64(unix.AT_SYMLINK_NOFOLLOW|unix.AT_EMPTY_PATH) != 0 {
		return notify.Errno(unix.EINVAL)
	}
	t, a, ok := g.metaTarget(hc, dirfd, pathAddr, flags&unix.AT_SYMLINK_NOFOLLOW == 0, fdOnly, flags&unix.AT_EMPTY_PATH != 0)
	if !ok {
		return a
	}
	m := uint32(mode) & 0o7777
	return g.change(t, func(rel string) error { return g.b.Chmod(rel, m) },
		func(fd int) error { return unix.Fchmod(fd, m) })
}

func (g *Gate) chown(hc *notify.HandlerCtx, dirfd, pathAddr, uid, gid, flags uint64, fdOnly bool) notify.Action {
	if flags&^uint64(unix.AT_SYMLINK_NOFOLLOW|unix.AT_EMPTY_PATH) != 0 {
		return notify.Errno(unix.EINVAL)
	}
	t, a, ok := g.metaTarget(hc, dirfd, pathAddr, flags&unix.AT_SYMLINK_NOFOLLOW == 0, fdOnly, flags&unix.AT_EMPTY_PATH != 0)
	if !ok {
		return a
	}
	u, gr := int(int32(uid)), int(int32(gid))
	return g.change(t, func(rel string) error { return g.b.Chown(rel, u, gr) },
		func(fd int) error { return unix.Fchown(fd, u, gr) })
}

// utimens serves utimensat (times: the program's timespec[2], already
// read; nil for now).
func (g *Gate) utimens(hc *notify.HandlerCtx, dirfd, pathAddr uint64, ts []unix.Timespec, flags uint64) notify.Action {
	if flags&^uint64(unix.AT_SYMLINK_NOFOLLOW|unix.AT_EMPTY_PATH) != 0 {
		return notify.Errno(unix.EINVAL)
	}
	t, a, ok := g.metaTarget(hc, dirfd, pathAddr, flags&unix.AT_SYMLINK_NOFOLLOW == 0, false, pathAddr == 0 || flags&unix.AT_EMPTY_PATH != 0)
	if !ok {
		return a
	}
	return g.change(t, func(rel string) error { return g.b.Utimens(rel, ts) },
		func(fd int) error { return unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH) })
}

// readTimes reads utimensat's struct timespec[2] (NULL: now).
func readTimes(hc *notify.HandlerCtx, addr uint64) ([]unix.Timespec, error) {
	if addr == 0 {
		return nil, nil
	}
	b, err := hc.ReadMem(addr, 32)
	if err != nil {
		return nil, unix.EFAULT
	}
	ts := make([]unix.Timespec, 2)
	for i := range ts {
		ts[i].Sec = int64(binary.NativeEndian.Uint64(b[16*i:]))
		ts[i].Nsec = int64(binary.NativeEndian.Uint64(b[16*i+8:]))
		if ts[i].Nsec != unix.UTIME_NOW && ts[i].Nsec != unix.UTIME_OMIT && (ts[i].Nsec < 0 || ts[i].Nsec >= 1e9) {
			return nil, unix.EINVAL
		}
	}
	return ts, nil
}

// readTimevals reads utimes' struct timeval[2] (NULL: now).
func readTimevals(hc *notify.HandlerCtx, addr uint64) ([]unix.Timespec, error) {
	if addr == 0 {
		return nil, nil
	}
	b, err := hc.ReadMem(addr, 32)
	if err != nil {
		return nil, unix.EFAULT
	}
	ts := make([]unix.Timespec, 2)
	for i := range ts {
		sec, usec := int64(binary.NativeEndian.Uint64(b[16*i:])), int64(binary.NativeEndian.Uint64(b[16*i+8:]))
		if usec < 0 || usec >= 1e6 {
			return nil, unix.EINVAL
		}
		ts[i] = unix.Timespec{Sec: sec, Nsec: usec * 1000}
	}
	return ts, nil
}

// readUtimbuf reads utime's struct utimbuf (NULL: now).
func readUtimbuf(hc *notify.HandlerCtx, addr uint64) ([]unix.Timespec, error) {
	if addr == 0 {
		return nil, nil
	}
	b, err := hc.ReadMem(addr, 16)
	if err != nil {
		return nil, unix.EFAULT
	}
	return []unix.Timespec{{Sec: int64(binary.NativeEndian.Uint64(b))}, {Sec: int64(binary.NativeEndian.Uint64(b[8:]))}}, nil
}

func (g *Gate) truncate(hc *notify.HandlerCtx) notify.Action {
	t, a, ok := g.changeTarget(hc, taskpath.AtFDCWD, arg(hc, 0), true)
	if !ok {
		return a
	}
	size := int64(arg(hc, 1))
	return g.change(t, func(rel string) error { return g.b.Truncate(rel, size) }, func(fd int) error {
		w, err := unix.Open(taskpathProc(fd), unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return err
		}
		defer unix.Close(w)
		return unix.Ftruncate(w, size)
	})
}

// xattrName reads an extended attribute's name.
func xattrName(hc *notify.HandlerCtx, addr uint64) (string, error) {
	name, err := hc.ReadCString(addr, 256)
	if err != nil {
		return "", unix.EFAULT
	}
	if name == "" || len(name) > 255 {
		return "", unix.ERANGE
	}
	return name, nil
}

func (g *Gate) setxattr(hc *notify.HandlerCtx, follow, fdOnly bool) notify.Action {
	name, err := xattrName(hc, arg(hc, 1))
	if err != nil {
		return fail(err)
	}
	size := arg(hc, 3)
	if size > 65536 {
		return notify.Errno(unix.E2BIG)
	}
	var value []byte
	if size > 0 {
		if value, err = hc.ReadMem(arg(hc, 2), int(size)); err != nil {
			return notify.Errno(unix.EFAULT)
		}
	}
	flags := int(arg(hc, 4))
	var t target
	var a notify.Action
	var ok bool
	if fdOnly {
		t, a, ok = g.fdChangeTarget(hc, arg(hc, 0))
	} else {
		t, a, ok = g.changeTarget(hc, taskpath.AtFDCWD, arg(hc, 0), follow)
	}
	if !ok {
		return a
	}
	return g.change(t, func(rel string) error { return g.b.SetXattr(rel, name, value, flags) },
		func(fd int) error { return unix.Fsetxattr(fd, name, value, flags) })
}

func (g *Gate) removexattr(hc *notify.HandlerCtx, follow, fdOnly bool) notify.Action {
	name, err := xattrName(hc, arg(hc, 1))
	if err != nil {
		return fail(err)
	}
	var t target
	var a notify.Action
	var ok bool
	if fdOnly {
		t, a, ok = g.fdChangeTarget(hc, arg(hc, 0))
	} else {
		t, a, ok = g.changeTarget(hc, taskpath.AtFDCWD, arg(hc, 0), follow)
	}
	if !ok {
		return a
	}
	return g.change(t, func(rel string) error { return g.b.RemoveXattr(rel, name) },
		func(fd int) error { return unix.Fremovexattr(fd, name) })
}

// getxattr serves getxattr and lgetxattr on the merged entry.
func (g *Gate) getxattr(hc *notify.HandlerCtx, follow bool) notify.Action {
	name, err := xattrName(hc, arg(hc, 1))
	if err != nil {
		return fail(err)
	}
	return g.readXattrs(hc, follow, 2, func(rel string, buf []byte) (int, error) { return g.b.GetXattr(rel, name, buf) })
}

// listxattr serves listxattr and llistxattr on the merged entry.
func (g *Gate) listxattr(hc *notify.HandlerCtx, follow bool) notify.Action {
	return g.readXattrs(hc, follow, 1, g.b.ListXattr)
}

// readXattrs serves a read of the extended attributes of the merged entry
// named by argument 0 into the buffer of argument bufArg, whose size is
// the next argument: what the kernel reaches itself is left to it, the
// rest is read from the branch with read.
func (g *Gate) readXattrs(hc *notify.HandlerCtx, follow bool, bufArg int, read func(rel string, buf []byte) (int, error)) notify.Action {
	t, a, ok := g.changeTarget(hc, taskpath.AtFDCWD, arg(hc, 0), follow)
	if !ok {
		return a
	}
	defer t.close()
	if !t.Exists {
		return notify.Errno(unix.ENOENT)
	}
	if t.kernel() {
		return notify.Continue()
	}
	size := int(min(arg(hc, bufArg+1), 65536))
	buf := make([]byte, size)
	n, err := read(t.Rel, buf)
	if err != nil {
		return fail(err)
	}
	if size > 0 && n > 0 {
		if err := hc.WriteMem(arg(hc, bufArg), buf[:n]); err != nil {
			return notify.Errno(unix.EFAULT)
		}
	}
	return notify.ReturnValue(int64(n))
}
