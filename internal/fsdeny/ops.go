//go:build linux

package fsdeny

import (
	"context"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/taskpath"
)

type argFn func(*notify.HandlerCtx) uint64

// openat2 reads struct open_how from the task and opens like openat.
func (d *Denier) openat2(ctx context.Context, hc *notify.HandlerCtx) notify.Action {
	args := hc.Notif.Data.Args
	var how unix.OpenHow
	size := args[3]
	if size < uint64(unsafe.Sizeof(how)) {
		return notify.Errno(unix.EINVAL)
	}
	b, err := hc.ReadMem(args[2], int(unsafe.Sizeof(how)))
	if err != nil {
		return taskpath.ErrAction(unix.EFAULT)
	}
	how = *(*unix.OpenHow)(unsafe.Pointer(&b[0]))
	if size > uint64(unsafe.Sizeof(how)) {
		// Fields this kernel interface does not know must be zero.
		extra, err := hc.ReadMem(args[2]+uint64(unsafe.Sizeof(how)), int(min(size-uint64(unsafe.Sizeof(how)), 4096)))
		if err != nil {
			return taskpath.ErrAction(unix.EFAULT)
		}
		for _, c := range extra {
			if c != 0 {
				return notify.Errno(unix.E2BIG)
			}
		}
	}
	return d.open(hc, args[0], args[1], how.Flags, how.Mode, how.Resolve)
}

// open serves open, creat, openat and openat2: resolve, check, then reopen
// the checked inode on the task's behalf and inject the result.
func (d *Denier) open(hc *notify.HandlerCtx, dirfd, pathAddr, flags, mode, resolve uint64) notify.Action {
	path, err := notify.ReadPath(hc, pathAddr)
	if err != nil {
		return taskpath.ErrAction(err)
	}
	if path == "" {
		return notify.Errno(unix.ENOENT)
	}
	if resolve&^uint64(unix.RESOLVE_NO_MAGICLINKS|unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_NO_XDEV) != 0 {
		// RESOLVE_BENEATH/IN_ROOT/CACHED change where a lookup may go; they
		// are rare enough to refuse rather than reimplement.
		return notify.Errno(unix.EOPNOTSUPP)
	}
	s, err := taskpath.Locate(hc, dirfd, path)
	if err != nil {
		return taskpath.ErrAction(err)
	}
	defer s.Close()

	fl := int(flags)
	if fl&unix.O_TMPFILE == unix.O_TMPFILE && fl&unix.O_CREAT != 0 {
		return notify.Errno(unix.EINVAL)
	}
	if fl&unix.O_PATH != 0 {
		// The kernel ignores every other flag with O_PATH (O_CREAT too).
		fl &= unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	}
	pfd, err := d.paths.Open(s, fl&(unix.O_NOFOLLOW|unix.O_DIRECTORY))
	if err == unix.ENOENT && fl&unix.O_CREAT != 0 {
		return d.create(hc, dirfd, path, fl, uint32(mode))
	}
	if err != nil {
		return taskpath.ErrAction(err)
	}
	defer unix.Close(pfd)
	if err := d.checkFD(pfd); err != nil {
		return taskpath.ErrAction(err)
	}
	if fl&unix.O_CREAT != 0 && fl&unix.O_EXCL != 0 {
		return notify.Errno(unix.EEXIST)
	}
	if d.checkOnly {
		return notify.Continue()
	}
	if fl&unix.O_PATH != 0 {
		// The kernel cannot inject an O_PATH descriptor (SECCOMP_ADDFD
		// refuses them): it opens this one itself, resolving the path again
		// (see the package comment).
		return notify.Continue()
	}
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return notify.Errno(unix.ELOOP) // O_NOFOLLOW on a symlink
	}
	rflags := fl &^ (unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW)
	var perm uint32
	if fl&unix.O_TMPFILE == unix.O_TMPFILE {
		// An anonymous file is created: it gets the task's mode and umask,
		// and O_EXCL keeps it from ever being linked.
		rflags |= fl & unix.O_EXCL
		perm = uint32(mode) & 0o7777 &^ taskpath.Umask(hc.Notif.PID)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFIFO && fl&unix.O_NONBLOCK == 0 {
		return d.openFIFO(pfd, rflags, fl)
	}
	var fd int
	if pool, err := d.proc.poolFor(hc, pfd, fl); err != nil {
		return taskpath.ErrAction(err)
	} else if pool != nil {
		fd, err = taskpath.Reopen(pool, pfd, rflags, perm)
		if err != nil {
			return taskpath.ErrAction(err)
		}
	} else if fd, err = d.reopen(pfd, rflags, perm); err != nil {
		return taskpath.ErrAction(err)
	}
	defer unix.Close(fd)
	if d.serve != nil {
		// Served only once the reopen succeeded: Landlock and the file's
		// permissions have judged the open as they judge the program's.
		if a, ok := d.serve(hc, pfd, &st, fl); ok {
			return a
		}
	}
	return taskpath.Inject(fd, fl)
}

