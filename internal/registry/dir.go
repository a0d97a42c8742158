//go:build linux

// Package registry keeps the user's running sandboxes under a name, in
// upstream Sandlock's layout: /dev/shm/sandlock-<uid>/<name>/ holds "pid"
// (the program's pid, then the supervisor's), an optional "mode", and
// "control.sock", the supervisor's control socket. Ours in addition:
// "lock", a file the supervisor holds an exclusive flock on for its whole
// life. Liveness is that lock: the kernel drops it when the supervisor
// dies, however it dies, and no recycled pid can hold it.
//
// Every operation works relative to descriptors of directories it has
// verified (owned by the user, no group or other access, not a symlink),
// never by re-resolving a path another user could have changed.
package registry

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// MaxName is the longest name, in bytes.
const MaxName = 64

// CheckName reports whether name can name a sandbox: non-empty, at most
// MaxName bytes, no '/' or NUL, and neither "." nor "..".
func CheckName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case len(name) > MaxName:
		return fmt.Errorf("name is %d bytes long, more than %d", len(name), MaxName)
	case strings.IndexByte(name, '/') >= 0:
		return errors.New("name contains '/'")
	case strings.IndexByte(name, 0) >= 0:
		return errors.New("name contains a NUL byte")
	case name == "." || name == "..":
		return fmt.Errorf("%q cannot name a sandbox", name)
	}
	return nil
}

// ErrUnavailable is wrapped by the errors of a runtime directory this
// process may not reach at all (no /dev/shm, or no access to it, as in a
// sandbox without a grant for it); a directory refused for being someone
// else's is not one of them.
var ErrUnavailable = errors.New("runtime directory unavailable")

// unavailable wraps err with ErrUnavailable when it is a denial or an
// absence.
func unavailable(err error) error {
	switch {
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM), errors.Is(err, unix.EROFS), errors.Is(err, unix.ENOENT):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// shm is where the runtime directories live (a variable for tests).
var shm = "/dev/shm"

// Base is the user's verified runtime directory, open.
type Base struct {
	fd     int
	Path   string
	shared bool // the cached one, never closed
}

// Close closes the directory.
func (b *Base) Close() {
	if !b.shared {
		unix.Close(b.fd)
	}
}

// claimBase is OpenBase(true) for claims, which every run makes: the
// directory stays open between them and is verified again (fstat) each
// time. Should it be removed, creating an entry in it fails and it is
// opened afresh.
var claimBase struct {
	sync.Mutex
	b    *Base
	euid int
}

func openClaimBase(fresh bool) (*Base, error) {
	claimBase.Lock()
	defer claimBase.Unlock()
	euid := os.Geteuid()
	if b := claimBase.b; b != nil && !fresh && claimBase.euid == euid && b.Path == shm+"/"+baseName() && verifyDir(b.fd, b.Path) == nil {
		return b, nil
	}
	if claimBase.b != nil {
		unix.Close(claimBase.b.fd)
		claimBase.b = nil
	}
	b, err := OpenBase(true)
	if err != nil {
		return nil, err
	}
	b.shared = true
	claimBase.b, claimBase.euid = b, euid
	return b, nil
}

// baseName is the runtime directory's name: upstream's, with the real uid.
func baseName() string { return "sandlock-" + strconv.Itoa(os.Getuid()) }

// OpenBase opens the user's runtime directory, creating it (mode 0700) if
// create is set, and verifies it: a directory, not a symlink, owned by the
// effective user, with no access for group or others. Anything else was
// made by someone else, and is refused rather than used. Without create, a
// missing directory is os.ErrNotExist.
func OpenBase(create bool) (*Base, error) {
	path := shm + "/" + baseName()
	parent, err := unix.Open(shm, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, unavailable(fmt.Errorf("runtime directory %s: %w", path, os.NewSyscallError("open "+shm, err)))
	}
	defer unix.Close(parent)
	if create {
		if err := unix.Mkdirat(parent, baseName(), 0o700); err != nil && err != unix.EEXIST {
			return nil, unavailable(fmt.Errorf("runtime directory %s: %w", path, os.NewSyscallError("mkdir", err)))
		}
	}
	fd, err := unix.Openat(parent, baseName(), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		switch err {
		case unix.ENOENT:
			return nil, os.ErrNotExist
		case unix.ELOOP, unix.ENOTDIR:
			var st unix.Stat_t
			if unix.Fstatat(parent, baseName(), &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
				return nil, fmt.Errorf("runtime directory %s is a symlink, which someone else may have planted: refusing to use it", path)
			}
			return nil, fmt.Errorf("runtime directory %s is not a directory: refusing to use it", path)
		case unix.EACCES:
			// A directory of another user, closed to this one, is a
			// refusal, not an absence.
			var st unix.Stat_t
			if unix.Fstatat(parent, baseName(), &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Uid != uint32(os.Geteuid()) {
				return nil, fmt.Errorf("runtime directory %s belongs to uid %d, not to uid %d: refusing to use it (someone else created it; remove it)", path, st.Uid, os.Geteuid())
			}
		}
		return nil, unavailable(fmt.Errorf("runtime directory %s: %w", path, os.NewSyscallError("open", err)))
	}
	if err := verifyDir(fd, path); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &Base{fd: fd, Path: path}, nil
}

// verifyDir checks that fd is a directory of the effective user with no
// access for group or others.
func verifyDir(fd int, path string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("runtime directory %s: %w", path, os.NewSyscallError("fstat", err))
	}
	euid := uint32(os.Geteuid())
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return fmt.Errorf("runtime directory %s is not a directory: refusing to use it", path)
	case st.Uid != euid:
		return fmt.Errorf("runtime directory %s belongs to uid %d, not to uid %d: refusing to use it (someone else created it; remove it)", path, st.Uid, euid)
	case st.Mode&0o077 != 0:
		return fmt.Errorf("runtime directory %s has mode %04o, open to other users: refusing to use it (chmod 700 it, or remove it)", path, st.Mode&0o7777)
	}
	return nil
}

