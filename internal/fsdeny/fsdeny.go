//go:build linux

// Package fsdeny is the builtin handler family that denies paths inside the
// sandbox's Landlock grants (FSDenied, --fs-deny). Landlock can only allow,
// so the supervisor mediates every syscall that opens, executes, links,
// renames, truncates, creates or removes by path.
//
// The verdict is never made on a path string the kernel would resolve again:
// the supervisor resolves the path itself, on a thread confined like the
// program (see package taskpath), to an O_PATH descriptor; checks what that
// descriptor is (its canonical path against the denied trees, its inode
// against the denied files, which catches hard links made before the run);
// and then performs the operation on the program's behalf through that
// descriptor: an open is a reopen of the very inode that was checked, and
// its result is injected into the program. Symlinks, "..", dirfd-relative
// paths and a program swapping a path component between check and use thus
// all meet the same check.
//
// Two exceptions, where the kernel resolves the path again after the
// check:
//
//   - exec cannot be performed on the program's behalf. The execve handler
//     checks the path (which gives a clean EACCES or ENOENT in the common
//     case), and the kernel resolves it again; so the session's exec stop
//     checks, by identity, what the kernel actually loaded (the binary or
//     the #! interpreter it ran, and the ELF interpreter) and kills the
//     process before its first instruction if it is denied (CheckExec,
//     exec.go). A program racing a swap against its own execve thus gets
//     its denied executable loaded, never run.
//   - O_PATH opens: the kernel refuses to inject O_PATH descriptors. A
//     program racing a swap can get an O_PATH descriptor of a denied file,
//     which reads nothing: every use of it that opens, execs, links or
//     changes metadata goes through these handlers (or fsmeta's) again.
//
// Opens of /proc are no exception: the path is resolved and checked like
// any other, and the inode reopened on the program's behalf (see proc.go
// for the entries of the sandbox's own processes, which a thread in
// another Landlock domain could not open).
//
// The walk is package taskpath's: the program's own /proc/self, /dev/fd and
// cwd are followed as the program's /proc would follow them, and the
// supervisor's own /proc entries are never reached for it.
package fsdeny

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/confine"
	"github.com/sandlock-go/sandlock/internal/fielderr"
	"github.com/sandlock-go/sandlock/internal/landlock"
	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/plan"
	"github.com/sandlock-go/sandlock/internal/sysargs"
	"github.com/sandlock-go/sandlock/internal/sysnum"
	"github.com/sandlock-go/sandlock/internal/taskpath"
)

// Config configures the denials.
type Config struct {
	// Paths are the denied paths: each is denied with everything below it.
	Paths []string
	// Pool runs the operations done on the program's behalf, confined
	// exactly like the program.
	Pool *confine.Pool
	// ProcPool runs the opens of the sandbox's own /proc/<pid> entries:
	// its threads have NO_NEW_PRIVS and no capabilities (unless the sandbox
	// keeps them) but no Landlock domain, since a thread in another domain
	// than the program's may not open them (see proc.go). Nil opens them
	// on Pool.
	ProcPool *confine.Pool
	// Ruleset is the program's ruleset: ProcPool's opens are checked
	// against its grants here, as Landlock would check the program's. (It
	// may be built after New, before the sandbox starts.)
	Ruleset *landlock.Ruleset
	// Traced reports whether a thread id is a live task of the sandbox;
	// TGID returns a task's thread group.
	Traced func(tid int) bool
	TGID   func(tid int) int
	// Serve, if set, may answer an open itself in place of the reopened
	// file, once the path is resolved and checked and the reopen succeeded
	// (the denials come first, so a virtual file never overrides a deny,
	// and Landlock and the file's permissions judge the open as they judge
	// the program's): it gets the descriptor the path resolved to, its
	// fstat and the open's flags, and ok false injects the reopened file.
	// The seeded random devices are served so (issue 15).
	Serve ServeFunc
	// OpensOnly registers the open family alone, and only in the act
	// phase: for a Denier with nothing to deny (no Paths) whose opens are
	// done on the program's behalf so that Serve sees every one.
	OpensOnly bool
	// KeepCaps is the sandbox's: the program keeps its capabilities.
	KeepCaps bool
}

