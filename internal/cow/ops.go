//go:build linux

package cow

import (
	"strings"

	"golang.org/x/sys/unix"
)

// The operations below are what the program asks of the merged view. Each
// takes paths its caller resolved with Walk (the parent of a path is a
// directory of the merged view; the final entry is itself, not a symlink's
// target, unless the caller followed it). The change itself is made in the
// upper layer with the rights of the calling thread, which the caller
// gives the program's (confine.Unprivileged): the kernel then judges the
// permissions on the upper copies, which have the lower entries' modes and
// owners. Where an entry still only exists in the lower layer, the same
// judgment is made on it first (may), so that nothing is copied for a
// change the program may not make.

// Capabilities consulted where the kernel's judgment is replayed by hand.
const (
	capChown  = 0
	capFowner = 3
)

// capable reports whether the calling thread has capability c effective.
func capable(c uint) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var caps [2]unix.CapUserData
	if unix.Capget(&hdr, &caps[0]) != nil {
		return false
	}
	return caps[c/32].Effective&(1<<(c%32)) != 0
}

// access judges the object fd (O_PATH) for the access mode (R_OK, W_OK,
// X_OK) with the calling thread's rights, as the kernel would for an open.
func access(fd int, mode uint32) error {
	return unix.Faccessat(unix.AT_FDCWD, procFD(fd), mode, unix.AT_EACCESS)
}

