//go:build linux

package cow

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Options configure a new branch.
type Options struct {
	// Workdir is the directory the branch is a copy-on-write view of,
	// canonical (absolute, symlinks resolved).
	Workdir string
	// Base is the storage directory the branch is made in (see Storage).
	Base string
	// Quota bounds the upper layer's disk usage in bytes; 0 is no bound.
	Quota int64
}

// Branch is one copy-on-write branch of a workdir. Its methods are safe for
// concurrent use.
type Branch struct {
	workdir string
	wst     unix.Stat_t // the workdir's stat when the branch was made
	base    string
	dir     string // "" until materialized; set under mu
	dirPath atomic.Pointer[string]
	id      string
	sameFS  bool // upper and workdir are on one filesystem: commit renames

	lower int // the workdir, O_PATH
	upper int // upper/, O_PATH
	work  int // work/, O_PATH
	lock  int // the liveness lock, or -1 once closed

	// mu orders the branch's changes: mutations take it exclusively, so a
	// lookup holding it shared sees no half-done one.
	mu       sync.RWMutex
	deleted  map[string]bool // whiteouts
	delLog   *os.File
	upperDir map[string]bool // directories present in upper/ ("" included)
	upperEnt map[string]bool // every other entry present in upper/

	quota *quota
	watch *watcher // the quota monitor's, or nil

	closeOnce sync.Once
}

// info is the branch's info file.
type info struct {
	Version int    `json:"version"`
	Workdir string `json:"workdir"`
	Dev     uint64 `json:"dev"`
	Ino     uint64 `json:"ino"`
	Pid     int    `json:"pid"`
	Created string `json:"created"`
}

// Branch files.
const (
	infoFile    = "info"
	lockFile    = "lock"
	upperName   = "upper"
	workName    = "work"
	deletedFile = "deleted"
	journalFile = "journal"
	appliedFile = "applied"
	keptFile    = "kept"
)

// ErrBusy is returned for a branch another process runs or commits.
var ErrBusy = errors.New("branch in use by another process")

// Create returns a new branch of o.Workdir in o.Base. Nothing is made on
// disk until the first change (a run that only reads costs no directory):
// the branch's directory, then, is made under o.Base and locked for the
// calling process.
func Create(o Options) (*Branch, error) {
	lower, err := unix.Open(o.Workdir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("workdir %s: %w", o.Workdir, err)
	}
	b := &Branch{
		workdir:  o.Workdir,
		base:     o.Base,
		lower:    lower,
		upper:    -1,
		work:     -1,
		lock:     -1,
		deleted:  make(map[string]bool),
		upperDir: make(map[string]bool),
		upperEnt: make(map[string]bool),
	}
	if err := unix.Fstat(lower, &b.wst); err != nil {
		unix.Close(lower)
		return nil, fmt.Errorf("workdir %s: %w", o.Workdir, err)
	}
	if o.Quota > 0 {
		b.quota = newQuota(o.Quota)
	}
	return b, nil
}