// procPath names an entry of a directory held open, for the calls that
// take only a path (bind and connect of unix sockets): the kernel resolves
// the magic link to the directory itself, whatever happened to its path.
func procPath(dirfd int, name string) string {
	return "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + name
}

// Files of an entry.
const (
	pidFile  = "pid"
	pidTemp  = ".pid.tmp"
	modeFile = "mode"
	sockFile = "control.sock"
	lockFile = "lock"
)

// entryFiles are the files an entry may hold.
var entryFiles = [...]string{sockFile, pidFile, pidTemp, modeFile, lockFile}

// clearDir removes the files of an entry (never a directory), so that
// the entry can be removed: the known ones, and then any other.
func clearDir(fd int) error {
	for _, n := range entryFiles {
		unix.Unlinkat(fd, n, 0)
	}
	if dirEmpty(fd) {
		return nil
	}
	dup, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(dup), "entry")
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := unix.Unlinkat(fd, n, 0); err != nil && err != unix.ENOENT {
			return fmt.Errorf("removing %s: %w", n, err)
		}
	}
	return nil
}

// dirEmpty reports whether a directory, open and not read yet, has no
// entry.
func dirEmpty(fd int) bool {
	buf := make([]byte, 256)
	n, err := unix.Getdents(fd, buf)
	if err != nil {
		return false
	}
	names := 0
	for off := 0; off < n; {
		reclen := int(buf[off+16]) | int(buf[off+17])<<8
		name := buf[off+19 : off+reclen]
		if i := strings.IndexByte(string(name), 0); i >= 0 {
			name = name[:i]
		}
		if string(name) != "." && string(name) != ".." {
			names++
		}
		off += reclen
	}
	// Rewind for a later reader.
	unix.Seek(fd, 0, 0)
	return names == 0 && n < len(buf)
}

// sameFile reports whether name in dirfd is the file open as fd.
func sameFile(dirfd int, name string, fd int) bool {
	var a, b unix.Stat_t
	if unix.Fstatat(dirfd, name, &a, unix.AT_SYMLINK_NOFOLLOW) != nil || unix.Fstat(fd, &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// readPids reads an entry's pid file: the program's pid, then the
// supervisor's.
func readPids(dirfd int) (child, supervisor int, ok bool) {
	fd, err := unix.Openat(dirfd, pidFile, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, 0, false
	}
	var buf [64]byte
	n, _ := unix.Read(fd, buf[:])
	unix.Close(fd)
	if n <= 0 {
		return 0, 0, false
	}
	lines := strings.Split(string(buf[:n]), "\n")
	if len(lines) < 2 {
		return 0, 0, false
	}
	c, err1 := strconv.Atoi(strings.TrimSpace(lines[0]))
	s, err2 := strconv.Atoi(strings.TrimSpace(lines[1]))
	if err1 != nil || err2 != nil || c <= 0 || s <= 0 {
		return 0, 0, false
	}
	return c, s, true
}
