//go:build linux

// Package seedrand makes a sandbox's randomness a function of a seed
// (RandomSeed, --random-seed): two runs with the same seed read the same
// bytes, from every source a program takes randomness from, and two seeds
// give different bytes.
//
//   - getrandom, with every flag combination (GRND_NONBLOCK, GRND_RANDOM,
//     GRND_INSECURE), is answered by the supervisor from the calling
//     process's stream; it never blocks and never runs dry. A write into
//     memory the program cannot write fails with EFAULT, as the kernel's
//     copy would: it never falls back to real bytes.
//   - the vDSO's getrandom is hidden at the exec stop (package vdso), so C
//     libraries and the Go runtime make the syscall.
//   - the 16 AT_RANDOM bytes of every new image (the seed of the Go
//     runtime's map order and math/rand, of glibc's stack protector and
//     pointer guard) are rewritten at the exec stop, before the image runs.
//   - /dev/urandom and /dev/random are recognised by what the open
//     resolved to (character devices 1:9 and 1:8), not by the path string,
//     so /dev/../dev/urandom, symlinks, dirfd-relative opens and
//     /proc/self/fd reopens are all caught; the open is resolved and
//     performed on the program's behalf (package fsdeny's machinery) and
//     answered with one end of a stream socket that the supervisor keeps
//     full of the stream: endless, deterministic, and every read gets all
//     it asked for, as from the device, whatever the size, so the bytes a
//     program sees never depend on timing (see feed). (It is a socket, so
//     fstat shows one and lseek fails with ESPIPE; writes are taken and
//     dropped; a device opened for writing only is the real one.)
//   - /proc/sys/kernel/random/uuid, where /proc is readable: each open
//     for reading reads a UUID from the stream (see serveUUID).
//
// Streams are ChaCha8 (math/rand/v2), one per process, keyed by the seed
// and the process's place in the sandbox's process tree (the root, its
// n-th child, that child's m-th child …), so that children running in
// parallel each read their own stream rather than interleaving one, and
// each /dev/urandom open reads a stream of its own. The place of a child
// is the order in which its parent created it: deterministic for a parent
// that forks from one thread at a time.
//
// Not virtualised: the RDRAND and RDSEED instructions, pids, inode
// numbers, addresses (NoRandomizeMemory turns ASLR off), scheduling, and
// the order in which concurrent threads of one process draw from its
// stream. So a Go program's map order and math/rand/v2's top-level
// functions repeat only as far as its scheduling does: the runtime seeds
// one generator per thread (M) from the seeded AT_RANDOM bytes, in the
// order the threads start, and each new thread also draws from the state
// of the thread that starts it; which thread runs a goroutine, and which
// threads start which, is the scheduler's choice. (The runtime's seed,
// crypto/rand and /dev/urandom repeat exactly.)
package seedrand

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/notify"
)

// getrandom's flags (include/uapi/linux/random.h).
const (
	grndNonblock = 1
	grndRandom   = 2
	grndInsecure = 4
)

// maxRW is the most a single read or write transfers (MAX_RW_COUNT).
const maxRW = 0x7ffff000

// Source is a sandbox's seeded randomness. Its methods are safe for
// concurrent use.
type Source struct {
	root [32]byte
	tgid func(tid int) int

	mu       sync.Mutex
	procs    map[int]*stream // by pid
	started  bool            // the root has its stream
	orphans  uint64          // processes whose parent was unknown
	feeders  map[*os.File]bool
	closed   bool
	feedSize int // socket send buffer asked for the feeders
}

// stream is one process's.
type stream struct {
	key      [32]byte
	mu       sync.Mutex
	rng      *rand.ChaCha8
	children uint64 // processes it has created
	opens    uint64 // random devices it has opened
}

// New returns the randomness of seed. tgid gives a task's process (the
// feature sets it at Plan).
func New(seed uint64, tgid func(tid int) int) *Source {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], seed)
	return &Source{
		root:     derive(nil, "sandlock random-seed v1", b[:]),
		tgid:     tgid,
		procs:    make(map[int]*stream),
		feeders:  make(map[*os.File]bool),
		feedSize: 256 << 10,
	}
}

