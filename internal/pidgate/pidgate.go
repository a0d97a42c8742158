//go:build linux

// Package pidgate keeps the syscalls that name another process — by pid,
// by process group or by user — on the sandbox's own processes.
//
// The kernel lets a process change the resource limits, nice value,
// scheduling policy, CPU affinity and I/O priority of every process of its
// user (prlimit64, setpriority, sched_set*, ioprio_set), with plain uid
// checks that no Landlock hook sees. From inside a sandbox that reaches
// the user's other processes, the supervisor included (an RLIMIT_CPU of one
// second kills it). The syscalls whose permission check is
// ptrace_may_access (kcmp, get_robust_list, migrate_pages, move_pages,
// process_madvise, pidfd_getfd) are refused by Landlock's ptrace
// restriction, and signals (kill, tgkill, rt_sigqueueinfo,
// pidfd_send_signal, F_SETOWN's SIGIO) by its signal scope: those stay the
// kernel's.
//
// The filter lets a guarded syscall through unnotified only when its
// register arguments name the caller itself (pid 0; which = PROCESS and
// who = 0 for the priority calls; pgid 0 for setpgid). Everything else
// reaches the gate, a builtin handler that runs before every other one on
// these syscalls:
//
//   - a pid or tid target is allowed (Continue) only if it is a live task
//     of the sandbox, which the tracer knows; any other fails with ESRCH,
//     the supervisor included. The verdict depends on a register value
//     only, which the program cannot change after the check.
//   - process-group and user targets (PRIO_PGRP, PRIO_USER,
//     IOPRIO_WHO_PGRP, IOPRIO_WHO_USER) are computed over the sandbox's
//     tasks alone and performed on their behalf, task by task, on a helper
//     thread confined like the program (no capabilities: the permission
//     checks are the program's), with the kernel's answer: getpriority's
//     20-nice encoding, ESRCH when no task matches, the first or last error
//     as the kernel folds them.
//   - setpgid may only move a process into a group of the sandbox (or make
//     a new one): the sandbox's root shares its caller's session, whose
//     other groups (the caller's shell, sandlock's own) are refused with
//     EPERM, the kernel's answer for a group it may not join.
//
// One race remains, and is accepted: a sandbox task found live may exit,
// be reaped by the tracer, and its pid be handed to a new process outside
// between the check and the kernel's own lookup a few microseconds later.
// That takes a wrap of the whole pid space within that window (the pid of
// a traced task stays taken until the tracer reaps it), by processes
// outside the sandbox's control.
//
// Without a supervisor nothing can tell the sandbox's processes from
// others, so SelfOnly gives the filter rules that refuse every call that
// would change another process.
package pidgate

import (
	"context"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/confine"
	"github.com/sandlock-go/sandlock/internal/filter"
	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/plan"
	"github.com/sandlock-go/sandlock/internal/sysnum"
)

// target is how a guarded syscall names the process it acts on.
type target uint8

const (
	// byPid: argument 0 is a pid or tid; 0 is the caller.
	byPid target = iota
	// byPidOnly: argument 0 is a pid; 0 is no process (pidfd_open).
	byPidOnly
	// byPrio: setpriority(which, who, prio), getpriority(which, who).
	byPrio
	// byIOPrio: ioprio_set(which, who, ioprio), ioprio_get(which, who).
	byIOPrio
	// bySetpgid: setpgid(pid, pgid).
	bySetpgid
)

// guarded are the syscalls the gate serves. changes marks those that act
// on their target (the others only read it): without a supervisor, only
// those are refused, and readArg names the argument whose being NULL makes
// a call of them a read (prlimit64 without new limits).
var guarded = [...]struct {
	name    string
	target  target
	changes bool
	readArg int
}{
	{name: "prlimit64", target: byPid, changes: true, readArg: 2},
	{name: "sched_setaffinity", target: byPid, changes: true},
	{name: "sched_getaffinity", target: byPid, changes: false},
	{name: "sched_setscheduler", target: byPid, changes: true},
	{name: "sched_setparam", target: byPid, changes: true},
	{name: "sched_setattr", target: byPid, changes: true},
	{name: "sched_getscheduler", target: byPid, changes: false},
	{name: "sched_getparam", target: byPid, changes: false},
	{name: "sched_getattr", target: byPid, changes: false},
	{name: "sched_rr_get_interval", target: byPid, changes: false},
	{name: "getpgid", target: byPid, changes: false},
	{name: "getsid", target: byPid, changes: false},
	{name: "pidfd_open", target: byPidOnly, changes: false},
	{name: "setpriority", target: byPrio, changes: true},
	{name: "getpriority", target: byPrio, changes: false},
	{name: "ioprio_set", target: byIOPrio, changes: true},
	{name: "ioprio_get", target: byIOPrio, changes: false},
	{name: "setpgid", target: bySetpgid, changes: true},
}

