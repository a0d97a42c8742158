//go:build linux

package cow

import (
	"sort"

	"golang.org/x/sys/unix"
)

// Layer is where an entry of the merged view comes from.
type Layer uint8

const (
	NoLayer Layer = iota
	Lower         // the workdir itself
	Upper         // the branch's upper layer
)

// Entry is an entry of the merged view.
type Entry struct {
	Layer Layer
	Stat  unix.Stat_t // lstat of the entry in its layer
	// Differs is set when the kernel, resolving the same path in the
	// workdir itself, would find another object or none: the entry is in
	// the upper layer, or the lower entry is deleted. (A directory of the
	// upper layer that merges the lower one of the same path differs only
	// as the final object of a path, not on the way through it.)
	Differs bool
	// Merges is set for a directory of the upper layer through which the
	// lower directory of the same path shows.
	Merges bool
}

// IsDir reports whether the entry is a directory.
func (e Entry) IsDir() bool { return isDir(&e.Stat) }

// IsSymlink reports whether the entry is a symlink.
func (e Entry) IsSymlink() bool { return isLink(&e.Stat) }

// Lstat returns the merged view's entry at rel without following a final
// symlink; ENOENT when there is none. rel's parent must be a directory of
// the merged view (the caller resolved it).
func (b *Branch) Lstat(rel string) (Entry, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.lstat(rel)
}

// lstat is Lstat with mu held.
func (b *Branch) lstat(rel string) (Entry, error) {
	if b.lower < 0 {
		return Entry{}, unix.EBADF
	}
	if rel == "" && b.upper < 0 {
		st, err := lstatBeneath(b.lower, "")
		return Entry{Layer: Lower, Stat: st}, err
	}
	if rel == "" {
		st, err := lstatBeneath(b.upper, "")
		return Entry{Layer: Upper, Stat: st, Differs: true, Merges: true}, err
	}
	if b.upperDir[rel] || b.upperEnt[rel] {
		// Every entry of the upper layer is the branch's doing, and
		// indexed: only those are looked up there.
		st, err := lstatBeneath(b.upper, rel)
		if err == nil {
			e := Entry{Layer: Upper, Stat: st, Differs: true}
			if isDir(&st) && !b.hidden(rel) {
				var lst unix.Stat_t
				if lst, err = b.lstatLower(rel); err == nil && isDir(&lst) {
					e.Merges = true
				}
			}
			return e, nil
		}
		if err != unix.ENOENT {
			return Entry{}, err
		}
	}
	hidden := b.hidden(rel)
	st, err := b.lstatLower(rel)
	if err == unix.ENOTDIR {
		err = unix.ENOENT
	}
	if err != nil {
		return Entry{}, err
	}
	if hidden {
		return Entry{Layer: NoLayer, Differs: true}, unix.ENOENT
	}
	return Entry{Layer: Lower, Stat: st}, nil
}

// lstatLower stats rel in the workdir in one call. The walk (Walk) has
// just found each directory of rel to be one, and the program cannot change
// the workdir; only something outside the sandbox could swap one of them
// for a symlink meanwhile, and what is read here is a stat (every open of
// an entry resolves it beneath its layer, never through a symlink).
func (b *Branch) lstatLower(rel string) (unix.Stat_t, error) {
	var st unix.Stat_t
	if rel == "" {
		return st, unix.Fstat(b.lower, &st)
	}
	return st, ignoringEINTR(func() error { return unix.Fstatat(b.lower, rel, &st, unix.AT_SYMLINK_NOFOLLOW) })
}

// lowerEntry reports what the workdir itself holds at rel, whiteouts or
// not: the entry a commit replaces or removes. The caller holds mu.
func (b *Branch) lowerEntry(rel string) (unix.Stat_t, bool) {
	st, err := lstatBeneath(b.lower, rel)
	return st, err == nil
}

// Readlink returns the target of the symlink at rel.
func (b *Branch) Readlink(rel string) (string, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	e, err := b.lstat(rel)
	if err != nil {
		return "", err
	}
	if !e.IsSymlink() {
		return "", unix.EINVAL
	}
	return readlinkIn(b.layerFD(e.Layer), rel)
}

// readlinkIn reads the symlink rel of the layer root.
func readlinkIn(root int, rel string) (string, error) {
	pfd, name, err := openParent(root, rel)
	if err != nil {
		return "", err
	}
	defer unix.Close(pfd)
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(pfd, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func (b *Branch) layerFD(l Layer) int {
	if l == Upper {
		return b.upper
	}
	return b.lower
}

// Dirent is an entry of a merged directory listing.
type Dirent struct {
	Name string
	Ino  uint64
	Type uint8 // DT_*
}

// ReadDir lists the merged directory rel: the upper layer's entries, and
// the lower directory's that no upper entry or whiteout hides, sorted by
// name.
func (b *Branch) ReadDir(rel string) ([]Dirent, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.readDir(rel)
}

func (b *Branch) readDir(rel string) ([]Dirent, error) {
	e, err := b.lstat(rel)
	if err != nil {
		return nil, err
	}
	if !e.IsDir() {
		return nil, unix.ENOTDIR
	}
	seen := make(map[string]bool)
	var out []Dirent
	if e.Layer == Upper {
		ents, err := listIn(b.upper, rel)
		if err != nil {
			return nil, err
		}
		for _, d := range ents {
			seen[d.name] = true
			out = append(out, Dirent{Name: d.name, Ino: d.ino, Type: d.typ})
		}
	}
	if e.Layer == Lower || e.Merges {
		ents, err := listIn(b.lower, rel)
		if err != nil && err != unix.ENOENT && err != unix.ENOTDIR {
			return nil, err
		}
		for _, d := range ents {
			if seen[d.name] || b.deleted[join(rel, d.name)] {
				continue
			}
			out = append(out, Dirent{Name: d.name, Ino: d.ino, Type: d.typ})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// listIn lists the directory rel of a layer root.
func listIn(root int, rel string) ([]dirent, error) {
	fd, err := openBeneath(root, rel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	return readDirFD(fd)
}

// empty reports whether the merged directory rel has no entry. The caller
// holds mu.
func (b *Branch) empty(rel string) (bool, error) {
	ents, err := b.readDir(rel)
	return len(ents) == 0, err
}