// derive is SHA-256 of parent's key, a label and a value.
func derive(parent []byte, label string, v []byte) [32]byte {
	h := sha256.New()
	h.Write(parent)
	h.Write([]byte(label))
	h.Write(v)
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func index(n uint64) []byte { return binary.LittleEndian.AppendUint64(nil, n) }

func newStream(key [32]byte) *stream { return &stream{key: key, rng: rand.NewChaCha8(key)} }

// ProcessStart gives a new process its stream: its parent's n-th child
// (the root is the root; a process whose parent is not known gets one of
// its own, in the order they appear).
func (s *Source) ProcessStart(pid, parent int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.procs[pid]; ok {
		return // it drew before the tracer announced it (see of)
	}
	var key [32]byte
	switch p, ok := s.procs[parent]; {
	case ok:
		p.mu.Lock()
		key = derive(p.key[:], "child", index(p.children))
		p.children++
		p.mu.Unlock()
	case parent == 0 && !s.started:
		key = s.root
	default:
		key = s.orphan()
	}
	s.started = true
	s.procs[pid] = newStream(key)
}

// orphan returns the key of the next process whose parent is not known.
// Called with s.mu held.
func (s *Source) orphan() [32]byte {
	k := derive(s.root[:], "orphan", index(s.orphans))
	s.orphans++
	return k
}

// ProcessExit forgets an exited process.
func (s *Source) ProcessExit(pid int) {
	s.mu.Lock()
	delete(s.procs, pid)
	s.mu.Unlock()
}

// of returns the stream of task tid's process.
func (s *Source) of(tid int) *stream {
	pid := s.tgid(tid)
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.procs[pid]
	if !ok {
		// Not announced by the tracer yet. The first process of all is the
		// root (which in the vfork mode may run a little before the tracer
		// seizes it); any other gets a stream of its own.
		key := s.root
		if s.started {
			key = s.orphan()
		}
		s.started = true
		p = newStream(key)
		s.procs[pid] = p
	}
	return p
}

// read fills b from the stream.
func (p *stream) read(b []byte) {
	p.mu.Lock()
	p.rng.Read(b)
	p.mu.Unlock()
}

// Memory is a stopped process's memory, as the tracer reaches it.
type Memory interface {
	WriteMem(addr uint64, b []byte) error
}

// AtExec rewrites the 16 AT_RANDOM bytes (at addr) of process pid's new
// image, from its stream, at the exec stop.
func (s *Source) AtExec(mem Memory, pid int, addr uint64) error {
	var b [16]byte
	s.of(pid).read(b[:])
	return mem.WriteMem(addr, b[:])
}

// chunk is how much one write into the program takes; a request larger
// than bigRequest is answered off the dispatch path.
const (
	chunk      = 64 << 10
	bigRequest = 1 << 20
)

func (s *Source) getrandom(_ context.Context, hc *notify.HandlerCtx) notify.Action {
	buf, n, flags := hc.Notif.Data.Args[0], hc.Notif.Data.Args[1], uint32(hc.Notif.Data.Args[2])
	if flags&^(grndNonblock|grndRandom|grndInsecure) != 0 || flags&(grndRandom|grndInsecure) == grndRandom|grndInsecure {
		return notify.Errno(unix.EINVAL)
	}
	n = min(n, maxRW)
	if n == 0 {
		return notify.ReturnValue(0)
	}
	p := s.of(int(hc.Notif.PID))
	if n <= bigRequest {
		return fill(hc, p, buf, n)
	}
	return notify.Defer(func(ctx context.Context) notify.Action {
		if ctx.Err() != nil {
			return notify.Errno(unix.EINTR)
		}
		return fill(hc, p, buf, n)
	})
}

// fill writes n bytes of p's stream at buf, in chunks. Where the memory
// ends partway, the answer is what the kernel's copy would give: the count
// of bytes written up to the first page that cannot be, or EFAULT when
// there is none.
func fill(hc *notify.HandlerCtx, p *stream, buf, n uint64) notify.Action {
	b := make([]byte, min(n, chunk))
	done := uint64(0)
	for done < n {
		part := b[:min(n-done, chunk)]
		p.read(part)
		err := hc.WriteMem(buf+done, part)
		if err != nil {
			done += writable(hc, buf+done, part)
		} else {
			done += uint64(len(part))
		}
		switch {
		case errors.Is(err, notify.ErrTaskGone):
			return notify.Errno(unix.ESRCH) // nobody is waiting for it
		case err != nil && done == 0:
			return notify.Errno(unix.EFAULT)
		case err != nil:
			return notify.ReturnValue(int64(done))
		}
	}
	return notify.ReturnValue(int64(done))
}

// writable writes part at addr page by page, after a write of the whole
// failed, and returns how many bytes went in before the first page that
// would not.
func writable(hc *notify.HandlerCtx, addr uint64, part []byte) uint64 {
	page := uint64(os.Getpagesize())
	n := uint64(0)
	for n < uint64(len(part)) {
		end := min((addr+n)/page*page+page-addr, uint64(len(part)))
		if hc.WriteMem(addr+n, part[n:end]) != nil {
			break
		}
		n = end
	}
	return n
}

// Random devices: memory (1), urandom (9) and random (8).
const (
	memMajor     = 1
	randomMinor  = 8
	urandomMinor = 9
)

// IsRandomDevice reports whether st is /dev/random or /dev/urandom.
func IsRandomDevice(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && unix.Major(st.Rdev) == memMajor &&
		(unix.Minor(st.Rdev) == randomMinor || unix.Minor(st.Rdev) == urandomMinor)
}

// ServeOpen answers an open that resolved to a random device with a
// socket fed from a stream of its own (see feed), once the open has been
// resolved and checked on the program's behalf (pfd is what it resolved
// to, st its fstat, flags the open's). An open for writing only is left
// to the real device (ok false). A read-only open of
// /proc/sys/kernel/random/uuid is answered too (see serveUUID).
func (s *Source) ServeOpen(hc *notify.HandlerCtx, pfd int, st *unix.Stat_t, flags int) (notify.Action, bool) {
	if flags&unix.O_ACCMODE == unix.O_RDONLY && isProcUUID(pfd, st) {
		return s.serveUUID(hc, flags), true
	}
	if !IsRandomDevice(st) || flags&unix.O_ACCMODE == unix.O_WRONLY {
		return notify.Action{}, false
	}
	p := s.of(int(hc.Notif.PID))
	p.mu.Lock()
	key := derive(p.key[:], "open", index(p.opens))
	p.opens++
	p.mu.Unlock()
	r, err := s.feed(key)
	if err != nil {
		var e unix.Errno
		if errors.As(err, &e) {
			return notify.Errno(e), true
		}
		return notify.Errno(unix.EIO), true
	}
	var fdFlags uint32
	if flags&unix.O_CLOEXEC != 0 {
		fdFlags = unix.O_CLOEXEC
	}
	return notify.InjectFDSend(r, fdFlags), true
}

// ErrClosed is returned for an open once the sandbox has ended.
var ErrClosed = errors.New("seedrand: the sandbox has ended")

// feed returns the program's end of a stream socket that a goroutine keeps
// full of the stream of key, until the program's last descriptor of it is
// gone or Close. The first chunk is in the socket before it is returned.
//
// A socket rather than a pipe: its receive low-water mark (SO_RCVLOWAT)
// set to the maximum makes every read wait until it has all it asked for,
// as a read of the device does; a pipe returns what it holds at that
// instant, so how many bytes a large read got (dd bs=1M) would depend on
// how far the feeder was ahead, and the output of a run on timing. A
// signal still ends a waiting read with what it has, as it ends a large
// read of the device. What the program writes is taken and dropped, as
// the device takes it.
func (s *Source) feed(key [32]byte) (*os.File, error) {
	p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	// The program's end blocks, and every read on it waits for its full
	// count (a negative mark is the kernel's INT_MAX). Only the feeder's
	// end, which waits in the runtime's poller, is non-blocking.
	if err := unix.SetsockoptInt(p[0], unix.SOL_SOCKET, unix.SO_RCVLOWAT, -1); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return nil, err
	}
	if err := unix.SetNonblock(p[1], true); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return nil, err
	}
	unix.SetsockoptInt(p[1], unix.SOL_SOCKET, unix.SO_SNDBUF, s.feedSize) // a larger buffer if the limits allow
	w := os.NewFile(uintptr(p[1]), "sandlock-random")
	r := os.NewFile(uintptr(p[0]), "sandlock-random")
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		w.Close()
		r.Close()
		return nil, ErrClosed
	}
	s.feeders[w] = true
	s.mu.Unlock()

	rng := rand.NewChaCha8(key)
	buf := make([]byte, chunk)
	rng.Read(buf)
	// Written at once into the empty socket, so that a read right after
	// the open finds bytes; the rest of the chunk, if the socket took
	// less, is the feeder's first write.
	n, err := unix.Write(p[1], buf)
	if err != nil {
		s.drop(w)
		r.Close()
		return nil, err
	}
	go func() {
		defer s.drop(w)
		pending := buf[n:]
		for {
			if _, err := w.Write(pending); err != nil {
				return // EPIPE: every reader is gone; or Close
			}
			rng.Read(buf)
			pending = buf
		}
	}()
	// Writes into the device (entropy a program contributes) are dropped;
	// this ends with the socket.
	go io.Copy(io.Discard, w)
	return r, nil
}

func (s *Source) drop(w *os.File) {
	s.mu.Lock()
	delete(s.feeders, w)
	s.mu.Unlock()
	w.Close()
}

// Close stops every feeder: called once the sandbox has ended (a socket
// handed outside the sandbox then reads EOF).
func (s *Source) Close() {
	s.mu.Lock()
	s.closed = true
	ws := make([]*os.File, 0, len(s.feeders))
	for w := range s.feeders {
		ws = append(ws, w)
	}
	s.mu.Unlock()
	for _, w := range ws {
		w.Close()
	}
}
