//go:build linux

// Package fsmeta judges the filesystem syscalls Landlock does not cover, in
// every supervised sandbox: changes of metadata (mode, owner, times, extended
// attributes, file attributes, also through the attribute ioctls) and reads
// of it that Landlock lets through (extended attributes, file attributes,
// inotify and fanotify watches).
//
// A change needs the object to be under a writable grant, a read under any
// grant, as Landlock requires of the same object's content; outside, the
// syscall fails with EACCES, as Landlock answers elsewhere. With FSDenied,
// a denied object is refused too.
//
// Nothing is decided on memory the kernel would read again, nor on the
// identity of the file behind an fd number, which a sibling thread can swap
// with dup2. The path is resolved the way the kernel would resolve it for the
// task (package taskpath) and pinned with O_PATH; a descriptor argument is
// duplicated from the task (pidfd_getfd). The judgment is on what the
// supervisor then holds — its canonical location, what readlink of
// /proc/self/fd/N reports, which is what Landlock's path rules judge — and
// the syscall is performed on the task's behalf on that very object, from
// the supervisor's private copies of every argument, with the task's
// rights: on the supervisor's own thread with its effective capabilities
// cleared for the time of the call (confine.Unprivileged), so the kernel's
// ownership and permission checks are the task's. Its result is copied
// back. Landlock judges none of these calls, nor an O_PATH walk, so the
// thread needs no Landlock domain, and the call pays no hand-off to a
// helper thread (a scheduler wake-up, which on a busy machine costs several
// times the rest).
//
// Objects no path reaches — pipes, sockets, anonymous inodes, memfds and
// files that have been unlinked — are the task's alone: their metadata may
// be changed and read like the kernel allows.
package fsmeta

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/confine"
	"github.com/sandlock-go/sandlock/internal/landlock"
	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/plan"
	"github.com/sandlock-go/sandlock/internal/sysnum"
	"github.com/sandlock-go/sandlock/internal/taskpath"
)

// Config configures the guard.
type Config struct {
	// Grants are the sandbox's filesystem grants.
	Grants landlock.Grants
	// Pool runs the few calls that need a private working directory (an
	// empty path naming the task's cwd), on threads confined like the task.
	Pool *confine.Pool
	// KeepCaps is the sandbox's KeepCaps: the task has the supervisor's
	// capabilities, and the calls keep them too.
	KeepCaps bool
	// Deny, if set, fails with EACCES for a resolved object that is denied
	// (FSDenied).
	Deny func(fd int) error
	// TGID returns a task's thread group (for kernels whose pidfds name
	// thread groups only).
	TGID func(tid int) int
}

// Guard serves the handlers.
type Guard struct {
	grants landlock.Grants
	pool   *confine.Pool
	run    func(func()) error // runs a call with the task's rights
	paths  *taskpath.Resolver
	deny   func(fd int) error
	tgid   func(tid int) int
	// checkOnly makes every handler stop after its judgment with Continue.
	checkOnly bool
}

// New returns a guard.
func New(cfg Config) *Guard {
	run := confine.Unprivileged
	if cfg.KeepCaps {
		run = func(fn func()) error { fn(); return nil }
	}
	return &Guard{grants: cfg.Grants, pool: cfg.Pool, run: run, paths: taskpath.NewOn(run), deny: cfg.Deny, tgid: cfg.TGID}
}

// Feature is the judgment of the filesystem calls Landlock does not cover,
// on in every supervised sandbox.
type Feature struct {
	// Deny, if set, refuses denied objects (fs-deny's CheckFD).
	Deny func(fd int) error
}

// Plan adds the guard once the grants are built and every other handler
// is in: whether a syscall needs judging depends on the grants, and
// whether it also needs a check before the user handlers on who else
// watches it. When nothing else watches ioctl, the filter notifies only
// the ioctl commands the guard serves rather than every ioctl.
func (f Feature) Plan(b *plan.Builder) error {
	if !b.Supervised {
		return nil
	}
	rs := b.Ruleset()
	b.AtFinish(func() error {
		g := New(Config{Grants: rs.Grants(), Pool: b.Helpers(), KeepCaps: b.KeepCaps, Deny: f.Deny, TGID: b.Run().TGID})
		ioctl := b.Arch.MustNr("ioctl")
		ioctlWatched := b.Table().Has(ioctl)
		g.Register(b.Table(), b.Table().Has)
		if !ioctlWatched && b.Table().Has(ioctl) {
			b.Filter.NotifyIoctls = IoctlCommands()
		}
		return nil
	})
	return nil
}

