//go:build linux

package cow

import (
	"sort"

	"golang.org/x/sys/unix"
)

// Change is one change a commit makes to the workdir.
type Change struct {
	Kind byte   // 'A' added, 'M' modified, 'D' deleted
	Path string // relative to the workdir
}

// The steps of a commit.
const (
	opRemove = "rm"     // remove the workdir's entry and everything below it
	opMkdir  = "mkdir"  // make a directory (its mode comes with its meta step)
	opPut    = "put"    // move the upper entry into the workdir, replacing
	opPutDir = "putdir" // move a whole new upper directory into the workdir
	opLink   = "link"   // link From (already committed) as Path: across filesystems
	opMeta   = "meta"   // give a directory of the workdir its upper mode, owner, times
)

// step is one step of a commit; it can run again after an interruption.
type step struct {
	Op   string `json:"op"`
	Path string `json:"path"`
	From string `json:"from,omitempty"`
	// meta: the directory's metadata.
	Mode  uint32   `json:"mode,omitempty"`
	UID   uint32   `json:"uid,omitempty"`
	GID   uint32   `json:"gid,omitempty"`
	Atime [2]int64 `json:"atime,omitempty"`
	Mtime [2]int64 `json:"mtime,omitempty"`
	Owner bool     `json:"owner,omitempty"` // the owner changed: apply it
}

// plan is a commit's steps: removals, then additions.
type plan struct {
	remove  []step
	add     []step
	changes map[string]byte
	sameFS  bool
}

// Changes returns the changes a commit of the branch would make now,
// sorted by path: computed by the same planning as the commit itself.
func (b *Branch) Changes() ([]Change, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.upper < 0 {
		return nil, nil
	}
	p, err := b.plan()
	if err != nil {
		return nil, err
	}
	return p.changeList(), nil
}