// who selectors of the priority calls.
const (
	prioProcess = unix.PRIO_PROCESS // 0
	prioPgrp    = unix.PRIO_PGRP    // 1
	prioUser    = unix.PRIO_USER    // 2

	ioprioWhoProcess = 1
	ioprioWhoPgrp    = 2
	ioprioWhoUser    = 3
)

// selfConds are the conditions under which a call targets the caller
// itself by its register values alone. Pids are C ints, which the kernel
// truncates: only the low 32 bits are tested (filter.Test's default).
func selfConds(t target) []filter.Cond {
	eq := func(arg int, v uint32) filter.Test { return filter.Test{Arg: arg, Value: v} }
	switch t {
	case byPid:
		return []filter.Cond{{Tests: []filter.Test{eq(0, 0)}}}
	case byPrio:
		return []filter.Cond{{Tests: []filter.Test{eq(0, prioProcess), eq(1, 0)}}}
	case byIOPrio:
		return []filter.Cond{{Tests: []filter.Test{eq(0, ioprioWhoProcess), eq(1, 0)}}}
	case bySetpgid:
		// The caller (or its child) in a group of its own: pgid 0.
		return []filter.Cond{{Tests: []filter.Test{eq(1, 0)}}}
	}
	return nil // pidfd_open: pid 0 is invalid, every call is judged
}

// Config configures a Gate.
type Config struct {
	// Traced reports whether tid is a live task of the sandbox.
	Traced func(tid int) bool
	// TGID returns the thread group of a task of the sandbox.
	TGID func(tid int) int
	// ProcessIDs lists the sandbox's live processes.
	ProcessIDs func() []int
	// Pool runs the changes made on the program's behalf, on threads
	// confined exactly like the program.
	Pool *confine.Pool
}

// Gate is the builtin handler family. Build it with New, Register it
// before every other handler of these syscalls, and give the filter
// Except's conditions once every handler is registered.
type Gate struct {
	cfg     Config
	targets map[int]target
}

// New returns a gate.
func New(cfg Config) *Gate {
	g := &Gate{cfg: cfg, targets: map[int]target{}}
	arch := sysnum.Native()
	for _, s := range guarded {
		if nr, ok := arch.Nr(s.name); ok {
			g.targets[nr] = s.target
		}
	}
	return g
}

// Feature is the pid gate as a builtin feature. In a supervised sandbox it
// adds a check on every guarded syscall (first of the guard phase, before
// any other handler), and on the priority calls a handler of the act phase
// that performs process-group and user targets on the sandbox's behalf;
// the filter lets a call through unnotified when its registers name the
// caller and nobody else watches the syscall. Without a supervisor the
// filter alone refuses changes to any other process (SelfOnly).
type Feature struct{}

// Plan adds the gate.
func (Feature) Plan(b *plan.Builder) error {
	if !b.Supervised {
		b.Filter.SelfOnly = SelfOnly(b.Denied)
		return nil
	}
	run := b.Run()
	g := New(Config{Traced: run.Traced, TGID: run.TGID, ProcessIDs: run.ProcessIDs, Pool: b.Helpers()})
	for _, s := range guarded {
		nr, ok := b.Arch.Nr(s.name)
		if !ok || b.Denied(nr) {
			continue // the filter refuses it
		}
		mine := 1
		switch s.target {
		case byPid, byPidOnly:
			b.Handle(nr, plan.Guard, "pid gate", true, notify.HandlerFunc(g.checkPid))
		case bySetpgid:
			// Reads /proc for a group's members: not quick.
			b.Handle(nr, plan.Guard, "pid gate", false, notify.HandlerFunc(g.checkSetpgid))
		case byPrio, byIOPrio:
			b.Handle(nr, plan.Guard, "pid gate", true, notify.HandlerFunc(g.checkWho))
			b.Handle(nr, plan.Act, "pid gate: groups and users", false, notify.HandlerFunc(g.performWho))
			mine = 2
		}
		if conds := selfConds(s.target); len(conds) > 0 {
			b.NotifyExcept(nr, mine, conds...)
		}
	}
	return nil
}

