//go:build linux

// Package sortdirs lists directories in sorted order (DeterministicDirs,
// --deterministic-dirs): getdents64 (and the legacy getdents) return a
// directory's entries sorted by name, byte by byte, the same in every run,
// for directories of any size read with any buffer size and any number of
// calls.
//
// The supervisor answers every such call on the program's behalf. It takes
// a duplicate of the program's descriptor (pidfd_getfd: the same open file,
// so what the fd number names afterwards does not matter), reads the whole
// directory through it once, when its offset is 0 (just opened, or
// rewound), sorts the entries and keeps them; each call then copies the
// entries that fit, from the position the descriptor's offset holds, into
// the program's buffer, and moves the offset past them. The offset is
// therefore an entry index, and d_off of each entry the index of the next:
// telldir and seekdir work with it, and rewinddir (an lseek to 0) reads the
// directory afresh, as it would natively. A listing is kept while the
// descriptor stays the same open file (kcmp), for a bounded number of
// descriptors.
package sortdirs

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"slices"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/notify"
)

// maxListings bounds the listings kept; the least recently used goes.
const maxListings = 64

// Lister serves the directory reads of one sandbox.
type Lister struct {
	tgid func(tid int) int

	mu       sync.Mutex
	listings map[key]*listing
	tick     uint64
}

// key is a descriptor of a process.
type key struct{ pid, fd int }

// listing is one open directory's sorted entries.
type listing struct {
	mu       sync.Mutex
	dup      int // the supervisor's duplicate of the program's descriptor
	entries  []entry
	loaded   bool
	lastUsed uint64
}

type entry struct {
	name string
	ino  uint64
	typ  uint8
}

// New returns a Lister; tgid gives a task's process.
func New(tgid func(tid int) int) *Lister {
	return &Lister{tgid: tgid, listings: make(map[key]*listing)}
}

// ProcessExit drops the listings of an exited process.
func (l *Lister) ProcessExit(pid int) {
	l.mu.Lock()
	var gone []*listing
	for k, ls := range l.listings {
		if k.pid == pid {
			gone = append(gone, ls)
			delete(l.listings, k)
		}
	}
	l.mu.Unlock()
	for _, ls := range gone {
		ls.close()
	}
}

// Close drops every listing.
func (l *Lister) Close() {
	l.mu.Lock()
	all := l.listings
	l.listings = make(map[key]*listing)
	l.mu.Unlock()
	for _, ls := range all {
		ls.close()
	}
}

func (ls *listing) close() {
	ls.mu.Lock()
	if ls.dup >= 0 {
		unix.Close(ls.dup)
		ls.dup = -1
	}
	ls.mu.Unlock()
}

// format writes one entry into b (which has room for it, see size) and
// returns its length.
type format struct {
	size  func(name string) int
	write func(b []byte, e entry, next int64)
}

// dirent64 is struct linux_dirent64: d_ino, d_off, d_reclen, d_type,
// d_name, NUL, padded to 8 bytes.
var dirent64 = format{
	size: func(name string) int { return (19 + len(name) + 1 + 7) &^ 7 },
	write: func(b []byte, e entry, next int64) {
		le.PutUint64(b, e.ino)
		le.PutUint64(b[8:], uint64(next))
		le.PutUint16(b[16:], uint16(len(b)))
		b[18] = e.typ
		copy(b[19:], e.name)
		clear(b[19+len(e.name):])
	},
}

// direntLegacy is struct linux_dirent: d_ino, d_off, d_reclen, d_name,
// NUL, padding, and d_type in the last byte.
var direntLegacy = format{
	size: func(name string) int { return (18 + len(name) + 2 + 7) &^ 7 },
	write: func(b []byte, e entry, next int64) {
		le.PutUint64(b, e.ino)
		le.PutUint64(b[8:], uint64(next))
		le.PutUint16(b[16:], uint16(len(b)))
		copy(b[18:], e.name)
		clear(b[18+len(e.name):])
		b[len(b)-1] = e.typ
	},
}

var le = binary.NativeEndian

