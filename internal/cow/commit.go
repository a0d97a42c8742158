//go:build linux

package cow

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// journal is what a commit writes before it changes anything.
type journal struct {
	Version int    `json:"version"`
	Branch  string `json:"branch"`
	Workdir string `json:"workdir"`
	SameFS  bool   `json:"same_fs"`
	Remove  []step `json:"remove"`
	Add     []step `json:"add"`
}

// trashPrefix names branch directories being deleted (after a commit or
// an abort): renamed first, so that a half-deleted branch is never taken
// for one to recover.
const trashPrefix = ".trash-"

// tempPrefix names the temporary files a commit across filesystems makes
// beside their target: .sandlock-<branch>-<step>.
const tempPrefix = ".sandlock-"

// FaultHook, when set (by tests), is called before each step of a commit
// with a description of it; a commit interrupted there is what a crash at
// that point would leave. A panic in it stops the commit where it is.
var FaultHook func(point string)

func fault(point string) {
	if FaultHook != nil {
		FaultHook(point)
	}
}

// Commit applies the branch's changes to the workdir and removes the
// branch. It takes the workdir's flock, writes and syncs the journal, then
// runs its steps; if it is interrupted, Recover completes it. It returns
// the changes it made.
func (b *Branch) Commit() ([]Change, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lower < 0 {
		return nil, errors.New("branch is closed")
	}
	if b.upper < 0 {
		b.closeFDs() // nothing was changed
		return nil, nil
	}
	unlock, err := lockWorkdir(b.workdir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	p, err := b.plan()
	if err != nil {
		return nil, fmt.Errorf("planning the commit: %w", err)
	}
	changes := p.changeList()
	if len(p.remove) == 0 && !p.adds() {
		// Nothing to apply: no journal, no sync.
		b.closeFDs()
		return changes, removeBranch(b.dir)
	}
	j := &journal{Version: 1, Branch: b.id, Workdir: b.workdir, SameFS: p.sameFS, Remove: p.remove, Add: p.add}
	// The upper layer's data is on disk before the journal says to use it.
	if err := syncfs(b.upper); err != nil {
		return nil, fmt.Errorf("syncing the branch: %w", err)
	}
	fault("journal")
	if err := writeJournal(b.dir, j); err != nil {
		return nil, err
	}
	if err := b.apply(j); err != nil {
		return nil, err
	}
	b.closeFDs()
	return changes, removeBranch(b.dir)
}

// writeJournal writes the journal to a temporary file, syncs it and
// renames it into place: a journal is there whole or not at all.
func writeJournal(dir string, j *journal) error {
	data, err := json.Marshal(j)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, journalFile+".tmp")
	if err := writeFileSync(tmp, data); err != nil {
		return fmt.Errorf("writing the journal: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, journalFile)); err != nil {
		return fmt.Errorf("writing the journal: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("writing the journal: %w", err)
	}
	return nil
}

func readJournal(dir string) (*journal, error) {
	data, err := os.ReadFile(filepath.Join(dir, journalFile))
	if err != nil {
		return nil, err
	}
	var j journal
	if err := json.Unmarshal(data, &j); err != nil || j.Version != 1 {
		return nil, fmt.Errorf("branch %s: unreadable journal", dir)
	}
	return &j, nil
}

// lockWorkdir takes the workdir's exclusive flock, which every commit and
// recovery of its branches holds.
func lockWorkdir(workdir string) (func(), error) {
	fd, err := unix.Open(workdir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("locking the workdir: %w", err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("locking the workdir: %w", err)
	}
	return func() { unix.Close(fd) }, nil
}

// apply runs a journal's steps: the removals (unless a previous run
// finished them: the applied marker), then the additions, then syncs the
// workdir's filesystem.
func (b *Branch) apply(j *journal) error {
	if _, err := os.Stat(filepath.Join(b.dir, appliedFile)); err != nil {
		for i, s := range j.Remove {
			fault(fmt.Sprintf("remove %d %s", i, s.Path))
			if err := b.removeStep(s); err != nil {
				return fmt.Errorf("commit: removing %s: %w", s.Path, err)
			}
		}
		fault("removed")
		if err := writeFileSync(filepath.Join(b.dir, appliedFile), nil); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		if err := syncDir(b.dir); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	}
	for i, s := range j.Add {
		fault(fmt.Sprintf("add %d %s %s", i, s.Op, s.Path))
		if err := b.addStep(i, s, j.SameFS); err != nil {
			return fmt.Errorf("commit: %s %s: %w", s.Op, s.Path, err)
		}
	}
	fault("added")
	if err := syncfs(b.lower); err != nil {
		return fmt.Errorf("commit: syncing the workdir: %w", err)
	}
	return nil
}

// workParent opens the workdir's directory holding rel.
func (b *Branch) workParent(rel string) (int, string, error) {
	return openParent(b.lower, rel)
}

// removeStep removes the workdir's entry and everything below it; what is
// already gone is done.
func (b *Branch) removeStep(s step) error {
	pfd, name, err := b.workParent(s.Path)
	if err == unix.ENOENT || err == unix.ENOTDIR {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	var rerr error
	privileged(func() { rerr = removeAllAt(pfd, name) })
	return rerr
}

// addStep runs one addition; index names its temporary file.
func (b *Branch) addStep(index int, s step, sameFS bool) error {
	switch s.Op {
	case opMkdir:
		pfd, name, err := b.workParent(s.Path)
		if err != nil {
			return err
		}
		defer unix.Close(pfd)
		var merr error
		privileged(func() { merr = unix.Mkdirat(pfd, name, 0o700) })
		if merr == unix.EEXIST {
			var st unix.Stat_t
			if err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && isDir(&st) {
				return nil
			}
		}
		return merr
	case opPut, opPutDir:
		if sameFS {
			return b.move(s.Path, s.Op == opPutDir)
		}
		return b.copyIn(index, s.Path)
	case opLink:
		return b.linkIn(index, s.Path, s.From)
	case opMeta:
		return b.metaIn(s)
	}
	return fmt.Errorf("unknown step %q", s.Op)
}

// upperEntry opens the parent of the upper entry rel and stats the entry.
// Without the entry (gone: an earlier run of the step moved it) it returns
// -1 and a nil error; on an error, -1 and the error. Otherwise the caller
// closes the parent.
func (b *Branch) upperEntry(rel string) (parent int, name string, st unix.Stat_t, err error) {
	parent, name, err = openParent(b.upper, rel)
	if err != nil {
		if err == unix.ENOENT {
			err = nil
		}
		return -1, "", st, err
	}
	if err = unix.Fstatat(parent, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		unix.Close(parent)
		if err == unix.ENOENT {
			err = nil
		}
		return -1, "", st, err
	}
	return parent, name, st, nil
}

// move renames the upper entry rel to the same path of the workdir. A
// source that is gone was moved by an earlier run of the step.
func (b *Branch) move(rel string, whole bool) error {
	upfd, name, src, err := b.upperEntry(rel)
	if upfd < 0 {
		return err
	}
	defer unix.Close(upfd)
	wpfd, _, err := b.workParent(rel)
	if err != nil {
		return err
	}
	defer unix.Close(wpfd)
	var flags uint
	if whole {
		flags = unix.RENAME_NOREPLACE
	}
	var rerr error
	privileged(func() { rerr = unix.Renameat2(upfd, name, wpfd, name, flags) })
	if rerr != nil {
		return rerr
	}
	// rename(2) does nothing when both names are links to one file (an
	// earlier run of a link's put): the source is then left to remove.
	var st unix.Stat_t
	if unix.Fstatat(upfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Ino == src.Ino {
		var dst unix.Stat_t
		if unix.Fstatat(wpfd, name, &dst, unix.AT_SYMLINK_NOFOLLOW) == nil && dst.Ino == src.Ino && dst.Dev == src.Dev {
			privileged(func() { unix.Unlinkat(upfd, name, 0) })
		}
	}
	return nil
}

// tempName is the temporary name of step index's file beside its target.
func (b *Branch) tempName(index int) string {
	return tempPrefix + b.id + "-" + strconv.Itoa(index)
}

// copyIn copies the upper entry rel into the workdir across filesystems:
// to a temporary name beside its target, synced, then renamed over it; the
// upper entry is removed last, which marks the step done.
func (b *Branch) copyIn(index int, rel string) error {
	upfd, name, err := openParent(b.upper, rel)
	if err == unix.ENOENT {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(upfd)
	src, err := unix.Openat(upfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(src)
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil {
		return err
	}
	wpfd, _, err := b.workParent(rel)
	if err != nil {
		return err
	}
	defer unix.Close(wpfd)
	tmp := b.tempName(index)
	var cerr error
	privileged(func() { cerr = makeCopy(wpfd, tmp, src, &st, b.upper, rel) })
	if cerr != nil {
		privileged(func() { unix.Unlinkat(wpfd, tmp, 0) })
		return cerr
	}
	fault(fmt.Sprintf("copied %d %s", index, rel))
	privileged(func() { cerr = unix.Renameat(wpfd, tmp, wpfd, name) })
	if cerr != nil {
		return cerr
	}
	privileged(func() { unix.Unlinkat(upfd, name, 0) })
	return nil
}

// makeCopy makes name in the directory dirfd a synced copy of src (st),
// with its metadata.
func makeCopy(dirfd int, name string, src int, st *unix.Stat_t, upper int, rel string) error {
	unix.Unlinkat(dirfd, name, 0) // a temporary left by an interrupted run
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		rfd, err := unix.Open(procFD(src), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(rfd)
		fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := copyData(fd, rfd, st.Size); err != nil {
			return err
		}
		if err := copyMeta(fd, src, st); err != nil {
			return err
		}
		return unix.Fsync(fd)
	case unix.S_IFLNK:
		target, err := readlinkIn(upper, rel)
		if err != nil {
			return err
		}
		if err := unix.Symlinkat(target, dirfd, name); err != nil {
			return err
		}
	default:
		if err := unix.Mknodat(dirfd, name, st.Mode&unix.S_IFMT|0o600, int(st.Rdev)); err != nil {
			return err
		}
	}
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return copyMeta(fd, src, st)
}

// linkIn makes rel a link to from (committed before it), across
// filesystems, where the files cannot be moved with their links: through a
// temporary name, so that an existing rel is replaced at once.
func (b *Branch) linkIn(index int, rel, from string) error {
	upfd, name, _, err := b.upperEntry(rel)
	if upfd < 0 {
		return err
	}
	defer unix.Close(upfd)
	fpfd, fname, err := b.workParent(from)
	if err != nil {
		return err
	}
	defer unix.Close(fpfd)
	wpfd, _, err := b.workParent(rel)
	if err != nil {
		return err
	}
	defer unix.Close(wpfd)
	tmp := b.tempName(index)
	var lerr error
	privileged(func() {
		unix.Unlinkat(wpfd, tmp, 0)
		if lerr = unix.Linkat(fpfd, fname, wpfd, tmp, 0); lerr != nil {
			return
		}
		if lerr = unix.Renameat(wpfd, tmp, wpfd, name); lerr != nil {
			return
		}
		unix.Unlinkat(upfd, name, 0)
	})
	return lerr
}

// metaIn gives a directory of the workdir its metadata from the branch.
func (b *Branch) metaIn(s step) error {
	var fd int
	var err error
	if s.Path == "" {
		fd, err = unix.Dup(b.lower)
	} else {
		fd, err = openBeneath(b.lower, s.Path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_DIRECTORY, 0)
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	privileged(func() {
		if s.Owner {
			if err = unix.Fchownat(fd, "", int(s.UID), int(s.GID), unix.AT_EMPTY_PATH); err != nil && err != unix.EPERM {
				return
			}
		}
		if err = unix.Chmod(procFD(fd), s.Mode); err != nil {
			return
		}
		ts := []unix.Timespec{{Sec: s.Atime[0], Nsec: s.Atime[1]}, {Sec: s.Mtime[0], Nsec: s.Mtime[1]}}
		err = unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH)
	})
	return err
}

// removeBranch deletes a branch directory: renamed aside first, so that a
// crash during the deletion leaves nothing that looks like a branch.
func removeBranch(dir string) error {
	trash := filepath.Join(filepath.Dir(dir), trashPrefix+filepath.Base(dir))
	if err := os.Rename(dir, trash); err != nil {
		return fmt.Errorf("removing the branch: %w", err)
	}
	return removeTree(trash)
}

// removeTree deletes a directory tree of the branch's storage, making its
// read-only directories writable on the way (the upper layer copies the
// workdir's modes).
func removeTree(dir string) error {
	err := os.RemoveAll(dir)
	if err == nil {
		return nil
	}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// Abort throws the branch away: the workdir is left as it was.
func (b *Branch) Abort() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	materialized := b.upper >= 0
	b.closeFDs()
	if !materialized {
		return nil
	}
	return removeBranch(b.dir)
}

// Keep leaves the branch on disk, marked as kept, and releases it.
func (b *Branch) Keep() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.upper < 0 {
		b.closeFDs() // nothing to keep
		return nil
	}
	err := writeFileSync(filepath.Join(b.dir, keptFile), nil)
	b.closeFDs()
	return err
}

// State is what Recover found of a branch.
type State string

const (
	StateCommitted State = "committed" // an interrupted commit, now completed
	StateKept      State = "kept"      // kept on purpose; left as it is
	StateLeft      State = "left"      // left by a run that did not end (killed supervisor); left as it is
	StateRunning   State = "running"   // in use by a live process; left alone
	StateRemoved   State = "removed"   // left-over trash, or a left branch removed by RecoverOptions.Abort
)

// Report is one branch Recover looked at.
type Report struct {
	Dir   string
	State State
	Err   error
}

// RecoverOptions say what Recover does with branches that are not being
// committed.
type RecoverOptions struct {
	// Abort removes branches left by runs that did not end, and kept ones.
	Abort bool
}

// Recover looks in the storage bases for the branches of workdir: it
// completes every interrupted commit (under the workdir's flock), removes
// what interrupted deletions left, and reports the rest. workdir is
// canonical.
func Recover(workdir string, bases []string, o RecoverOptions) ([]Report, error) {
	var wst unix.Stat_t
	if err := unix.Stat(workdir, &wst); err != nil {
		return nil, fmt.Errorf("workdir %s: %w", workdir, err)
	}
	var out []Report
	seen := make(map[string]bool)
	for _, base := range bases {
		if base == "" || seen[base] {
			continue
		}
		seen[base] = true
		ents, err := os.ReadDir(base)
		if err != nil {
			continue // no branches there
		}
		for _, e := range ents {
			dir := filepath.Join(base, e.Name())
			if !e.IsDir() {
				continue
			}
			if strings.HasPrefix(e.Name(), trashPrefix) {
				if in, err := readInfo(dir); err != nil || in.Workdir == workdir {
					if err := removeTree(dir); err == nil {
						out = append(out, Report{Dir: dir, State: StateRemoved})
					}
				}
				continue
			}
			in, err := readInfo(dir)
			if err != nil || in.Workdir != workdir || in.Dev != wst.Dev || in.Ino != wst.Ino {
				continue
			}
			out = append(out, recoverOne(dir, o))
		}
	}
	return out, nil
}

// recoverOne completes or reports one branch of the workdir.
func recoverOne(dir string, o RecoverOptions) Report {
	b, err := Open(dir)
	if errors.Is(err, ErrBusy) {
		return Report{Dir: dir, State: StateRunning}
	}
	if err != nil {
		return Report{Dir: dir, Err: err}
	}
	j, err := readJournal(dir)
	if errors.Is(err, os.ErrNotExist) {
		_, kerr := os.Stat(filepath.Join(dir, keptFile))
		state := StateLeft
		if kerr == nil {
			state = StateKept
		}
		if o.Abort {
			if err := b.Abort(); err != nil {
				return Report{Dir: dir, State: state, Err: err}
			}
			return Report{Dir: dir, State: StateRemoved}
		}
		b.Close()
		return Report{Dir: dir, State: state}
	}
	if err != nil {
		b.Close()
		return Report{Dir: dir, Err: err}
	}
	unlock, err := lockWorkdir(b.workdir)
	if err != nil {
		b.Close()
		return Report{Dir: dir, Err: err}
	}
	defer unlock()
	b.mu.Lock()
	err = b.apply(j)
	b.closeFDs()
	b.mu.Unlock()
	if err != nil {
		return Report{Dir: dir, State: StateLeft, Err: err}
	}
	if err := removeBranch(dir); err != nil {
		return Report{Dir: dir, State: StateCommitted, Err: err}
	}
	return Report{Dir: dir, State: StateCommitted}
}

// syncfs syncs the filesystem of the directory dirfd (O_PATH allowed).
func syncfs(dirfd int) error {
	fd, err := openBeneath(dirfd, "", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Syncfs(fd)
}