// openFIFO opens a FIFO, which blocks until its other end is opened, off
// the dispatch path: the other end is typically opened by another process
// of the sandbox, whose open must be served meanwhile. If the sandbox ends
// first, the supervisor opens the other end itself to release the thread.
func (d *Denier) openFIFO(pfd, rflags, fl int) notify.Action {
	pin, err := unix.FcntlInt(uintptr(pfd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return taskpath.ErrAction(err)
	}
	return notify.Defer(func(ctx context.Context) notify.Action {
		defer unix.Close(pin)
		fd, err := -1, error(nil)
		release := func() {
			// Opening a FIFO read-write never blocks and counts as both
			// ends.
			if rw, err := unix.Open("/proc/self/fd/"+strconv.Itoa(pin), unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err == nil {
				unix.Close(rw)
			}
		}
		if derr := d.op.DoContext(ctx, func() {
			fd, err = unix.Open("/proc/self/fd/"+strconv.Itoa(pin), rflags|unix.O_CLOEXEC, 0)
		}, release); derr != nil {
			return taskpath.ErrAction(derr)
		}
		if err != nil {
			return taskpath.ErrAction(err)
		}
		defer unix.Close(fd)
		return taskpath.Inject(fd, fl)
	})
}

// reopen opens the inode behind an O_PATH descriptor with the task's flags,
// on a confined helper thread, so Landlock and file permissions judge it as
// they would judge the task. perm is the mode of an O_TMPFILE file.
func (d *Denier) reopen(pfd int, flags int, perm uint32) (int, error) {
	return taskpath.Reopen(d.op, pfd, flags, perm)
}

// create serves an O_CREAT open of a path that did not exist: the file is
// created in its checked parent directory, never through a symlink.
func (d *Denier) create(hc *notify.HandlerCtx, dirfd uint64, path string, flags int, mode uint32) notify.Action {
	if strings.HasSuffix(path, "/") {
		return notify.Errno(unix.EISDIR)
	}
	pfd, name, err := d.paths.Parent(hc, dirfd, path)
	if err != nil {
		return taskpath.ErrAction(err)
	}
	defer unix.Close(pfd)
	if err := d.checkEntry(pfd, name, false); err != nil {
		return taskpath.ErrAction(err)
	}
	if d.checkOnly {
		return notify.Continue()
	}
	cflags := flags &^ unix.O_TRUNC
	if flags&unix.O_EXCL == 0 {
		cflags |= unix.O_NOFOLLOW
	}
	perm := mode &^ taskpath.Umask(hc.Notif.PID)
	var fd int
	if derr := d.op.Do(func() { fd, err = unix.Openat(pfd, name, cflags|unix.O_CLOEXEC, perm) }); derr != nil {
		return taskpath.ErrAction(derr)
	}
	if err == unix.ELOOP && flags&unix.O_NOFOLLOW == 0 {
		// A dangling symlink: the kernel would create its target, wherever
		// it points. Refused rather than resolved by hand.
		return notify.Errno(unix.EACCES)
	}
	if err != nil {
		return taskpath.ErrAction(err)
	}
	defer unix.Close(fd)
	if err := d.checkFD(fd); err != nil {
		return taskpath.ErrAction(err)
	}
	if flags&unix.O_TRUNC != 0 && flags&unix.O_ACCMODE != unix.O_RDONLY {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG {
			if err := unix.Ftruncate(fd, 0); err != nil {
				return taskpath.ErrAction(err)
			}
		}
	}
	return taskpath.Inject(fd, flags)
}

// exec checks the program an execve/execveat would run; the kernel then runs
// it, and CheckExec checks at the exec stop what it actually loaded (the
// kernel resolves the path again after this check).
func (d *Denier) exec(hc *notify.HandlerCtx, dirfd, pathAddr, flags uint64) notify.Action {
	path, err := notify.ReadPath(hc, pathAddr)
	if err != nil {
		return taskpath.ErrAction(err)
	}
	var pfd int
	if path == "" && flags&unix.AT_EMPTY_PATH != 0 {
		pfd, err = taskpath.OpenFD(hc, dirfd)
	} else {
		var s taskpath.Start
		if s, err = taskpath.Locate(hc, dirfd, path); err == nil {
			nofollow := 0
			if flags&unix.AT_SYMLINK_NOFOLLOW != 0 {
				nofollow = unix.O_NOFOLLOW
			}
			pfd, err = d.paths.Open(s, nofollow)
			s.Close()
		}
	}
	if err != nil {
		return taskpath.ErrAction(err)
	}
	defer unix.Close(pfd)
	if err := d.checkFD(pfd); err != nil {
		return taskpath.ErrAction(err)
	}
	return notify.Continue()
}

// truncate serves truncate(2) through a checked, reopened descriptor.
func (d *Denier) truncate(ctx context.Context, hc *notify.HandlerCtx) notify.Action {
	path, err := notify.ReadPath(hc, hc.Notif.Data.Args[0])
	if err != nil {
		return taskpath.ErrAction(err)
	}
	length := int64(hc.Notif.Data.Args[1])
	if length < 0 {
		return notify.Errno(unix.EINVAL)
	}
	if path == "" {
		return notify.Errno(unix.ENOENT)
	}
	s, err := taskpath.Locate(hc, taskpath.AtFDCWD, path)
	if err != nil {
		return taskpath.ErrAction(err)
	}
	defer s.Close()
	pfd, err := d.paths.Open(s, 0)
	if err != nil {
		return taskpath.ErrAction(err)
	}
	defer unix.Close(pfd)
	if err := d.checkFD(pfd); err != nil {
		return taskpath.ErrAction(err)
	}
	if d.checkOnly {
		return notify.Continue()
	}
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return taskpath.ErrAction(err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return notify.Errno(unix.EISDIR)
	case unix.S_IFREG:
	default:
		return notify.Errno(unix.EINVAL)
	}
	fd, err := d.reopen(pfd, unix.O_WRONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return taskpath.ErrAction(err)
	}
	defer unix.Close(fd)
	if err := unix.Ftruncate(fd, length); err != nil {
		return taskpath.ErrAction(err)
	}
	return notify.ReturnValue(0)
}

// result answers with the outcome of an operation done on the task's behalf.
func result(err error) notify.Action {
	if err != nil {
		return taskpath.ErrAction(err)
	}
	return notify.ReturnValue(0)
}

func (d *Denier) removeHandler(dirfdF, pathF, flagsF argFn) notify.HandlerFunc {
	return func(ctx context.Context, hc *notify.HandlerCtx) notify.Action {
		path, err := notify.ReadPath(hc, pathF(hc))
		if err != nil {
			return taskpath.ErrAction(err)
		}
		pfd, name, err := d.paths.Parent(hc, dirfdF(hc), path)
		if err != nil {
			return taskpath.ErrAction(err)
		}
		defer unix.Close(pfd)
		if err := d.checkEntry(pfd, strings.TrimSuffix(name, "/"), false); err != nil {
			return taskpath.ErrAction(err)
		}
		if d.checkOnly {
			return notify.Continue()
		}
		flags := int(flagsF(hc))
		if derr := d.op.Do(func() { err = unix.Unlinkat(pfd, name, flags) }); derr != nil {
			return taskpath.ErrAction(derr)
		}
		return result(err)
	}
}

func (d *Denier) renameHandler(oldDirF, oldF, newDirF, newF, flagsF argFn) notify.HandlerFunc {
	return func(ctx context.Context, hc *notify.HandlerCtx) notify.Action {
		return d.twoPaths(hc, oldDirF, oldF, newDirF, newF, true, func(p1 int, n1 string, p2 int, n2 string) error {
			return unix.Renameat2(p1, n1, p2, n2, uint(flagsF(hc)))
		})
	}
}

func (d *Denier) linkHandler(oldDirF, oldF, newDirF, newF, flagsF argFn) notify.HandlerFunc {
	return func(ctx context.Context, hc *notify.HandlerCtx) notify.Action {
		flags := int(flagsF(hc))
		if flags&^(unix.AT_SYMLINK_FOLLOW|unix.AT_EMPTY_PATH) != 0 {
			return notify.Errno(unix.EINVAL)
		}
		oldPath, err := notify.ReadPath(hc, oldF(hc))
		if err != nil {
			return taskpath.ErrAction(err)
		}
		if flags&unix.AT_SYMLINK_FOLLOW == 0 && (oldPath != "" || flags&unix.AT_EMPTY_PATH == 0) {
			// The name itself is linked, whatever it is.
			return d.twoPaths(hc, oldDirF, oldF, newDirF, newF, true, func(p1 int, n1 string, p2 int, n2 string) error {
				return unix.Linkat(p1, n1, p2, n2, 0)
			})
		}
		// The link is to a file found by following: an open descriptor
		// (AT_EMPTY_PATH) or a path's final symlink. Resolve it once, check
		// it, and link that very inode, so a symlink swapped after the check
		// cannot make the link point at a denied file.
		var src int
		switch {
		case oldPath == "" && flags&unix.AT_EMPTY_PATH != 0:
			src, err = taskpath.OpenFD(hc, oldDirF(hc))
		case oldPath == "":
			return notify.Errno(unix.ENOENT)
		default:
			var s taskpath.Start
			if s, err = taskpath.Locate(hc, oldDirF(hc), oldPath); err == nil {
				src, err = d.paths.Open(s, 0)
				s.Close()
			}
		}
		if err != nil {
			return taskpath.ErrAction(err)
		}
		defer unix.Close(src)
		if err := d.checkFD(src); err != nil {
			return taskpath.ErrAction(err)
		}
		newPath, err := notify.ReadPath(hc, newF(hc))
		if err != nil {
			return taskpath.ErrAction(err)
		}
		p2, n2, err := d.paths.Parent(hc, newDirF(hc), newPath)
		if err != nil {
			return taskpath.ErrAction(err)
		}
		defer unix.Close(p2)
		if err := d.checkEntry(p2, strings.TrimSuffix(n2, "/"), true); err != nil {
			return taskpath.ErrAction(err)
		}
		if d.checkOnly {
			return notify.Continue()
		}
		if derr := d.op.Do(func() {
			// Through the helper's own descriptor: the kernel links the
			// inode it refers to (or refuses, as for the task: ENOENT for a
			// deleted or O_EXCL anonymous file, EPERM for a directory).
			err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(src), p2, n2, unix.AT_SYMLINK_FOLLOW)
		}); derr != nil {
			return taskpath.ErrAction(derr)
		}
		return result(err)
	}
}

// twoPaths resolves and checks both paths of a rename or link, then runs op
// on a confined helper thread.
func (d *Denier) twoPaths(hc *notify.HandlerCtx, oldDirF, oldF, newDirF, newF argFn, moving bool, op func(int, string, int, string) error) notify.Action {
	oldPath, err := notify.ReadPath(hc, oldF(hc))
	if err != nil {
		return taskpath.ErrAction(err)
	}
	newPath, err := notify.ReadPath(hc, newF(hc))
	if err != nil {
		return taskpath.ErrAction(err)
	}
	p1, n1, err := d.paths.Parent(hc, oldDirF(hc), oldPath)
	if err != nil {
		return taskpath.ErrAction(err)
	}
	defer unix.Close(p1)
	p2, n2, err := d.paths.Parent(hc, newDirF(hc), newPath)
	if err != nil {
		return taskpath.ErrAction(err)
	}
	defer unix.Close(p2)
	if err := d.checkEntry(p1, strings.TrimSuffix(n1, "/"), moving); err != nil {
		return taskpath.ErrAction(err)
	}
	if err := d.checkEntry(p2, strings.TrimSuffix(n2, "/"), moving); err != nil {
		return taskpath.ErrAction(err)
	}
	if d.checkOnly {
		return notify.Continue()
	}
	if derr := d.op.Do(func() { err = op(p1, n1, p2, n2) }); derr != nil {
		return taskpath.ErrAction(derr)
	}
	return result(err)
}

// createFn creates name in dir with the given permission bits, already
// masked with the task's umask.
type createFn func(hc *notify.HandlerCtx, dir int, name string, umask uint32) error

func mkdir(modeF argFn) createFn {
	return func(hc *notify.HandlerCtx, dir int, name string, umask uint32) error {
		return unix.Mkdirat(dir, name, uint32(modeF(hc))&^umask)
	}
}

func mknod(modeF, devF argFn) createFn {
	return func(hc *notify.HandlerCtx, dir int, name string, umask uint32) error {
		mode := uint32(modeF(hc))
		perm := mode & 0o7777 &^ umask
		return unix.Mknodat(dir, name, mode&^0o7777|perm, int(devF(hc)))
	}
}

func (d *Denier) createHandler(dirfdF, pathF argFn, create createFn) notify.HandlerFunc {
	return func(ctx context.Context, hc *notify.HandlerCtx) notify.Action {
		path, err := notify.ReadPath(hc, pathF(hc))
		if err != nil {
			return taskpath.ErrAction(err)
		}
		pfd, name, err := d.paths.Parent(hc, dirfdF(hc), path)
		if err != nil {
			return taskpath.ErrAction(err)
		}
		defer unix.Close(pfd)
		if err := d.checkEntry(pfd, strings.TrimSuffix(name, "/"), false); err != nil {
			return taskpath.ErrAction(err)
		}
		if d.checkOnly {
			return notify.Continue()
		}
		umask := taskpath.Umask(hc.Notif.PID)
		if derr := d.op.Do(func() { err = create(hc, pfd, name, umask) }); derr != nil {
			return taskpath.ErrAction(derr)
		}
		return result(err)
	}
}

func (d *Denier) symlinkHandler(targetF, dirfdF, pathF argFn) notify.HandlerFunc {
	return func(ctx context.Context, hc *notify.HandlerCtx) notify.Action {
		// What a symlink points at is not checked: following it later is.
		target, err := notify.ReadPath(hc, targetF(hc))
		if err != nil {
			return taskpath.ErrAction(err)
		}
		path, err := notify.ReadPath(hc, pathF(hc))
		if err != nil {
			return taskpath.ErrAction(err)
		}
		pfd, name, err := d.paths.Parent(hc, dirfdF(hc), path)
		if err != nil {
			return taskpath.ErrAction(err)
		}
		defer unix.Close(pfd)
		if err := d.checkEntry(pfd, strings.TrimSuffix(name, "/"), false); err != nil {
			return taskpath.ErrAction(err)
		}
		if d.checkOnly {
			return notify.Continue()
		}
		if derr := d.op.Do(func() { err = unix.Symlinkat(target, pfd, name) }); derr != nil {
			return taskpath.ErrAction(derr)
		}
		return result(err)
	}
}
