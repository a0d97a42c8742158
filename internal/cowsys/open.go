//go:build linux

package cowsys

import (
	"context"
	"encoding/binary"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/cow"
	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/redirect"
	"github.com/sandlock-go/sandlock/internal/seccomp"
	"github.com/sandlock-go/sandlock/internal/sysnum"
	"github.com/sandlock-go/sandlock/internal/taskpath"
)

// relPath is the path an entry of the merged view has in the workdir.
func (g *Gate) relPath(rel string) string {
	if rel == "" {
		return g.workdir
	}
	return g.workdir + "/" + rel
}

// deny judges the entry rel (e, when it exists) against FSDenied.
func (g *Gate) deny(rel string, e *cow.Entry, moving bool) error {
	if g.denyPath != nil {
		if err := g.denyPath(g.relPath(rel), moving); err != nil {
			return err
		}
	}
	if g.denyFD != nil && e != nil && e.Layer == cow.Lower {
		pin, err := g.b.Pin(rel)
		if err != nil {
			return err
		}
		defer unix.Close(pin)
		return g.denyFD(pin)
	}
	return nil
}

// inject answers with fd (which it closes), close-on-exec if flags say so.
func inject(fd int, flags int) notify.Action {
	var fdFlags uint32
	if flags&unix.O_CLOEXEC != 0 {
		fdFlags = unix.O_CLOEXEC
	}
	return notify.InjectFDSend(os.NewFile(uintptr(fd), "sandlock-cow"), fdFlags)
}

// openat2Args reads openat2's struct open_how.
func openat2Args(hc *notify.HandlerCtx) (flags, mode, resolve uint64, err error) {
	var how unix.OpenHow
	size := arg(hc, 3)
	if size < uint64(unsafe.Sizeof(how)) {
		return 0, 0, 0, unix.EINVAL
	}
	b, err := hc.ReadMem(arg(hc, 2), int(unsafe.Sizeof(how)))
	if err != nil {
		return 0, 0, 0, unix.EFAULT
	}
	how = *(*unix.OpenHow)(unsafe.Pointer(&b[0]))
	return how.Flags, how.Mode, how.Resolve, nil
}

// open serves the open family.
func (g *Gate) open(hc *notify.HandlerCtx, dirfd, pathAddr uint64, flags int, mode uint32, resolve uint64) notify.Action {
	path, err := readPath(hc, pathAddr)
	if err != nil {
		return fail(err)
	}
	creat := flags&unix.O_CREAT != 0 && flags&unix.O_TMPFILE != unix.O_TMPFILE
	follow := flags&unix.O_NOFOLLOW == 0 && !(creat && flags&unix.O_EXCL != 0)
	t, err := g.resolve(hc, dirfd, path, follow)
	if err != nil {
		return fail(err)
	}
	defer t.close()
	if !t.Inside {
		if !t.Differs && t.fd < 0 {
			return notify.Continue()
		}
		if t.fd >= 0 {
			return notify.Continue() // a descriptor of no concern: the kernel reopens it
		}
		// Through a symlink of the upper layer, out of the workdir: the
		// kernel cannot follow it; opened for the program, as it would be.
		return g.openOutside(hc, t.Abs, flags, mode)
	}
	if resolve&^uint64(unix.RESOLVE_NO_MAGICLINKS|unix.RESOLVE_NO_SYMLINKS) != 0 {
		return notify.Errno(unix.EOPNOTSUPP)
	}
	if t.fd >= 0 && t.Rel == "" && t.Entry.Layer == cow.Upper && !g.locatable(t.fd) {
		// A deleted file of the upper layer, by its descriptor: reopened.
		fd, err := unix.Open(taskpathProc(t.fd), flags&^(unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW)|unix.O_CLOEXEC, 0)
		if err != nil {
			return fail(err)
		}
		return inject(fd, flags)
	}
	acc := flags & unix.O_ACCMODE
	write := acc != unix.O_RDONLY || flags&unix.O_TRUNC != 0
	if t.Exists {
		e := t.Entry
		if creat && flags&unix.O_EXCL != 0 {
			return notify.Errno(unix.EEXIST)
		}
		if err := g.deny(t.Rel, &e, false); err != nil {
			return fail(err)
		}
		if !write && flags&unix.O_TMPFILE != unix.O_TMPFILE {
			// Reading what the kernel reaches itself, or a directory the
			// kernel reaches in the workdir (its listing is served by
			// getdents).
			if t.kernel() || e.IsDir() && (e.Layer == cow.Lower || e.Merges) && !t.ViaDiffers {
				return notify.Continue()
			}
		}
		if flags&unix.O_PATH != 0 && !t.Differs {
			return notify.Continue()
		}
		if e.Stat.Mode&unix.S_IFMT == unix.S_IFIFO && flags&unix.O_NONBLOCK == 0 {
			return g.openFIFO(t.Rel, flags)
		}
	} else {
		if !creat {
			return notify.Errno(unix.ENOENT)
		}
		if strings.HasSuffix(path, "/") {
			return notify.Errno(unix.EISDIR)
		}
		if err := g.deny(t.Rel, nil, false); err != nil {
			return fail(err)
		}
	}
	if creat || flags&unix.O_TMPFILE == unix.O_TMPFILE {
		mode &^= taskpath.Umask(hc.Notif.PID)
	}
	fd, err := g.b.Open(t.Rel, flags, mode)
	if err != nil {
		return fail(err)
	}
	return inject(fd, flags)
}

