//go:build linux

// Package tracer keeps track of every process and thread of a sandbox with
// ptrace, for three guarantees no other unprivileged mechanism gives:
//
//   - fail closed: the sandbox's root is seized with PTRACE_O_EXITKILL and
//     every descendant is attached automatically (TRACEFORK, TRACEVFORK,
//     TRACECLONE), so if the supervisor dies, the kernel SIGKILLs them all,
//     including processes that left the process group or were orphaned;
//   - nothing survives a run: the tracer knows every live task, so killing
//     the sandbox kills all of them, and a traced task's pid cannot be
//     recycled before the tracer has seen it exit;
//   - exact process accounting: fork events and exits give the number of
//     live processes at any time (threads are told apart from processes).
//
// The tracer only watches: it resumes every stop at once, re-delivers every
// signal, and keeps job control working (group-stops are held with
// PTRACE_LISTEN, as ptrace(2) prescribes for seized tracees). The one place
// where it lets others act is the exec stop (Config.OnExec, see ExecStop):
// a new image, loaded and not yet run, handed to hooks on the tracer's
// thread.
//
// An exec from a thread that is not its process's leader changes tids: the
// kernel gives the exec'ing thread the leader's tid, and its former tid
// disappears without any exit report. Only PTRACE_EVENT_EXEC tells the
// tracer which tid went away, so every non-leader thread is traced with
// PTRACE_O_TRACEEXEC even when no hook asks for exec stops (a process's
// leader, which runs every single-threaded exec, is not): the books never
// keep a tid the kernel may give to another process.
package tracer

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/sandlock-go/sandlock/internal/procfs"
	"golang.org/x/sys/unix"
)

// The kernel's syscall restart codes (include/linux/errno.h), negated in a
// task's return register until it handles a signal.
const (
	ErrRestartSys    = 512 // EINTR under a handler without SA_RESTART
	ErrRestartNoIntr = 513 // always restarted (an interrupted fork)
	errRestartLast   = 516 // ERESTART_RESTARTBLOCK
)

const (
	wNoThread = 0x20000000 // __WNOTHREAD: only this thread's children and tracees
	// options are every tracee's; threads that are not their process's
	// leader also get PTRACE_O_TRACEEXEC (see the package comment).
	options = unix.PTRACE_O_EXITKILL | unix.PTRACE_O_TRACEFORK | unix.PTRACE_O_TRACEVFORK | unix.PTRACE_O_TRACECLONE
)

// Exit is how the sandbox's root process ended.
type Exit struct {
	Status unix.WaitStatus
}

// task is a traced thread.
type task struct {
	tgid int
	// fresh: the task has not reported its first stop yet.
	fresh bool
	// opts are its ptrace options, as far as the tracer knows (0: not
	// known). A new task inherits its creator thread's.
	opts int
}

// Tracer follows one sandbox from a dedicated OS thread, which also forks
// its root: the root's parent, its tracer and the thread whose exit fires
// the root's PR_SET_PDEATHSIG are one and the same, so the root's events
// and exit are this thread's alone to wait for.
type Tracer struct {
	root  int
	trace bool

	mu    sync.Mutex
	tasks map[int]task // tid → task
	procs int          // tasks that are thread-group leaders
	dying bool         // every task is being killed

	launches chan launchReq
	started  chan error // the launch's outcome
	rootExit Exit       // how the root ended; set before done is closed
	done     chan struct{}
	// onProcStart, onProcExit, onFork and onSignal are called on the
	// tracer's thread.
	onProcStart func(pid, parent int)
	onProcExit  func(pid int, usage *unix.Rusage)
	onFork      func(parent int)
	onSignal    func(tid, nr, code int) bool
	onStop      func(tid int, sig syscall.Signal) bool
	onExec      func(*ExecStop)
	recordKill  func(pid int, reason string)
	// procOpts and threadOpts are the ptrace options of a process's
	// leader and of its other threads.
	procOpts, threadOpts int
	execStops            atomic.Uint64
	// onSeccomp serves PTRACE_EVENT_SECCOMP stops; atExit holds, by tid,
	// what to call at the exit of a syscall it asked to see end. Both are
	// the tracer thread's alone.
	onSeccomp func(tid int, data uint16) (atExit func())
	atExit    map[int]func()
}