func (p *plan) changeList() []Change {
	out := make([]Change, 0, len(p.changes))
	for path, k := range p.changes {
		out = append(out, Change{Kind: k, Path: path})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// plan computes the steps of a commit. mu is held.
func (b *Branch) plan() (*plan, error) {
	p := &plan{changes: make(map[string]byte), sameFS: b.sameFS}
	removed := make(map[string]bool)
	removing := func(rel string) bool {
		if removed[rel] {
			return true
		}
		return !ancestors(rel, func(a string) bool { return !removed[a] })
	}
	// Removals: every whiteout whose entry the workdir still holds, unless
	// an entry of the upper layer simply replaces it (a file over a file).
	dels := make([]string, 0, len(b.deleted))
	for d := range b.deleted {
		dels = append(dels, d)
	}
	sort.Strings(dels)
	for _, d := range dels {
		lst, ok := b.lowerEntry(d)
		if !ok || removing(d) {
			continue
		}
		ust, err := lstatBeneath(b.upper, d)
		if err == nil && !isDir(&ust) && !isDir(&lst) {
			continue // replaced in place by the put
		}
		if err != nil && err != unix.ENOENT && err != unix.ENOTDIR {
			return nil, err
		}
		if err := b.planRemove(p, d, &lst); err != nil {
			return nil, err
		}
		removed[d] = true
	}
	// Additions, from the upper layer.
	links := make(map[uint64]string) // upper inode → first path, across filesystems
	var root unix.Stat_t
	if err := unix.Fstat(b.upper, &root); err != nil {
		return nil, err
	}
	if err := b.planDir(p, "", removing, removed, links); err != nil {
		return nil, err
	}
	if lst, ok := b.lowerEntry(""); ok {
		p.add = append(p.add, metaStep("", &root, &lst))
	}
	return p, nil
}

// planRemove adds the removal of the workdir's entry rel (lst) and lists
// everything it deletes.
func (b *Branch) planRemove(p *plan, rel string, lst *unix.Stat_t) error {
	p.remove = append(p.remove, step{Op: opRemove, Path: rel})
	p.changes[rel] = 'D'
	if !isDir(lst) {
		return nil
	}
	return walkTree(b.lower, rel, func(r string, _ *unix.Stat_t) error {
		p.changes[r] = 'D'
		return nil
	})
}

// planDir plans the upper directory rel's entries, and their metadata
// after them.
func (b *Branch) planDir(p *plan, rel string, removing func(string) bool, removed map[string]bool, links map[uint64]string) error {
	ents, err := listIn(b.upper, rel)
	if err != nil {
		return err
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].name < ents[j].name })
	for _, d := range ents {
		path := join(rel, d.name)
		ust, err := lstatBeneath(b.upper, path)
		if err != nil {
			return err
		}
		lst, existed := b.lowerEntry(path)
		there := existed && !removing(path)
		kind := byte('A')
		if existed {
			kind = 'M'
		}
		if isDir(&ust) {
			if there && isDir(&lst) {
				if err := b.planDir(p, path, removing, removed, links); err != nil {
					return err
				}
				m := metaStep(path, &ust, &lst)
				if m.Owner || m.Mode != lst.Mode&0o7777 {
					p.changes[path] = 'M'
				}
				p.add = append(p.add, m)
				continue
			}
			if there {
				// A file gives way to a directory.
				if err := b.planRemove(p, path, &lst); err != nil {
					return err
				}
				removed[path] = true
			}
			if !existed && p.sameFS {
				// New from top to bottom: moved in one rename.
				p.add = append(p.add, step{Op: opPutDir, Path: path})
				p.changes[path] = 'A'
				if err := walkTree(b.upper, path, func(r string, st *unix.Stat_t) error {
					p.changes[r] = 'A'
					return nil
				}); err != nil {
					return err
				}
				continue
			}
			p.add = append(p.add, step{Op: opMkdir, Path: path})
			if existed && isDir(&lst) {
				// Emptied and refilled (an opaque directory): the directory
				// itself stays, changed if its metadata did.
				if ust.Mode&0o7777 != lst.Mode&0o7777 || ust.Uid != lst.Uid || ust.Gid != lst.Gid {
					p.changes[path] = 'M'
				} else if p.changes[path] == 'D' {
					delete(p.changes, path)
				}
			} else {
				p.changes[path] = kind
			}
			if err := b.planDir(p, path, removing, removed, links); err != nil {
				return err
			}
			var none unix.Stat_t
			m := metaStep(path, &ust, &none)
			m.Owner = true
			p.add = append(p.add, m)
			continue
		}
		if there && isDir(&lst) {
			// A directory gives way to a file.
			if err := b.planRemove(p, path, &lst); err != nil {
				return err
			}
			removed[path] = true
		}
		p.changes[path] = kind
		if !p.sameFS && !isDir(&ust) && ust.Nlink > 1 {
			if first, ok := links[ust.Ino]; ok {
				p.add = append(p.add, step{Op: opLink, Path: path, From: first})
				continue
			}
			links[ust.Ino] = path
		}
		p.add = append(p.add, step{Op: opPut, Path: path})
	}
	return nil
}

// metaStep gives the workdir's directory rel the upper copy's metadata;
// its owner only when it changed (setting it needs privileges).
func metaStep(rel string, ust, lst *unix.Stat_t) step {
	return step{
		Op:    opMeta,
		Path:  rel,
		Mode:  ust.Mode & 0o7777,
		UID:   ust.Uid,
		GID:   ust.Gid,
		Owner: ust.Uid != lst.Uid || ust.Gid != lst.Gid,
		Atime: [2]int64{ust.Atim.Sec, ust.Atim.Nsec},
		Mtime: [2]int64{ust.Mtim.Sec, ust.Mtim.Nsec},
	}
}

// adds reports whether the plan adds anything but the metadata of
// directories the upper layer holds only as copies.
func (p *plan) adds() bool {
	for _, s := range p.add {
		if s.Op != opMeta {
			return true
		}
	}
	return len(p.changes) > 0
}
