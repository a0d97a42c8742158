package cow

import (
	"sync"

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