// SelfOnly returns the filter rules of a sandbox without a supervisor: each
// syscall that would change another process goes through only when its
// register arguments name the caller, and fails with ESRCH otherwise
// (setpgid into another group with EPERM). Calls that only read another
// process are left to the kernel; they tell nothing /proc does not. denied
// syscalls get no rule.
func SelfOnly(denied func(nr int) bool) []filter.Rule {
	arch := sysnum.Native()
	var out []filter.Rule
	for _, s := range guarded {
		nr, ok := arch.Nr(s.name)
		if !ok || !s.changes || denied(nr) {
			continue
		}
		refuse := filter.Errno(unix.ESRCH)
		if s.target == bySetpgid {
			refuse = filter.Errno(unix.EPERM)
		}
		conds := selfConds(s.target)
		if s.readArg > 0 {
			// A NULL pointer in both halves.
			conds = append(conds, filter.Cond{Tests: []filter.Test{{Arg: s.readArg}, {Arg: s.readArg, High: true}}})
		}
		out = append(out, filter.Rule{Nr: nr, Conds: conds, Action: refuse})
	}
	return out
}

// checkPid allows a pid target only if it is a task of the sandbox.
func (g *Gate) checkPid(_ context.Context, hc *notify.HandlerCtx) notify.Action {
	return g.allowPid(int32(hc.Notif.Data.Args[0]))
}

// allowPid judges a pid argument. 0 is the caller (or, for pidfd_open, no
// process, which the kernel refuses); no task has a negative pid, so the
// kernel answers those as it would natively (ESRCH or EINVAL).
func (g *Gate) allowPid(pid int32) notify.Action {
	if pid <= 0 || g.cfg.Traced(int(pid)) {
		return notify.Continue()
	}
	return notify.Errno(unix.ESRCH)
}

// who decodes the priority calls' (which, who) into a selector.
func (g *Gate) who(hc *notify.HandlerCtx) (sel selector, who int32) {
	args := hc.Notif.Data.Args
	which, who := int32(args[0]), int32(args[1])
	process, pgrp, user := int32(prioProcess), int32(prioPgrp), int32(prioUser)
	if g.targets[int(hc.Notif.Data.Nr)] == byIOPrio {
		process, pgrp, user = ioprioWhoProcess, ioprioWhoPgrp, ioprioWhoUser
	}
	switch which {
	case process:
		return selProcess, who
	case pgrp:
		return selPgrp, who
	case user:
		return selUser, who
	}
	return selInvalid, who
}

type selector uint8

const (
	selInvalid selector = iota // the kernel answers EINVAL
	selProcess
	selPgrp
	selUser
)

// checkWho judges a priority call's process target; group and user targets
// go on to performWho, after the user handlers.
func (g *Gate) checkWho(_ context.Context, hc *notify.HandlerCtx) notify.Action {
	sel, who := g.who(hc)
	if sel == selProcess {
		return g.allowPid(who)
	}
	return notify.Continue()
}

// performWho answers a priority call on a process group or a user,
// computed over the sandbox's tasks only.
func (g *Gate) performWho(_ context.Context, hc *notify.HandlerCtx) notify.Action {
	sel, who := g.who(hc)
	if sel != selPgrp && sel != selUser {
		return notify.Continue()
	}
	tids, err := g.members(hc, sel, who)
	if err != nil {
		return notify.Errno(errnoOf(err, unix.ESRCH))
	}
	args := hc.Notif.Data.Args
	switch nr, arch := int(hc.Notif.Data.Nr), sysnum.Native(); nr {
	case arch.MustNr("getpriority"):
		return foldGet(tids, func(tid int) (int64, syscall.Errno) {
			return rawGet(unix.SYS_GETPRIORITY, prioProcess, uintptr(tid))
		}, func(a, b int64) int64 { return max(a, b) })
	case arch.MustNr("ioprio_get"):
		return foldGet(tids, effectiveIOPrio, func(a, b int64) int64 { return min(a, b) })
	case arch.MustNr("setpriority"):
		// The kernel clamps the value before looking at any task.
		nice := min(max(int32(args[2]), -20), 19)
		return g.foldSet(tids, func(tid int) syscall.Errno {
			return rawSet(unix.SYS_SETPRIORITY, prioProcess, tid, int(nice))
		}, false)
	case arch.MustNr("ioprio_set"):
		ioprio := int(int32(args[2]))
		return g.foldSet(tids, func(tid int) syscall.Errno {
			return rawSet(unix.SYS_IOPRIO_SET, ioprioWhoProcess, tid, ioprio)
		}, true)
	}
	return notify.Errno(unix.ENOSYS)
}

