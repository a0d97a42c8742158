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
	"unsafe"

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

	requests   chan int      // the root to seize
	seized     chan struct{} // closed once the root is traced (or tracing failed)
	seizeErr   error
	rootExit   chan Exit // receives the root's status once
	rootReaped chan struct{}
	done       chan struct{}
	// onExit is called (on the tracer's thread) when a process exits.
	onProcExit func(pid int)
}

// Config for New.
type Config struct {
	// OnProcessExit, if set, is called when a traced process (not thread)
	// has exited. It must not block.
	OnProcessExit func(pid int)
}

// New starts a tracer on a dedicated locked OS thread. It traces nothing
// until Seize names the sandbox's root; Abandon ends it if there is none.
func New(cfg Config) *Tracer {
	t := &Tracer{
		tasks:      make(map[int]task),
		seized:     make(chan struct{}),
		rootExit:   make(chan Exit, 1),
		rootReaped: make(chan struct{}),
		done:       make(chan struct{}),
		onProcExit: cfg.OnProcessExit,
		requests:   make(chan int),
	}
	go t.run()
	return t
}

// Seize starts tracing root, a child of this process, and returns once it is
// traced (or could not be). Every descendant root creates afterwards is
// traced too. Call it while root is stopped, e.g. held in a seccomp
// notification, so that it cannot create a process before it is traced.
func (t *Tracer) Seize(root int) error {
	t.requests <- root
	<-t.seized
	return t.seizeErr
}

// RootReaped tells the tracer that the thread whose child the root is has
// reaped it (after RootExit delivered its status), so tracing can go on
// with whatever else is left.
func (t *Tracer) RootReaped() { close(t.rootReaped) }

// Abandon ends a tracer whose root never appeared.
func (t *Tracer) Abandon() {
	close(t.requests)
	<-t.done
}

// Seized reports whether the root is traced.
func (t *Tracer) Seized() bool {
	select {
	case <-t.seized:
		return t.seizeErr == nil
	default:
		return false
	}
}

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
	defer runtime.UnlockOSThread()
	defer close(t.done)

	root, ok := <-t.requests
	if !ok {
		return
	}
	t.root = root
	if err := seize(root); err != nil {
		t.seizeErr = fmt.Errorf("tracing the sandbox with ptrace: %w (is ptrace restricted on this system, e.g. kernel.yama.ptrace_scope=3?)", err)
		close(t.seized)
		return
	}
	t.add(root, root)
	close(t.seized)

	for {
		// Peek first: the root is the child of another thread of this
		// process (the forker), which may be waiting for it itself, so its
		// exit is left for that thread to reap (see RootReaped).
		tid, ws, err := peek()
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return // ECHILD: no tracee left
		}
		if tid == t.root && (ws.Exited() || ws.Signaled()) {
			t.exited(tid, ws)
			t.rootExit <- Exit{Status: ws}
			<-t.rootReaped
			continue
		}
		if _, err := unix.Wait4(tid, &ws, unix.WALL|wNoThread, nil); err != nil {
			continue
		}
		switch {
		case ws.Exited() || ws.Signaled():
			t.exited(tid, ws)
		case ws.Stopped():
			t.stopped(tid, ws)
		}
	}
}

// peek returns the next event of a tracee without consuming it.
func peek() (int, unix.WaitStatus, error) {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WSTOPPED|unix.WNOWAIT|unix.WALL|wNoThread, nil)
	if err != nil {
		return 0, 0, err
	}
	// struct siginfo for SIGCHLD: si_pid at 16, si_status at 24.
	raw := (*[128]byte)(unsafe.Pointer(&info))
	pid := int(*(*int32)(unsafe.Pointer(&raw[16])))
	status := int(*(*int32)(unsafe.Pointer(&raw[24])))
	var ws unix.WaitStatus
	switch info.Code {
	case cldExited:
		ws = unix.WaitStatus(status << 8)
	case cldKilled:
		ws = unix.WaitStatus(status)
	case cldDumped:
		ws = unix.WaitStatus(status | 0x80)
	default:
		ws = unix.WaitStatus(status<<8 | 0x7f) // stopped; details come from wait4
	}
	return pid, ws, nil
}

// si_code values of SIGCHLD.
const (
	cldExited = 1
	cldKilled = 2
	cldDumped = 3
)

func seize(pid int) error {
	_, _, errno := unix.RawSyscall6(unix.SYS_PTRACE, unix.PTRACE_SEIZE, uintptr(pid), 0, options, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
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
