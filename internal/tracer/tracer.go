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
// PTRACE_LISTEN, as ptrace(2) prescribes for seized tracees).
package tracer

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

const (
	wNoThread = 0x20000000 // __WNOTHREAD: only this thread's children and tracees
	options   = unix.PTRACE_O_EXITKILL | unix.PTRACE_O_TRACEFORK | unix.PTRACE_O_TRACEVFORK | unix.PTRACE_O_TRACECLONE
)

// Exit is how the sandbox's root process ended.
type Exit struct {
	Status unix.WaitStatus
}

// task is a traced thread.
type task struct {
	tgid int
}

// Tracer traces one sandbox.
type Tracer struct {
	root int

	mu    sync.Mutex
	tasks map[int]task // tid → task
	procs int          // tasks that are thread-group leaders
	dying bool         // every task is being killed

	seized   chan struct{} // closed once the root is traced (or tracing failed)
	seizeErr error
	rootExit chan Exit // receives the root's status once
	done     chan struct{}
	// onExit is called (on the tracer's thread) when a process exits.
	onProcExit func(pid int)
}

// Config for Start.
type Config struct {
	// OnProcessExit, if set, is called when a traced process (not thread)
	// has exited. It must not block.
	OnProcessExit func(pid int)
}

// Start seizes root, a child of the calling process, on a dedicated locked
// OS thread that then follows every task until none is left. It returns
// once root is traced: after that, no process of the sandbox can escape the
// tracer. If root exits before it could be seized, Start still succeeds and
// the exit is reported as usual.
func Start(root int, cfg Config) (*Tracer, error) {
	t := &Tracer{
		root:       root,
		tasks:      make(map[int]task),
		seized:     make(chan struct{}),
		rootExit:   make(chan Exit, 1),
		done:       make(chan struct{}),
		onProcExit: cfg.OnProcessExit,
	}
	go t.run()
	<-t.seized
	if t.seizeErr != nil {
		return nil, t.seizeErr
	}
	return t, nil
}

// Seized is closed once the root is traced.
func (t *Tracer) Seized() <-chan struct{} { return t.seized }

// RootExit delivers the root's exit status once.
func (t *Tracer) RootExit() <-chan Exit { return t.rootExit }

// Done is closed when no task of the sandbox is left.
func (t *Tracer) Done() <-chan struct{} { return t.done }

// Processes returns the number of live processes (not threads).
func (t *Tracer) Processes() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.procs
}

// Signal sends sig to every live process of the sandbox.
func (t *Tracer) Signal(sig syscall.Signal) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.signalLocked(sig)
}

func (t *Tracer) signalLocked(sig syscall.Signal) {
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
	// The tracer must be one thread for the whole run: ptrace requests are
	// only accepted from the tracing thread, and PTRACE_O_EXITKILL fires when
	// that thread exits.
	runtime.LockOSThread()
	defer close(t.done)

	if err := seize(t.root); err != nil {
		t.seizeFailed(err)
		return
	}
	t.add(t.root, t.root)
	close(t.seized)

	for {
		var ws unix.WaitStatus
		tid, err := unix.Wait4(-1, &ws, unix.WALL|wNoThread, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			// ECHILD: no tracee left.
			break
		}
		switch {
		case ws.Exited() || ws.Signaled():
			t.exited(tid, ws)
		case ws.Stopped():
			t.stopped(tid, ws)
		}
	}
	runtime.UnlockOSThread()
}

func seize(pid int) error {
	_, _, errno := unix.RawSyscall6(unix.SYS_PTRACE, unix.PTRACE_SEIZE, uintptr(pid), 0, options, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// seizeFailed handles a root that could not be traced. If it had simply
// exited already, that is a normal (if quick) run; otherwise tracing is not
// permitted here, and the root must not run untraced.
func (t *Tracer) seizeFailed(err error) {
	unix.Kill(t.root, unix.SIGKILL)
	var ws unix.WaitStatus
	for {
		_, werr := unix.Wait4(t.root, &ws, unix.WALL, nil)
		if werr == unix.EINTR {
			continue
		}
		break
	}
	if ws.Signaled() && ws.Signal() == unix.SIGKILL {
		t.seizeErr = fmt.Errorf("tracing the sandbox with ptrace: %w (is ptrace restricted on this system, e.g. kernel.yama.ptrace_scope=3?)", err)
	} else {
		t.rootExit <- Exit{Status: ws}
	}
	close(t.seized)
}

func (t *Tracer) add(tid, tgid int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.tasks[tid]; ok {
		return
	}
	t.tasks[tid] = task{tgid: tgid}
	if tid == tgid {
		t.procs++
	}
	if t.dying {
		unix.Kill(tid, unix.SIGKILL)
	}
}

func (t *Tracer) exited(tid int, ws unix.WaitStatus) {
	t.mu.Lock()
	tk, ok := t.tasks[tid]
	if ok {
		delete(t.tasks, tid)
		if tid == tk.tgid {
			t.procs--
		}
	}
	t.mu.Unlock()
	if ok && tid == tk.tgid && t.onProcExit != nil {
		t.onProcExit(tid)
	}
	if tid == t.root {
		t.rootExit <- Exit{Status: ws}
		// Whatever the root leaves behind goes with it.
		t.KillAll()
	}
}

func (t *Tracer) stopped(tid int, ws unix.WaitStatus) {
	t.mu.Lock()
	_, known := t.tasks[tid]
	t.mu.Unlock()
	if !known {
		// A new task can report its first stop before its parent reports
		// the fork event.
		t.add(tid, tgidOf(tid))
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
				tgid = tgidOf(child)
			}
			t.add(child, tgid)
		}
		ptrace(unix.PTRACE_CONT, tid, 0)
	case 0:
		// Signal-delivery-stop: deliver the signal.
		ptrace(unix.PTRACE_CONT, tid, int(sig))
	default:
		ptrace(unix.PTRACE_CONT, tid, 0)
	}
}

func isStopSignal(sig syscall.Signal) bool {
	return sig == unix.SIGSTOP || sig == unix.SIGTSTP || sig == unix.SIGTTIN || sig == unix.SIGTTOU
}

func ptrace(req int, tid int, data int) {
	unix.RawSyscall6(unix.SYS_PTRACE, uintptr(req), uintptr(tid), 0, uintptr(data), 0, 0)
}

// tgidOf reads the thread group of tid from /proc. A task that is already
// gone counts as its own process.
func tgidOf(tid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/status")
	if err != nil {
		return tid
	}
	i := bytes.Index(b, []byte("\nTgid:"))
	if i < 0 {
		return tid
	}
	line := b[i+6:]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	n, err := strconv.Atoi(string(bytes.TrimSpace(line)))
	if err != nil {
		return tid
	}
	return n
}
