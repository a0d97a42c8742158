//go:build linux

package registry

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// RunningError is the error for a name a live sandbox holds.
type RunningError struct {
	Name string
	Pid  int // the sandbox's program, or its supervisor if not known yet
}

func (e *RunningError) Error() string {
	if e.Pid > 0 {
		return fmt.Sprintf("sandbox %q is already running (pid %d)", e.Name, e.Pid)
	}
	return fmt.Sprintf("sandbox %q is already running", e.Name)
}

// Entry is a name held by this process for one sandbox: its directory,
// its lock and its control socket.
type Entry struct {
	name string
	base *Base
	dir  int // the entry's directory
	lock int // the entry's lock file, flocked exclusively
	sock int // the listening control socket (once served, the accept loop closes it)

	closeOnce sync.Once
	mu        sync.Mutex
	closed    bool // by Close: Publish does nothing then
	serving   bool // the accept loop runs (and closes sock at its end)
	conns     map[net.Conn]bool
	served    sync.WaitGroup // the requests in progress
}

// busyWait bounds how long Claim retries a lock that someone holds: a
// listing or a concurrent claim holds one for microseconds, a live
// supervisor for good.
const busyWait = 200 * time.Millisecond

// Claim takes name for a sandbox about to start. The entry is built under
// a temporary name (longer than any valid name, so it never is one),
// locked and given its listening control socket, and then renamed into
// place only if the name is free, so no one ever sees a half-made entry.
// A name held by a live supervisor is a *RunningError; a stale entry, whose
// supervisor died, is removed and the name reused.
func Claim(name string) (_ *Entry, err error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	base, err := openClaimBase(false)
	if err != nil {
		return nil, err
	}
	e := &Entry{name: name, base: base, dir: -1, lock: -1, sock: -1}
	defer func() {
		if err != nil {
			e.discard()
		}
	}()
	var rnd [32]byte
	for i := range 4 {
		v := rand.Uint64()
		for j := range 8 {
			rnd[i*8+j] = byte(v >> (8 * j))
		}
	}
	tmp := ".new-" + hex.EncodeToString(rnd[:])
	err = unix.Mkdirat(base.fd, tmp, 0o700)
	if err == unix.ENOENT {
		// The directory was removed since it was opened.
		if e.base, err = openClaimBase(true); err != nil {
			return nil, err
		}
		base = e.base
		err = unix.Mkdirat(base.fd, tmp, 0o700)
	}
	if err != nil {
		return nil, unavailable(fmt.Errorf("runtime directory %s: %w", base.Path, os.NewSyscallError("mkdir", err)))
	}
	if e.dir, err = unix.Openat(base.fd, tmp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err != nil {
		unix.Unlinkat(base.fd, tmp, unix.AT_REMOVEDIR)
		return nil, fmt.Errorf("runtime directory %s: %w", base.Path, os.NewSyscallError("open", err))
	}
	placed := false
	defer func() {
		if !placed {
			clearDir(e.dir)
			unix.Unlinkat(base.fd, tmp, unix.AT_REMOVEDIR)
		}
	}()
	if e.lock, err = unix.Openat(e.dir, lockFile, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600); err != nil {
		return nil, fmt.Errorf("runtime directory %s: %w", base.Path, os.NewSyscallError("create lock", err))
	}
	if err := unix.Flock(e.lock, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return nil, fmt.Errorf("runtime directory %s: %w", base.Path, os.NewSyscallError("flock", err))
	}
	if err := e.listen(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(busyWait)
	for {
		err := unix.Renameat2(base.fd, tmp, base.fd, name, unix.RENAME_NOREPLACE)
		if err == nil {
			placed = true
			return e, nil
		}
		if err != unix.EEXIST {
			return nil, fmt.Errorf("runtime directory %s: %w", base.Path, os.NewSyscallError("rename", err))
		}
		switch held, pid, err := removeIfStale(base, name); {
		case err != nil:
			return nil, err
		case held && time.Now().After(deadline):
			return nil, &RunningError{Name: name, Pid: pid}
		case held:
			time.Sleep(time.Millisecond)
		}
	}
}

// listen binds and listens on the entry's control socket, mode 0600.
// Connections made before the entry is published wait in the backlog.
func (e *Entry) listen() error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("control socket: %w", os.NewSyscallError("socket", err))
	}
	e.sock = fd
	// Every message received then carries its sender's credentials, which
	// the accepted connections inherit (see checkSenders).
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		return fmt.Errorf("control socket: %w", os.NewSyscallError("setsockopt SO_PASSCRED", err))
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: procPath(e.dir, sockFile)}); err != nil {
		return fmt.Errorf("control socket: %w", os.NewSyscallError("bind", err))
	}
	if err := unix.Fchmodat(e.dir, sockFile, 0o600, 0); err != nil {
		return fmt.Errorf("control socket: %w", os.NewSyscallError("chmod", err))
	}
	if err := unix.Listen(fd, maxConns); err != nil {
		return fmt.Errorf("control socket: %w", os.NewSyscallError("listen", err))
	}
	return nil
}