// ServeFunc answers an open of a resolved file in place of the reopened
// file (ok), or lets it be injected.
type ServeFunc func(hc *notify.HandlerCtx, pfd int, st *unix.Stat_t, flags int) (a notify.Action, ok bool)

type fileID struct{ dev, ino uint64 }

// Denier holds the denied set and serves the handlers.
type Denier struct {
	trees []string        // canonical absolute paths
	ids   map[fileID]bool // denied files, and hard-linked files in denied trees
	op    *confine.Pool
	paths *taskpath.Resolver
	proc  *procOpener
	// checkOnly makes every handler stop after its checks with Continue.
	checkOnly bool
	serve     ServeFunc
	opensOnly bool
}

// New resolves the denied paths. A path that does not exist is denied by
// name (creating it is denied too).
func New(cfg Config) (*Denier, error) {
	d := &Denier{ids: make(map[fileID]bool), op: cfg.Pool, paths: taskpath.New(cfg.Pool), serve: cfg.Serve, opensOnly: cfg.OpensOnly}
	if cfg.OpensOnly {
		if len(cfg.Paths) > 0 {
			return nil, errors.New("fsdeny: OpensOnly with paths to deny")
		}
		// The walk to an O_PATH pin is one Landlock does not judge (it
		// restricts no lookup, and O_PATH opens meet none of its hooks):
		// it runs on the calling thread with the program's capabilities,
		// as fsmeta's walks do, rather than paying a hand-off to a
		// confined helper; the reopen, which Landlock judges, stays there.
		run := confine.Unprivileged
		if cfg.KeepCaps {
			run = func(fn func()) error { fn(); return nil }
		}
		d.paths = taskpath.NewOn(run)
	}
	if cfg.ProcPool != nil {
		d.proc = newProcOpener(cfg)
	}
	for _, p := range cfg.Paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		canon, err := canonical(abs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		d.trees = append(d.trees, canon)
		if err := d.collectIDs(canon); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	return d, nil
}

// canonical returns the path the kernel would reach for abs: symlinks
// resolved, also for a path that does not exist yet (its existing ancestor
// is resolved and the missing names appended; a dangling symlink leads to
// where it points), since the checks compare canonical paths.
func canonical(abs string) (string, error) {
	for hops := 0; ; hops++ {
		canon, err := filepath.EvalSymlinks(abs)
		if err == nil {
			return canon, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		if hops == 40 {
			return "", unix.ELOOP
		}
		dir, name := filepath.Split(abs)
		if name == "" {
			return abs, nil
		}
		if target, err := os.Readlink(abs); err == nil {
			// A dangling symlink: follow it.
			if !filepath.IsAbs(target) {
				target = filepath.Join(dir, target)
			}
			abs = filepath.Clean(target)
			continue
		}
		cdir, err := canonical(filepath.Clean(dir))
		if err != nil {
			return "", err
		}
		return filepath.Join(cdir, name), nil
	}
}

// collectIDs records the identity of a denied file, and of every file in a
// denied tree that has other links, which could otherwise be reached by a
// path outside the tree.
func (d *Denier) collectIDs(root string) error {
	var st unix.Stat_t
	if err := unix.Lstat(root, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		d.ids[fileID{st.Dev, st.Ino}] = true
		return nil
	}
	return filepath.WalkDir(root, func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return nil // unreadable parts cannot be linked from outside by the sandbox either
		}
		var st unix.Stat_t
		if unix.Lstat(path, &st) == nil && st.Nlink > 1 {
			d.ids[fileID{st.Dev, st.Ino}] = true
		}
		return nil
	})
}

// Feature is fs-deny as a builtin feature: the denied paths, resolved at
// Plan. Its CheckFD and CheckEntry serve the features that reach files on
// the program's behalf (the network gate's unix sockets, the judgment of
// metadata calls), planned after it.
type Feature struct {
	Paths []string
	// Serve, if set, answers opens of resolved files in place of the
	// reopen (see Config.Serve); with no Paths, the feature then does
	// every open on the program's behalf and nothing else.
	Serve ServeFunc
	d     *Denier
}