// foldGet reads a value of every task and combines them as the kernel
// does (getpriority: the highest 20-nice; ioprio_get: the best, i.e.
// lowest, value). Tasks that have gone meanwhile are skipped; none left is
// ESRCH.
func foldGet(tids []int, get func(tid int) (int64, syscall.Errno), best func(a, b int64) int64) notify.Action {
	found := false
	var val int64
	for _, tid := range tids {
		v, errno := get(tid)
		if errno != 0 {
			continue
		}
		if !found {
			val, found = v, true
		} else {
			val = best(val, v)
		}
	}
	if !found {
		return notify.Errno(unix.ESRCH)
	}
	return notify.ReturnValue(val)
}

// foldSet changes every task on a confined helper thread and answers as
// the kernel does: ESRCH when no task was there; otherwise setpriority
// keeps the last error (a later success does not clear it) and ioprio_set
// stops at the first one (stopAtError).
func (g *Gate) foldSet(tids []int, set func(tid int) syscall.Errno, stopAtError bool) notify.Action {
	result := unix.ESRCH
	err := g.cfg.Pool.Do(func() {
		for _, tid := range tids {
			errno := set(tid)
			switch {
			case errno == unix.ESRCH:
				// Gone since it was listed: as if it had not matched.
				continue
			case errno == 0:
				if result == unix.ESRCH {
					result = 0
				}
			default:
				result = errno
				if stopAtError {
					return
				}
			}
		}
	})
	if err != nil {
		// The sandbox is ending; nothing was changed.
		return notify.Errno(unix.ESRCH)
	}
	if result != 0 {
		return notify.Errno(result)
	}
	return notify.ReturnValue(0)
}

// I/O priority classes.
const (
	ioprioClassShift = 13
	ioprioClassRT    = 1
	ioprioClassBE    = 2
	ioprioClassIdle  = 3
)

// effectiveIOPrio is the I/O priority the kernel's ioprio_get folds for a
// group or a user: the task's own (what ioprio_get(IOPRIO_WHO_PROCESS)
// answers) or, when it has none (class NONE), the one its scheduling
// policy and nice value give it.
func effectiveIOPrio(tid int) (int64, syscall.Errno) {
	prio, errno := rawGet(unix.SYS_IOPRIO_GET, ioprioWhoProcess, uintptr(tid))
	if errno != 0 || prio>>ioprioClassShift != 0 {
		return prio, errno
	}
	policy, errno := rawGet(unix.SYS_SCHED_GETSCHEDULER, uintptr(tid), 0)
	if errno != 0 {
		return 0, errno
	}
	rlimNice, errno := rawGet(unix.SYS_GETPRIORITY, prioProcess, uintptr(tid)) // 20 - nice
	if errno != 0 {
		return 0, errno
	}
	class := int64(ioprioClassBE)
	switch policy &^ unix.SCHED_RESET_ON_FORK {
	case unix.SCHED_IDLE:
		class = ioprioClassIdle
	case unix.SCHED_FIFO, unix.SCHED_RR, unix.SCHED_DEADLINE:
		class = ioprioClassRT
	}
	nice := 20 - rlimNice
	return class<<ioprioClassShift | (nice+20)/5, 0
}

// rawGet makes a syscall that reads, with two arguments.
func rawGet(nr, a, b uintptr) (int64, syscall.Errno) {
	r, _, errno := unix.RawSyscall(nr, a, b, 0)
	return int64(r), errno
}

// rawSet makes a syscall that changes a task: which, tid, value.
func rawSet(nr uintptr, which, tid, value int) syscall.Errno {
	_, _, errno := unix.RawSyscall(nr, uintptr(which), uintptr(tid), uintptr(value))
	return errno
}

// errnoOf returns err's errno, or def.
func errnoOf(err error, def syscall.Errno) syscall.Errno { return notify.ErrnoFor(err, def) }