// Register adds the handlers to t, for each syscall whose judgment is not
// vacuous (a grant on "/" of the kind it needs, and nothing denied): in
// the act phase to judge and perform the call once every user handler
// said Continue, and, when another handler watches the syscall, also in
// the deny phase to judge only, so that a refused call never reaches it.
func (g *Guard) Register(t *notify.Table, watched func(nr int) bool) {
	check := *g
	check.checkOnly = true
	arch := sysnum.Native()
	for _, c := range g.calls() {
		nr, ok := arch.Nr(c.name)
		if !ok || (young(c.name) && !implemented(nr)) {
			// Left to the kernel, which answers ENOSYS: emulating the call
			// with an older one would answer what this kernel cannot.
			continue
		}
		if g.deny == nil && g.grants.Everything(c.write) {
			continue
		}
		if watched(nr) {
			t.Add(nr, notify.PhaseDeny, "fs meta: "+c.name, false, check.handler(c))
		}
		t.Add(nr, notify.PhaseAct, "fs meta: "+c.name, false, g.handler(c))
	}
}

// call is one syscall the guard serves.
type call struct {
	name  string
	write bool // a change: needs a writable grant
	serve func(g *Guard, hc *notify.HandlerCtx) (int64, error)
}

// young reports the syscalls newer than the rest (Linux 6.6–6.17), served
// only where the kernel has them.
func young(name string) bool {
	switch name {
	case "fchmodat2", "setxattrat", "getxattrat", "listxattrat", "removexattrat", "file_getattr", "file_setattr":
		return true
	}
	return false
}

// implemented reports whether the kernel has syscall nr. Each young
// syscall checks a flags register before anything else, and all bits set
// are invalid: it answers EINVAL (or E2BIG for a size) where it exists,
// without looking at memory or doing anything.
func implemented(nr int) bool {
	if v, ok := probed.Load(nr); ok {
		return v.(bool)
	}
	all := ^uintptr(0)
	_, _, e := unix.Syscall6(uintptr(nr), all, 0, all, all, all, all)
	probed.Store(nr, e != unix.ENOSYS)
	return e != unix.ENOSYS
}

var probed sync.Map // syscall number → bool

// goOn is returned by serve when the call goes on to the next handler (and
// in the end to the kernel): a checking guard judged the object and allowed
// it, or the call is not one the guard serves (an ioctl command it does not
// cover, told by a register alone).
type goOn struct{}

func (goOn) Error() string { return "go on" }

func (g *Guard) handler(c call) notify.HandlerFunc {
	return func(_ context.Context, hc *notify.HandlerCtx) notify.Action {
		v, err := c.serve(g, hc)
		if _, ok := err.(goOn); ok {
			return notify.Continue()
		}
		if err != nil {
			return taskpath.ErrAction(err)
		}
		return notify.ReturnValue(v)
	}
}

// object is what a syscall acts on. A path is resolved the way the kernel
// would resolve it for the task, on the helper thread that then judges
// and acts on the pinned object (see taskpath.Resolver.Use). An empty path
// or a descriptor argument names a descriptor of the task, duplicated
// (pidfd_getfd), or its working directory: the syscall is then replayed on
// it as the task made it.
type object struct {
	// A path to resolve.
	resolve  bool
	dirfd    uint64
	path     string
	nofollow bool

	fd   int  // the duplicate or the cwd, held by the supervisor
	cwd  bool // fd is the task's cwd: replay with AT_FDCWD from there
	null bool // replay with a NULL path (else "")
}

func (o object) close() {
	if !o.resolve {
		unix.Close(o.fd)
	}
}

// pathArg describes a path-taking syscall's lookup.
type pathArg struct {
	dirfd    uint64 // the dirfd register, taskpath.AtFDCWD for none
	addr     uint64 // the path's address
	nofollow bool
	empty    bool // AT_EMPTY_PATH: an empty path names dirfd itself
	nullOK   bool // with empty, a NULL path names dirfd too
	fdget    bool // the dirfd form acts on the open file: O_PATH is EBADF
}

// target resolves the object of a path-taking syscall.
func (g *Guard) target(hc *notify.HandlerCtx, pa pathArg) (object, error) {
	if pa.addr == 0 && pa.empty && pa.nullOK {
		return g.dirObject(hc, pa.dirfd, true, pa.fdget)
	}
	path, err := notify.ReadPath(hc, pa.addr)
	if err != nil {
		return object{}, err
	}
	if path == "" {
		if !pa.empty {
			return object{}, unix.ENOENT
		}
		return g.dirObject(hc, pa.dirfd, false, pa.fdget)
	}
	return object{resolve: true, dirfd: pa.dirfd, path: path, nofollow: pa.nofollow}, nil
}

