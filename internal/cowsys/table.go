//go:build linux

package cowsys

import (
	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/sysnum"
	"github.com/sandlock-go/sandlock/internal/taskpath"
)

type entry struct {
	name string
	fn   handler
}

// readOnly says whether a syscall changes nothing of the merged view.
type readOnly uint8

const (
	changes        readOnly = iota
	always                  // it only reads
	bySyscallFlags          // open and openat: by their flags (see openReadOnly)
)

// openReadOnly reports whether an open or openat (the flags register) only
// reads.
func openReadOnly(hc *notify.HandlerCtx) bool {
	var flags uint64
	switch hc.Notif.Data.Nr {
	case int32(openNr):
		flags = hc.Notif.Data.Args[1]
	case int32(openatNr):
		flags = hc.Notif.Data.Args[2]
	default:
		return false
	}
	return flags&(unix.O_ACCMODE|unix.O_CREAT|unix.O_TRUNC|unix.O_TMPFILE) == unix.O_RDONLY
}

var (
	openNr, _   = sysnum.Native().Nr("open")
	openatNr, _ = sysnum.Native().Nr("openat")
)

// handlers maps each syscall that names a path (or a descriptor of the
// merged view, for a change or a listing) onto the gate.
// readOnlyOf says whether a syscall changes nothing of the merged view.
func readOnlyOf(name string) readOnly {
	switch name {
	case "open", "openat":
		return bySyscallFlags
	case "execve", "execveat", "stat", "lstat", "newfstatat", "statx", "access", "faccessat", "faccessat2", "statfs",
		"readlink", "readlinkat", "getdents", "getdents64", "getxattr", "lgetxattr", "listxattr", "llistxattr":
		return always
	}
	return changes
}