// mayLower judges a change the program asks of a lower entry, before it is
// copied: write access for content, ownership for metadata.
func (b *Branch) mayLower(rel string, st *unix.Stat_t, how int) error {
	switch how {
	case mayWrite:
		fd, err := openBeneath(b.lower, rel, unix.O_PATH|unix.O_NOFOLLOW, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return access(fd, unix.W_OK)
	case mayOwn:
		if int(st.Uid) != unix.Geteuid() && !capable(capFowner) {
			return unix.EPERM
		}
	case mayChown:
		if int(st.Uid) != unix.Geteuid() && !capable(capChown) {
			return unix.EPERM
		}
	}
	return nil
}

const (
	mayWrite = iota
	mayOwn
	mayChown
)

// mayRemove judges the removal of entry st from the upper directory pfd:
// write and search on the directory, and the sticky bit's rule.
func mayRemove(pfd int, st *unix.Stat_t) error {
	if err := access(pfd, unix.W_OK|unix.X_OK); err != nil {
		return err
	}
	var pst unix.Stat_t
	if err := unix.Fstat(pfd, &pst); err != nil {
		return err
	}
	uid := uint32(unix.Geteuid())
	if pst.Mode&unix.S_ISVTX != 0 && st.Uid != uid && pst.Uid != uid && !capable(capFowner) {
		return unix.EPERM
	}
	return nil
}

// touch marks the upper directory pfd as changed now (an entry of it was
// deleted by a whiteout alone, which the kernel did not see).
func touch(pfd int) {
	privileged(func() { unix.UtimesNanoAt(pfd, "", nil, unix.AT_EMPTY_PATH) })
}

// upperParent makes rel's parent a directory of the upper layer and opens
// it. mu is held.
func (b *Branch) upperParent(rel string) (int, string, error) {
	parent, name := split(rel)
	if err := b.ensureUpperDir(parent); err != nil {
		return -1, "", err
	}
	pfd, err := openBeneath(b.upper, parent, unix.O_PATH|unix.O_DIRECTORY, 0)
	return pfd, name, err
}

// Open opens the merged entry rel with open(2)'s flags and mode (already
// masked with the program's umask) and returns the descriptor: a lower
// entry as it is for reading, an upper copy for writing (copied up first),
// a new entry in the upper layer with O_CREAT. O_PATH is not served (the
// kernel cannot pass such descriptors on): it opens for reading instead.
func (b *Branch) Open(rel string, flags int, mode uint32) (int, error) {
	acc := flags & unix.O_ACCMODE
	write := acc != unix.O_RDONLY || flags&unix.O_TRUNC != 0
	if flags&unix.O_PATH != 0 {
		flags = flags&(unix.O_DIRECTORY|unix.O_CLOEXEC) | unix.O_RDONLY
		write = false
	}
	tmpfile := flags&unix.O_TMPFILE == unix.O_TMPFILE
	if write || flags&unix.O_CREAT != 0 || tmpfile {
		b.mu.Lock()
		defer b.mu.Unlock()
	} else {
		b.mu.RLock()
		defer b.mu.RUnlock()
	}
	e, err := b.lstat(rel)
	if err == unix.ENOENT {
		if flags&unix.O_CREAT == 0 || tmpfile {
			return -1, unix.ENOENT
		}
		if flags&unix.O_DIRECTORY != 0 {
			return -1, unix.EINVAL
		}
		return b.create(rel, flags, mode)
	}
	if err != nil {
		return -1, err
	}
	if flags&(unix.O_CREAT|unix.O_EXCL) == unix.O_CREAT|unix.O_EXCL {
		return -1, unix.EEXIST
	}
	if e.IsSymlink() {
		return -1, unix.ELOOP // not followed: O_NOFOLLOW
	}
	flags &^= unix.O_CREAT | unix.O_EXCL
	if tmpfile {
		if !e.IsDir() {
			return -1, unix.ENOTDIR
		}
		if err := b.ensureUpperDir(rel); err != nil {
			return -1, err
		}
		if err := b.quota.reserve(fileCost); err != nil {
			return -1, err
		}
		return openBeneath(b.upper, rel, flags, mode)
	}
	if flags&unix.O_DIRECTORY != 0 && !e.IsDir() {
		return -1, unix.ENOTDIR
	}
	if e.IsDir() && write {
		return -1, unix.EISDIR
	}
	if !write {
		return openBeneath(b.layerFD(e.Layer), rel, flags|unix.O_NOFOLLOW, 0)
	}
	if e.Layer == Lower {
		if !isReg(&e.Stat) {
			// A FIFO or a device: writing it changes no file of the
			// workdir.
			return openBeneath(b.lower, rel, flags|unix.O_NOFOLLOW, 0)
		}
		if err := b.mayLower(rel, &e.Stat, mayWrite); err != nil {
			return -1, err
		}
		if acc == unix.O_RDWR {
			fd, err := openBeneath(b.lower, rel, unix.O_PATH|unix.O_NOFOLLOW, 0)
			if err != nil {
				return -1, err
			}
			err = access(fd, unix.R_OK)
			unix.Close(fd)
			if err != nil {
				return -1, err
			}
		}
		if _, err := b.copyUp(rel, flags&unix.O_TRUNC != 0); err != nil {
			return -1, err
		}
	}
	fd, err := openBeneath(b.upper, rel, flags|unix.O_NOFOLLOW, 0)
	if err == nil {
		b.quota.add(fd)
	}
	return fd, err
}

// create makes a new file rel in the upper layer and opens it. mu is held.
func (b *Branch) create(rel string, flags int, mode uint32) (int, error) {
	if err := b.quota.reserve(fileCost); err != nil {
		return -1, err
	}
	pfd, name, err := b.upperParent(rel)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	fd, err := unix.Openat(pfd, name, flags|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if err == nil {
		b.upperEnt[rel] = true
		b.quota.add(fd)
	}
	return fd, err
}

// LinkFile links the file fd (an anonymous file of the upper layer, made
// with O_TMPFILE, or an upper entry) as rel. Anything else is EXDEV: the
// upper layer only holds what the program wrote through the branch.
func (b *Branch) LinkFile(fd int, rel string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	var ust unix.Stat_t
	if err := unix.Fstat(b.upper, &ust); err != nil {
		return err
	}
	if st.Dev != ust.Dev || !b.Holds(fd) {
		return unix.EXDEV
	}
	if isDir(&st) {
		return unix.EPERM
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := b.lstat(rel); err == nil {
		return unix.EEXIST
	} else if err != unix.ENOENT {
		return err
	}
	pfd, name, err := b.upperParent(rel)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if err := unix.Linkat(unix.AT_FDCWD, procFD(fd), pfd, name, unix.AT_SYMLINK_FOLLOW); err != nil {
		return err
	}
	b.upperEnt[rel] = true
	b.quota.add(fd)
	return nil
}

// Holds reports whether the file fd is in the upper or work directory
// (linked or not).
func (b *Branch) Holds(fd int) bool {
	p, err := fdPath(fd)
	if err != nil {
		return false
	}
	d := b.Dir()
	if d == "" {
		return false
	}
	for _, root := range []string{d + "/" + upperName, d + "/" + workName} {
		if p == root || strings.HasPrefix(p, root+"/") {
			return true
		}
	}
	return false
}

// fdPath is the path the kernel reports for a descriptor.
func fdPath(fd int) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlink(procFD(fd), buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// Mkdir makes the directory rel.
func (b *Branch) Mkdir(rel string, mode uint32) error {
	return b.make(rel, dirCost, func(pfd int, name string) error { return unix.Mkdirat(pfd, name, mode) }, true)
}

// Mknod makes the special file (or empty regular file) rel.
func (b *Branch) Mknod(rel string, mode uint32, dev int) error {
	return b.make(rel, fileCost, func(pfd int, name string) error { return unix.Mknodat(pfd, name, mode, dev) }, false)
}

// Symlink makes the symlink rel pointing at target.
func (b *Branch) Symlink(target, rel string) error {
	return b.make(rel, fileCost, func(pfd int, name string) error { return unix.Symlinkat(target, pfd, name) }, false)
}

// make creates a new entry rel with mk, in rel's upper parent.
func (b *Branch) make(rel string, cost int64, mk func(pfd int, name string) error, dir bool) error {
	if rel == "" {
		return unix.EEXIST
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := b.lstat(rel); err == nil {
		return unix.EEXIST
	} else if err != unix.ENOENT {
		return err
	}
	if err := b.quota.reserve(cost); err != nil {
		return err
	}
	pfd, name, err := b.upperParent(rel)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if err := mk(pfd, name); err != nil {
		return err
	}
	if dir {
		// A lower entry at rel is deleted (it could only be hidden), so
		// the new directory is opaque: the whiteout stays.
		b.upperDir[rel] = true
		b.watchDir(rel)
	} else {
		b.upperEnt[rel] = true
	}
	if fd, err := unix.Openat(pfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err == nil {
		b.quota.add(fd)
		unix.Close(fd)
	}
	return nil
}

// Link makes rel a new link to the (non-directory) entry old.
func (b *Branch) Link(old, rel string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	eo, err := b.lstat(old)
	if err != nil {
		return err
	}
	if eo.IsDir() {
		return unix.EPERM
	}
	if _, err := b.lstat(rel); err == nil {
		return unix.EEXIST
	} else if err != unix.ENOENT {
		return err
	}
	if _, err := b.copyUp(old, false); err != nil {
		return err
	}
	opfd, oname, err := b.upperParent(old)
	if err != nil {
		return err
	}
	defer unix.Close(opfd)
	pfd, name, err := b.upperParent(rel)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if err := unix.Linkat(opfd, oname, pfd, name, 0); err != nil {
		return err
	}
	b.upperEnt[rel] = true
	return nil
}

// Unlink removes the non-directory entry rel.
func (b *Branch) Unlink(rel string) error {
	return b.remove(rel, false)
}

// Rmdir removes the empty directory rel.
func (b *Branch) Rmdir(rel string) error {
	if rel == "" {
		return unix.EBUSY
	}
	return b.remove(rel, true)
}

func (b *Branch) remove(rel string, dir bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := b.lstat(rel)
	if err != nil {
		return err
	}
	switch {
	case dir && !e.IsDir():
		return unix.ENOTDIR
	case !dir && e.IsDir():
		return unix.EISDIR
	}
	if dir {
		if empty, err := b.empty(rel); err != nil {
			return err
		} else if !empty {
			return unix.ENOTEMPTY
		}
	}
	pfd, name, err := b.upperParent(rel)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if e.Layer == Upper {
		flags := 0
		if dir {
			flags = unix.AT_REMOVEDIR
		}
		if err := unix.Unlinkat(pfd, name, flags); err != nil {
			return err
		}
		delete(b.upperDir, rel)
		delete(b.upperEnt, rel)
		if e.Stat.Nlink <= 1 || dir {
			b.quota.drop(e.Stat.Ino)
		}
	} else if err := mayRemove(pfd, &e.Stat); err != nil {
		return err
	}
	if _, below := b.lowerEntry(rel); below && !b.hidden(rel) {
		if err := b.whiteout(rel); err != nil {
			return err
		}
		if e.Layer != Upper {
			touch(pfd)
		}
	}
	return nil
}

// Rename renames old to rel, with renameat2's RENAME_NOREPLACE and
// RENAME_EXCHANGE. A directory that holds lower entries is copied whole
// into the upper layer first.
func (b *Branch) Rename(old, rel string, flags uint) error {
	if flags&^(unix.RENAME_NOREPLACE|unix.RENAME_EXCHANGE) != 0 ||
		flags&unix.RENAME_NOREPLACE != 0 && flags&unix.RENAME_EXCHANGE != 0 {
		return unix.EINVAL
	}
	exchange := flags&unix.RENAME_EXCHANGE != 0
	b.mu.Lock()
	defer b.mu.Unlock()
	eo, err := b.lstat(old)
	if err != nil {
		return err
	}
	if old == "" || rel == "" {
		return unix.EBUSY
	}
	en, err := b.lstat(rel)
	exists := err == nil
	if err != nil && err != unix.ENOENT {
		return err
	}
	if old == rel {
		return nil
	}
	if eo.IsDir() && under(rel, old) {
		return unix.EINVAL // into itself
	}
	if exchange && (!exists || under(old, rel)) {
		if !exists {
			return unix.ENOENT
		}
		return unix.EINVAL
	}
	if exists && !exchange {
		if flags&unix.RENAME_NOREPLACE != 0 {
			return unix.EEXIST
		}
		switch {
		case eo.IsDir() && !en.IsDir():
			return unix.ENOTDIR
		case !eo.IsDir() && en.IsDir():
			return unix.EISDIR
		case en.IsDir():
			if empty, err := b.empty(rel); err != nil {
				return err
			} else if !empty {
				return unix.ENOTEMPTY
			}
		}
		if eo.Layer == en.Layer && eo.Stat.Ino == en.Stat.Ino && eo.Stat.Dev == en.Stat.Dev {
			return nil // two links to one file: nothing to do
		}
	}
	// Everything that moves is in the upper layer first.
	if err := b.copyUpMoving(old, eo); err != nil {
		return err
	}
	if exchange {
		if err := b.copyUpMoving(rel, en); err != nil {
			return err
		}
	}
	opfd, oname, err := b.upperParent(old)
	if err != nil {
		return err
	}
	defer unix.Close(opfd)
	pfd, name, err := b.upperParent(rel)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if exists && !exchange && en.Layer == Lower {
		// The target only exists below: the upper rename creates it, and
		// the lower one must be deleted. The kernel would judge its
		// replacement: the same rules as a removal.
		if err := mayRemove(pfd, &en.Stat); err != nil {
			return err
		}
	}
	if err := unix.Renameat2(opfd, oname, pfd, name, flags); err != nil {
		return err
	}
	b.moved(old, rel, exchange)
	if exchange {
		b.watch.movedDirs(old, "\x00")
		b.watch.movedDirs(rel, old)
		b.watch.movedDirs("\x00", rel)
	} else {
		b.watch.movedDirs(old, rel)
	}
	// Lower entries at either path no longer show: the old path is empty
	// (or holds the other entry, for an exchange), the new one holds what
	// came from above.
	for _, p := range []string{old, rel} {
		if _, below := b.lowerEntry(p); below && !b.hidden(p) {
			if err := b.whiteout(p); err != nil {
				return err
			}
		}
	}
	if exists && !exchange && en.Layer == Upper && !en.IsDir() && en.Stat.Nlink <= 1 {
		b.quota.drop(en.Stat.Ino)
	}
	return nil
}

// copyUpMoving copies up an entry about to be renamed: a directory with
// everything in it (unless the lower layer holds nothing of it).
func (b *Branch) copyUpMoving(rel string, e Entry) error {
	if !e.IsDir() {
		_, err := b.copyUp(rel, false)
		return err
	}
	if e.Layer == Upper && !e.Merges {
		return nil
	}
	return b.copyUpTree(rel)
}

// moved updates the indexes of the upper layer after old was renamed to
// rel (or exchanged with it): what was below old is below rel, and what
// was below rel is gone (replaced) or below old (exchanged).
func (b *Branch) moved(old, rel string, exchange bool) {
	move := func(index map[string]bool) map[string]bool {
		next := make(map[string]bool, len(index))
		for p := range index {
			switch {
			case under(p, old):
				next[rel+p[len(old):]] = true
			case under(p, rel):
				if exchange {
					next[old+p[len(rel):]] = true
				}
			default:
				next[p] = true
			}
		}
		return next
	}
	b.upperDir = move(b.upperDir)
	b.upperEnt = move(b.upperEnt)
}

// Chmod changes the mode of rel (not through a final symlink: the caller
// resolved it; a symlink is EOPNOTSUPP, as lchmod).
func (b *Branch) Chmod(rel string, mode uint32) error {
	return b.change(rel, mayOwn, func(pfd int, name string, e Entry) error {
		if e.IsSymlink() {
			return unix.EOPNOTSUPP
		}
		return unix.Fchmodat(pfd, name, mode, 0)
	})
}

// Chown changes the owner of rel (-1 keeps a value).
func (b *Branch) Chown(rel string, uid, gid int) error {
	return b.change(rel, mayChown, func(pfd int, name string, e Entry) error {
		return unix.Fchownat(pfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
	})
}

// Utimens sets the times of rel as utimensat(2) does (nil: now).
func (b *Branch) Utimens(rel string, ts []unix.Timespec) error {
	how := mayOwn
	if ts == nil || (ts[0].Nsec == unix.UTIME_NOW && ts[1].Nsec == unix.UTIME_NOW) {
		how = mayWriteOrOwn
	}
	return b.change(rel, how, func(pfd int, name string, e Entry) error {
		return unix.UtimesNanoAt(pfd, name, ts, unix.AT_SYMLINK_NOFOLLOW)
	})
}

const mayWriteOrOwn = 10

// Truncate sets the size of the regular file rel.
func (b *Branch) Truncate(rel string, size int64) error {
	if size < 0 {
		return unix.EINVAL
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := b.lstat(rel)
	if err != nil {
		return err
	}
	if e.IsDir() {
		return unix.EISDIR
	}
	if !isReg(&e.Stat) {
		return unix.EINVAL
	}
	if e.Layer == Lower {
		if err := b.mayLower(rel, &e.Stat, mayWrite); err != nil {
			return err
		}
		if size > e.Stat.Size {
			if err := b.quota.reserve(size - e.Stat.Size); err != nil {
				return err
			}
		}
		if _, err := b.copyUp(rel, size == 0); err != nil {
			return err
		}
	} else if size > e.Stat.Size {
		if err := b.quota.reserve(size - e.Stat.Size); err != nil {
			return err
		}
	}
	fd, err := openBeneath(b.upper, rel, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Ftruncate(fd, size); err != nil {
		return err
	}
	b.quota.add(fd)
	return nil
}

// SetXattr sets an extended attribute of rel.
func (b *Branch) SetXattr(rel, name string, value []byte, flags int) error {
	return b.change(rel, mayWrite, func(pfd int, n string, e Entry) error {
		return unix.Lsetxattr(b.layerPath(Upper, rel), name, value, flags)
	})
}

// RemoveXattr removes an extended attribute of rel.
func (b *Branch) RemoveXattr(rel, name string) error {
	return b.change(rel, mayWrite, func(pfd int, n string, e Entry) error {
		return unix.Lremovexattr(b.layerPath(Upper, rel), name)
	})
}

// GetXattr reads an extended attribute of rel into buf (its size with an
// empty buf), as lgetxattr(2).
func (b *Branch) GetXattr(rel, name string, buf []byte) (int, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	e, err := b.lstat(rel)
	if err != nil {
		return 0, err
	}
	return unix.Lgetxattr(b.layerPath(e.Layer, rel), name, buf)
}

// ListXattr lists the extended attributes of rel into buf, as
// llistxattr(2).
func (b *Branch) ListXattr(rel string, buf []byte) (int, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	e, err := b.lstat(rel)
	if err != nil {
		return 0, err
	}
	return unix.Llistxattr(b.layerPath(e.Layer, rel), buf)
}

// layerPath is the path of rel in a layer. Only used under mu, for calls
// that take no descriptor: the program cannot change the upper layer but
// through the branch, and the path's directories are the branch's.
func (b *Branch) layerPath(l Layer, rel string) string {
	root := b.workdir
	if l == Upper {
		root = b.dir + "/" + upperName
	}
	if rel == "" {
		return root
	}
	return root + "/" + rel
}

// change copies rel up (after judging the change on the lower entry) and
// runs op on the copy, in its upper parent.
func (b *Branch) change(rel string, how int, op func(pfd int, name string, e Entry) error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := b.lstat(rel)
	if err != nil {
		return err
	}
	if e.Layer == Lower {
		switch how {
		case mayWriteOrOwn:
			if b.mayLower(rel, &e.Stat, mayOwn) != nil {
				if err := b.mayLower(rel, &e.Stat, mayWrite); err != nil {
					return err
				}
			}
		case mayWrite:
			if !e.IsSymlink() {
				if err := b.mayLower(rel, &e.Stat, mayWrite); err != nil {
					return err
				}
			}
		default:
			if err := b.mayLower(rel, &e.Stat, how); err != nil {
				return err
			}
		}
		if e, err = b.copyUp(rel, false); err != nil {
			return err
		}
	}
	if rel == "" {
		return op(b.upper, "", e)
	}
	pfd, name, err := b.upperParent(rel)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	return op(pfd, name, e)
}

// Pin opens the merged entry rel itself with O_PATH (a symlink is not
// followed), for judging it (access, statx, the FSDenied identity).
func (b *Branch) Pin(rel string) (int, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	e, err := b.lstat(rel)
	if err != nil {
		return -1, err
	}
	return openBeneath(b.layerFD(e.Layer), rel, unix.O_PATH|unix.O_NOFOLLOW, 0)
}

// CopyFile copies size bytes of the file src to dst from offset 0, keeping
// holes.
func CopyFile(dst, src int, size int64) error { return copyData(dst, src, size) }
