//go:build linux

// Package session starts one confined program and follows it to its end:
// the child stage, the seccomp supervisor and the ptrace tracer.
//
// The child stage. Go offers no hook between fork and exec, so sandlock
// clones with its own raw clone (through the runtime's fork hooks) on a
// dedicated, locked OS thread, the tracer's. The child runs nothing but raw
// syscalls: it takes a new process group, arms PR_SET_PDEATHSIG, sets
// NO_NEW_PRIVS, empties its capability sets, restricts itself with Landlock,
// installs the seccomp filter with a listener, keeps only the fds asked for
// and execs. In vfork mode (the usual one) it shares the supervisor's
// memory and fd table, so the listener is in the supervisor's table before
// the program runs, and the tracer seizes the root right after its exec
// (the fork-family syscalls wait for that). In fork mode, for a child whose
// last steps could be notified or whose exec an exec hook must see
// (OnExec), it waits at a gate pipe while the parent copies its listener
// (pidfd_getfd), starts the supervisor and seizes it.
// No thread of sandlock's own process is ever confined, no second Go
// runtime starts, and the program can create nothing untraced.
package session

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/confine"
	"github.com/sandlock-go/sandlock/internal/landlock"
	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/sysnum"
	"github.com/sandlock-go/sandlock/internal/tracer"
)

// Spec is a program and its confinement, fully resolved.
type Spec struct {
	Path string   // executable, already looked up
	Argv []string // argv[0] included
	Env  []string
	Dir  string // working directory; "" keeps the caller's

	// Files become the program's fds 0, 1, 2, …; nil entries are closed.
	Files []*os.File
	// Foreground makes the program's process group the foreground group of
	// the terminal on ForegroundTTY (an fd of this process).
	Foreground    bool
	ForegroundTTY int

	Ruleset  *landlock.Ruleset // may be nil
	Filter   []unix.SockFilter
	KeepCaps bool
	// Knobs are process settings applied in the child stage.
	Knobs Knobs
	// Supervised traces every task and, when the session's handler table
	// has any chain, installs the filter with a listener and serves it with
	// the table (a filter that notifies nothing needs neither). Without it,
	// the filter only denies and the program is followed by its process
	// group alone.
	Supervised bool
	// SelfUnnotified are notified syscalls that the filter lets through
	// unnotified when they name the calling process itself (pid 0), as
	// the child stage's own calls do.
	SelfUnnotified []int
}

// Knobs are process settings the child applies to itself before exec.
type Knobs struct {
	NoRandomizeMemory bool         // personality(ADDR_NO_RANDOMIZE)
	NoHugePages       bool         // PR_SET_THP_DISABLE
	NoCoredump        bool         // RLIMIT_CORE = 0
	CPUs              *unix.CPUSet // sched_setaffinity, if set
	MaxOpenFiles      uint64       // RLIMIT_NOFILE soft and hard, if non-zero
}

// Session is one sandbox run. Build its handler table, then Start it.
type Session struct {
	Table *notify.Table
	Log   *slog.Logger

	tr   *tracer.Tracer
	sup  *notify.Supervisor
	stop context.CancelFunc // ends the session's background work

	onFork            []func(parent int)
	onExit            []func(pid int)
	onForkInterrupted []func(parent int)
	onProcStart       []func(pid, parent int)
	onRunStart        []func()
	onExec            []func(*tracer.ExecStop)
	onExitUsage       []func(pid int, usage *unix.Rusage)
	onSeccomp         []func(tid int, data uint16) func()
	background        []func(ctx context.Context)
	onEnd             []func()
	onSignalStop      func(tid int, sig syscall.Signal) bool

	// tty is the terminal whose foreground the program took, to give back
	// at the end, or -1.
	tty int

	reasonsMu sync.Mutex
	reasons   map[int]Reason // pid → why sandlock killed it
	ended     chan struct{}
	seized    chan struct{} // closed once the tracer has seized the root (or never will)
	status    unix.WaitStatus
}

