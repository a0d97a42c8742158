//go:build linux

package sandlock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/cow"
	"github.com/sandlock-go/sandlock/internal/cowsys"
	"github.com/sandlock-go/sandlock/internal/filter"
	"github.com/sandlock-go/sandlock/internal/fsdeny"
	"github.com/sandlock-go/sandlock/internal/landlock"
	"github.com/sandlock-go/sandlock/internal/limits"
	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/plan"
	"github.com/sandlock-go/sandlock/internal/redirect"
	"github.com/sandlock-go/sandlock/internal/session"
)

// The copy-on-write workdir (Workdir, issue 18): the program sees the
// workdir as if it wrote in place; every write lands in a branch (package
// cow), served by the supervisor (package cowsys), and the branch is
// committed, aborted or kept when the run ends (OnExit, OnError).

// workdirFeature is the copy-on-write workdir as a builtin feature: it
// validates the fields, makes the branch, carves the workdir (reads only)
// and its storage (nothing) out of the Landlock grants, and adds the gate
// at the translate phase: a call on the merged view is answered there, on
// the branch, with fs-deny's checks (deny, given when FSDenied is set)
// applied to what it resolved; every other call goes on, untouched, to
// the later phases. Listed after every feature that adds Landlock paths.
type workdirFeature struct {
	s    *Sandbox
	deny *fsdeny.Feature // nil without FSDenied
	plan *workdirPlan    // nil without Workdir
}

// Plan validates and plans the workdir (nothing without Workdir).
func (f *workdirFeature) Plan(b *plan.Builder) error {
	p, err := f.s.workdir()
	if err != nil || p == nil {
		return err
	}
	f.plan = p
	b.Close(p.abandon) // a run that never ran throws its branch away; an ended one has finished it
	p.landlock(b.Landlock)
	p.register(b, f.deny)
	return nil
}

// workdirOf returns the planned workdir of a feature list, or nil.
func workdirOf(features []plan.Feature) *workdirPlan {
	for _, f := range features {
		if w, ok := f.(*workdirFeature); ok {
			return w.plan
		}
	}
	return nil
}

// startDir is the program's initial working directory: Cwd, or else the
// workdir.
func (p *workdirPlan) startDir(cwd string) string {
	if cwd == "" && p != nil {
		return p.workdir
	}
	return cwd
}

// workdirPlan is the validated copy-on-write setup of a run.
type workdirPlan struct {
	workdir string // canonical
	storage string // the branch's storage base
	// ownBase: the base is sandlock's choice (not FSStorage), removed
	// once no branch is left in it.
	ownBase bool
	quota   int64
	onExit  BranchAction
	onError BranchAction

	branch *cow.Branch
	gate   *cowsys.Gate
	done   bool // finished (committed, aborted or kept)
}