// Config for Launch.
type Config struct {
	// Trace makes the tracer ptrace the root and everything it creates. If
	// false, the tracer only forks and reaps the root, and kills its
	// process group when it exits.
	Trace bool
	// OnProcessStart, if set, is called when a process (not thread) of the
	// sandbox is first known, with the pid of its parent (0 if unknown).
	// The process cannot have been reaped yet: it is a tracee whose exit
	// the tracer has not waited for, so its pid is stable during the call
	// (pidfd_open on it names that process). It must not block.
	OnProcessStart func(pid, parent int)
	// OnProcessExit, if set, is called when a traced process (not thread)
	// has exited, with the rusage wait4 reported for it (its own and its
	// reaped children's). It must not block.
	OnProcessExit func(pid int, usage *unix.Rusage)
	// OnFork, if set, is called when a process of thread group parent has
	// created a process (not a thread). It must not block.
	OnFork func(parent int)
	// OnSignalInSyscall, if set, is called at a signal-delivery-stop of a
	// task whose syscall nr is about to end with the kernel's restart code
	// code (ErrRestartSys … 516) because of the signal. For ErrRestartSys,
	// which becomes EINTR under a handler without SA_RESTART, restart true
	// restarts the syscall instead: a syscall the seccomp filter sent to the
	// supervisor, interrupted while it waited to be received, must behave as
	// the native one, which the signal would not have interrupted. It runs
	// on the tracer's thread and must not block. (amd64 only: elsewhere the
	// kernel decides before the stop.)
	OnSignalInSyscall func(tid, nr, code int) (restart bool)
	// OnSignalStop, if set, is called first at every signal-delivery-stop,
	// on the tracer's thread (where the task's registers may be read and
	// written); suppress true discards the signal. It must not block.
	OnSignalStop func(tid int, sig syscall.Signal) (suppress bool)
	// OnSeccomp, if set, makes the tracer take the stops of the syscalls
	// the seccomp filter answers SECCOMP_RET_TRACE (PTRACE_O_TRACESECCOMP)
	// and call it there, on the tracer's thread, before the syscall runs,
	// with the task and the filter's data. It may change the task's
	// registers (the kernel runs the syscall with them); the function it
	// returns, if not nil, is called when that syscall has returned or been
	// interrupted, before a signal is delivered or the syscall restarted,
	// to put back what it changed. It must not block.
	OnSeccomp func(tid int, data uint16) (atExit func())
	// OnExec, if set, is called at every exec of a process of the sandbox
	// that succeeded, once its new image is loaded and before it runs its
	// first instruction (PTRACE_EVENT_EXEC), on the tracer's thread; the
	// process resumes when it returns. When it is nil, the leaders of
	// processes are not traced with PTRACE_O_TRACEEXEC: a single-threaded
	// exec takes no extra stop. An exec that fails produces no call.
	OnExec func(*ExecStop)
	// RecordKill, if set, is called by ExecStop.Kill with the pid and the
	// reason, before the SIGKILL.
	RecordKill func(pid int, reason string)
	// OnEnd, if set, is called once no task of a launched sandbox is left,
	// on the tracer's goroutine before Done is closed, with how the root
	// ended. Whoever waits for the sandbox's end is then woken straight by
	// the tracer's thread, with no other goroutine in between.
	OnEnd func(root Exit)
}

// Launch starts the sandbox's root on the tracer's thread. The root has
// exec'd when Launch returns, or execs once released. When Launch fails,
// it has reaped whatever it started.
type Launch func() (*Launched, error)

