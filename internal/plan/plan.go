//go:build linux

// Package plan is how a builtin feature joins a sandbox. A feature is a
// value whose Plan method tells a Builder what it needs: Landlock path and
// port rules, filter conditions, handlers at a named phase, hooks on the
// run's life and what to close at its end. The Builder turns the ordered
// list of features (the root package's builtins.go) into the ruleset, the
// filter and the handler table, and wires the hooks into the session.
//
// The list's order is the dispatch order within a phase; the phases order
// the handlers of one syscall across features (see notify.Phase). A feature
// is added by writing its package and one line in the list.
package plan

import (
	"context"
	"log/slog"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/confine"
	"github.com/sandlock-go/sandlock/internal/filter"
	"github.com/sandlock-go/sandlock/internal/landlock"
	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/session"
	"github.com/sandlock-go/sandlock/internal/sysfilter"
	"github.com/sandlock-go/sandlock/internal/sysnum"
	"github.com/sandlock-go/sandlock/internal/tracer"
)

// Phase orders the handlers of one syscall (see notify.Phase).
type Phase = notify.Phase

// The phases, in dispatch order.
const (
	Guard      = notify.PhaseGuard
	Translate  = notify.PhaseTranslate
	Deny       = notify.PhaseDeny
	Virtualize = notify.PhaseVirtualize
	User       = notify.PhaseUser
	Act        = notify.PhaseAct
)

// Feature is one builtin feature of a sandbox. Plan runs before anything
// starts; an error stops the run (a *fielderr.FieldError names the
// setting at fault).
type Feature interface {
	Plan(b *Builder) error
}

// Run is what a feature may use of the running sandbox, from its handlers
// and hooks (the methods are valid once the sandbox has started).
type Run interface {
	// Traced reports whether tid is a live task of the sandbox.
	Traced(tid int) bool
	// TGID returns the process of a task.
	TGID(tid int) int
	// ProcessIDs lists the live processes; Processes counts them.
	ProcessIDs() []int
	Processes() int
	// KillProcess and KillSandbox kill, recording why for the result.
	KillProcess(pid int, why session.Reason)
	KillSandbox(why session.Reason, detail string)
	// Signal sends sig to every process of the sandbox; Kill kills them
	// all, recording why.
	Signal(sig syscall.Signal) error
	Kill(why session.Reason)
	// Pid is the program's pid; Ended is closed once the run has ended.
	Pid() int
	Ended() <-chan struct{}
}

// Builder collects what the features need. Its exported fields are the
// parts of the run they shape directly.
type Builder struct {
	// Arch is the syscall table of this architecture.
	Arch *sysnum.Table
	// Landlock is the ruleset's configuration: handled rights, path and
	// port rules, scopes.
	Landlock *landlock.Config
	// Filter is the seccomp filter's specification: the deny list, the
	// socket families, notification exceptions.
	Filter *sysfilter.FilterSpec
	// Supervised is false with NoSupervisor: no handler will ever run.
	Supervised bool
	// KeepCaps is the Sandbox's KeepCaps: helper threads act with the
	// program's capabilities.
	KeepCaps bool
	// Log is the run's logger.
	Log *slog.Logger
	// Knobs are the process settings the child stage applies.
	Knobs session.Knobs
	// Env holds variables the features set in the program's environment
	// (the Sandbox's Env overrides them).
	Env map[string]string

	sess     *session.Session
	ruleset  *landlock.Ruleset
	denied   func(nr int) bool
	helpers  *confine.Pool
	unscoped *confine.Pool
	finish   []func() error
	except   []exception
	closers  []func()
}

// NewBuilder returns a builder for a run of sess. denied reports the
// syscalls the filter denies outright.
func NewBuilder(sess *session.Session, ll *landlock.Config, fs *sysfilter.FilterSpec, denied func(nr int) bool, supervised, keepCaps bool) *Builder {
	return &Builder{
		Arch: fs.Arch, Landlock: ll, Filter: fs, Supervised: supervised, KeepCaps: keepCaps, Log: sess.Log,
		sess: sess, ruleset: landlock.NewRuleset(), denied: denied,
	}
}