// getdents serves getdents64/getdents(fd, dirp, count).
func (l *Lister) getdents(hc *notify.HandlerCtx, f format) notify.Action {
	args := hc.Notif.Data.Args
	fd, dirp, count := int(int32(args[0])), args[1], int(min(uint64(uint32(args[2])), 1<<30))
	dup, errno := takeFD(int(hc.Notif.PID), l.tgid(int(hc.Notif.PID)), fd)
	if errno != 0 {
		return notify.Errno(errno)
	}
	if err := notify.TaskAlive(hc); err != nil {
		unix.Close(dup)
		return notify.Errno(unix.ESRCH)
	}
	ls, err := l.listing(key{l.tgid(int(hc.Notif.PID)), fd}, dup)
	if err != nil {
		return errAction(err)
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.dup < 0 {
		return notify.Errno(unix.EBADF) // dropped meanwhile
	}
	pos, err := unix.Seek(ls.dup, 0, unix.SEEK_CUR)
	if err != nil {
		return errAction(err)
	}
	if pos == 0 || !ls.loaded {
		if err := ls.load(); err != nil {
			return errAction(err)
		}
		if pos != 0 {
			// A position from before this listing (an inherited
			// descriptor): it counts entries all the same.
			unix.Seek(ls.dup, pos, unix.SEEK_SET)
		}
	}
	if pos < 0 || pos >= int64(len(ls.entries)) {
		return notify.ReturnValue(0)
	}
	out := make([]byte, 0, min(count, 64<<10))
	i := int(pos)
	for ; i < len(ls.entries); i++ {
		n := f.size(ls.entries[i].name)
		if len(out)+n > count {
			break
		}
		out = out[:len(out)+n]
		f.write(out[len(out)-n:], ls.entries[i], int64(i+1))
	}
	if len(out) == 0 {
		return notify.Errno(unix.EINVAL) // the buffer cannot hold one entry
	}
	if err := hc.WriteMem(dirp, out); err != nil {
		if errors.Is(err, notify.ErrTaskGone) {
			return notify.Errno(unix.ESRCH)
		}
		return notify.Errno(unix.EFAULT)
	}
	if _, err := unix.Seek(ls.dup, int64(i), unix.SEEK_SET); err != nil {
		return errAction(err)
	}
	return notify.ReturnValue(int64(len(out)))
}

func errAction(err error) notify.Action {
	var e unix.Errno
	if errors.As(err, &e) {
		return notify.Errno(e)
	}
	return notify.Errno(unix.EIO)
}

// listing returns the listing of k, keeping dup (a duplicate of k's
// descriptor, which it takes over) if it is a new one.
func (l *Lister) listing(k key, dup int) (*listing, error) {
	// What the kernel's getdents would refuse: a descriptor opened O_PATH
	// (EBADF) or one that is not a directory (ENOTDIR).
	fl, err := unix.FcntlInt(uintptr(dup), unix.F_GETFL, 0)
	if err != nil {
		unix.Close(dup)
		return nil, err
	}
	if fl&unix.O_PATH != 0 {
		unix.Close(dup)
		return nil, unix.EBADF
	}
	var st unix.Stat_t
	if err := unix.Fstat(dup, &st); err != nil {
		unix.Close(dup)
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		unix.Close(dup)
		return nil, unix.ENOTDIR
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tick++
	if ls, ok := l.listings[k]; ok {
		ls.mu.Lock()
		same := ls.dup >= 0 && sameFile(ls.dup, dup)
		ls.mu.Unlock()
		if same {
			unix.Close(dup)
			ls.lastUsed = l.tick
			return ls, nil
		}
		go ls.close() // not under l.mu: a call may be serving it
	}
	if len(l.listings) >= maxListings {
		var oldest *listing
		var oldestKey key
		for k2, ls := range l.listings {
			if oldest == nil || ls.lastUsed < oldest.lastUsed {
				oldest, oldestKey = ls, k2
			}
		}
		delete(l.listings, oldestKey)
		go oldest.close()
	}
	ls := &listing{dup: dup, lastUsed: l.tick}
	l.listings[k] = ls
	return ls, nil
}

// load reads the whole directory through the duplicate and sorts it.
func (ls *listing) load() error {
	if _, err := unix.Seek(ls.dup, 0, unix.SEEK_SET); err != nil {
		return err
	}
	var entries []entry
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Getdents(ls.dup, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		for b := buf[:n]; len(b) >= 19; {
			reclen := int(le.Uint16(b[16:]))
			if reclen < 19 || reclen > len(b) {
				return unix.EIO
			}
			name := b[19:reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			entries = append(entries, entry{name: string(name), ino: le.Uint64(b), typ: b[18]})
			b = b[reclen:]
		}
	}
	slices.SortFunc(entries, func(a, b entry) int { return cmp.Compare(a.name, b.name) })
	ls.entries, ls.loaded = entries, true
	return nil
}

// sameFile reports whether two descriptors are the same open file.
func sameFile(a, b int) bool {
	pid := unix.Getpid()
	r, _, e := unix.Syscall6(unix.SYS_KCMP, uintptr(pid), uintptr(pid), kcmpFile, uintptr(a), uintptr(b), 0)
	return e == 0 && r == 0
}

const kcmpFile = 0 // KCMP_FILE

// pidfdThread is PIDFD_THREAD (O_EXCL): a pidfd of the thread itself, whose
// descriptor table is the one its syscall uses.
const pidfdThread = unix.O_EXCL

// takeFD duplicates descriptor fd of task tid (of process pid) into the
// supervisor: the thread's own descriptor table where the kernel can name a
// thread (PIDFD_THREAD, Linux 6.9), its process's otherwise.
func takeFD(tid, pid, fd int) (int, unix.Errno) {
	pidfd, err := unix.PidfdOpen(tid, pidfdThread)
	if err == unix.EINVAL {
		pidfd, err = unix.PidfdOpen(pid, 0)
	}
	if err != nil {
		return -1, unix.ESRCH
	}
	defer unix.Close(pidfd)
	dup, err := unix.PidfdGetfd(pidfd, fd, 0)
	if err != nil {
		return -1, unix.EBADF
	}
	return dup, 0
}
