//go:build linux

// Package cowsys maps the program's syscalls onto the copy-on-write layer
// (package cow): every syscall that names a path is notified while a
// workdir is active, the path is resolved the way the kernel would resolve
// it for the task but through the merged view, and
//
//   - a path that does not reach the workdir, or that the kernel would
//     resolve to the very same object (a lower entry nothing of the
//     branch hides, reached the same way), is left to the kernel
//     (Continue): Landlock gives the program no write right on the
//     workdir and no right at all on the branch storage, for every value
//     the path's memory could take, so a program that rewrites its path
//     between the check and the kernel's own lookup only sees the workdir
//     as it is on disk;
//   - everything else is done on the program's behalf, on the branch, from
//     the supervisor's private copies of the arguments, with the program's
//     rights (its effective capabilities cleared, see confine.Unprivileged):
//     opens are answered with an injected descriptor, stats and listings
//     are written into the program's buffers;
//   - an exec of a file the kernel cannot reach by the program's path (a
//     file of the upper layer) is redirected (package redirect) to
//     execveat of a sealed memfd copy of it.
//
// fstat-style calls (AT_EMPTY_PATH) stay in the kernel: the filter does not
// notify them. Each process's working directory is cached, from the
// program's own chdir and fchdir calls.
package cowsys

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/confine"
	"github.com/sandlock-go/sandlock/internal/cow"
	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/procfs"
	"github.com/sandlock-go/sandlock/internal/redirect"
	"github.com/sandlock-go/sandlock/internal/sysnum"
	"github.com/sandlock-go/sandlock/internal/taskpath"
)

// Config configures the gate.
type Config struct {
	Branch *cow.Branch
	// KeepCaps is the sandbox's KeepCaps: the program has the supervisor's
	// capabilities, and so do the calls made for it.
	KeepCaps bool
	// Deny, if set, judges an object against FSDenied: a descriptor of a
	// lower entry (its identity: hard links made before the run), and the
	// path the entry has in the workdir (moving: the source or target of
	// a rename or link).
	DenyFD   func(fd int) error
	DenyPath func(path string, moving bool) error
	// TGID returns a task's thread group.
	TGID func(tid int) int
	// Redirects makes a task run another syscall (exec of a file of the
	// upper layer); nil refuses such an exec with EACCES.
	Redirects *redirect.Table
	// Storage is the branch storage base: a path naming it is refused.
	Storage string
	// Pool runs the opens of paths outside the workdir that the program
	// named through a symlink of the upper layer, on threads confined
	// like the program.
	Pool *confine.Pool
}

// Gate serves the handlers.
type Gate struct {
	b        *cow.Branch
	workdir  string
	storage  string
	run      func(func()) error
	denyFD   func(int) error
	denyPath func(string, bool) error
	tgid     func(int) int
	redirect *redirect.Table
	pool     *confine.Pool
	outside  *taskpath.Resolver

	mu   sync.RWMutex
	cwds map[int]cwdEntry // by thread group

	execMu sync.Mutex
	execs  map[execKey]*os.File // sealed memfd copies of upper executables
}

// cwdEntry is what the gate knows of a process's working directory.
type cwdEntry struct {
	place cow.Place
	// virtual: the process moved into a directory of the upper layer
	// alone, which the kernel cannot enter for it; its kernel working
	// directory is where it was.
	virtual bool
	// unknown: the process made a chdir the gate left to the kernel; its
	// working directory is read from the kernel each time.
	unknown bool
}

// New returns a gate.
func New(cfg Config) *Gate {
	run := confine.Unprivileged
	if cfg.KeepCaps {
		run = func(fn func()) error { fn(); return nil }
	}
	g := &Gate{
		b:        cfg.Branch,
		workdir:  cfg.Branch.Workdir(),
		storage:  cfg.Storage,
		run:      run,
		denyFD:   cfg.DenyFD,
		denyPath: cfg.DenyPath,
		tgid:     cfg.TGID,
		redirect: cfg.Redirects,
		pool:     cfg.Pool,
		cwds:     make(map[int]cwdEntry),
		execs:    make(map[execKey]*os.File),
	}
	if cfg.Pool != nil {
		g.outside = taskpath.New(cfg.Pool)
	}
	return g
}

// Close releases what the gate holds.
func (g *Gate) Close() {
	g.execMu.Lock()
	defer g.execMu.Unlock()
	for k, f := range g.execs {
		f.Close()
		delete(g.execs, k)
	}
}

// ProcessStarted gives a new process its parent's working directory (a
// hook of the session).
func (g *Gate) ProcessStarted(pid, parent int) {
	if parent == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if e, ok := g.cwds[parent]; ok {
		g.cwds[pid] = e
	}
}

// ProcessExited forgets a process (a hook of the session).
func (g *Gate) ProcessExited(pid int) {
	g.mu.Lock()
	delete(g.cwds, pid)
	g.mu.Unlock()
}

// handler is a gate handler: it returns Continue for the kernel (or the
// next handler), or the answer.
type handler func(g *Gate, hc *notify.HandlerCtx) notify.Action

