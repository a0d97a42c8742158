//go:build linux

package cow

import (
	"io"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// beneath is how every path inside a layer is resolved: never above the
// layer's root, never through a symlink (a symlink the program made in a
// layer is data, not a way out of it), never through a magic link.
const beneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// openBeneath opens rel inside the layer dirfd ("" is the layer's root).
func openBeneath(dirfd int, rel string, flags int, mode uint32) (int, error) {
	if rel == "" {
		rel = "."
	}
	for {
		fd, err := unix.Openat2(dirfd, rel, &unix.OpenHow{
			Flags:   uint64(flags | unix.O_CLOEXEC),
			Mode:    uint64(mode),
			Resolve: beneath,
		})
		if err == unix.EINTR || err == unix.EAGAIN {
			// EAGAIN: a concurrent rename made the kernel give up a
			// RESOLVE_BENEATH walk; try again.
			continue
		}
		return fd, err
	}
}

// lstatBeneath returns what rel is inside the layer dirfd, without
// following a final symlink.
func lstatBeneath(dirfd int, rel string) (unix.Stat_t, error) {
	var st unix.Stat_t
	if rel == "" {
		return st, unix.Fstat(dirfd, &st)
	}
	if !strings.Contains(rel, "/") {
		// A single name in the layer's root: nothing to walk.
		return st, ignoringEINTR(func() error { return unix.Fstatat(dirfd, rel, &st, unix.AT_SYMLINK_NOFOLLOW) })
	}
	dir, name := split(rel)
	dfd, err := openBeneath(dirfd, dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return st, err
	}
	defer unix.Close(dfd)
	return st, ignoringEINTR(func() error { return unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) })
}

// openParent opens the directory holding rel inside the layer dirfd and
// returns it with rel's last name.
func openParent(dirfd int, rel string) (int, string, error) {
	dir, name := split(rel)
	fd, err := openBeneath(dirfd, dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	return fd, name, err
}

func ignoringEINTR(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}

// split returns the directory and the last name of a relative path ("" for
// the root).
func split(rel string) (dir, name string) {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[:i], rel[i+1:]
	}
	return "", rel
}

// join joins a relative directory and a name.
func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// under reports whether rel is p or below p (p == "" is the root).
func under(rel, p string) bool {
	return p == "" || rel == p || strings.HasPrefix(rel, p+"/")
}

// ancestors calls f for each proper ancestor of rel, the root first
// excluded, from the top down: "a", "a/b" for "a/b/c".
func ancestors(rel string, f func(string) bool) bool {
	for i := 0; i < len(rel); i++ {
		if rel[i] == '/' {
			if !f(rel[:i]) {
				return false
			}
		}
	}
	return true
}

func isDir(st *unix.Stat_t) bool  { return st.Mode&unix.S_IFMT == unix.S_IFDIR }
func isReg(st *unix.Stat_t) bool  { return st.Mode&unix.S_IFMT == unix.S_IFREG }
func isLink(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFLNK }

// procFD is the path through which the supervisor reaches one of its own
// descriptors (linkat of an O_TMPFILE file, reopening an O_PATH pin).
func procFD(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// copyData copies src's content to dst from offset 0, keeping holes: only
// the data segments are copied (copy_file_range, which shares extents where
// the filesystem can), and dst is given src's size.
func copyData(dst, src int, size int64) error {
	var off int64
	for off < size {
		data, err := unix.Seek(src, off, unix.SEEK_DATA)
		if err == unix.ENXIO {
			break // only a hole is left
		}
		if err != nil {
			return copyPlain(dst, src, size)
		}
		hole, err := unix.Seek(src, data, unix.SEEK_HOLE)
		if err != nil {
			return copyPlain(dst, src, size)
		}
		if err := copyRange(dst, src, data, hole-data); err != nil {
			return err
		}
		off = hole
	}
	return unix.Ftruncate(dst, size)
}

// copyRange copies n bytes at off from src to the same offset of dst.
func copyRange(dst, src int, off, n int64) error {
	for n > 0 {
		roff, woff := off, off
		c, err := unix.CopyFileRange(src, &roff, dst, &woff, int(min(n, 1<<30)), 0)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EXDEV || err == unix.EINVAL || err == unix.EOPNOTSUPP || err == unix.ENOSYS {
			return copyBuffered(dst, src, off, n)
		}
		if err != nil {
			return err
		}
		if c == 0 {
			return nil // the file shrank meanwhile
		}
		off, n = off+int64(c), n-int64(c)
	}
	return nil
}

// copyPlain copies everything, for a filesystem without SEEK_DATA.
func copyPlain(dst, src int, size int64) error {
	if err := copyRange(dst, src, 0, size); err != nil {
		return err
	}
	return unix.Ftruncate(dst, size)
}

// copyBuffered copies with pread and pwrite.
func copyBuffered(dst, src int, off, n int64) error {
	buf := make([]byte, 1<<20)
	for n > 0 {
		r, err := unix.Pread(src, buf[:min(int64(len(buf)), n)], off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if r == 0 {
			return nil
		}
		if _, err := unix.Pwrite(dst, buf[:r], off); err != nil {
			return err
		}
		off, n = off+int64(r), n-int64(r)
	}
	return nil
}

// reopenRead opens the object behind fd (O_PATH allowed) for reading, with
// the supervisor's rights; a regular file or a directory only (opening a
// FIFO would block, and other objects hold no extended attributes of
// their own).
func reopenRead(fd int) (int, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return -1, err
	}
	if !isReg(&st) && !isDir(&st) {
		return -1, unix.ENOTSUP
	}
	var rfd int
	var err error
	privileged(func() {
		rfd, err = unix.Open(procFD(fd), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	})
	return rfd, err
}

// xattrNames lists the extended attributes of an open file.
func xattrNames(fd int) ([]string, error) {
	buf := make([]byte, 4096)
	for {
		n, err := unix.Flistxattr(fd, buf)
		if err == unix.ERANGE {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if err == unix.ENOTSUP || err == unix.EOPNOTSUPP {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		var names []string
		for _, s := range strings.Split(string(buf[:n]), "\x00") {
			if s != "" {
				names = append(names, s)
			}
		}
		return names, nil
	}
}

// copyXattrs copies the user.* extended attributes of src to dst (both
// descriptors, O_PATH allowed). Others need privileges the program does not
// have, or belong to the filesystem (security.*, system.*, trusted.*).
// Only regular files and directories hold user.* attributes.
func copyXattrs(dst, src int) error {
	rs, err := reopenRead(src)
	if err != nil {
		return nil // nothing to copy, or nothing the supervisor can read
	}
	defer unix.Close(rs)
	names, err := xattrNames(rs)
	if err != nil || len(names) == 0 {
		return err
	}
	rd, err := reopenRead(dst)
	if err != nil {
		return err
	}
	defer unix.Close(rd)
	for _, name := range names {
		if !strings.HasPrefix(name, "user.") {
			continue
		}
		val, err := fgetXattr(rs, name)
		if err != nil {
			continue // gone meanwhile
		}
		var serr error
		privileged(func() { serr = unix.Fsetxattr(rd, name, val, 0) })
		if serr != nil {
			return serr
		}
	}
	return nil
}

// fgetXattr reads one attribute of an open file.
func fgetXattr(fd int, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Fgetxattr(fd, name, buf)
		if err == unix.ERANGE {
			sz, err := unix.Fgetxattr(fd, name, nil)
			if err != nil {
				return nil, err
			}
			buf = make([]byte, sz+1)
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// setTimes gives the object fd (O_PATH allowed, a symlink itself) the
// access and modification times of st.
func setTimes(fd int, st *unix.Stat_t) error {
	ts := []unix.Timespec{st.Atim, st.Mtim}
	return unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW)
}

// dirent is one entry of a directory as getdents64 reports it.
type dirent struct {
	name string
	ino  uint64
	typ  uint8 // DT_*
}

// readDirFD lists a directory opened for reading (not O_PATH) from its
// start, without "." and "..".
func readDirFD(fd int) ([]dirent, error) {
	if _, err := unix.Seek(fd, 0, io.SeekStart); err != nil {
		return nil, err
	}
	var out []dirent
	buf := make([]byte, 32768)
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return out, nil
		}
		for off := 0; off < n; {
			// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name.
			d := buf[off:]
			reclen := int(*(*uint16)(unsafe.Pointer(&d[16])))
			if reclen == 0 || off+reclen > n {
				return nil, unix.EIO
			}
			ino := *(*uint64)(unsafe.Pointer(&d[0]))
			typ := d[18]
			name := d[19:reclen]
			if i := indexNUL(name); i >= 0 {
				name = name[:i]
			}
			if s := string(name); s != "." && s != ".." {
				out = append(out, dirent{name: s, ino: ino, typ: typ})
			}
			off += reclen
		}
	}
}

func indexNUL(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return -1
}

// removeAllAt removes name in the directory dirfd and, for a directory,
// everything below it, never following a symlink. A name that is already
// gone is no error.
func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR && err != unix.EPERM {
		return err
	}
	fd, oerr := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if oerr == unix.ENOENT {
		return nil
	}
	if oerr != nil {
		return err // the unlink's error says more
	}
	entries, rerr := readDirFD(fd)
	if rerr == nil {
		for _, e := range entries {
			if rerr = removeAllAt(fd, e.name); rerr != nil {
				break
			}
		}
	}
	unix.Close(fd)
	if rerr != nil {
		return rerr
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && err != unix.ENOENT {
		return err
	}
	return nil
}

// walkTree calls f for every entry below the directory rel of the layer
// root, parents before their children, with the entry's relative path and
// lstat. Errors of f end the walk.
func walkTree(root int, rel string, f func(rel string, st *unix.Stat_t) error) error {
	fd, err := openBeneath(root, rel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	entries, err := readDirFD(fd)
	if err != nil {
		unix.Close(fd)
		return err
	}
	type sub struct{ rel string }
	var dirs []sub
	for _, e := range entries {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, e.name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if err == unix.ENOENT {
				continue
			}
			unix.Close(fd)
			return err
		}
		p := join(rel, e.name)
		if err := f(p, &st); err != nil {
			unix.Close(fd)
			return err
		}
		if isDir(&st) {
			dirs = append(dirs, sub{p})
		}
	}
	unix.Close(fd)
	for _, d := range dirs {
		if err := walkTree(root, d.rel, f); err != nil {
			return err
		}
	}
	return nil
}

// privileged runs fn with the calling thread's permitted capabilities
// effective: the branch's own bookkeeping (preserving a copied file's
// owner) is done with the supervisor's rights even while the rest of an
// operation runs with the program's (see confine.Unprivileged). Without
// capabilities it just runs fn.
func privileged(fn func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var caps [2]unix.CapUserData
	if unix.Capget(&hdr, &caps[0]) != nil || (caps[0].Effective == caps[0].Permitted && caps[1].Effective == caps[1].Permitted) {
		fn()
		return
	}
	raised := caps
	raised[0].Effective, raised[1].Effective = caps[0].Permitted, caps[1].Permitted
	if unix.Capset(&hdr, &raised[0]) != nil {
		fn()
		return
	}
	defer unix.Capset(&hdr, &caps[0])
	fn()
}