// Plan resolves the denied paths and adds the handlers twice: in the deny
// phase to check only (a denied call never reaches a user handler), and in
// the act phase to resolve and check again, then do the call on the task's
// behalf once every user handler said Continue (so that no answer lets the
// kernel resolve the path again).
func (f *Feature) Plan(b *plan.Builder) error {
	if !b.Supervised {
		return fielderr.New("FSDenied", "", errors.New("needs the supervisor, which NoSupervisor turns off"))
	}
	run := b.Run()
	opensOnly := len(f.Paths) == 0 && f.Serve != nil
	d, err := New(Config{Paths: f.Paths, Pool: b.Helpers(), ProcPool: b.Unscoped(), Ruleset: b.Ruleset(), Traced: run.Traced, TGID: run.TGID,
		Serve: f.Serve, OpensOnly: opensOnly, KeepCaps: b.KeepCaps})
	if err != nil {
		return fielderr.New("FSDenied", "", err)
	}
	f.d = d
	if !opensOnly { // with nothing to deny, there is nothing to check
		check := *d
		check.checkOnly = true
		check.register(func(nr int, name string, quick bool, h notify.Handler) { b.Handle(nr, plan.Deny, name, quick, h) }, true)
	}
	d.register(func(nr int, name string, quick bool, h notify.Handler) { b.Handle(nr, plan.Act, name, quick, h) }, false)
	if d.proc != nil {
		b.HandleNamed("landlock_restrict_self", plan.Deny, "fs deny: nested landlock domain", true, notify.HandlerFunc(d.proc.access.NestedDomain))
	}
	// What an exec loaded is checked again, by identity, before it runs:
	// the kernel resolved the path again after the check above.
	if !opensOnly {
		b.OnExec(d.CheckExec)
	}
	return nil
}

// CheckPath fails with EACCES if the canonical path p is denied or inside
// something denied, or, when moving (the source or target of a rename or
// a link), holds something denied: for features that resolve paths
// themselves (the copy-on-write workdir, whose entries the kernel cannot
// name).
func (d *Denier) CheckPath(p string, moving bool) error {
	if d.deniedPath(p) || (moving && d.holdsDenied(p)) {
		return unix.EACCES
	}
	return nil
}

// CheckPath is Denier.CheckPath (valid once planned).
func (f *Feature) CheckPath(p string, moving bool) error { return f.d.CheckPath(p, moving) }

// CheckFD fails with EACCES if a resolved descriptor is, or is inside,
// something denied (valid once planned).
func (f *Feature) CheckFD(fd int) error { return f.d.checkFD(fd) }

// CheckEntry fails with EACCES if creating name in the resolved directory
// parent would make a denied entry (a unix socket bind).
func (f *Feature) CheckEntry(parent int, name string) error {
	return f.d.checkEntry(parent, name, false)
}