// Launched is a root that waits to be released.
type Launched struct {
	Root int
	// Release is called once the root is traced (or has already ended):
	// the root may now exec, if it has not, and create processes and
	// threads. An error (the root could not exec) ends the sandbox.
	Release func() error
	// Abort ends a root that could not be traced and reaps it; it returns
	// the error to report.
	Abort func(err error) error
}

// New starts a tracer's dedicated OS thread, which waits for Launch (or
// Abandon). Starting a thread takes a while; starting it early takes it off
// the critical path of a sandbox's start.
func New() *Tracer {
	t := &Tracer{
		tasks:    make(map[int]task),
		launches: make(chan launchReq, 1),
		started:  make(chan error, 1),
		done:     make(chan struct{}),
	}
	go t.run()
	return t
}

type launchReq struct {
	cfg    Config
	launch Launch
}

// Launch runs launch on the tracer's thread; seizes the root before it is
// released (so the kernel reports every process and thread it will ever
// create, and kills them all if the supervisor dies); releases it, and then
// follows the sandbox until no task is left. It returns once the root runs
// the program, or with the error that kept it from doing so, in which case
// nothing of the program ran and the tracer has ended.
func (t *Tracer) Launch(cfg Config, launch Launch) error {
	t.launches <- launchReq{cfg, launch}
	if err := <-t.started; err != nil {
		<-t.done
		return err
	}
	return nil
}

// Abandon ends a tracer that will never launch anything.
func (t *Tracer) Abandon() {
	close(t.launches)
	<-t.done
}

// Root is the root's pid.
func (t *Tracer) Root() int { return t.root }

// Done is closed when no task of the sandbox is left.
func (t *Tracer) Done() <-chan struct{} { return t.done }

// Processes returns the number of live processes (not threads).
func (t *Tracer) Processes() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.procs
}

// ProcessIDs returns the pids of the live processes (thread-group leaders)
// of the sandbox, in no particular order.
func (t *Tracer) ProcessIDs() []int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]int, 0, t.procs)
	for tid, tk := range t.tasks {
		if tid == tk.tgid {
			out = append(out, tid)
		}
	}
	return out
}

// TGID returns the thread group of a task of the sandbox.
func (t *Tracer) TGID(tid int) int {
	t.mu.Lock()
	tk, ok := t.tasks[tid]
	t.mu.Unlock()
	if ok {
		return tk.tgid
	}
	return procfs.TGID(tid)
}

// Traced reports whether tid is a live task of the sandbox.
func (t *Tracer) Traced(tid int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.tasks[tid]
	return ok
}

// Signal sends sig to every live process of the sandbox.
func (t *Tracer) Signal(sig syscall.Signal) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.signalLocked(sig)
}

func (t *Tracer) signalLocked(sig syscall.Signal) {
	if !t.trace {
		if t.root > 0 {
			unix.Kill(-t.root, sig)
		}
		return
	}
	for tid, tk := range t.tasks {
		if tid == tk.tgid {
			unix.Kill(tid, sig)
		}
	}
}

// KillAll SIGKILLs every task, now and any that is still being created.
func (t *Tracer) KillAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dying = true
	t.signalLocked(unix.SIGKILL)
}

