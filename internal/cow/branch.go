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
	dir     string
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

// Create makes a new branch of o.Workdir under o.Base and locks it for the
// calling process.
func Create(o Options) (*Branch, error) {
	lower, err := unix.Open(o.Workdir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("workdir %s: %w", o.Workdir, err)
	}
	var wst unix.Stat_t
	if err := unix.Fstat(lower, &wst); err != nil {
		unix.Close(lower)
		return nil, fmt.Errorf("workdir %s: %w", o.Workdir, err)
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	id := filepath.Base(o.Workdir) + "-" + hex.EncodeToString(rnd[:])
	dir := filepath.Join(o.Base, id)
	err = os.Mkdir(dir, 0o700)
	if errors.Is(err, os.ErrNotExist) {
		// The base went (an empty base is removed after a run): again.
		if err = PrepareBase(o.Base); err == nil {
			err = os.Mkdir(dir, 0o700)
		}
	}
	if err != nil {
		unix.Close(lower)
		return nil, fmt.Errorf("creating the branch: %w", err)
	}
	fail := func(err error) (*Branch, error) {
		unix.Close(lower)
		os.RemoveAll(dir)
		return nil, fmt.Errorf("creating the branch %s: %w", dir, err)
	}
	for _, d := range []string{upperName, workName} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			return fail(err)
		}
	}
	// The upper root stands for the workdir: it has its metadata.
	up := filepath.Join(dir, upperName)
	os.Chmod(up, os.FileMode(wst.Mode&0o7777))
	in := info{Version: 1, Workdir: o.Workdir, Dev: wst.Dev, Ino: wst.Ino, Pid: os.Getpid(), Created: time.Now().UTC().Format(time.RFC3339)}
	data, _ := json.Marshal(&in)
	if err := writeFileSync(filepath.Join(dir, infoFile), data); err != nil {
		return fail(err)
	}
	b, err := open(dir, lower, &in, true)
	if err != nil {
		return fail(err)
	}
	// The upper root's owner and times are the workdir's.
	privileged(func() { unix.Fchownat(b.upper, "", int(wst.Uid), int(wst.Gid), unix.AT_EMPTY_PATH) })
	setTimes(b.upper, &wst)
	if o.Quota > 0 {
		b.quota = newQuota(o.Quota)
	}
	b.upperDir[""] = true
	return b, nil
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
	b, err := open(dir, lower, in, false)
	if err != nil {
		unix.Close(lower)
		return nil, err
	}
	// Rebuild the index of the upper layer's directories.
	b.upperDir[""] = true
	walkTree(b.upper, "", func(rel string, st *unix.Stat_t) error {
		if isDir(st) {
			b.upperDir[rel] = true
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

// open opens a branch's files; lower is the workdir's descriptor, which
// the branch then owns.
func open(dir string, lower int, in *info, fresh bool) (*Branch, error) {
	b := &Branch{
		workdir:  in.Workdir,
		dir:      dir,
		id:       filepath.Base(dir),
		lower:    lower,
		upper:    -1,
		work:     -1,
		lock:     -1,
		deleted:  make(map[string]bool),
		upperDir: make(map[string]bool),
	}
	var err error
	if b.lock, err = unix.Open(filepath.Join(dir, lockFile), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600); err != nil {
		return nil, fmt.Errorf("branch %s: %w", dir, err)
	}
	if err := unix.Flock(b.lock, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(b.lock)
		if err == unix.EWOULDBLOCK {
			return nil, fmt.Errorf("branch %s: %w", dir, ErrBusy)
		}
		return nil, fmt.Errorf("branch %s: %w", dir, err)
	}
	fail := func(err error) (*Branch, error) {
		b.closeFDs()
		return nil, fmt.Errorf("branch %s: %w", dir, err)
	}
	if b.upper, err = unix.Open(filepath.Join(dir, upperName), unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err != nil {
		return fail(err)
	}
	if b.work, err = unix.Open(filepath.Join(dir, workName), unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err != nil {
		return fail(err)
	}
	var ust, wst unix.Stat_t
	unix.Fstat(b.upper, &ust)
	unix.Fstat(lower, &wst)
	b.sameFS = ust.Dev == wst.Dev
	if !fresh {
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
	return b, nil
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
	for _, fd := range []*int{&b.lower, &b.upper, &b.work} {
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

// Dir is the branch's directory.
func (b *Branch) Dir() string { return b.dir }

// Workdir is the directory the branch is a view of.
func (b *Branch) Workdir() string { return b.workdir }

// UpperDir is the path of the upper layer.
func (b *Branch) UpperDir() string { return filepath.Join(b.dir, upperName) }

// Base is the storage base the branch is in.
func (b *Branch) Base() string { return filepath.Dir(b.dir) }

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