func (d *Denier) register(addTo func(nr int, name string, quick bool, h notify.Handler), withExec bool) {
	arch := sysnum.Native()
	add := func(name string, h func(context.Context, *notify.HandlerCtx) notify.Action) {
		if nr, ok := arch.Nr(name); ok {
			addTo(nr, "fs deny: "+name, false, notify.HandlerFunc(h))
		}
	}
	// Where each call's arguments are (sysargs), as readers of a
	// notification.
	type reader = func(*notify.HandlerCtx) uint64
	arg := func(name string, of func(sysargs.Layout, [6]uint64) uint64) reader {
		l := sysargs.MustOf(name)
		return func(hc *notify.HandlerCtx) uint64 { return of(l, hc.Notif.Data.Args) }
	}
	dirfd := func(name string) reader { return arg(name, sysargs.Layout.DirfdOf) }
	path := func(name string) reader { return arg(name, sysargs.Layout.PathOf) }
	dirfd2 := func(name string) reader { return arg(name, sysargs.Layout.Dirfd2Of) }
	path2 := func(name string) reader { return arg(name, sysargs.Layout.Path2Of) }
	flags := func(name string) reader { return arg(name, sysargs.Layout.FlagsOf) }
	mode := func(name string) reader { return arg(name, sysargs.Layout.ModeOf) }

	for _, name := range []string{"open", "creat", "openat"} {
		dirfd, path, flags, mode := dirfd(name), path(name), flags(name), mode(name)
		add(name, func(ctx context.Context, hc *notify.HandlerCtx) notify.Action {
			return d.open(hc, dirfd(hc), path(hc), flags(hc), mode(hc), 0)
		})
	}
	add("openat2", d.openat2)
	if d.opensOnly {
		return
	}
	if withExec {
		// exec is only checked: the kernel runs it.
		for _, name := range []string{"execve", "execveat"} {
			dirfd, path, flags := dirfd(name), path(name), flags(name)
			add(name, func(ctx context.Context, hc *notify.HandlerCtx) notify.Action {
				return d.exec(hc, dirfd(hc), path(hc), flags(hc))
			})
		}
	}
	add("truncate", d.truncate)
	for _, name := range []string{"unlink", "rmdir", "unlinkat"} {
		add(name, d.removeHandler(dirfd(name), path(name), flags(name)))
	}
	for _, name := range []string{"rename", "renameat", "renameat2"} {
		add(name, d.renameHandler(dirfd(name), path(name), dirfd2(name), path2(name), flags(name)))
	}
	for _, name := range []string{"link", "linkat"} {
		add(name, d.linkHandler(dirfd(name), path(name), dirfd2(name), path2(name), flags(name)))
	}
	for _, name := range []string{"mkdir", "mkdirat"} {
		add(name, d.createHandler(dirfd(name), path(name), mkdir(mode(name))))
	}
	for _, name := range []string{"mknod", "mknodat"} {
		// The device number follows the mode.
		devArg := sysargs.MustOf(name).Mode + 1
		dev := func(hc *notify.HandlerCtx) uint64 { return hc.Notif.Data.Args[devArg] }
		add(name, d.createHandler(dirfd(name), path(name), mknod(mode(name), dev)))
	}
	for _, name := range []string{"symlink", "symlinkat"} {
		// A symlink's first path is its target, not a name looked up.
		add(name, d.symlinkHandler(path(name), dirfd2(name), path2(name)))
	}
}

// deniedPath reports whether a canonical path is in a denied tree.
func (d *Denier) deniedPath(p string) bool {
	for _, t := range d.trees {
		if p == t || strings.HasPrefix(p, t+"/") || t == "/" {
			return true
		}
	}
	return false
}

// holdsDenied reports whether moving or replacing p would move a denied
// tree: p is a denied tree's ancestor.
func (d *Denier) holdsDenied(p string) bool {
	for _, t := range d.trees {
		if strings.HasPrefix(t, p+"/") || p == "/" {
			return true
		}
	}
	return false
}

// checkFD denies a resolved descriptor that is, or is inside, something
// denied.
func (d *Denier) checkFD(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if d.ids[fileID{st.Dev, st.Ino}] {
		return unix.EACCES
	}
	p, err := taskpath.FDPath(fd)
	if err != nil {
		return err
	}
	if d.deniedPath(p) {
		return unix.EACCES
	}
	return nil
}

// checkEntry denies the name in a resolved parent directory if it is denied,
// or (for renames and links) holds a denied tree.
func (d *Denier) checkEntry(parent int, name string, moving bool) error {
	pp, err := taskpath.FDPath(parent)
	if err != nil {
		return err
	}
	full := filepath.Join(pp, name)
	if d.deniedPath(full) || (moving && d.holdsDenied(full)) {
		return unix.EACCES
	}
	var st unix.Stat_t
	if err := unix.Fstatat(parent, name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && d.ids[fileID{st.Dev, st.Ino}] {
		return unix.EACCES
	}
	return nil
}
