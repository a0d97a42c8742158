//go:build linux

package netgate

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/procfs"
)

// startDir returns where the lookup of a unix socket path begins: AT_FDCWD
// for an absolute path, else the program's working directory, opened here
// by the supervisor (the helper threads' Landlock domain may neither read
// /proc nor look into a task of another domain). The caller closes it if it
// is not AT_FDCWD.
func startDir(hc *notify.HandlerCtx, path string) (int, unix.Errno) {
	if strings.HasPrefix(path, "/") {
		return unix.AT_FDCWD, 0
	}
	cwd, err := unix.Open("/proc/"+strconv.FormatUint(uint64(hc.Notif.PID), 10)+"/cwd", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, unix.ESRCH
	}
	if notify.TaskAlive(hc) != nil {
		unix.Close(cwd)
		return -1, unix.ESRCH
	}
	return cwd, 0
}

func closeDir(fd int) {
	if fd != unix.AT_FDCWD {
		unix.Close(fd)
	}
}

// viaUnixPin reaches a named unix socket: its path, resolved as the program
// would resolve it, must be a socket under a writable grant and outside the
// denied paths; the operation then addresses the pinned inode
// (/proc/self/fd/N), never the path again.
func (g *Gate) viaUnixPin(ctx context.Context, hc *notify.HandlerCtx, s *socket, path string, op func(sa []byte) (int, error)) (int, unix.Errno) {
	dirfd, errno := startDir(hc, path)
	if errno != 0 {
		return 0, errno
	}
	defer closeDir(dirfd)
	var n int
	if derr := g.cfg.Pool.DoContext(ctx, func() { n, errno = g.pinned(dirfd, path, op) }, s.interrupt); derr != nil {
		return 0, unix.EIO
	}
	if notify.TaskAlive(hc) != nil {
		return 0, unix.ESRCH
	}
	return n, errno
}

// pinned runs on a helper thread: open the socket file at path (relative
// to dirfd) with O_PATH, following no magic links, check what and where it
// is, and address it through the pin.
func (g *Gate) pinned(dirfd int, path string, op func(sa []byte) (int, error)) (int, unix.Errno) {
	pin, err := unix.Openat2(dirfd, path, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return 0, errnoOf(err)
	}
	defer unix.Close(pin)
	var st unix.Stat_t
	if err := unix.Fstat(pin, &st); err != nil {
		return 0, errnoOf(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return 0, unix.ECONNREFUSED
	}
	self := "/proc/self/fd/" + strconv.Itoa(pin)
	canon, err := filepath.EvalSymlinks(self)
	if err != nil || !under(canon, g.cfg.Writable) {
		return 0, unix.EACCES
	}
	if g.cfg.Denied != nil {
		if err := g.cfg.Denied(pin); err != nil {
			return 0, deniedErrno(err)
		}
	}
	n, err := op(sockaddrUnix(self))
	return n, errnoOf(err)
}

// deniedErrno is the answer to a denial: its errno, EACCES for anything
// else (failing closed).
func deniedErrno(err error) unix.Errno {
	if e, ok := err.(unix.Errno); ok && e != 0 {
		return e
	}
	return unix.EACCES
}

// under reports whether p is one of roots or below one.
func under(p string, roots []string) bool {
	for _, r := range roots {
		if r == "/" || p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

func sockaddrUnix(path string) []byte {
	b := make([]byte, 2+len(path)+1)
	binary.NativeEndian.PutUint16(b, unix.AF_UNIX)
	copy(b[2:], path)
	return b
}

// bindPath binds s to a named unix socket on the program's behalf, on a
// helper thread (Landlock judges the creation there as for the program),
// with the program's umask. Relative paths start from the program's cwd.
// Without denied paths, the copy of the address is bound as it is, so the
// socket's address is the program's. With them (DeniedEntry), the parent
// directory is resolved and pinned first, the new entry is checked in that
// pinned directory, and the socket is bound there by its last name
// (fchdir to the pin, then bind): the kernel never resolves the path again.
// Its address is then that name, not the path the program gave.
func (g *Gate) bindPath(hc *notify.HandlerCtx, s *socket, t *target) unix.Errno {
	start, errno := startDir(hc, t.path)
	if errno != 0 {
		return errno
	}
	defer closeDir(start)
	umask := int(procfs.Umask(int(hc.Notif.PID)))
	if notify.TaskAlive(hc) != nil {
		return unix.ESRCH
	}
	if derr := g.cfg.Pool.Do(func() { errno = g.bindOn(start, s, t, umask) }); derr != nil {
		return unix.EIO
	}
	return errno
}

// bindOn runs on a helper thread, whose cwd and umask are its own.
func (g *Gate) bindOn(start int, s *socket, t *target, umask int) unix.Errno {
	dir, sa := start, t.raw
	if g.cfg.DeniedEntry != nil {
		parentPath, name := splitParent(t.path)
		parent, err := unix.Openat2(start, parentPath, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_NO_MAGICLINKS,
		})
		if err != nil {
			return errnoOf(err)
		}
		defer unix.Close(parent)
		if err := g.cfg.DeniedEntry(parent, strings.TrimSuffix(name, "/")); err != nil {
			return deniedErrno(err)
		}
		dir, sa = parent, sockaddrUnix(name)
	}
	if dir != unix.AT_FDCWD {
		if err := unix.Fchdir(dir); err != nil {
			return errnoOf(err)
		}
		defer unix.Chdir("/")
	}
	old := unix.Umask(umask)
	defer unix.Umask(old)
	return errnoOf(rawBind(s.fd, sa))
}

// splitParent splits a path into the directory that holds its last name
// and that name (a trailing slash kept, so the kernel applies its rules to
// it); "/" is "/" and ".".
func splitParent(path string) (dir, name string) {
	trimmed := strings.TrimRight(path, "/")
	slash := ""
	if trimmed == "" {
		trimmed = "/."
	} else if len(trimmed) < len(path) {
		slash = "/"
	}
	dir, name = ".", trimmed
	if i := strings.LastIndexByte(trimmed, '/'); i >= 0 {
		dir, name = trimmed[:i], trimmed[i+1:]
		if dir == "" {
			dir = "/"
		}
	}
	return dir, name + slash
}