// Setenv sets a variable of the program's environment.
func (b *Builder) Setenv(k, v string) {
	if b.Env == nil {
		b.Env = make(map[string]string)
	}
	b.Env[k] = v
}

// Run is the sandbox as features see it.
func (b *Builder) Run() Run { return b.sess }

// Ruleset is the program's Landlock ruleset. It is built once every
// feature has planned: features keep it and use it from handlers and hooks.
func (b *Builder) Ruleset() *landlock.Ruleset { return b.ruleset }

// Helpers is the pool of threads confined exactly like the program (its
// ruleset, NO_NEW_PRIVS, its capabilities), for operations done on its
// behalf: what the program could not do fails there the same way.
func (b *Builder) Helpers() *confine.Pool {
	if b.helpers == nil {
		b.helpers = confine.NewPool(b.ruleset, b.KeepCaps)
	}
	return b.helpers
}

// Unscoped is the pool of threads with the program's capabilities and
// NO_NEW_PRIVS but no Landlock domain, for the few operations Landlock
// would refuse a helper that sits in a sibling domain of the program's
// (its own /proc entries, its own abstract sockets) after the feature has
// checked what Landlock would allow the program.
func (b *Builder) Unscoped() *confine.Pool {
	if b.unscoped == nil {
		b.unscoped = confine.NewPool(nil, b.KeepCaps)
	}
	return b.unscoped
}

// Handle adds h to syscall nr's chain at phase p. quick promises that h
// never blocks; name says who it is in logs.
func (b *Builder) Handle(nr int, p Phase, name string, quick bool, h notify.Handler) {
	b.sess.Table.Add(nr, p, name, quick, h)
}

// HandleNamed is Handle by syscall name; a syscall this architecture does
// not have is skipped. It reports whether it was added.
func (b *Builder) HandleNamed(syscallName string, p Phase, name string, quick bool, h notify.Handler) bool {
	nr, ok := b.Arch.Nr(syscallName)
	if ok {
		b.Handle(nr, p, name, quick, h)
	}
	return ok
}

// Table is the handler table, for what a feature decides on the chains
// the others made (read-only use).
func (b *Builder) Table() *notify.Table { return b.sess.Table }

// Denied reports whether the filter denies nr outright (it then needs no
// handler: the kernel refuses it).
func (b *Builder) Denied(nr int) bool { return b.denied(nr) }

// NotifyExcept lets nr through unnotified when one of conds holds (their
// actions are ignored), conditions on registers under which every handler
// the feature put on nr's chain (mine of them) answers Continue. It holds
// only if nobody else watches nr: a syscall another handler serves (a user
// handler, another feature) is notified every time.
func (b *Builder) NotifyExcept(nr, mine int, conds ...filter.Cond) {
	b.except = append(b.except, exception{nr: nr, mine: mine, conds: conds})
}

// exception is a NotifyExcept request.
type exception struct {
	nr, mine int
	conds    []filter.Cond
}

// AtFinish registers f to run once the ruleset is built and every feature
// and every user handler is in the table, before the filter is made: for
// decisions on the whole table (a syscall another handler watches is
// notified every time) or on the built grants.
func (b *Builder) AtFinish(f func() error) { b.finish = append(b.finish, f) }

// OnStart registers f to run once the program runs.
func (b *Builder) OnStart(f func()) { b.sess.OnStart(f) }

// OnProcessStart registers f for each process of the sandbox, when the
// tracer first knows it (with its parent).
func (b *Builder) OnProcessStart(f func(pid, parent int)) { b.sess.OnProcessStart(f) }

