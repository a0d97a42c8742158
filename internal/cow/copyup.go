//go:build linux

package cow

import (
	"golang.org/x/sys/unix"
)

// Copying up: entries of the lower layer become entries of the upper layer
// before they are changed. What the program asked for is done afterwards,
// on the copy, with the program's rights; the copy itself is the branch's
// own bookkeeping, done with the supervisor's (privileged), so that a copy
// keeps its owner where the supervisor may set it, and a directory the
// program may not write to can still receive the copies of its entries.

// asOwner runs fn, which creates an entry in the upper directory pfd, with
// the supervisor's rights; if the directory's mode refuses it even that
// (a read-only directory copied from the workdir, for a supervisor without
// capabilities, which owns every upper directory), the directory is made
// writable for the time of fn.
func asOwner(pfd int, fn func() error) error {
	var err error
	privileged(func() { err = fn() })
	if err != unix.EACCES {
		return err
	}
	var st unix.Stat_t
	if unix.Fstat(pfd, &st) != nil {
		return err
	}
	p := procFD(pfd)
	if unix.Chmod(p, st.Mode&0o7777|0o700) != nil {
		return err
	}
	err = fn()
	unix.Chmod(p, st.Mode&0o7777)
	return err
}

// copyMeta gives the upper object dst the metadata of the lower object src
// (both O_PATH): user extended attributes, owner where permitted, mode,
// times (last, since the others change the ctime only, and the rest of a
// copy could change the mtime).
func copyMeta(dst, src int, st *unix.Stat_t) error {
	if !isLink(st) {
		if err := copyXattrs(dst, src); err != nil {
			return err
		}
	}
	privileged(func() {
		// Where the supervisor may not give the copy the owner (another
		// user's file, without CAP_CHOWN), the copy is the supervisor's.
		unix.Fchownat(dst, "", int(st.Uid), int(st.Gid), unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW)
	})
	if !isLink(st) {
		var err error
		privileged(func() { err = unix.Chmod(procFD(dst), st.Mode&0o7777) })
		if err != nil {
			return err
		}
	}
	return setTimes(dst, st)
}