func (t *Tracer) run() {
	// One thread for the whole run: ptrace requests are only accepted from
	// the tracing thread, PTRACE_O_EXITKILL fires when it exits, and so
	// does the root's PR_SET_PDEATHSIG.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if hasChildren() {
		// This thread once forked a child the caller still has (os/exec
		// forks from whatever thread it runs on): waiting for any child of
		// this thread would wait for it too, and could steal its exit
		// status. Run on another thread; this one stays locked and blocked
		// meanwhile, so that the runtime cannot hand it back.
		hopped := make(chan struct{})
		go func() {
			defer close(hopped)
			t.run()
		}()
		<-hopped
		return
	}
	defer close(t.done)

	req, ok := <-t.launches
	if !ok {
		return
	}
	t.trace, t.onProcStart, t.onProcExit, t.onFork, t.onSignal = req.cfg.Trace, req.cfg.OnProcessStart, req.cfg.OnProcessExit, req.cfg.OnFork, req.cfg.OnSignalInSyscall
	t.onStop = req.cfg.OnSignalStop // copy-on-write workdir (issue 18): syscall redirects
	t.onExec, t.recordKill = req.cfg.OnExec, req.cfg.RecordKill
	t.procOpts, t.threadOpts = options, options|unix.PTRACE_O_TRACEEXEC
	if t.onExec != nil {
		t.procOpts = t.threadOpts
	}
	if req.cfg.OnSeccomp != nil {
		// Every tracee stops at the syscalls the filter traces;
		// TRACESYSGOOD tells the syscall-exit stops asked for apart from
		// SIGTRAPs.
		t.onSeccomp, t.atExit = req.cfg.OnSeccomp, make(map[int]func())
		t.procOpts |= unix.PTRACE_O_TRACESECCOMP | unix.PTRACE_O_TRACESYSGOOD
		t.threadOpts |= unix.PTRACE_O_TRACESECCOMP | unix.PTRACE_O_TRACESYSGOOD
	}
	l, err := req.launch()
	if err != nil {
		t.started <- err
		return
	}
	t.mu.Lock()
	t.root = l.Root
	t.mu.Unlock()
	if t.trace {
		// Seized at once, before the root can create any process or
		// thread: those syscalls wait until Release. The root counts as
		// the sandbox's from now on (it may already be running).
		t.add(l.Root, l.Root, 0, t.procOpts)
		t.mu.Lock()
		// Seized, not attached by a fork event: no first stop to wait
		// for, and the options it is seized with.
		t.tasks[l.Root] = task{tgid: l.Root, opts: t.procOpts}
		t.mu.Unlock()
		if err := seize(l.Root, t.procOpts); err != nil && !exited(l.Root) {
			t.mu.Lock()
			delete(t.tasks, l.Root)
			t.procs--
			t.mu.Unlock()
			t.started <- l.Abort(fmt.Errorf("tracing the sandbox with ptrace: %w (is ptrace restricted on this system, e.g. kernel.yama.ptrace_scope=3?)", err))
			return
		}
		// If the root has run to its end already, alone, follow reaps it.
	}
	if err := l.Release(); err != nil {
		// The root failed to exec and exits.
		t.KillAll()
		t.follow()
		t.started <- err
		return
	}
	t.started <- nil
	t.follow()
	if req.cfg.OnEnd != nil {
		req.cfg.OnEnd(t.rootExit)
	}
}

// hasChildren reports whether the calling thread has children of its own.
// (Without /proc it cannot tell, and says no.) Plain syscalls and a buffer
// on the stack: this runs at every start, and os.ReadFile's file, poller
// registration and growing buffer cost more than the answer.
func hasChildren() bool {
	fd, err := unix.Open("/proc/thread-self/children", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	// The file lists the children's tids, each followed by a space, and
	// nothing else: any byte names one.
	var buf [32]byte
	n, err := unix.Read(fd, buf[:])
	return err == nil && n > 0
}

// reapRoot waits for the root when it is not traced.
func (t *Tracer) reapRoot() unix.WaitStatus {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(t.root, &ws, unix.WALL, nil)
		if err != unix.EINTR {
			return ws
		}
	}
}

// follow serves the sandbox's tasks until none is left.
func (t *Tracer) follow() {
	if !t.trace {
		t.rootExit = Exit{Status: t.reapRoot()}
		unix.Kill(-t.root, unix.SIGKILL)
		return
	}
	for {
		var ws unix.WaitStatus
		var usage unix.Rusage
		tid, err := unix.Wait4(-1, &ws, unix.WALL|wNoThread, &usage)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return // ECHILD: no tracee left
		}
		switch {
		case ws.Exited() || ws.Signaled():
			t.exited(tid, ws, &usage)
		case ws.Stopped():
			t.stopped(tid, ws)
		}
	}
}

// exited reports whether the child pid has ended (and waits to be reaped).
func exited(pid int) bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	return err == nil && info.Signo == int32(unix.SIGCHLD)
}