// NewSession returns a session with an empty handler table. It starts the
// tracer's thread at once, so that the thread is ready when Start needs it;
// a session that is not started must be Abandoned.
func NewSession(log *slog.Logger) *Session {
	if log == nil {
		log = slog.Default()
	}
	s := &Session{
		Table:  notify.NewTable(),
		Log:    log,
		tr:     tracer.New(),
		ended:  make(chan struct{}),
		tty:    -1,
		seized: make(chan struct{}),
	}
	for _, name := range []string{"clone", "fork", "vfork"} {
		if nr, ok := sysnum.Native().Nr(name); ok {
			s.Table.Add(nr, notify.PhaseGuard, "follow forks", true, notify.HandlerFunc(s.holdForks))
		}
	}
	return s
}

// Abandon releases a session that will not be started.
func (s *Session) Abandon() { s.tr.Abandon() }

// Start runs the child stage and returns once the program has exec'd, or
// with the error that kept it from doing so (then nothing of it ran).
func (s *Session) Start(spec *Spec) error {
	if spec.Foreground {
		s.tty = spec.ForegroundTTY
	}
	notified := s.Table.Syscalls()
	if len(s.onExec) > 0 && !spec.Supervised {
		s.tr.Abandon()
		return &StepError{Step: "exec " + spec.Path, Err: errors.New("exec hooks need the tracer, which an unsupervised sandbox does not run")}
	}
	stage, err := newChildStage(spec, spec.Supervised && len(notified) > 0)
	if err != nil {
		s.tr.Abandon()
		return &StepError{Step: "exec " + spec.Path, Err: err}
	}
	// The exec hooks must see the program's first image too: in vfork
	// mode the root execs before the tracer seizes it, in fork mode after.
	stage.vfork = !stage.noTHP && len(s.onExec) == 0 && (!stage.listen || vforkSafe(notified, spec.SelfUnnotified))
	// The session's background work ends with it; end may come before
	// Launch returns.
	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	cfg := tracer.Config{
		Trace: spec.Supervised,
		OnFork: func(parent int) {
			for _, f := range s.onFork {
				f(parent)
			}
		},
		OnProcessStart: func(pid, parent int) {
			for _, f := range s.onProcStart {
				f(pid, parent)
			}
		},
		OnProcessExit: func(pid int, usage *unix.Rusage) {
			for _, f := range s.onExitUsage {
				f(pid, usage)
			}
			for _, f := range s.onExit {
				f(pid)
			}
		},
		OnSignalInSyscall: s.signalInSyscall,
		OnSignalStop:      s.onSignalStop,
		OnSeccomp:         s.seccompHook(),
		OnEnd:             s.end,
	}
	if len(s.onExec) > 0 {
		cfg.OnExec = s.execStop
		cfg.RecordKill = s.recordExecKill
	}
	err = s.tr.Launch(cfg, func() (*tracer.Launched, error) {
		return s.launch(spec, stage)
	})
	if err != nil {
		// Launch has reaped whatever it started (which may have taken
		// the terminal before it failed).
		stop()
		s.endSupervisor()
		s.runEndHooks()
		s.restoreForeground()
		return err
	}
	for _, f := range s.onRunStart {
		f()
	}
	for _, f := range s.background {
		go f(ctx)
	}
	return nil
}

// OnFork registers f to be called when a process of the sandbox (thread
// group parent) has created a process. Call it before Start; f must not
// block.
func (s *Session) OnFork(f func(parent int)) { s.onFork = append(s.onFork, f) }

// OnForkInterrupted registers f to be called when a fork-family syscall
// of a process of the sandbox (thread group parent) was let through but
// produced no child: a signal came first and the kernel restarts it. Call
// it before Start; f must not block.
func (s *Session) OnForkInterrupted(f func(parent int)) {
	s.onForkInterrupted = append(s.onForkInterrupted, f)
}

// signalInSyscall runs on the tracer's thread (which also set s.sup) when
// a signal lands on a task in a syscall: a notified syscall interrupted
// before the supervisor received it is restarted.
func (s *Session) signalInSyscall(tid, nr, code int) (restart bool) {
	if code == tracer.ErrRestartNoIntr && len(s.onForkInterrupted) > 0 && s.forkFamily(nr) {
		parent := s.tr.TGID(tid)
		for _, f := range s.onForkInterrupted {
			f(parent)
		}
	}
	return code == tracer.ErrRestartSys && s.sup != nil && s.sup.Restartable(tid, nr)
}