// removeIfStale looks at the entry that holds name. held reports that a
// supervisor holds it (pid is then the sandbox's pid, if known); a stale
// entry is removed, and then neither is reported. An entry without a lock
// file is upstream Sandlock's: it is live while its supervisor's pid is.
func removeIfStale(base *Base, name string) (held bool, pid int, err error) {
	dir, err := unix.Openat(base.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, fmt.Errorf("runtime entry %s/%s: %w", base.Path, name, os.NewSyscallError("open", err))
	}
	defer unix.Close(dir)
	child, supervisor, _ := readPids(dir)
	lock, err := unix.Openat(dir, lockFile, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT {
		if supervisor > 0 && pidAlive(supervisor) {
			return true, child, nil
		}
		if supervisor == 0 && recent(dir) {
			// Being set up by upstream's code, which writes its pid file
			// after creating the directory.
			return true, 0, nil
		}
		return false, 0, remove(base, name, dir)
	}
	if err != nil {
		return false, 0, fmt.Errorf("runtime entry %s/%s: %w", base.Path, name, os.NewSyscallError("open lock", err))
	}
	defer unix.Close(lock)
	if err := unix.Flock(lock, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if err == unix.EWOULDBLOCK {
			return true, child, nil
		}
		return false, 0, fmt.Errorf("runtime entry %s/%s: %w", base.Path, name, os.NewSyscallError("flock", err))
	}
	return false, 0, remove(base, name, dir)
}

// remove removes a stale entry, open as dir, whose lock the caller holds
// (or which has none). The directory is removed by name only once empty:
// should the name have come to hold another entry meanwhile, that one has
// files and is left alone.
func remove(base *Base, name string, dir int) error {
	if err := clearDir(dir); err != nil {
		return fmt.Errorf("removing the stale entry %s/%s: %w", base.Path, name, err)
	}
	if err := unix.Unlinkat(base.fd, name, unix.AT_REMOVEDIR); err != nil && err != unix.ENOENT && err != unix.ENOTEMPTY {
		return fmt.Errorf("removing the stale entry %s/%s: %w", base.Path, name, err)
	}
	return nil
}

// pidAlive reports whether a process has pid (upstream's liveness test).
func pidAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || err == unix.EPERM
}

// recent reports whether the directory changed in the last two seconds.
func recent(dir int) bool {
	var st unix.Stat_t
	if unix.Fstat(dir, &st) != nil {
		return false
	}
	return time.Since(time.Unix(st.Mtim.Unix())) < 2*time.Second
}

// Name returns the entry's name.
func (e *Entry) Name() string { return e.name }

// Handler answers a sandbox's control requests.
type Handler struct {
	// Config returns the effective policy, as JSON.
	Config func() ([]byte, error)
	// Status returns the sandbox's state, marshalled to JSON.
	Status func() any
	// Kill ends the sandbox through its normal path; the answer is sent
	// first.
	Kill func()
	// Ports returns the virtual-to-real port map.
	Ports func() map[int]int
}

// Publish records the sandbox's pids (child, the program; supervisor, this
// process) and serves the control socket with h until Close.
func (e *Entry) Publish(child, supervisor int, h Handler) error {
	// A run may end before it is published (its program gone at once):
	// a closed entry stays closed.
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	content := strconv.Itoa(child) + "\n" + strconv.Itoa(supervisor) + "\n"
	fd, err := unix.Openat(e.dir, pidTemp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("pid file: %w", os.NewSyscallError("open", err))
	}
	_, err = unix.Write(fd, []byte(content))
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("pid file: %w", os.NewSyscallError("write", err))
	}
	if err := unix.Renameat(e.dir, pidTemp, e.dir, pidFile); err != nil {
		return fmt.Errorf("pid file: %w", os.NewSyscallError("rename", err))
	}
	e.conns = map[net.Conn]bool{}
	e.serving = true
	go e.serve(h)
	return nil
}

// Close removes the entry and releases the name: it stops serving,
// removes the entry's files and directory, waits for the requests in
// progress (each bounded by its deadline, and cut short here), and only
// then drops the lock. It may be called more than once; every call returns
// once the entry is gone.
func (e *Entry) Close() {
	e.closeOnce.Do(func() {
		e.mu.Lock()
		e.closed = true
		if e.serving {
			// The accept loop, blocked in accept(2), returns at the shut
			// socket and closes it; this thread does not wait for it.
			unix.Shutdown(e.sock, unix.SHUT_RDWR)
		}
		for c := range e.conns {
			c.Close()
		}
		e.conns = nil
		e.mu.Unlock()
		clearDir(e.dir)
		// By name, and only if empty: see remove.
		if sameFile(e.base.fd, e.name, e.dir) {
			unix.Unlinkat(e.base.fd, e.name, unix.AT_REMOVEDIR)
		}
		// The requests in progress end (their connections are closed)
		// while the files go; the lock is dropped only after them.
		e.served.Wait()
		e.discard()
	})
}

// discard closes what the entry holds, the lock last.
func (e *Entry) discard() {
	if e.sock >= 0 && !e.serving {
		unix.Close(e.sock)
		e.sock = -1
	}
	if e.dir >= 0 {
		unix.Close(e.dir)
		e.dir = -1
	}
	if e.lock >= 0 {
		unix.Close(e.lock)
		e.lock = -1
	}
	e.base.Close()
}

// ErrNotFound is the error for a name no sandbox holds.
var ErrNotFound = errors.New("no such sandbox")