func (g *Gate) handlers() []entry {
	cwd := taskpath.AtFDCWD
	a := arg
	return []entry{
		{"open", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			return g.open(hc, cwd, a(hc, 0), int(a(hc, 1)), uint32(a(hc, 2)), 0)
		}},
		{"creat", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			return g.open(hc, cwd, a(hc, 0), unix.O_CREAT|unix.O_WRONLY|unix.O_TRUNC, uint32(a(hc, 1)), 0)
		}},
		{"openat", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			return g.open(hc, a(hc, 0), a(hc, 1), int(a(hc, 2)), uint32(a(hc, 3)), 0)
		}},
		{"openat2", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			flags, mode, resolve, err := openat2Args(hc)
			if err != nil {
				return fail(err)
			}
			return g.open(hc, a(hc, 0), a(hc, 1), int(flags), uint32(mode), resolve)
		}},
		{"execve", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			return g.exec(hc, cwd, a(hc, 0), a(hc, 1), a(hc, 2), 0)
		}},
		{"execveat", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			return g.exec(hc, a(hc, 0), a(hc, 1), a(hc, 2), a(hc, 3), a(hc, 4))
		}},
		{"stat", func(g *Gate, hc *notify.HandlerCtx) notify.Action { return g.stat(hc, cwd, a(hc, 0), a(hc, 1), 0) }},
		{"lstat", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			return g.stat(hc, cwd, a(hc, 0), a(hc, 1), unix.AT_SYMLINK_NOFOLLOW)
		}},
		{"newfstatat", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			return g.stat(hc, a(hc, 0), a(hc, 1), a(hc, 2), a(hc, 3))
		}},
		{"statx", (*Gate).statx},
		{"access", func(g *Gate, hc *notify.HandlerCtx) notify.Action { return g.access(hc, cwd, a(hc, 0), a(hc, 1), 0) }},
		{"faccessat", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			return g.access(hc, a(hc, 0), a(hc, 1), a(hc, 2), 0)
		}},
		{"faccessat2", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			return g.access(hc, a(hc, 0), a(hc, 1), a(hc, 2), a(hc, 3))
		}},
		{"statfs", (*Gate).statfs},
		{"readlink", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			return g.readlink(hc, cwd, a(hc, 0), a(hc, 1), a(hc, 2))
		}},
		{"readlinkat", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			return g.readlink(hc, a(hc, 0), a(hc, 1), a(hc, 2), a(hc, 3))
		}},
		{"getdents", func(g *Gate, hc *notify.HandlerCtx) notify.Action { return g.getdents(hc, true) }},
		{"getdents64", func(g *Gate, hc *notify.HandlerCtx) notify.Action { return g.getdents(hc, false) }},
		{"getcwd", (*Gate).getcwd},
		{"chdir", (*Gate).chdir},
		{"fchdir", (*Gate).fchdir},
		{"mkdir", func(g *Gate, hc *notify.HandlerCtx) notify.Action { return g.mkdir(hc, cwd, a(hc, 0), a(hc, 1)) }},
		{"mkdirat", func(g *Gate, hc *notify.HandlerCtx) notify.Action { return g.mkdir(hc, a(hc, 0), a(hc, 1), a(hc, 2)) }},
		{"mknod", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			return g.mknod(hc, cwd, a(hc, 0), a(hc, 1), a(hc, 2))
		}},
		{"mknodat", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			return g.mknod(hc, a(hc, 0), a(hc, 1), a(hc, 2), a(hc, 3))
		}},
		{"symlink", func(g *Gate, hc *notify.HandlerCtx) notify.Action { return g.symlink(hc, a(hc, 0), cwd, a(hc, 1)) }},
		{"symlinkat", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			return g.symlink(hc, a(hc, 0), a(hc, 1), a(hc, 2))
		}},
		{"unlink", func(g *Gate, hc *notify.HandlerCtx) notify.Action { return g.remove(hc, cwd, a(hc, 0), false) }},
		{"rmdir", func(g *Gate, hc *notify.HandlerCtx) notify.Action { return g.remove(hc, cwd, a(hc, 0), true) }},
		{"unlinkat", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			if a(hc, 2)&^unix.AT_REMOVEDIR != 0 {
				return notify.Errno(unix.EINVAL)
			}
			return g.remove(hc, a(hc, 0), a(hc, 1), a(hc, 2)&unix.AT_REMOVEDIR != 0)
		}},
		{"rename", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			return g.rename(hc, cwd, a(hc, 0), cwd, a(hc, 1), 0)
		}},
		{"renameat", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			return g.rename(hc, a(hc, 0), a(hc, 1), a(hc, 2), a(hc, 3), 0)
		}},
		{"renameat2", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			return g.rename(hc, a(hc, 0), a(hc, 1), a(hc, 2), a(hc, 3), a(hc, 4))
		}},
		{"link", func(g *Gate, hc *notify.HandlerCtx) notify.Action { return g.link(hc, cwd, a(hc, 0), cwd, a(hc, 1), 0) }},
		{"linkat", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			return g.link(hc, a(hc, 0), a(hc, 1), a(hc, 2), a(hc, 3), a(hc, 4))
		}},
		{"chmod", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			return g.chmod(hc, cwd, a(hc, 0), a(hc, 1), 0, false)
		}},
		{"fchmodat", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			return g.chmod(hc, a(hc, 0), a(hc, 1), a(hc, 2), 0, false)
		}},
		{"fchmodat2", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			return g.chmod(hc, a(hc, 0), a(hc, 1), a(hc, 2), a(hc, 3), false)
		}},
		{"fchmod", func(g *Gate, hc *notify.HandlerCtx) notify.Action { return g.chmod(hc, a(hc, 0), 0, a(hc, 1), 0, true) }},
		{"chown", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			return g.chown(hc, cwd, a(hc, 0), a(hc, 1), a(hc, 2), 0, false)
		}},
		{"lchown", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			return g.chown(hc, cwd, a(hc, 0), a(hc, 1), a(hc, 2), unix.AT_SYMLINK_NOFOLLOW, false)
		}},
		{"fchownat", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			return g.chown(hc, a(hc, 0), a(hc, 1), a(hc, 2), a(hc, 3), a(hc, 4), false)
		}},
		{"fchown", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			return g.chown(hc, a(hc, 0), 0, a(hc, 1), a(hc, 2), 0, true)
		}},
		{"utime", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			ts, err := readUtimbuf(hc, a(hc, 1))
			if err != nil {
				return fail(err)
			}
			return g.utimens(hc, cwd, a(hc, 0), ts, 0)
		}},
		{"utimes", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			ts, err := readTimevals(hc, a(hc, 1))
			if err != nil {
				return fail(err)
			}
			return g.utimens(hc, cwd, a(hc, 0), ts, 0)
		}},
		{"futimesat", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			ts, err := readTimevals(hc, a(hc, 2))
			if err != nil {
				return fail(err)
			}
			return g.utimens(hc, a(hc, 0), a(hc, 1), ts, 0)
		}},
		{"utimensat", func(g *Gate, hc *notify.HandlerCtx) notify.Action {
			ts, err := readTimes(hc, a(hc, 2))
			if err != nil {
				return fail(err)
			}
			return g.utimens(hc, a(hc, 0), a(hc, 1), ts, a(hc, 3))
		}},
		{"truncate", (*Gate).truncate},
		{"setxattr", func(g *Gate, hc *notify.HandlerCtx) notify.Action { return g.setxattr(hc, true, false) }},
		{"lsetxattr", func(g *Gate, hc *notify.HandlerCtx) notify.Action { return g.setxattr(hc, false, false) }},
		{"fsetxattr", func(g *Gate, hc *notify.HandlerCtx) notify.Action { return g.setxattr(hc, false, true) }},
		{"removexattr", func(g *Gate, hc *notify.HandlerCtx) notify.Action { return g.removexattr(hc, true, false) }},
		{"lremovexattr", func(g *Gate, hc *notify.HandlerCtx) notify.Action { return g.removexattr(hc, false, false) }},
		{"fremovexattr", func(g *Gate, hc *notify.HandlerCtx) notify.Action { return g.removexattr(hc, false, true) }},
		{"getxattr", func(g *Gate, hc *notify.HandlerCtx) notify.Action { return g.getxattr(hc, true) }},
		{"lgetxattr", func(g *Gate, hc *notify.HandlerCtx) notify.Action { return g.getxattr(hc, false) }},
		{"listxattr", func(g *Gate, hc *notify.HandlerCtx) notify.Action { return g.listxattr(hc, true) }},
		{"llistxattr", func(g *Gate, hc *notify.HandlerCtx) notify.Action { return g.listxattr(hc, false) }},
	}
}