// forkFamily reports whether nr creates a process or thread.
func (s *Session) forkFamily(nr int) bool {
	arch := sysnum.Native()
	for _, name := range []string{"clone", "fork", "vfork"} {
		if n, ok := arch.Nr(name); ok && n == nr {
			return true
		}
	}
	return false
}

// OnSeccomp registers f to be called on the tracer's thread when a task
// stops for a syscall the filter answers SECCOMP_RET_TRACE (see
// tracer.Config.OnSeccomp): before the syscall runs, with the filter's
// data; the function f returns, if not nil, is called at that syscall's
// exit. Every f registered is called for every such stop. Call it before
// Start; f must not block.
func (s *Session) OnSeccomp(f func(tid int, data uint16) (atExit func())) {
	s.onSeccomp = append(s.onSeccomp, f)
}

// seccompHook is the tracer's OnSeccomp: nil when nothing is registered,
// so that the tracer takes no such stops.
func (s *Session) seccompHook() func(tid int, data uint16) func() {
	switch len(s.onSeccomp) {
	case 0:
		return nil
	case 1:
		return s.onSeccomp[0]
	}
	return func(tid int, data uint16) func() {
		var exits []func()
		for _, f := range s.onSeccomp {
			if e := f(tid, data); e != nil {
				exits = append(exits, e)
			}
		}
		if len(exits) == 0 {
			return nil
		}
		return func() {
			for i := len(exits) - 1; i >= 0; i-- {
				exits[i]()
			}
		}
	}
}

// OnExec registers f to be called at every exec of a process of the
// sandbox that succeeded (the program's own first one included), with the
// process stopped: its new image is loaded and has not run its first
// instruction. The hooks run synchronously on the tracer's thread, in
// registration order, and the process resumes once they have returned;
// after one of them has called Kill, the later ones are not called. A
// failed exec calls nothing. The stop is only taken when a hook is
// registered (without one, a single-threaded exec costs nothing extra);
// registering one also makes the child stage fork rather than vfork, so
// that the tracer holds the program before its first exec. Call it before
// Start; f must not block for long (no other event of the sandbox is
// served meanwhile) and must not keep the ExecStop.
func (s *Session) OnExec(f func(*tracer.ExecStop)) { s.onExec = append(s.onExec, f) }

// execStop runs the exec hooks.
func (s *Session) execStop(st *tracer.ExecStop) {
	for _, f := range s.onExec {
		f(st)
		if st.Killed() {
			return
		}
	}
}

// recordExecKill records why an exec hook killed pid, for the run's
// result, before the kill.
func (s *Session) recordExecKill(pid int, reason string) {
	s.record(pid, ReasonDenied)
	s.Log.Warn("sandlock: process killed at exec, before it ran: "+reason, "pid", pid)
}

// ExecStops returns how many exec stops the tracer has served.
func (s *Session) ExecStops() uint64 { return s.tr.ExecStops() }

// OnExit registers f to be called when a process of the sandbox has
// exited. Call it before Start; f must not block.
func (s *Session) OnExit(f func(pid int)) { s.onExit = append(s.onExit, f) }

// OnProcessStart registers f to be called when a process of the sandbox is
// first known, with its parent (0 if unknown). The process cannot have been
// reaped during the call, so pidfd_open(pid) names it. Call it before
// Start; f must not block.
func (s *Session) OnProcessStart(f func(pid, parent int)) {
	s.onProcStart = append(s.onProcStart, f)
}

// OnStart registers f to be called once the program runs (Start is about
// to return without an error). Call it before Start.
func (s *Session) OnStart(f func()) { s.onRunStart = append(s.onRunStart, f) }

// OnExitUsage registers f to be called when a process of the sandbox has
// exited, with the rusage wait4 reported for it (its own and its reaped
// children's). Call it before Start; f must not block.
func (s *Session) OnExitUsage(f func(pid int, usage *unix.Rusage)) {
	s.onExitUsage = append(s.onExitUsage, f)
}

// Background registers f to run in its own goroutine from the moment the
// program runs; its ctx is done when the sandbox has ended. Call it before
// Start.
func (s *Session) Background(f func(ctx context.Context)) { s.background = append(s.background, f) }

// OnSignalStop sets f to be called first at every signal-delivery-stop
// of a task of the sandbox, on the tracer's thread; f returns true to
// discard the signal. Call it before Start; f must not block.
func (s *Session) OnSignalStop(f func(tid int, sig syscall.Signal) bool) { s.onSignalStop = f }