// OnFork registers f for each process created, with its parent.
func (b *Builder) OnFork(f func(parent int)) { b.sess.OnFork(f) }

// OnForkInterrupted registers f for a fork let through that a signal
// interrupted before it created anything.
func (b *Builder) OnForkInterrupted(f func(parent int)) { b.sess.OnForkInterrupted(f) }

// OnExec registers f for each image a process of the sandbox loads, called
// on the tracer's thread before its first instruction (see tracer.ExecStop).
// Registering any turns the exec stop on.
func (b *Builder) OnExec(f func(*tracer.ExecStop)) { b.sess.OnExec(f) }

// OnSignalStop sets f to be called first at every signal-delivery-stop
// of a task of the sandbox, on the tracer's thread (where the task's
// registers may be read and written); f returns true to discard the
// signal. One feature at most may set it; f must not block.
func (b *Builder) OnSignalStop(f func(tid int, sig syscall.Signal) bool) { b.sess.OnSignalStop(f) }

// OnSeccomp registers f for the tracer's stops at the syscalls the filter
// answers SECCOMP_RET_TRACE (see Filter.Trace): on the tracer's thread,
// before the syscall runs, with the filter's data; the function f
// returns, if not nil, runs at that syscall's exit (see
// session.Session.OnSeccomp). Without a registration the tracer takes no
// such stops.
func (b *Builder) OnSeccomp(f func(tid int, data uint16) (atExit func())) { b.sess.OnSeccomp(f) }

// OnExit registers f for each process that has exited.
func (b *Builder) OnExit(f func(pid int)) { b.sess.OnExit(f) }

// OnExitUsage registers f for each process that has exited, with its
// resource usage.
func (b *Builder) OnExitUsage(f func(pid int, usage *unix.Rusage)) { b.sess.OnExitUsage(f) }

// OnEnd registers f to run once no task of the sandbox is left.
func (b *Builder) OnEnd(f func()) { b.sess.OnEnd(f) }

// Background runs f for the run's life, on its own goroutine; ctx ends
// with the run.
func (b *Builder) Background(f func(ctx context.Context)) { b.sess.Background(f) }

// Close registers f to release what the feature holds, when the run has
// ended or will not start.
func (b *Builder) Close(f func()) { b.closers = append(b.closers, f) }

// Plan plans every feature, in order.
func (b *Builder) Plan(features []Feature) error {
	for _, f := range features {
		if err := f.Plan(b); err != nil {
			return err
		}
	}
	return nil
}

// BuildRuleset builds the ruleset the features planned (after Plan).
func (b *Builder) BuildRuleset() error { return b.Landlock.BuildInto(b.ruleset) }

// Finish runs the finishing decisions, once the ruleset is built and every
// handler, the user's included, is in the table.
func (b *Builder) Finish() error {
	for _, f := range b.finish {
		if err := f(); err != nil {
			return err
		}
	}
	// An exception holds if its feature's handlers are all of the chain
	// (and no other feature asked one for the same syscall: each
	// feature's conditions vouch for its own handlers only).
	requests := map[int]int{}
	for _, e := range b.except {
		requests[e.nr]++
	}
	for _, e := range b.except {
		if requests[e.nr] > 1 || b.sess.Table.Len(e.nr) != e.mine || len(e.conds) == 0 {
			continue
		}
		if b.Filter.NotifyExcept == nil {
			b.Filter.NotifyExcept = make(map[int][]filter.Cond)
		}
		b.Filter.NotifyExcept[e.nr] = append(b.Filter.NotifyExcept[e.nr], e.conds...)
	}
	return nil
}

// Release frees what the features and the builder hold: the pools, the
// ruleset, and every Close. It is safe to call more than once.
func (b *Builder) Release() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
	b.closers = nil
	if b.helpers != nil {
		b.helpers.Close()
	}
	if b.unscoped != nil {
		b.unscoped.Close()
	}
	b.ruleset.Close()
}