// workdir validates the copy-on-write fields, completes what interrupted
// commits of the workdir left, and makes the run's branch. nil without
// Workdir.
func (s *Sandbox) workdir() (*workdirPlan, error) {
	if s.Workdir == "" {
		for _, f := range []struct {
			name string
			set  bool
		}{{"FSStorage", s.FSStorage != ""}, {"MaxDisk", s.MaxDisk != ""}, {"OnExit", s.OnExit != BranchActionDefault}, {"OnError", s.OnError != BranchActionDefault}} {
			if f.set {
				return nil, field(f.name, "", errors.New("needs Workdir (a copy-on-write workdir)"))
			}
		}
		return nil, nil
	}
	if s.NoSupervisor {
		return nil, field("Workdir", s.Workdir, errors.New("needs the supervisor, which NoSupervisor turns off"))
	}
	for _, a := range []struct {
		name string
		v    BranchAction
	}{{"OnExit", s.OnExit}, {"OnError", s.OnError}} {
		if a.v > BranchActionKeep {
			return nil, field(a.name, fmt.Sprint(uint8(a.v)), errors.New("not a BranchAction"))
		}
	}
	abs, err := filepath.Abs(s.Workdir)
	if err != nil {
		return nil, field("Workdir", s.Workdir, err)
	}
	w, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, field("Workdir", s.Workdir, errors.Unwrap(err))
	}
	if st, err := os.Stat(w); err != nil {
		return nil, field("Workdir", s.Workdir, err)
	} else if !st.IsDir() {
		return nil, field("Workdir", s.Workdir, unix.ENOTDIR)
	}
	if w == "/" {
		return nil, field("Workdir", s.Workdir, errors.New("the root cannot be a copy-on-write workdir"))
	}
	p := &workdirPlan{workdir: w, onExit: s.OnExit, onError: s.OnError}
	if s.MaxDisk != "" {
		n, err := limits.ParseSize(s.MaxDisk)
		if err != nil {
			return nil, field("MaxDisk", s.MaxDisk, err)
		}
		if n == 0 || n > 1<<62 {
			return nil, field("MaxDisk", s.MaxDisk, errors.New("must be at least 1 byte"))
		}
		p.quota = int64(n)
	}
	p.ownBase = s.FSStorage == ""
	p.storage, err = cow.ChooseBase(w, s.FSStorage)
	if err != nil {
		name := "Workdir"
		if s.FSStorage != "" {
			name = "FSStorage"
		}
		return nil, field(name, s.FSStorage, err)
	}
	if within(p.storage, w) || within(w, p.storage) {
		return nil, field("FSStorage", s.FSStorage, errors.New("the storage and the workdir must not hold one another"))
	}
	// Interrupted commits of this workdir are completed before anything
	// else reads it; branches left by runs that did not end are only
	// reported.
	reports, err := cow.Recover(w, cow.Bases(w, s.FSStorage), cow.RecoverOptions{})
	if err != nil {
		return nil, field("Workdir", s.Workdir, err)
	}
	for _, r := range reports {
		switch {
		case r.Err != nil:
			return nil, field("Workdir", s.Workdir, fmt.Errorf("completing an interrupted commit of branch %s: %w", r.Dir, r.Err))
		case r.State == cow.StateCommitted:
			s.logger().Warn("sandlock: completed an interrupted commit of the workdir", "branch", r.Dir)
		case r.State == cow.StateLeft:
			s.logger().Info("sandlock: a branch of the workdir was left by a run that did not end (sandlock cow recover lists it)", "branch", r.Dir)
		}
	}
	if p.branch, err = cow.Create(cow.Options{Workdir: w, Base: p.storage, Quota: p.quota}); err != nil {
		return nil, field("Workdir", s.Workdir, err)
	}
	return p, nil
}

// within reports whether path is root or below it.
func within(path, root string) bool {
	return path == root || strings.HasPrefix(path, strings.TrimSuffix(root, "/")+"/")
}

// landlock gives the program read rights on the workdir and no write
// right there, whatever the grants say, and no right on the storage.
func (p *workdirPlan) landlock(cfg *landlock.Config) {
	cfg.Paths = append(cfg.Paths, landlock.PathRule{Path: p.workdir, Access: landlock.FSRead})
	cfg.Paths = cow.Carve(cfg.Paths, []cow.Exclusion{
		{Path: p.workdir, Keep: landlock.FSRead},
		{Path: p.storage, Keep: 0},
	}, landlock.FSExecute|landlock.FSWriteFile|landlock.FSReadFile|landlock.FSTruncate|landlock.FSIoctlDev)
}

// register adds the gate's handlers at the translate phase (before
// fs-deny's and fs-meta's, which judge only what it leaves to the kernel)
// and its hooks.
func (p *workdirPlan) register(b *plan.Builder, deny *fsdeny.Feature) {
	run := b.Run()
	redirects := redirect.New(run.TGID)
	cfg := cowsys.Config{
		Branch:    p.branch,
		KeepCaps:  b.KeepCaps,
		TGID:      run.TGID,
		Redirects: redirects,
		Storage:   p.storage,
		Pool:      b.Helpers(),
	}
	if deny != nil {
		cfg.DenyFD, cfg.DenyPath = deny.CheckFD, deny.CheckPath
	}
	p.gate = cowsys.New(cfg)
	p.gate.Register(func(nr int, name string, h notify.Handler) {
		b.Handle(nr, plan.Translate, name, false, h)
	})
	b.OnProcessStart(p.gate.ProcessStarted)
	b.OnExit(p.gate.ProcessExited)
	b.OnSignalStop(redirects.Stop)
	b.OnEnd(p.gate.Close)
	// fstat-style calls (AT_EMPTY_PATH: newfstatat and statx on a
	// descriptor) stay unnotified, unless another handler watches them.
	for name, flagsArg := range cowsys.EmptyPathSyscalls {
		if nr, ok := b.Arch.Nr(name); ok {
			b.NotifyExcept(nr, 1, filter.Cond{Tests: []filter.Test{{Arg: flagsArg, Op: filter.AnyBit, Value: unix.AT_EMPTY_PATH}}})
		}
	}
	if p.quota > 0 {
		b.Background(func(ctx context.Context) {
			p.branch.Monitor(ctx, func(used, limit int64) {
				run.KillSandbox(session.ReasonDiskLimit, fmt.Sprintf("the workdir's branch holds %s, over MaxDisk %s", limits.FormatSize(uint64(used)), limits.FormatSize(uint64(limit))))
			})
		})
	}
}

