//go:build linux

// Package sysargs says where a syscall's filesystem and socket arguments
// are: its directory descriptor and path (and the second pair of a rename
// or link), its flags and mode, its socket address and its length. One
// table, so that every feature that acts on paths or addresses reads a
// notification's registers the same way, legacy calls (open, unlink…,
// whose directory is implicitly the working directory) included.
package sysargs

import "golang.org/x/sys/unix"

// None marks an argument a syscall does not have.
const None = -1

// Layout is where a syscall's arguments are (register indexes, or None).
type Layout struct {
	Dirfd, Path   int
	Dirfd2, Path2 int // rename, link: the new name; symlink: Path is the target
	Flags         int
	Mode          int
	// FixedFlags are the flags of a call that has none of its own (creat,
	// rmdir) or that adds some to its own (lchown: AT_SYMLINK_NOFOLLOW).
	FixedFlags    uint64
	Addr, AddrLen int // a socket address and its length
}

// atFDCWD is AT_FDCWD as a syscall argument (a negative int, sign-extended).
const atFDCWD = uint64(0xffffffffffffff9c)

func pick(args [6]uint64, i int, absent uint64) uint64 {
	if i == None {
		return absent
	}
	return args[i]
}

// DirfdOf returns the directory descriptor argument (AT_FDCWD for a call
// without one); Dirfd2Of the second one.
func (l Layout) DirfdOf(args [6]uint64) uint64  { return pick(args, l.Dirfd, atFDCWD) }
func (l Layout) Dirfd2Of(args [6]uint64) uint64 { return pick(args, l.Dirfd2, atFDCWD) }

// PathOf and Path2Of return the address of the path arguments (0 for
// none).
func (l Layout) PathOf(args [6]uint64) uint64  { return pick(args, l.Path, 0) }
func (l Layout) Path2Of(args [6]uint64) uint64 { return pick(args, l.Path2, 0) }

// FlagsOf returns the flags, with FixedFlags added.
func (l Layout) FlagsOf(args [6]uint64) uint64 { return pick(args, l.Flags, 0) | l.FixedFlags }

// ModeOf returns the mode argument (0 for none).
func (l Layout) ModeOf(args [6]uint64) uint64 { return pick(args, l.Mode, 0) }

// layouts are sorted by name.
var layouts = [...]struct {
	name string
	l    Layout
}{
	{"access", at(None, 0, None, 1)},
	{"bind", sock()},
	{"chdir", at(None, 0, None, None)},
	{"chmod", at(None, 0, None, 1)},
	{"chown", at(None, 0, None, None)},
	{"connect", sock()},
	{"creat", fixed(at(None, 0, None, 1), unix.O_CREAT|unix.O_WRONLY|unix.O_TRUNC)},
	{"execve", at(None, 0, None, None)},
	{"execveat", at(0, 1, 4, None)},
	{"faccessat", at(0, 1, None, 2)},
	{"faccessat2", at(0, 1, 3, 2)},
	{"fchmodat", at(0, 1, None, 2)},
	{"fchmodat2", at(0, 1, 3, 2)},
	{"fchownat", at(0, 1, 4, None)},
	{"futimesat", at(0, 1, None, None)},
	{"getxattr", at(None, 0, None, None)},
	{"getxattrat", at(0, 1, 2, None)},
	{"inotify_add_watch", at(None, 1, None, None)},
	{"lchown", fixed(at(None, 0, None, None), unix.AT_SYMLINK_NOFOLLOW)},
	{"lgetxattr", fixed(at(None, 0, None, None), unix.AT_SYMLINK_NOFOLLOW)},
	{"link", two(None, 0, None, 1, None)},
	{"linkat", two(0, 1, 2, 3, 4)},
	{"listxattr", at(None, 0, None, None)},
	{"listxattrat", at(0, 1, 2, None)},
	{"llistxattr", fixed(at(None, 0, None, None), unix.AT_SYMLINK_NOFOLLOW)},
	{"lremovexattr", fixed(at(None, 0, None, None), unix.AT_SYMLINK_NOFOLLOW)},
	{"lsetxattr", fixed(at(None, 0, None, None), unix.AT_SYMLINK_NOFOLLOW)},
	{"lstat", fixed(at(None, 0, None, None), unix.AT_SYMLINK_NOFOLLOW)},
	{"mkdir", at(None, 0, None, 1)},
	{"mkdirat", at(0, 1, None, 2)},
	{"mknod", at(None, 0, None, 1)},
	{"mknodat", at(0, 1, None, 2)},
	{"newfstatat", at(0, 1, 3, None)},
	{"open", at(None, 0, 1, 2)},
	{"openat", at(0, 1, 2, 3)},
	{"openat2", at(0, 1, None, None)}, // flags and mode are in struct open_how (arg 2)
	{"readlink", at(None, 0, None, None)},
	{"readlinkat", at(0, 1, None, None)},
	{"removexattr", at(None, 0, None, None)},
	{"removexattrat", at(0, 1, 2, None)},
	{"rename", two(None, 0, None, 1, None)},
	{"renameat", two(0, 1, 2, 3, None)},
	{"renameat2", two(0, 1, 2, 3, 4)},
	{"rmdir", fixed(at(None, 0, None, None), unix.AT_REMOVEDIR)},
	{"sendto", Layout{Dirfd: None, Path: None, Dirfd2: None, Path2: None, Flags: 3, Mode: None, Addr: 4, AddrLen: 5}},
	{"setxattr", at(None, 0, None, None)},
	{"setxattrat", at(0, 1, 2, None)},
	{"stat", at(None, 0, None, None)},
	{"statfs", at(None, 0, None, None)},
	{"statx", at(0, 1, 2, None)},
	{"symlink", two(None, 0, None, 1, None)}, // Path is the target, not a path looked up
	{"symlinkat", two(None, 0, 1, 2, None)},
	{"truncate", at(None, 0, None, None)},
	{"unlink", at(None, 0, None, None)},
	{"unlinkat", at(0, 1, 2, None)},
	{"utime", at(None, 0, None, None)},
	{"utimensat", at(0, 1, 3, None)},
	{"utimes", at(None, 0, None, None)},
}

// at is a one-path layout.
func at(dirfd, path, flags, mode int) Layout {
	return Layout{Dirfd: dirfd, Path: path, Dirfd2: None, Path2: None, Flags: flags, Mode: mode, Addr: None, AddrLen: None}
}

// two is a two-path layout.
func two(dirfd, path, dirfd2, path2, flags int) Layout {
	return Layout{Dirfd: dirfd, Path: path, Dirfd2: dirfd2, Path2: path2, Flags: flags, Mode: None, Addr: None, AddrLen: None}
}

func fixed(l Layout, flags uint64) Layout { l.FixedFlags = flags; return l }

func sock() Layout {
	return Layout{Dirfd: None, Path: None, Dirfd2: None, Path2: None, Flags: None, Mode: None, Addr: 1, AddrLen: 2}
}

// Of returns a syscall's layout, by name.
func Of(name string) (Layout, bool) {
	lo, hi := 0, len(layouts)
	for lo < hi {
		m := (lo + hi) / 2
		switch {
		case layouts[m].name == name:
			return layouts[m].l, true
		case layouts[m].name < name:
			lo = m + 1
		default:
			hi = m
		}
	}
	return Layout{}, false
}

// MustOf is Of for a name the table holds.
func MustOf(name string) Layout {
	l, ok := Of(name)
	if !ok {
		panic("sysargs: no layout for " + name)
	}
	return l
}