// materialize makes the branch's directory, on its first change. mu is
// held.
func (b *Branch) materialize() error {
	if b.upper >= 0 {
		return nil
	}
	if b.lower < 0 {
		return unix.EBADF // closed
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	dir := filepath.Join(b.base, filepath.Base(b.workdir)+"-"+hex.EncodeToString(rnd[:]))
	err := os.Mkdir(dir, 0o700)
	if errors.Is(err, os.ErrNotExist) {
		// The base is made with the first branch (and removed, empty,
		// after the last).
		if err = PrepareBase(b.base); err == nil {
			err = os.Mkdir(dir, 0o700)
		}
	}
	if err != nil {
		return fmt.Errorf("creating the branch: %w", err)
	}
	fail := func(err error) error {
		b.closeBranchFDs()
		os.RemoveAll(dir)
		return fmt.Errorf("creating the branch %s: %w", dir, err)
	}
	for _, d := range []string{upperName, workName} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			return fail(err)
		}
	}
	wst := &b.wst
	in := info{Version: 1, Workdir: b.workdir, Dev: wst.Dev, Ino: wst.Ino, Pid: os.Getpid(), Created: time.Now().UTC().Format(time.RFC3339)}
	data, _ := json.Marshal(&in)
	// Not synced: until a commit syncs the branch (before its journal),
	// a branch is nothing a crash of the machine must keep.
	if err := os.WriteFile(filepath.Join(dir, infoFile), data, 0o600); err != nil {
		return fail(err)
	}
	if err := b.attach(dir, false); err != nil {
		return fail(err)
	}
	// The upper root stands for the workdir: it has its metadata.
	privileged(func() { unix.Fchownat(b.upper, "", int(wst.Uid), int(wst.Gid), unix.AT_EMPTY_PATH) })
	unix.Chmod(procFD(b.upper), wst.Mode&0o7777)
	setTimes(b.upper, wst)
	b.upperDir[""] = true
	b.watchDir("")
	return nil
}