// Register gives each handler to add (the feature puts them at the
// translate phase: before fs-deny's and fs-meta's, which see only what the
// gate leaves to the kernel). Each handler runs with the program's rights.
func (g *Gate) Register(add func(nr int, name string, h notify.Handler)) {
	arch := sysnum.Native()
	for _, h := range g.handlers() {
		nr, ok := arch.Nr(h.name)
		if !ok {
			continue
		}
		fn, readOnly, pk := h.fn, readOnlyOf(h.name), peeks[h.name]
		add(nr, "copy-on-write: "+h.name, notify.HandlerFunc(func(ctx context.Context, hc *notify.HandlerCtx) notify.Action {
			if g.quick(readOnly == always || readOnly == bySyscallFlags && openReadOnly(hc)) {
				return notify.Continue()
			}
			if pk != nil && g.peek(hc, pk) {
				return notify.Continue()
			}
			var a notify.Action
			if err := g.run(func() { a = fn(g, hc) }); err != nil {
				return notify.Errno(unix.EPERM)
			}
			return a
		}))
	}
}

// EmptyPathSyscalls are the syscalls that take AT_EMPTY_PATH, with the
// index of their flags argument: with it they act on a descriptor (fstat,
// fstatat(fd, "")), which the filter leaves to the kernel unnotified.
var EmptyPathSyscalls = map[string]int{"newfstatat": 3, "statx": 2}

// arg returns a syscall argument.
func arg(hc *notify.HandlerCtx, i int) uint64 { return hc.Notif.Data.Args[i] }

// fail turns an error into the syscall's answer.
func fail(err error) notify.Action { return taskpath.ErrAction(err) }

// tgidOf returns tid's thread group.
func (g *Gate) tgidOf(tid int) int {
	if g.tgid != nil {
		if t := g.tgid(tid); t > 0 {
			return t
		}
	}
	return procfs.TGID(tid)
}

// readTaskLink reads one of the task's /proc links (fd/N, cwd, exe) and
// proves afterwards that the task is still the one that notified.
func readTaskLink(hc *notify.HandlerCtx, entry string) (string, error) {
	link, err := os.Readlink(procfs.Path(int(hc.Notif.PID), entry))
	if err != nil {
		if errors.Is(err, unix.ENOENT) && strings.HasPrefix(entry, "fd/") {
			return "", unix.EBADF
		}
		return "", err
	}
	if err := notify.TaskAlive(hc); err != nil {
		return "", err
	}
	return link, nil
}

// dupFD duplicates the task's descriptor fd (pidfd_getfd): the same open
// file, O_PATH descriptors included.
func (g *Gate) dupFD(hc *notify.HandlerCtx, fd uint64) (int, error) {
	return taskpath.DupFD(hc, fd, g.tgidOf, false)
}

// fdPath is the path the kernel reports for one of the supervisor's
// descriptors.
func fdPath(fd int) (string, error) { return taskpath.FDPath(fd) }

// quick answers, without looking at memory, the syscalls a branch without
// any change leaves to the kernel: while nothing of the merged view
// differs from the workdir, the kernel resolves every path to what the
// gate would, from wherever it starts (a process can only have a working
// directory of the gate's own after entering a directory of the upper
// layer). readOnly syscalls only: a change makes the branch.
func (g *Gate) quick(readOnly bool) bool {
	return readOnly && !g.b.Materialized()
}

// peekArgs are where a lookup-only syscall keeps its path: the dirfd
// argument (-1: the working directory), the path, and the flags argument
// holding AT_SYMLINK_NOFOLLOW (-1: none); nofollow for the syscalls that
// never follow a final symlink.
type peekArgs struct {
	dirfd, path, flags int
	nofollow           bool
}

// peeks are the syscalls that only look something up: the gate sees first,
// with the supervisor's rights, whether the kernel would find what the
// merged view holds; only when it would not is the syscall served, with
// the program's rights, from the start.
var peeks = map[string]*peekArgs{
	"stat":       {dirfd: -1, path: 0, flags: -1},
	"lstat":      {dirfd: -1, path: 0, flags: -1, nofollow: true},
	"newfstatat": {dirfd: 0, path: 1, flags: 3},
	"statx":      {dirfd: 0, path: 1, flags: 2},
	"access":     {dirfd: -1, path: 0, flags: -1},
	"faccessat":  {dirfd: 0, path: 1, flags: -1},
	"faccessat2": {dirfd: 0, path: 1, flags: 3},
	"getxattr":   {dirfd: -1, path: 0, flags: -1},
	"lgetxattr":  {dirfd: -1, path: 0, flags: -1, nofollow: true},
	"listxattr":  {dirfd: -1, path: 0, flags: -1},
	"llistxattr": {dirfd: -1, path: 0, flags: -1, nofollow: true},
	"statfs":     {dirfd: -1, path: 0, flags: -1},
}

// peek reports whether the kernel, looking the syscall's path up itself,
// finds what the merged view holds (the syscall is then left to it). Any
// doubt (an error, a descriptor's magic link) is no.
func (g *Gate) peek(hc *notify.HandlerCtx, pk *peekArgs) bool {
	path, err := readPath(hc, arg(hc, pk.path))
	if err != nil || path == "" || strings.HasPrefix(path, "/proc/") || strings.HasPrefix(path, "/dev/") {
		return false
	}
	dirfd := taskpath.AtFDCWD
	if pk.dirfd >= 0 {
		dirfd = arg(hc, pk.dirfd)
	}
	follow := !pk.nofollow
	if pk.flags >= 0 && arg(hc, pk.flags)&unix.AT_SYMLINK_NOFOLLOW != 0 {
		follow = false
	}
	t, err := g.resolve(hc, dirfd, path, follow)
	if err != nil {
		return false
	}
	defer t.close()
	return t.fd < 0 && t.kernel()
}