// dirObject is the object an empty path names: the task's dirfd, or its
// cwd for AT_FDCWD.
func (g *Guard) dirObject(hc *notify.HandlerCtx, dirfd uint64, null, fdget bool) (object, error) {
	if taskpath.IsCWD(dirfd) {
		fd, err := taskpath.OpenCWD(hc)
		if err != nil {
			return object{}, err
		}
		return object{fd: fd, cwd: true, null: null}, nil
	}
	fd, err := taskpath.DupFD(hc, dirfd, g.tgid, fdget)
	if err != nil {
		return object{}, err
	}
	return object{fd: fd, null: null}, nil
}

// fdObject is the object of a descriptor argument (fchmod, fsetxattr…),
// which the kernel takes with fdget: an O_PATH descriptor is EBADF.
func (g *Guard) fdObject(hc *notify.HandlerCtx, fd uint64) (object, error) {
	dup, err := taskpath.DupFD(hc, fd, g.tgid, true)
	if err != nil {
		return object{}, err
	}
	return object{fd: dup}, nil
}

// judge decides whether the task may act on the object fd holds, whose
// path p (FDPath's) is read here when "": a change
// needs a writable grant, a read any grant; private objects need none;
// denied objects are refused.
func (g *Guard) judge(fd int, p string, write bool) error {
	if p == "" {
		var err error
		if p, err = taskpath.FDPath(fd); err != nil {
			return unix.EACCES
		}
	}
	if !private(fd, p) && !g.grants.Allows(p, write) {
		return unix.EACCES
	}
	if g.deny != nil {
		if err := g.deny(fd); err != nil {
			return err
		}
	}
	if g.checkOnly {
		return goOn{}
	}
	return nil
}

// private reports whether an object is reachable by no path: a pipe,
// socket or anonymous inode (the kernel names them "pipe:[N]"…), or a file
// with no link left (memfds, unlinked and O_TMPFILE files).
func private(fd int, p string) bool {
	if !strings.HasPrefix(p, "/") {
		return true
	}
	if !strings.HasSuffix(p, " (deleted)") {
		return false
	}
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && st.Nlink == 0
}

// op is a syscall performed on the task's behalf on a pinned object.
type op func(pin int) (uintptr, error)

// replayOp is the task's own syscall replayed with a dirfd (a duplicate,
// or AT_FDCWD from the task's cwd) and its NULL or empty path.
type replayOp func(dirfd int, path unsafe.Pointer) (uintptr, error)

var emptyPath = [1]byte{}

// act judges the object for a change (write) or a read and performs the
// syscall with the task's rights: onPin on a resolved path's pin, replay on
// a descriptor or the cwd.
func (g *Guard) act(hc *notify.HandlerCtx, o object, write bool, onPin op, replay replayOp) (int64, error) {
	var r uintptr
	if o.resolve {
		err := g.paths.Use(hc, o.dirfd, o.path, o.nofollow, func(pin int, p string) error {
			if err := g.judge(pin, p, write); err != nil {
				return err
			}
			var err error
			r, err = onPin(pin)
			return err
		})
		return int64(r), err
	}
	defer o.close()
	var err error
	path := unsafe.Pointer(&emptyPath[0])
	if o.null {
		path = nil
	}
	do := g.run
	if o.cwd {
		// The call names the task's cwd: it is made from a pool helper,
		// whose cwd is its own (confine.Pool), moved there for the time of
		// the call.
		do = g.pool.Do
	}
	if derr := do(func() {
		if err = g.judge(o.fd, "", write); err != nil {
			return
		}
		if !o.cwd {
			r, err = replay(o.fd, path)
			return
		}
		if err = unix.Fchdir(o.fd); err != nil {
			return
		}
		r, err = replay(unix.AT_FDCWD, path)
		unix.Chdir("/")
	}); derr != nil {
		return 0, derr
	}
	return int64(r), err
}

// procFD is the path of the helper's own descriptor: following it reaches
// exactly the pinned object (a symlink, if that is what was pinned).
func procFD(fd int) *byte {
	p, _ := unix.BytePtrFromString("/proc/self/fd/" + strconv.Itoa(fd))
	return p
}

// ret turns a raw syscall's outcome into a result and an error. Every
// syscall is made with unix.Syscall6 and its pointer conversions in the
// call expression itself, so the memory stays alive and in place.
func ret(r, _ uintptr, e unix.Errno) (uintptr, error) {
	if e != 0 {
		return r, e
	}
	return r, nil
}