// Open opens an existing branch, taking its lock: for recovery, and for a
// caller that commits or aborts a kept branch. ErrBusy if a live process
// holds it.
func Open(dir string) (*Branch, error) {
	in, err := readInfo(dir)
	if err != nil {
		return nil, err
	}
	lower, err := unix.Open(in.Workdir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("workdir %s of branch %s: %w", in.Workdir, dir, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(lower, &st); err != nil || st.Dev != in.Dev || st.Ino != in.Ino {
		unix.Close(lower)
		return nil, fmt.Errorf("branch %s: its workdir %s is not the directory it was made of", dir, in.Workdir)
	}
	b := &Branch{
		workdir:  in.Workdir,
		base:     filepath.Dir(dir),
		lower:    lower,
		upper:    -1,
		work:     -1,
		lock:     -1,
		wst:      st,
		deleted:  make(map[string]bool),
		upperDir: make(map[string]bool),
		upperEnt: make(map[string]bool),
	}
	if err := b.attach(dir, true); err != nil {
		b.closeFDs()
		return nil, err
	}
	// Rebuild the index of the upper layer's directories.
	b.upperDir[""] = true
	walkTree(b.upper, "", func(rel string, st *unix.Stat_t) error {
		if isDir(st) {
			b.upperDir[rel] = true
		} else {
			b.upperEnt[rel] = true
		}
		return nil
	})
	return b, nil
}

func readInfo(dir string) (*info, error) {
	data, err := os.ReadFile(filepath.Join(dir, infoFile))
	if err != nil {
		return nil, fmt.Errorf("branch %s: %w", dir, err)
	}
	var in info
	if err := json.Unmarshal(data, &in); err != nil || in.Version != 1 || !filepath.IsAbs(in.Workdir) {
		return nil, fmt.Errorf("branch %s: unreadable info file", dir)
	}
	return &in, nil
}

// attach takes the branch directory dir: its lock, its layers, its
// whiteouts (existing: read from its log).
func (b *Branch) attach(dir string, existing bool) error {
	var err error
	if b.lock, err = unix.Open(filepath.Join(dir, lockFile), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600); err != nil {
		return fmt.Errorf("branch %s: %w", dir, err)
	}
	if err := unix.Flock(b.lock, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(b.lock)
		b.lock = -1
		if err == unix.EWOULDBLOCK {
			return fmt.Errorf("branch %s: %w", dir, ErrBusy)
		}
		return fmt.Errorf("branch %s: %w", dir, err)
	}
	fail := func(err error) error {
		b.closeBranchFDs()
		return fmt.Errorf("branch %s: %w", dir, err)
	}
	if b.upper, err = unix.Open(filepath.Join(dir, upperName), unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err != nil {
		return fail(err)
	}
	if b.work, err = unix.Open(filepath.Join(dir, workName), unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err != nil {
		return fail(err)
	}
	var ust unix.Stat_t
	unix.Fstat(b.upper, &ust)
	b.sameFS = ust.Dev == b.wst.Dev
	if existing {
		data, err := os.ReadFile(filepath.Join(dir, deletedFile))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fail(err)
		}
		// A record is complete only with its NUL: a torn last record is
		// the one whose deletion never happened.
		for len(data) > 0 {
			i := bytes.IndexByte(data, 0)
			if i < 0 {
				break
			}
			if rel := string(data[:i]); validRel(rel) {
				b.deleted[rel] = true
			}
			data = data[i+1:]
		}
	}
	if b.delLog, err = os.OpenFile(filepath.Join(dir, deletedFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_NOFOLLOW, 0o600); err != nil {
		return fail(err)
	}
	b.dir, b.id = dir, filepath.Base(dir)
	b.dirPath.Store(&dir)
	return nil
}

// validRel reports whether rel is a clean relative path: no empty, "." or
// ".." component, no leading or trailing slash.
func validRel(rel string) bool {
	if rel == "" {
		return false
	}
	for _, c := range bytes.Split([]byte(rel), []byte("/")) {
		if len(c) == 0 || string(c) == "." || string(c) == ".." {
			return false
		}
	}
	return true
}

func (b *Branch) closeFDs() {
	b.watch = nil
	if b.lower >= 0 {
		unix.Close(b.lower)
		b.lower = -1
	}
	b.closeBranchFDs()
}

// closeBranchFDs closes what attach opened.
func (b *Branch) closeBranchFDs() {
	for _, fd := range []*int{&b.upper, &b.work} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
	if b.delLog != nil {
		b.delLog.Close()
		b.delLog = nil
	}
	if b.lock >= 0 {
		unix.Close(b.lock) // releases the flock
		b.lock = -1
	}
}

// Close releases the branch without committing or removing it: it stays
// on disk for Recover (a run that did not end through Commit, Abort or
// Keep).
func (b *Branch) Close() {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.closeFDs()
	})
}

// Dir is the branch's directory; "" until the branch holds a change.
func (b *Branch) Dir() string {
	if p := b.dirPath.Load(); p != nil {
		return *p
	}
	return ""
}

// Materialized reports whether the branch holds a change (and has a
// directory).
func (b *Branch) Materialized() bool { return b.Dir() != "" }

// Workdir is the directory the branch is a view of.
func (b *Branch) Workdir() string { return b.workdir }

// UpperDir is the path of the upper layer; "" until the branch holds a
// change.
func (b *Branch) UpperDir() string {
	if d := b.Dir(); d != "" {
		return filepath.Join(d, upperName)
	}
	return ""
}

// Base is the storage base the branch is (or will be) in.
func (b *Branch) Base() string { return b.base }

// SameFilesystem reports whether the upper layer is on the workdir's
// filesystem (a commit then moves files with rename).
func (b *Branch) SameFilesystem() bool { return b.sameFS }

// whiteout records that rel of the lower layer is deleted. The caller
// holds mu.
func (b *Branch) whiteout(rel string) error {
	if b.deleted[rel] {
		return nil
	}
	if _, err := b.delLog.Write(append([]byte(rel), 0)); err != nil {
		return fmt.Errorf("recording a deletion: %w", err)
	}
	b.deleted[rel] = true
	return nil
}

// hidden reports whether the lower entry at rel is hidden by a whiteout of
// rel or of one of its ancestors. The caller holds mu.
func (b *Branch) hidden(rel string) bool {
	if len(b.deleted) == 0 {
		return false
	}
	if b.deleted[rel] {
		return true
	}
	return !ancestors(rel, func(p string) bool { return !b.deleted[p] })
}

// Deleted returns the whiteouts, sorted (for tests and reports).
func (b *Branch) Deleted() []string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]string, 0, len(b.deleted))
	for p := range b.deleted {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// writeFileSync writes a file and syncs it.
func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir syncs a directory (so that a rename or a creation in it is on
// disk).
func syncDir(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fsync(fd)
}