// OnEnd registers f to be called once no task of the sandbox is left (also
// when Start fails), before Wait returns. Call it before Start.
func (s *Session) OnEnd(f func()) { s.onEnd = append(s.onEnd, f) }

// Processes returns the number of live processes of the sandbox.
func (s *Session) Processes() int { return s.tr.Processes() }

// ProcessIDs returns the pids of the live processes of the sandbox.
func (s *Session) ProcessIDs() []int { return s.tr.ProcessIDs() }

// TGID returns the thread group of a task of the sandbox.
func (s *Session) TGID(tid int) int { return s.tr.TGID(tid) }

// Traced reports whether tid is a live task of the sandbox.
func (s *Session) Traced(tid int) bool { return s.tr.Traced(tid) }

// Reason is why sandlock ended a sandbox, or a process of it: recorded
// where the kill is decided, and mapped once to what the run reports.
type Reason uint8

const (
	ReasonNone        Reason = iota // nothing sandlock knows of
	ReasonKilled                    // the caller asked (Kill, a cancelled context, sandlock kill)
	ReasonTimeout                   // the caller's deadline passed
	ReasonMemoryLimit               // MaxMemory was exceeded
	ReasonDenied                    // the program was about to run what it may not
	ReasonDiskLimit                 // the copy-on-write branch went past MaxDisk
)

var reasonText = [...]string{"", "killed", "timeout", "memory limit exceeded", "denied", "disk limit exceeded"}