// ensureUpperDir makes the merged directory rel a directory of the upper
// layer, copying it and its ancestors from the lower layer. mu is held.
func (b *Branch) ensureUpperDir(rel string) error {
	if b.upperDir[rel] {
		return nil
	}
	if err := b.materialize(); err != nil {
		return err
	}
	if b.upperDir[rel] {
		return nil // the root
	}
	parent, name := split(rel)
	if err := b.ensureUpperDir(parent); err != nil {
		return err
	}
	src, err := openBeneath(b.lower, rel, unix.O_PATH|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer unix.Close(src)
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil {
		return err
	}
	if !isDir(&st) {
		return unix.ENOTDIR
	}
	if err := b.quota.reserve(dirCost); err != nil {
		return err
	}
	pfd, err := openBeneath(b.upper, parent, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if err := asOwner(pfd, func() error { return unix.Mkdirat(pfd, name, 0o700) }); err != nil {
		return err
	}
	dst, err := unix.Openat(pfd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dst)
	if err := copyMeta(dst, src, &st); err != nil {
		return err
	}
	b.upperDir[rel] = true
	b.watchDir(rel)
	b.quota.add(dst)
	return nil
}

// copyUp makes the merged entry rel an entry of the upper layer and returns
// it. A directory is copied alone (see copyUpTree for its content); with
// truncate, a regular file's data is not copied (it is about to be
// truncated). mu is held.
func (b *Branch) copyUp(rel string, truncate bool) (Entry, error) {
	e, err := b.lstat(rel)
	if err != nil || e.Layer == Upper {
		return e, err
	}
	if e.IsDir() {
		if err := b.ensureUpperDir(rel); err != nil {
			return Entry{}, err
		}
		return b.lstat(rel)
	}
	parent, name := split(rel)
	if err := b.ensureUpperDir(parent); err != nil {
		return Entry{}, err
	}
	src, err := openBeneath(b.lower, rel, unix.O_PATH|unix.O_NOFOLLOW, 0)
	if err != nil {
		return Entry{}, err
	}
	defer unix.Close(src)
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil {
		return Entry{}, err
	}
	pfd, err := openBeneath(b.upper, parent, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return Entry{}, err
	}
	defer unix.Close(pfd)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		size := st.Size
		if truncate {
			size = 0
		}
		if err := b.quota.reserve(size + fileCost); err != nil {
			return Entry{}, err
		}
		if err := b.copyFile(pfd, name, src, &st, truncate); err != nil {
			return Entry{}, err
		}
	case unix.S_IFLNK:
		target, err := readlinkIn(b.lower, rel)
		if err != nil {
			return Entry{}, err
		}
		if err := b.quota.reserve(fileCost); err != nil {
			return Entry{}, err
		}
		if err := asOwner(pfd, func() error { return unix.Symlinkat(target, pfd, name) }); err != nil {
			return Entry{}, err
		}
		if err := b.finishCopy(pfd, name, src, &st); err != nil {
			return Entry{}, err
		}
	default:
		// FIFOs, sockets, devices: their inode is all there is.
		if err := b.quota.reserve(fileCost); err != nil {
			return Entry{}, err
		}
		if err := asOwner(pfd, func() error { return unix.Mknodat(pfd, name, st.Mode&unix.S_IFMT|0o600, int(st.Rdev)) }); err != nil {
			return Entry{}, err
		}
		if err := b.finishCopy(pfd, name, src, &st); err != nil {
			return Entry{}, err
		}
	}
	b.upperEnt[rel] = true
	return b.lstat(rel)
}

// finishCopy gives the new upper entry name of pfd the lower entry's
// metadata.
func (b *Branch) finishCopy(pfd int, name string, src int, st *unix.Stat_t) error {
	dst, err := unix.Openat(pfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dst)
	if err := copyMeta(dst, src, st); err != nil {
		unix.Unlinkat(pfd, name, 0)
		return err
	}
	b.quota.add(dst)
	return nil
}

// copyFile copies the lower regular file src into the upper directory pfd
// as name: into an anonymous file of work/ first, linked into place once
// whole, so that the upper layer never holds half a copy.
func (b *Branch) copyFile(pfd int, name string, src int, st *unix.Stat_t, truncate bool) error {
	tmp, err := openBeneath(b.work, "", unix.O_TMPFILE|unix.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer unix.Close(tmp)
	if !truncate && st.Size > 0 {
		var rfd int
		privileged(func() { rfd, err = unix.Open(procFD(src), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOATIME, 0) })
		if err == unix.EPERM {
			// O_NOATIME on another user's file.
			privileged(func() { rfd, err = unix.Open(procFD(src), unix.O_RDONLY|unix.O_CLOEXEC, 0) })
		}
		if err != nil {
			return err
		}
		err = copyData(tmp, rfd, st.Size)
		unix.Close(rfd)
		if err != nil {
			return err
		}
	}
	cst := *st
	if truncate {
		cst.Size = 0
	}
	if err := copyMeta(tmp, src, &cst); err != nil {
		return err
	}
	if err := asOwner(pfd, func() error {
		return unix.Linkat(unix.AT_FDCWD, procFD(tmp), pfd, name, unix.AT_SYMLINK_FOLLOW)
	}); err != nil {
		return err
	}
	b.quota.add(tmp)
	return nil
}

// copyUpTree copies the merged directory rel and everything below it into
// the upper layer (before the directory moves: the lower layer cannot
// follow it). mu is held.
func (b *Branch) copyUpTree(rel string) error {
	if err := b.ensureUpperDir(rel); err != nil {
		return err
	}
	ents, err := b.readDir(rel)
	if err != nil {
		return err
	}
	for _, d := range ents {
		p := join(rel, d.Name)
		e, err := b.copyUp(p, false)
		if err != nil {
			return err
		}
		if e.IsDir() {
			if err := b.copyUpTree(p); err != nil {
				return err
			}
		}
	}
	return nil
}
