//go:build linux

package cow

import (
	"bytes"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The disk quota (MaxDisk) bounds the upper layer's usage: the blocks its
// inodes hold (st_blocks, each inode counted once whatever its links), the
// way du counts them. An operation of the branch that would add to the
// layer (a copy-up, a new entry) is refused with ENOSPC when the usage it
// would reach passes the quota; what the program writes through descriptors
// it holds is watched by Monitor, which reports a layer that has grown past
// the quota.

// Reservations made before an entry exists, for what creating it costs
// at least.
const (
	dirCost  = 4096
	fileCost = 0
)

type quota struct {
	limit int64

	mu   sync.Mutex
	used int64
	ino  map[uint64]int64 // bytes held by each upper inode
}

func newQuota(limit int64) *quota {
	return &quota{limit: limit, ino: make(map[uint64]int64)}
}

// reserve fails with ENOSPC if n more bytes would take the layer past the
// quota. (Nothing is set aside: the caller adds the inode once made.)
func (q *quota) reserve(n int64) error {
	if q == nil {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.used+n > q.limit || (n == 0 && q.used >= q.limit) {
		return unix.ENOSPC
	}
	return nil
}

// add records (or updates) the usage of the upper inode fd refers to.
func (q *quota) add(fd int) {
	if q == nil {
		return
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return
	}
	q.set(&st)
}

// set records an inode's usage from its stat; an inode with no link left
// holds nothing once closed.
func (q *quota) set(st *unix.Stat_t) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := st.Blocks * 512
	if st.Nlink == 0 && !isDir(st) {
		n = 0
	}
	q.used += n - q.ino[st.Ino]
	if n == 0 {
		delete(q.ino, st.Ino)
	} else {
		q.ino[st.Ino] = n
	}
}

// drop forgets an inode whose last link is gone.
func (q *quota) drop(ino uint64) {
	if q == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.used -= q.ino[ino]
	delete(q.ino, ino)
}

// Usage returns the upper layer's usage as last measured, and the quota
// (0: none).
func (b *Branch) Usage() (used, limit int64) {
	if b.quota == nil {
		return 0, 0
	}
	b.quota.mu.Lock()
	defer b.quota.mu.Unlock()
	return b.quota.used, b.quota.limit
}

// Measure walks the upper layer and measures its usage afresh.
func (b *Branch) Measure() int64 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.upper < 0 {
		return 0
	}
	seen := make(map[uint64]int64)
	var total int64
	var root unix.Stat_t
	if unix.Fstat(b.upper, &root) == nil {
		seen[root.Ino] = root.Blocks * 512
		total += root.Blocks * 512
	}
	walkTree(b.upper, "", func(rel string, st *unix.Stat_t) error {
		if _, ok := seen[st.Ino]; !ok {
			seen[st.Ino] = st.Blocks * 512
			total += st.Blocks * 512
		}
		return nil
	})
	if b.quota != nil {
		b.quota.mu.Lock()
		b.quota.ino, b.quota.used = seen, total
		b.quota.mu.Unlock()
	}
	return total
}

// watcher follows writes to the upper layer's files through descriptors
// the program holds: an inotify watch on every directory of the layer.
type watcher struct {
	fd   int
	mu   sync.Mutex
	dirs map[int32]string // watch descriptor → directory
	wds  map[string]int32
}

// watchDir watches the upper directory rel, if a monitor runs. mu is held.
func (b *Branch) watchDir(rel string) {
	w := b.watch
	if w == nil {
		return
	}
	wd, err := unix.InotifyAddWatch(w.fd, b.layerPath(Upper, rel), unix.IN_MODIFY|unix.IN_CLOSE_WRITE|unix.IN_ONLYDIR|unix.IN_DONT_FOLLOW)
	if err != nil {
		return
	}
	w.mu.Lock()
	w.dirs[int32(wd)] = rel
	w.wds[rel] = int32(wd)
	w.mu.Unlock()
}

// movedDirs renames the watched directories below old to below rel.
func (w *watcher) movedDirs(old, rel string) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for wd, d := range w.dirs {
		if under(d, old) {
			nd := rel + d[len(old):]
			w.dirs[wd] = nd
			delete(w.wds, d)
			w.wds[nd] = wd
		}
	}
}

// Monitor measures the upper layer's files as the program writes them
// through descriptors it holds (which the branch's operations do not see),
// and calls over once when the layer's usage passes the quota. It returns
// when ctx is done. How far a program writing flat out gets past the
// quota is what it writes while one inotify event is delivered and the
// file measured (write(2), ftruncate, fallocate); through a shared
// mapping, which makes no event, what it dirties in one period of the
// fresh measurements (measureEvery, longer for a layer whose walk takes
// more than a twentieth of it). The tests measure both.
func (b *Branch) Monitor(ctx interface{ Done() <-chan struct{} }, over func(used, limit int64)) {
	if b.quota == nil {
		return
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return
	}
	w := &watcher{fd: fd, dirs: make(map[int32]string), wds: make(map[string]int32)}
	b.mu.Lock()
	if b.lower < 0 {
		b.mu.Unlock()
		unix.Close(fd)
		return
	}
	b.watch = w
	for rel := range b.upperDir {
		b.watchDir(rel)
	}
	b.mu.Unlock()
	f := os.NewFile(uintptr(fd), "inotify")
	go func() {
		<-ctx.Done()
		f.Close()
	}()
	var fire sync.Once
	check := func() {
		if used, limit := b.Usage(); used > limit {
			fire.Do(func() { over(used, limit) })
		}
	}
	// Writes through a shared mapping of an upper file make no inotify
	// event: the layer is also measured afresh periodically, at most a
	// twentieth of the time (a walk of a large layer costs).
	go func() {
		period := measureEvery
		t := time.NewTimer(period)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if b.Materialized() {
				start := time.Now()
				b.Measure()
				period = max(measureEvery, 20*time.Since(start))
				check()
			}
			t.Reset(period)
		}
	}()
	buf := make([]byte, 64*1024)
	for {
		n, err := f.Read(buf)
		if err != nil {
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				b.Measure()
				continue
			}
			w.mu.Lock()
			dir, ok := w.dirs[ev.Wd]
			w.mu.Unlock()
			if !ok {
				continue
			}
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			if st, err := lstatBeneath(b.upper, join(dir, string(name))); err == nil {
				b.quota.set(&st)
			}
		}
		check()
	}
}

// measureEvery is the shortest period of Monitor's fresh measurements.
const measureEvery = 100 * time.Millisecond