func (r Reason) String() string {
	if int(r) < len(reasonText) {
		return reasonText[r]
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// KillProcess SIGKILLs a process of the sandbox and records why, for the
// run's result.
func (s *Session) KillProcess(pid int, why Reason) {
	s.record(pid, why)
	// Said before it is done: a parent in the sandbox that reports the
	// kill (a shell's "Killed") comes after.
	s.Log.Warn("sandlock: process killed: "+why.String(), "pid", pid)
	unix.Kill(pid, unix.SIGKILL)
}

// KillSandbox SIGKILLs every process of the sandbox and records why as the
// root's reason, for the run's result; detail says what was measured.
func (s *Session) KillSandbox(why Reason, detail string) {
	root := s.tr.Root()
	s.record(root, why)
	s.Log.Warn("sandlock: sandbox killed: "+why.String()+": "+detail, "pid", root)
	s.tr.KillAll()
}

// record keeps the first reason given for pid.
func (s *Session) record(pid int, why Reason) {
	s.reasonsMu.Lock()
	defer s.reasonsMu.Unlock()
	if s.reasons == nil {
		s.reasons = make(map[int]Reason)
	}
	if _, ok := s.reasons[pid]; !ok {
		s.reasons[pid] = why
	}
}

// EndReason is why sandlock ended the program's root, if it did.
func (s *Session) EndReason() Reason {
	s.reasonsMu.Lock()
	defer s.reasonsMu.Unlock()
	return s.reasons[s.tr.Root()]
}

// launch clones the child, which confines itself and execs the program,
// and hands the tracer the root. It runs on the tracer's thread, so that
// the root's PR_SET_PDEATHSIG follows the thread that traces it.
func (s *Session) launch(spec *Spec, c *childStage) (*tracer.Launched, error) {
	c.ppid = uintptr(unix.Getpid())
	if c.vfork {
		return s.launchVfork(spec, c)
	}
	return s.launchFork(spec, c)
}

// launchVfork runs the vfork mode: this thread waits until the child has
// exec'd, with its listener in this process's fd table. The root then runs
// before the tracer seizes it, but it cannot create a process or thread
// before then: holdForks keeps those syscalls waiting.
func (s *Session) launchVfork(spec *Spec, c *childStage) (*tracer.Launched, error) {
	c.listener, c.failStep, c.failErr = -1, stepReady, 0
	c.high++ // above the highest source fd
	pid, errno := forkChild(c)
	if errno != 0 {
		return nil, &StepError{Step: "fork", Err: errno}
	}
	if c.failStep != stepReady {
		if c.listener >= 0 {
			unix.Close(c.listener)
		}
		reap(pid)
		close(s.seized)
		return nil, childError(spec, c.failStep, c.failErr)
	}
	s.serve(c.listener)
	release := func() error {
		close(s.seized)
		return nil
	}
	abort := func(err error) error {
		unix.Kill(pid, unix.SIGKILL)
		reap(pid)
		close(s.seized)
		return err
	}
	return &tracer.Launched{Root: pid, Release: release, Abort: abort}, nil
}

// launchFork runs the fork mode: the child announces its listener, then
// waits at a gate until the supervisor holds the listener and the tracer
// has seized it, and only then execs, so that the supervisor can serve its
// last steps.
func (s *Session) launchFork(spec *Spec, c *childStage) (*tracer.Launched, error) {
	var gate, report [2]int
	if err := unix.Pipe2(gate[:], unix.O_CLOEXEC); err != nil {
		return nil, &StepError{Step: "pipe", Err: err}
	}
	if err := unix.Pipe2(report[:], unix.O_CLOEXEC); err != nil {
		unix.Close(gate[0])
		unix.Close(gate[1])
		return nil, &StepError{Step: "pipe", Err: err}
	}
	c.gate, c.report = gate[0], report[1]
	c.high = max(c.high, gate[1], report[0], report[1]) + 1

	pid, errno := forkChild(c)
	unix.Close(gate[0])
	unix.Close(report[1])
	if errno != 0 {
		unix.Close(gate[1])
		unix.Close(report[0])
		return nil, &StepError{Step: "fork", Err: errno}
	}
	closePipes := func() {
		unix.Close(gate[1]) // the child exits on EOF, if it still waits
		unix.Close(report[0])
	}
	// abort ends a child that could not be traced; if it failed on its own
	// first, that failure is the better error.
	abort := func(err error) error {
		pfd := []unix.PollFd{{Fd: int32(report[0]), Events: unix.POLLIN}}
		if n, _ := unix.Poll(pfd, 0); n > 0 {
			if step, value, ok := readRecord(report[0]); ok && step != stepReady {
				err = childError(spec, step, value)
			}
		}
		closePipes()
		unix.Kill(pid, unix.SIGKILL)
		reap(pid)
		close(s.seized)
		return err
	}
	// release lets the traced child go on: once it has confined itself and
	// the supervisor holds its listener (if it has one), it may exec.
	release := func() error {
		defer closePipes()
		close(s.seized)
		if c.listen {
			// The child must not exec before the supervisor holds a copy of
			// its listener: the listener is close-on-exec, and a filter
			// whose listener is gone answers every notified syscall ENOSYS.
			step, value, ok := readRecord(report[0])
			if !ok {
				return &StepError{Step: "child stage", Err: errors.New("the child died before it confined itself")}
			}
			if step != stepReady {
				return childError(spec, step, value)
			}
			listener, err := takeListener(pid, int(value), report[0])
			if err != nil {
				return err
			}
			// Released first, served right after: the child's notified
			// syscalls wait in the listener's queue meanwhile.
			unix.Write(gate[1], []byte{1})
			s.serve(listener)
		} else {
			unix.Write(gate[1], []byte{1})
		}
		if step, value, ok := readRecord(report[0]); ok {
			return childError(spec, step, value)
		}
		return nil // EOF: the exec closed the pipe
	}
	return &tracer.Launched{Root: pid, Release: release, Abort: abort}, nil
}

// reap waits for the child pid, which has ended or been killed.
func reap(pid int) {
	var ws unix.WaitStatus
	for {
		if _, err := unix.Wait4(pid, &ws, unix.WALL, nil); err != unix.EINTR {
			return
		}
	}
}

// serve starts the supervisor on the listener fd, if there is one.
func (s *Session) serve(listener int) {
	if listener < 0 {
		return
	}
	s.sup = notify.Start(notify.Config{
		Listener: listener,
		Table:    s.Table,
		Log:      s.Log,
		KillAll:  func(sig syscall.Signal) { s.signalAll(sig) },
	})
}

// holdForks is the first handler of the fork-family syscalls: until the
// tracer has seized the root, no process or thread may be created, or it
// would escape the tracer.
func (s *Session) holdForks(ctx context.Context, _ *notify.HandlerCtx) notify.Action {
	select {
	case <-s.seized:
		return notify.Continue()
	case <-ctx.Done():
		return notify.Errno(unix.EAGAIN)
	}
}

// takeListener copies the child's seccomp listener, which it announced as
// fd number fd just before installing its filter, into this process. The
// child cannot say when the filter is in place: once it is, any syscall it
// makes may be a notified one that nobody serves yet. So the parent retries
// until the fd exists, watching the report pipe for a failure meanwhile.
func takeListener(pid, fd, report int) (int, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return -1, &StepError{Step: "seccomp listener", Err: fmt.Errorf("pidfd_open: %w", err)}
	}
	defer unix.Close(pidfd)
	start := time.Now()
	for {
		out, err := unix.PidfdGetfd(pidfd, fd, 0)
		if err == nil {
			return out, nil
		}
		if err != unix.EBADF {
			return -1, &StepError{Step: "seccomp listener", Err: fmt.Errorf("pidfd_getfd: %w", err)}
		}
		// Not there yet, or never will be: the child reports why. Installing
		// a filter takes the child tens of microseconds, so yield the CPU to
		// it for a few milliseconds before sleeping between tries.
		timeout := 0
		waited := time.Since(start)
		if waited > 5*time.Millisecond {
			timeout = 1
		}
		pfd := []unix.PollFd{{Fd: int32(report), Events: unix.POLLIN}}
		if n, _ := unix.Poll(pfd, timeout); n > 0 {
			if step, value, ok := readRecord(report); ok {
				return -1, &StepError{Step: stepNames[min(int(step), len(stepNames)-1)], Err: syscall.Errno(value)}
			}
			return -1, &StepError{Step: "seccomp listener", Err: errors.New("the child died before it installed its filter")}
		}
		if waited > 10*time.Second {
			return -1, &StepError{Step: "seccomp listener", Err: errors.New("the child did not install its filter")}
		}
		syscall.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
	}
}

// readRecord reads one {step, value} record of the report pipe; ok is false
// at EOF.
func readRecord(fd int) (step, value uint32, ok bool) {
	var rec [8]byte
	n := 0
	for n < len(rec) {
		m, err := unix.Read(fd, rec[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil || m == 0 {
			return 0, 0, false
		}
		n += m
	}
	return binary.NativeEndian.Uint32(rec[:4]), binary.NativeEndian.Uint32(rec[4:]), true
}

func childError(spec *Spec, step, value uint32) error {
	name := "child stage"
	if int(step) < len(stepNames) {
		name = stepNames[step]
	}
	if step == stepExec {
		name = "exec " + spec.Path
	}
	return &StepError{Step: name, Err: syscall.Errno(value)}
}

// newChildStage prepares what the forked child needs.
func newChildStage(spec *Spec, listen bool) (*childStage, error) {
	path, err := syscall.BytePtrFromString(spec.Path)
	if err != nil {
		return nil, err
	}
	argv, err := syscall.SlicePtrFromStrings(spec.Argv)
	if err != nil {
		return nil, err
	}
	envv, err := syscall.SlicePtrFromStrings(spec.Env)
	if err != nil {
		return nil, err
	}
	c := &childStage{path: path, argv: argv, envv: envv, tty: -1, ruleset: -1, listen: listen}
	if spec.Dir != "" {
		if c.dir, err = syscall.BytePtrFromString(spec.Dir); err != nil {
			return nil, err
		}
	}
	if spec.Foreground {
		c.tty = spec.ForegroundTTY
	}
	c.fds = make([]int, len(spec.Files))
	c.high = len(spec.Files)
	for i, f := range spec.Files {
		c.fds[i] = -1
		if f != nil {
			c.fds[i] = int(f.Fd())
			c.high = max(c.high, c.fds[i])
		}
	}
	if spec.Ruleset != nil {
		c.ruleset = spec.Ruleset.FD()
	}
	if len(spec.Filter) == 0 {
		return nil, errors.New("no seccomp filter")
	}
	k := spec.Knobs
	c.noRandomize, c.noTHP, c.noCore = k.NoRandomizeMemory, k.NoHugePages, k.NoCoredump
	c.cpus = k.CPUs
	if k.MaxOpenFiles > 0 {
		c.nofile = &unix.Rlimit{Cur: k.MaxOpenFiles, Max: k.MaxOpenFiles}
	}
	c.zeroRlimit = &unix.Rlimit{}
	c.filter = &unix.SockFprog{Len: uint16(len(spec.Filter)), Filter: &spec.Filter[0]}
	if !spec.KeepCaps {
		c.dropCaps = true
		c.capHdr = &unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		c.capData = new([2]unix.CapUserData)
		var now [2]unix.CapUserData
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		if err := unix.Capget(&hdr, &now[0]); err != nil {
			return nil, err
		}
		c.boundingOK = now[0].Effective&(1<<confine.CapSetPCap) != 0
		c.lastCap = confine.LastCap()
	}
	return c, nil
}

// end stops the supervisor and waits for its last answer, and ends the
// session. It runs on the tracer's goroutine once no task is left.
func (s *Session) end(root tracer.Exit) {
	s.stop()
	s.endSupervisor()
	s.runEndHooks()
	s.restoreForeground()
	s.status = root.Status
	close(s.ended)
}

// restoreForeground gives the terminal the program took back to the
// caller's process group.
func (s *Session) restoreForeground() {
	if s.tty < 0 {
		return
	}
	// The caller is a background group now: tcsetpgrp would stop it with
	// SIGTTOU unless the signal is ignored for the call.
	signal.Ignore(syscall.SIGTTOU)
	unix.IoctlSetPointerInt(s.tty, unix.TIOCSPGRP, unix.Getpgrp())
	signal.Reset(syscall.SIGTTOU)
}

// runEndHooks runs the OnEnd hooks, once no task of the sandbox is left.
func (s *Session) runEndHooks() {
	for _, f := range s.onEnd {
		f()
	}
}

// endSupervisor stops the supervisor, if there is one, once no task of the
// sandbox is left, and waits for its last answer.
func (s *Session) endSupervisor() {
	if s.sup != nil {
		s.sup.Stop()
		s.sup.Finish()
		<-s.sup.Done()
	}
}

// Pid is the program's pid, the leader of its process group.
func (s *Session) Pid() int { return s.tr.Root() }

// Wait blocks until the program has exited and nothing of the sandbox is
// left: every task gone and every answer sent.
func (s *Session) Wait() unix.WaitStatus {
	<-s.ended
	return s.status
}

// Ended is closed once Wait would return.
func (s *Session) Ended() <-chan struct{} { return s.ended }

// Kill SIGKILLs every process of the sandbox, recording why as the root's
// reason (the first reason given wins: a sandbox the memory limit killed
// is not then reported as cancelled).
func (s *Session) Kill(why Reason) {
	s.record(s.tr.Root(), why)
	s.tr.KillAll()
}

// Signal sends sig to every process of the sandbox.
func (s *Session) Signal(sig syscall.Signal) error {
	select {
	case <-s.ended:
		return ErrEnded
	default:
	}
	s.signalAll(sig)
	return nil
}

func (s *Session) signalAll(sig syscall.Signal) {
	if s.tr != nil {
		s.tr.Signal(sig)
	}
}

// ErrEnded is returned for operations on a sandbox that has ended.
var ErrEnded = errors.New("sandbox has ended")

// LookPath finds file like execvp(3) would in the program's environment.
func LookPath(file string, env []string) (string, error) {
	if file == "" {
		return "", fmt.Errorf("empty command")
	}
	for i := 0; i < len(file); i++ {
		if file[i] == '/' {
			return file, nil
		}
	}
	path := "/usr/local/bin:/usr/bin:/bin"
	for _, kv := range env {
		if len(kv) > 5 && kv[:5] == "PATH=" {
			path = kv[5:]
		}
	}
	var firstErr error
	start := 0
	for i := 0; i <= len(path); i++ {
		if i < len(path) && path[i] != ':' {
			continue
		}
		dir := path[start:i]
		start = i + 1
		if dir == "" {
			dir = "."
		}
		cand := dir + "/" + file
		st, err := os.Stat(cand)
		if err != nil {
			if firstErr == nil && !errors.Is(err, os.ErrNotExist) {
				firstErr = err
			}
			continue
		}
		if st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			return cand, nil
		}
		if firstErr == nil {
			firstErr = &os.PathError{Op: "exec", Path: cand, Err: syscall.EACCES}
		}
	}
	if firstErr != nil {
		return "", firstErr
	}
	return "", fmt.Errorf("%s: %w", file, ErrNotFound)
}