// locatable reports whether a descriptor's file still has a path.
func (g *Gate) locatable(fd int) bool {
	p, err := fdPath(fd)
	return err == nil && !strings.HasSuffix(p, " (deleted)")
}

func taskpathProc(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// openFIFO opens a FIFO of the merged view off the dispatch path: it
// blocks until the other end is opened, typically by another process of
// the sandbox whose open must be served meanwhile.
func (g *Gate) openFIFO(rel string, flags int) notify.Action {
	return notify.Defer(func(ctx context.Context) notify.Action {
		var fd int
		var err error
		if rerr := g.run(func() { fd, err = g.b.Open(rel, flags, 0) }); rerr != nil {
			return notify.Errno(unix.EPERM)
		}
		if err != nil {
			return fail(err)
		}
		return inject(fd, flags)
	})
}

// openOutside opens, for the program, a path outside the workdir that it
// named through a symlink of the upper layer (which the kernel cannot
// follow for it): resolved and reopened on a thread confined exactly like
// the program, so Landlock and the file's permissions judge it as they
// would judge the program, and checked against FSDenied. A file that does
// not exist is not created there: EXDEV.
func (g *Gate) openOutside(hc *notify.HandlerCtx, abs string, flags int, mode uint32) notify.Action {
	if g.pool == nil {
		return notify.Errno(unix.EXDEV)
	}
	pin, err := g.outside.Resolve(hc, taskpath.AtFDCWD, abs, flags&unix.O_NOFOLLOW != 0)
	if err == unix.ENOENT && flags&unix.O_CREAT != 0 {
		return notify.Errno(unix.EXDEV)
	}
	if err != nil {
		return fail(err)
	}
	defer unix.Close(pin)
	if g.denyFD != nil {
		if err := g.denyFD(pin); err != nil {
			return fail(err)
		}
	}
	if flags&unix.O_CREAT != 0 && flags&unix.O_EXCL != 0 {
		return notify.Errno(unix.EEXIST)
	}
	var fd int
	if derr := g.pool.Do(func() {
		fd, err = unix.Open(taskpathProc(pin), flags&^(unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_PATH)|unix.O_CLOEXEC, 0)
	}); derr != nil {
		return fail(derr)
	}
	if err != nil {
		return fail(err)
	}
	return inject(fd, flags)
}

// exec serves execve and execveat: a file the kernel reaches by the same
// path is left to it; a file of the upper layer, or one reached through
// the upper layer, is run from a descriptor (see package redirect).
func (g *Gate) exec(hc *notify.HandlerCtx, dirfd, pathAddr, argv, envp, flags uint64) notify.Action {
	path, err := readPath(hc, pathAddr)
	if err != nil {
		return fail(err)
	}
	var t target
	if path == "" && flags&unix.AT_EMPTY_PATH != 0 {
		dup, err := g.dupFD(hc, dirfd)
		if err != nil {
			return fail(err)
		}
		if t, err = g.fdTarget(dup); err != nil {
			return fail(err)
		}
		if !t.Inside || t.Entry.Layer == cow.Lower {
			t.close()
			return notify.Continue()
		}
	} else {
		if t, err = g.resolve(hc, dirfd, path, flags&unix.AT_SYMLINK_NOFOLLOW == 0); err != nil {
			return fail(err)
		}
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
	e := t.Entry
	if e.IsDir() || e.IsSymlink() {
		return notify.Errno(unix.EACCES)
	}
	if err := g.deny(t.Rel, &e, false); err != nil {
		return fail(err)
	}
	if t.kernel() && t.fd < 0 {
		return notify.Continue()
	}
	// The object itself, judged with the program's rights.
	var obj int
	if t.fd >= 0 && t.Rel == "" {
		obj, err = unix.Dup(t.fd)
	} else {
		obj, err = g.b.Pin(t.Rel)
	}
	if err != nil {
		return fail(err)
	}
	defer unix.Close(obj)
	if err := unix.Faccessat(unix.AT_FDCWD, taskpathProc(obj), unix.X_OK, unix.AT_EACCESS); err != nil {
		return fail(err)
	}
	if !isReg(&e.Stat) {
		return notify.Errno(unix.EACCES)
	}
	if g.redirect == nil || !redirect.Supported() {
		return notify.Errno(unix.EACCES)
	}
	var run *os.File
	if e.Layer == cow.Upper {
		run, err = g.execCopy(obj, &e.Stat)
	} else {
		// A lower file the kernel would reach by another path: the
		// program may read it, so it may have it open.
		var fd int
		if fd, err = unix.Open(taskpathProc(obj), unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
			run = os.NewFile(uintptr(fd), "exec")
			defer run.Close()
		}
	}
	if err != nil {
		return fail(err)
	}
	// A script is run by its interpreter through /dev/fd/N, which must
	// stay open across the exec; a binary needs nothing of it.
	var fdFlags uint32 = unix.O_CLOEXEC
	if script(int(run.Fd())) {
		fdFlags = 0
	}
	n, err := seccomp.AddFD(hc.NotifFD, hc.Notif.ID, int(run.Fd()), -1, fdFlags, false)
	if err != nil {
		return fail(err)
	}
	empty := pathAddr + uint64(len(path)) // the path's NUL: an empty string
	return g.redirect.Arm(hc, redirect.Call{
		Nr:   execveatNr,
		Args: [6]uint64{uint64(n), empty, argv, envp, unix.AT_EMPTY_PATH},
	})
}

var execveatNr = sysnum.Native().MustNr("execveat")

func isReg(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFREG }

// script reports whether a file starts with "#!".
func script(fd int) bool {
	var b [2]byte
	n, _ := unix.Pread(fd, b[:], 0)
	return n == 2 && string(b[:]) == "#!"
}

// execKey identifies a version of an upper file.
type execKey struct {
	dev, ino, size uint64
	mtime, ctime   unix.Timespec
}

// execCopy returns a sealed memfd holding the upper file obj (O_PATH),
// made once per version of the file: the program runs its own file, which
// Landlock would refuse to run from the branch storage.
func (g *Gate) execCopy(obj int, st *unix.Stat_t) (*os.File, error) {
	key := execKey{st.Dev, st.Ino, uint64(st.Size), st.Mtim, st.Ctim}
	g.execMu.Lock()
	defer g.execMu.Unlock()
	if f, ok := g.execs[key]; ok {
		return dupFile(f)
	}
	src, err := unix.Open(taskpathProc(obj), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(src)
	const mfdExec = 0x10 // MFD_EXEC, Linux 6.3
	mfd, err := unix.MemfdCreate("sandlock-exec", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|mfdExec)
	if err == unix.EINVAL {
		mfd, err = unix.MemfdCreate("sandlock-exec", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(mfd), "sandlock-exec")
	if err := cow.CopyFile(mfd, src, st.Size); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := unix.FcntlInt(uintptr(mfd), unix.F_ADD_SEALS, unix.F_SEAL_SEAL|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE); err != nil {
		f.Close()
		return nil, err
	}
	g.execs[key] = f
	return dupFile(f)
}

func dupFile(f *os.File) (*os.File, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// getdents serves getdents64 (and getdents, legacy): every listing is made
// on the program's behalf, through a duplicate of its descriptor: a
// directory of the merged view is listed merged (the position in the
// listing is kept in the descriptor's file offset, which the duplicate
// shares), any other is read from the kernel.
func (g *Gate) getdents(hc *notify.HandlerCtx, legacy bool) notify.Action {
	dup, err := g.dupFD(hc, arg(hc, 0))
	if err != nil {
		return fail(err)
	}
	defer unix.Close(dup)
	count := int(min(uint64(uint32(arg(hc, 2))), 1<<20))
	buf := arg(hc, 1)
	p, err := fdPath(dup)
	var pl cow.Place
	if err == nil && strings.HasPrefix(p, "/") && !strings.HasSuffix(p, " (deleted)") {
		pl = g.b.Locate(p)
	}
	if !pl.Inside {
		// A directory outside the merged view is the kernel's to list, and
		// a later phase's (the /proc view filters its listings). Continue
		// holds for every descriptor the number could name meanwhile:
		// Landlock lets the program list the workdir itself.
		return notify.Continue()
	}
	ents, err := g.listing(pl.Rel)
	if err != nil {
		return fail(err)
	}
	pos, err := unix.Seek(dup, 0, 1)
	if err != nil {
		return fail(err)
	}
	out := make([]byte, 0, count)
	i := int(pos)
	for ; i >= 0 && i < len(ents); i++ {
		rec := dirent(ents[i], int64(i+1), legacy)
		if len(out)+len(rec) > count {
			break
		}
		out = append(out, rec...)
	}
	if len(out) == 0 && i < len(ents) && i >= 0 {
		return notify.Errno(unix.EINVAL) // not even one entry fits
	}
	if len(out) > 0 {
		if err := hc.WriteMem(buf, out); err != nil {
			return notify.Errno(unix.EFAULT)
		}
	}
	if _, err := unix.Seek(dup, int64(i), 0); err != nil {
		return fail(err)
	}
	return notify.ReturnValue(int64(len(out)))
}

// listing is a merged directory's entries with "." and "..".
func (g *Gate) listing(rel string) ([]cow.Dirent, error) {
	ents, err := g.b.ReadDir(rel)
	if err != nil {
		return nil, err
	}
	self, err := g.b.Lstat(rel)
	if err != nil {
		return nil, err
	}
	var parentIno uint64
	if rel == "" {
		var st unix.Stat_t
		if unix.Stat(g.workdir+"/..", &st) == nil {
			parentIno = st.Ino
		}
	} else {
		parent := ""
		if i := strings.LastIndexByte(rel, '/'); i >= 0 {
			parent = rel[:i]
		}
		if pe, err := g.b.Lstat(parent); err == nil {
			parentIno = pe.Stat.Ino
		}
	}
	out := make([]cow.Dirent, 0, len(ents)+2)
	out = append(out, cow.Dirent{Name: ".", Ino: self.Stat.Ino, Type: unix.DT_DIR}, cow.Dirent{Name: "..", Ino: parentIno, Type: unix.DT_DIR})
	return append(out, ents...), nil
}

// dirent encodes a struct linux_dirent64 (or, legacy, linux_dirent) whose
// d_off is off.
func dirent(d cow.Dirent, off int64, legacy bool) []byte {
	name := d.Name
	if legacy {
		// ino, off (longs), reclen u16, name, NUL, then the type last.
		n := 8 + 8 + 2 + len(name) + 2
		n = (n + 7) &^ 7
		b := make([]byte, n)
		binary.NativeEndian.PutUint64(b[0:], d.Ino)
		binary.NativeEndian.PutUint64(b[8:], uint64(off))
		binary.NativeEndian.PutUint16(b[16:], uint16(n))
		copy(b[18:], name)
		b[n-1] = d.Type
		return b
	}
	n := 8 + 8 + 2 + 1 + len(name) + 1
	n = (n + 7) &^ 7
	b := make([]byte, n)
	binary.NativeEndian.PutUint64(b[0:], d.Ino)
	binary.NativeEndian.PutUint64(b[8:], uint64(off))
	binary.NativeEndian.PutUint16(b[16:], uint16(n))
	b[18] = d.Type
	copy(b[19:], name)
	return b
}

// readlink serves readlink and readlinkat.
func (g *Gate) readlink(hc *notify.HandlerCtx, dirfd, pathAddr, buf, size uint64) notify.Action {
	path, err := readPath(hc, pathAddr)
	if err != nil {
		return fail(err)
	}
	if int64(size) <= 0 {
		return notify.Errno(unix.EINVAL)
	}
	if link, ok := g.ownLink(hc, path); ok {
		// One of the task's magic links: what it names, in the program's
		// terms (a file of the upper layer is where the program put it).
		if s, ok := g.translate(link); ok {
			return writeString(hc, buf, size, s)
		}
		return notify.Continue()
	}
	t, err := g.resolve(hc, dirfd, path, false)
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
	if !t.Entry.IsSymlink() {
		return notify.Errno(unix.EINVAL)
	}
	if t.kernel() {
		return notify.Continue()
	}
	target, err := g.b.Readlink(t.Rel)
	if err != nil {
		return fail(err)
	}
	return writeString(hc, buf, size, target)
}

// writeString answers a readlink-like call: at most size bytes of s, no
// NUL.
func writeString(hc *notify.HandlerCtx, buf, size uint64, s string) notify.Action {
	b := []byte(s)
	if uint64(len(b)) > size {
		b = b[:size]
	}
	if len(b) > 0 {
		if err := hc.WriteMem(buf, b); err != nil {
			return notify.Errno(unix.EFAULT)
		}
	}
	return notify.ReturnValue(int64(len(b)))
}

// ownLink returns the target of the task's magic link that path names
// exactly (/proc/self/fd/N, /proc/self/cwd, /dev/fd/N…), read from the
// kernel.
func (g *Gate) ownLink(hc *notify.HandlerCtx, path string) (string, bool) {
	comps := components(path)
	tid := strconv.FormatUint(uint64(hc.Notif.PID), 10)
	var entry string
	switch {
	case len(comps) == 3 && comps[0] == "dev" && comps[1] == "fd":
		entry = "fd/" + comps[2]
	case len(comps) == 3 && comps[0] == "proc" && (comps[1] == "self" || comps[1] == "thread-self" || comps[1] == tid) && (comps[2] == "cwd" || comps[2] == "exe"):
		entry = comps[2]
	case len(comps) == 4 && comps[0] == "proc" && (comps[1] == "self" || comps[1] == "thread-self" || comps[1] == tid) && comps[2] == "fd":
		entry = "fd/" + comps[3]
	default:
		return "", false
	}
	link, err := readTaskLink(hc, entry)
	if err != nil {
		return "", false
	}
	return link, true
}

// translate maps a path of the upper layer to the workdir's.
func (g *Gate) translate(p string) (string, bool) {
	up := g.b.UpperDir()
	suffix := ""
	if strings.HasSuffix(p, " (deleted)") {
		p, suffix = strings.TrimSuffix(p, " (deleted)"), " (deleted)"
	}
	switch {
	case p == up:
		return g.workdir + suffix, true
	case strings.HasPrefix(p, up+"/"):
		return g.workdir + p[len(up):] + suffix, true
	}
	return "", false
}

// getcwd serves getcwd: a working directory of the merged view is the
// workdir's path.
func (g *Gate) getcwd(hc *notify.HandlerCtx) notify.Action {
	pl, err := g.cwd(hc)
	if err != nil {
		return fail(err)
	}
	if !pl.Inside || !pl.Differs {
		return notify.Continue()
	}
	s := g.relPath(pl.Rel) + "\x00"
	if uint64(len(s)) > arg(hc, 1) {
		return notify.Errno(unix.ERANGE)
	}
	if err := hc.WriteMem(arg(hc, 0), []byte(s)); err != nil {
		return notify.Errno(unix.EFAULT)
	}
	return notify.ReturnValue(int64(len(s)))
}

// chdir serves chdir: into a directory the kernel reaches in the workdir,
// the kernel moves; into one of the upper layer alone, the working
// directory is the gate's (the kernel's stays where it was).
func (g *Gate) chdir(hc *notify.HandlerCtx) notify.Action {
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
		if t.Differs {
			return notify.Errno(unix.EXDEV)
		}
		g.forgetCwd(hc)
		return notify.Continue()
	}
	if !t.Exists {
		return notify.Errno(unix.ENOENT)
	}
	e := t.Entry
	if !e.IsDir() {
		return notify.Errno(unix.ENOTDIR)
	}
	pin, err := g.b.Pin(t.Rel)
	if err != nil {
		return fail(err)
	}
	err = unix.Faccessat(unix.AT_FDCWD, taskpathProc(pin), unix.X_OK, unix.AT_EACCESS)
	unix.Close(pin)
	if err != nil {
		return fail(err)
	}
	if (e.Layer == cow.Lower || e.Merges) && !t.ViaDiffers {
		g.setCwd(hc, cow.Place{Inside: true, Rel: t.Rel}, false)
		return notify.Continue()
	}
	g.setCwd(hc, cow.Place{Inside: true, Rel: t.Rel}, true)
	return notify.ReturnValue(0)
}

// fchdir serves fchdir: into a directory of the upper layer the working
// directory is the gate's; anywhere else the kernel moves.
func (g *Gate) fchdir(hc *notify.HandlerCtx) notify.Action {
	dup, err := g.dupFD(hc, arg(hc, 0))
	if err != nil {
		return fail(err)
	}
	defer unix.Close(dup)
	p, err := fdPath(dup)
	if err != nil || !strings.HasPrefix(p, "/") {
		g.forgetCwd(hc)
		return notify.Continue()
	}
	pl := g.b.Locate(p)
	if !pl.Inside {
		g.forgetCwd(hc)
		return notify.Continue()
	}
	var st unix.Stat_t
	if err := unix.Fstat(dup, &st); err != nil {
		return fail(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return notify.Errno(unix.ENOTDIR)
	}
	if err := unix.Faccessat(unix.AT_FDCWD, taskpathProc(dup), unix.X_OK, unix.AT_EACCESS); err != nil {
		return fail(err)
	}
	if !pl.Differs {
		g.setCwd(hc, pl, false)
		return notify.Continue()
	}
	pl.Differs = false
	g.setCwd(hc, pl, true)
	return notify.ReturnValue(0)
}