// finish applies the branch action the run's end calls for: OnExit after a
// run that exited 0, OnError after any other end (a dry run always
// aborts). It returns the changes the branch held and the error of a
// commit that failed (the branch is then left for recovery).
func (p *workdirPlan) finish(res *Result, log interface{ Warn(string, ...any) }) ([]Change, error) {
	if p == nil || p.done {
		return nil, nil
	}
	p.done = true
	action := p.onError
	if res != nil && res.ExitCode == 0 && res.Reason == ReasonExited {
		action = p.onExit
		if action == BranchActionDefault {
			action = BranchActionCommit
		}
	} else if action == BranchActionDefault {
		action = BranchActionAbort
	}
	var changes []cow.Change
	var err error
	if action == BranchActionCommit && p.quota > 0 {
		// Writes through descriptors are measured as they happen (Monitor),
		// a little late: a branch that ended over the quota is never
		// committed.
		if used := p.branch.Measure(); used > p.quota {
			p.branch.Abort()
			p.removeBase()
			return nil, &BranchError{Action: "commit", Dir: p.branch.Dir(), Err: fmt.Errorf("the branch holds %s, over MaxDisk %s: discarded", limits.FormatSize(uint64(used)), limits.FormatSize(uint64(p.quota)))}
		}
	}
	switch action {
	case BranchActionCommit:
		changes, err = p.branch.Commit()
		if err != nil {
			p.branch.Close()
			return nil, &BranchError{Action: "commit", Dir: p.branch.Dir(), Err: err}
		}
	case BranchActionKeep:
		changes, _ = p.branch.Changes()
		if err = p.branch.Keep(); err != nil {
			return nil, &BranchError{Action: "keep", Dir: p.branch.Dir(), Err: err}
		}
		if d := p.branch.Dir(); d != "" {
			log.Warn("sandlock: copy-on-write branch kept", "branch", d, "workdir", p.workdir)
		} else {
			log.Warn("sandlock: copy-on-write branch not kept: the program changed nothing", "workdir", p.workdir)
		}
	default:
		changes, _ = p.branch.Changes()
		if err = p.branch.Abort(); err != nil {
			return nil, &BranchError{Action: "abort", Dir: p.branch.Dir(), Err: err}
		}
	}
	if action != BranchActionKeep {
		p.removeBase()
	}
	out := make([]Change, len(changes))
	for i, c := range changes {
		out[i] = Change{Kind: ChangeKind(c.Kind), Path: c.Path}
	}
	return out, nil
}

// abandon throws the branch of a run that never started away.
func (p *workdirPlan) abandon() {
	if p == nil || p.done {
		return
	}
	p.done = true
	p.branch.Abort()
	p.removeBase()
}

// removeBase removes the storage base sandlock chose, when no other
// branch is in it (FSStorage is the caller's: it stays).
func (p *workdirPlan) removeBase() {
	if p.ownBase {
		os.Remove(p.storage)
	}
}

// RecoverWorkdir completes the interrupted commits of the workdir's
// branches (in the storage bases a run with fsStorage would use) and
// reports the other branches; with abort, the branches kept or left by
// runs that did not end are removed.
func RecoverWorkdir(workdir, fsStorage string, abort bool) ([]BranchReport, error) {
	abs, err := filepath.Abs(workdir)
	if err != nil {
		return nil, err
	}
	w, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("sandlock: %w", err)
	}
	bases := cow.Bases(w, fsStorage)
	if fsStorage != "" {
		if a, err := filepath.Abs(fsStorage); err == nil {
			bases[0] = a
		}
	}
	reports, err := cow.Recover(w, bases, cow.RecoverOptions{Abort: abort})
	if err != nil {
		return nil, fmt.Errorf("sandlock: %w", err)
	}
	if abort {
		// The bases sandlock chose go once empty (FSStorage stays).
		for _, b := range cow.Bases(w, "") {
			os.Remove(b)
		}
	}
	out := make([]BranchReport, len(reports))
	for i, r := range reports {
		out[i] = BranchReport{Dir: r.Dir, State: string(r.State), Err: r.Err}
	}
	return out, nil
}