func seize(pid, opts int) error {
	_, _, errno := unix.RawSyscall6(unix.SYS_PTRACE, unix.PTRACE_SEIZE, uintptr(pid), 0, uintptr(opts), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// add records a new task; parent is the process that created it, or 0 if
// unknown (read from /proc then); opts are the ptrace options it inherited
// (0 if unknown).
func (t *Tracer) add(tid, tgid, parent, opts int) {
	t.mu.Lock()
	if _, ok := t.tasks[tid]; ok {
		t.mu.Unlock()
		return
	}
	t.tasks[tid] = task{tgid: tgid, fresh: true, opts: opts}
	if tid == tgid {
		t.procs++
	}
	if t.dying {
		unix.Kill(tid, unix.SIGKILL)
	}
	t.mu.Unlock()
	if tid == tgid && t.onProcStart != nil {
		if parent == 0 && tid != t.root {
			parent = procfs.PPid(tid)
		}
		t.onProcStart(tid, parent)
	}
}

func (t *Tracer) exited(tid int, ws unix.WaitStatus, usage *unix.Rusage) {
	t.mu.Lock()
	tk, ok := t.tasks[tid]
	t.mu.Unlock()
	// The hook runs before the process leaves the count, so that whoever
	// follows it from the hook (an unreaped zombie still holds its pid)
	// never sees it counted nowhere.
	if ok && tid == tk.tgid && t.onProcExit != nil {
		t.onProcExit(tid, usage)
	}
	if t.atExit != nil {
		delete(t.atExit, tid)
	}
	if ok {
		t.mu.Lock()
		delete(t.tasks, tid)
		if tid == tk.tgid {
			t.procs--
		}
		t.mu.Unlock()
	}
	if tid == t.root {
		t.rootExit = Exit{Status: ws}
		// Whatever the root leaves behind goes with it.
		t.KillAll()
	}
}

func (t *Tracer) stopped(tid int, ws unix.WaitStatus) {
	t.mu.Lock()
	tk, known := t.tasks[tid]
	t.mu.Unlock()
	if !known {
		// A new task can report its first stop before its parent reports
		// the fork event.
		t.add(tid, procfs.TGID(tid), 0, 0)
		t.mu.Lock()
		tk = t.tasks[tid]
		t.mu.Unlock()
	}
	if tk.fresh {
		t.firstStop(tid, tk)
	}
	sig := ws.StopSignal()
	// The ptrace event sits above the stop signal in the status word.
	switch event := int(uint32(ws) >> 16); event {
	case unix.PTRACE_EVENT_STOP:
		if isStopSignal(sig) {
			// Group-stop: keep it stopped but let SIGCONT wake it.
			ptrace(unix.PTRACE_LISTEN, tid, 0)
			return
		}
		ptrace(unix.PTRACE_CONT, tid, 0)
	case unix.PTRACE_EVENT_FORK, unix.PTRACE_EVENT_VFORK, unix.PTRACE_EVENT_CLONE:
		if msg, err := unix.PtraceGetEventMsg(tid); err == nil {
			child := int(msg)
			tgid := child
			if event == unix.PTRACE_EVENT_CLONE {
				tgid = procfs.TGID(child)
			}
			parent := 0
			if event != unix.PTRACE_EVENT_CLONE {
				parent = t.TGID(tid)
			}
			t.mu.Lock()
			opts := t.tasks[tid].opts
			t.mu.Unlock()
			t.add(child, tgid, parent, opts)
			if tgid == child && t.onFork != nil {
				t.onFork(t.TGID(tid))
			}
		}
		ptrace(unix.PTRACE_CONT, tid, 0)
	case unix.PTRACE_EVENT_SECCOMP:
		if t.onSeccomp != nil {
			data, _ := unix.PtraceGetEventMsg(tid)
			if f := t.onSeccomp(tid, uint16(data)); f != nil {
				// On to the syscall's exit stop.
				t.atExit[tid] = f
				ptrace(unix.PTRACE_SYSCALL, tid, 0)
				return
			}
		}
		ptrace(unix.PTRACE_CONT, tid, 0)
	case unix.PTRACE_EVENT_EXEC:
		t.execed(tid)
		ptrace(unix.PTRACE_CONT, tid, 0)
	case 0:
		if sig == unix.SIGTRAP|0x80 {
			// A syscall-exit stop (TRACESYSGOOD), which only OnSeccomp asks
			// for: put back what it changed. A signal that interrupted the
			// syscall is delivered after this stop.
			if f := t.atExit[tid]; f != nil {
				delete(t.atExit, tid)
				f()
			}
			ptrace(unix.PTRACE_CONT, tid, 0)
			return
		}
		if t.onStop != nil && t.onStop(tid, sig) {
			ptrace(unix.PTRACE_CONT, tid, 0)
			return
		}
		// Signal-delivery-stop: deliver the signal. A notified syscall the
		// signal interrupted before the supervisor received it is
		// restarted rather than failed with EINTR, if the session says so.
		if t.onSignal != nil {
			interruptedSyscall(tid, func(nr, code int) bool { return t.onSignal(tid, nr, code) })
		}
		ptrace(unix.PTRACE_CONT, tid, int(sig))
	default:
		ptrace(unix.PTRACE_CONT, tid, 0)
	}
}

// firstStop runs at a new task's first stop, before it has run any
// instruction of its own: it gets the ptrace options of its kind (a thread
// inherits its creator's, which may be a leader's; a process forked by a
// non-leader thread inherits that thread's).
func (t *Tracer) firstStop(tid int, tk task) {
	want := t.procOpts
	if tid != tk.tgid {
		want = t.threadOpts
	}
	if tk.opts != want {
		unix.PtraceSetOptions(tid, want)
	}
	t.mu.Lock()
	if cur, ok := t.tasks[tid]; ok {
		cur.fresh, cur.opts = false, want
		t.tasks[tid] = cur
	}
	t.mu.Unlock()
}

// execed runs at pid's PTRACE_EVENT_EXEC stop: its exec succeeded. An exec
// from a non-leader thread gave that thread the leader's tid (pid): its
// former tid is gone, without an exit report, and is forgotten here. Then
// the hook sees the new image.
func (t *Tracer) execed(pid int) {
	t.execStops.Add(1)
	former := pid
	if msg, err := unix.PtraceGetEventMsg(pid); err == nil && msg != 0 {
		former = int(msg)
	}
	if former != pid {
		t.mu.Lock()
		if tk, ok := t.tasks[former]; ok && tk.tgid == pid {
			delete(t.tasks, former)
		}
		t.mu.Unlock()
		// The thread now leads its process: a leader's options.
		if t.procOpts != t.threadOpts {
			unix.PtraceSetOptions(pid, t.procOpts)
		}
		t.mu.Lock()
		if tk, ok := t.tasks[pid]; ok {
			tk.opts = t.procOpts
			t.tasks[pid] = tk
		}
		t.mu.Unlock()
	}
	if t.onExec == nil {
		return
	}
	t.mu.Lock()
	dying := t.dying
	t.mu.Unlock()
	if dying {
		return // SIGKILLed already: nothing of it will run
	}
	stop := &ExecStop{t: t, pid: pid, former: former, thread: unix.Gettid()}
	defer stop.end()
	t.onExec(stop)
}

// ExecStops returns how many exec stops (PTRACE_EVENT_EXEC) the tracer has
// served.
func (t *Tracer) ExecStops() uint64 { return t.execStops.Load() }

func isStopSignal(sig syscall.Signal) bool {
	return sig == unix.SIGSTOP || sig == unix.SIGTSTP || sig == unix.SIGTTIN || sig == unix.SIGTTOU
}

func ptrace(req int, tid int, data int) {
	unix.RawSyscall6(unix.SYS_PTRACE, uintptr(req), uintptr(tid), 0, uintptr(data), 0, 0)
}
