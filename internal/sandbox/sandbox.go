// Package sandbox starts one confined program and follows it to its end: the
// child stage (a locked, confined OS thread that forks the program), the
// seccomp supervisor and the ptrace tracer.
//
// The child stage. Go offers no hook between fork and exec, and its runtime
// is multi-threaded, so confinement cannot be applied in a forked child. It
// is applied instead to one OS thread of the supervisor process, the
// "forker": a goroutine locked to a fresh thread sets NO_NEW_PRIVS, drops its
// capabilities, restricts itself with Landlock and installs the seccomp
// filter with a listener (all four are per-thread), unshares its fd table
// and marks every fd close-on-exec, then forks and execs the program with
// syscall.ForkExec. The child inherits all of it. The listener is in the
// supervisor's fd table from the start, so nothing has to be handed over,
// and no second Go runtime is started. The forker thread then stays alive
// (PR_SET_PDEATHSIG fires when the forking thread exits) and is discarded
// when the sandbox ends.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/confine"
	"github.com/sandlock-go/sandlock/internal/landlock"
	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/seccomp"
	"github.com/sandlock-go/sandlock/internal/sysnum"
	"github.com/sandlock-go/sandlock/internal/tracer"
)

// StepError is a failure of the child stage, before the program runs.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return e.Step + ": " + e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }

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

	Ruleset  *landlock.Ruleset // applied to the forker thread; may be nil
	Filter   []unix.SockFilter
	KeepCaps bool
	// Supervised installs the filter with a listener, serves it with the
	// session's handler table and traces every task. Without it, the filter
	// only denies and the program is followed by its process group alone.
	Supervised bool
	// Prepare runs on the forker thread after NO_NEW_PRIVS and before the
	// capability drop and Landlock (for process knobs such as personality).
	Prepare func() error
}

// Session is one sandbox run. Build its handler table, then Start it.
type Session struct {
	Table *notify.Table
	Log   *slog.Logger

	gate forkGate

	pid     int
	tr      *tracer.Tracer
	sup     *notify.Supervisor
	release chan struct{} // lets the forker thread end
	exit    chan unix.WaitStatus
	ended   chan struct{}
	killed  atomic.Bool
	once    sync.Once
	status  unix.WaitStatus
}

// NewSession returns a session whose table already holds the builtin that
// must run before every other one: the fork gate.
func NewSession(log *slog.Logger) *Session {
	if log == nil {
		log = slog.Default()
	}
	s := &Session{
		Table:   notify.NewTable(),
		Log:     log,
		release: make(chan struct{}),
		exit:    make(chan unix.WaitStatus, 1),
		ended:   make(chan struct{}),
	}
	s.gate.open = make(chan struct{})
	for _, name := range []string{"clone", "fork", "vfork"} {
		if nr, ok := sysnum.Native().Nr(name); ok {
			s.Table.AddBuiltin(nr, "fork gate", true, &s.gate)
		}
	}
	return s
}

// forkGate holds every fork of the sandbox until the tracer has seized its
// root, so that no process can be created untraced. The forker thread's
// own fork (which creates the root) passes.
type forkGate struct {
	forker atomic.Int32
	open   chan struct{}
	failed atomic.Bool
}

func (g *forkGate) Handle(ctx context.Context, hc *notify.HandlerCtx) notify.Action {
	if int32(hc.Notif.PID) == g.forker.Load() {
		return notify.Continue()
	}
	select {
	case <-g.open:
	case <-ctx.Done():
		return notify.Errno(unix.EAGAIN)
	}
	if g.failed.Load() {
		return notify.Errno(unix.EPERM)
	}
	return notify.Continue()
}

type forkResult struct {
	pid int
	err error
}

// Start runs the child stage and returns once the program runs (or failed to
// start). The program's pid is Pid.
func (s *Session) Start(spec *Spec) error {
	res := make(chan forkResult, 1)
	confine.OnFreshThread(func() { s.forker(spec, res) })
	r := <-res
	if r.err != nil {
		if s.sup != nil {
			<-s.sup.Done()
		}
		return r.err
	}
	s.pid = r.pid
	if !spec.Supervised {
		close(s.gate.open)
		return nil
	}
	tr, err := tracer.Start(r.pid, tracer.Config{})
	if err != nil {
		s.gate.failed.Store(true)
		close(s.gate.open)
		close(s.release)
		s.sup.Stop()
		<-s.sup.Done()
		return &StepError{Step: "ptrace", Err: err}
	}
	s.tr = tr
	close(s.gate.open)
	go s.follow()
	return nil
}

// forker is the child stage; it runs on its own locked OS thread, which it
// confines, and never returns that thread to the Go runtime.
func (s *Session) forker(spec *Spec, res chan<- forkResult) {
	fail := func(step string, err error) {
		res <- forkResult{err: &StepError{Step: step, Err: err}}
	}
	s.gate.forker.Store(int32(unix.Gettid()))

	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fail("no_new_privs", err)
		return
	}
	if spec.Prepare != nil {
		if err := spec.Prepare(); err != nil {
			fail("prepare", err)
			return
		}
	}
	if !spec.KeepCaps {
		if err := confine.DropCapabilities(); err != nil {
			fail("capabilities", err)
			return
		}
	}
	if spec.Ruleset != nil {
		if err := spec.Ruleset.RestrictThread(); err != nil {
			fail("landlock", err)
			return
		}
	}
	listener, err := seccomp.Install(spec.Filter, spec.Supervised)
	if err != nil {
		fail("seccomp", err)
		return
	}
	if spec.Supervised {
		// Serve before forking: the fork itself is a notified syscall.
		s.sup = notify.Start(notify.Config{
			Listener: listener,
			Table:    s.Table,
			Log:      s.Log,
			KillAll:  func(sig syscall.Signal) { s.signalAll(sig) },
		})
	}
	// A private fd table in which everything is close-on-exec: the program
	// gets exactly spec.Files, whatever else this process has open.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_UNSHARE|unix.CLOSE_RANGE_CLOEXEC); err != nil {
		s.abortSupervisor()
		fail("close_range", err)
		return
	}
	files := make([]uintptr, len(spec.Files))
	for i, f := range spec.Files {
		if f == nil {
			files[i] = ^uintptr(0)
			continue
		}
		files[i] = f.Fd()
	}
	attr := &syscall.ProcAttr{
		Dir:   spec.Dir,
		Env:   spec.Env,
		Files: files,
		Sys: &syscall.SysProcAttr{
			Setpgid:    true,
			Pdeathsig:  syscall.SIGKILL,
			Foreground: spec.Foreground,
			Ctty:       spec.ForegroundTTY,
		},
	}
	pid, err := syscall.ForkExec(spec.Path, spec.Argv, attr)
	if err != nil {
		s.abortSupervisor()
		fail("exec "+spec.Path, err)
		return
	}
	res <- forkResult{pid: pid}

	if !spec.Supervised {
		// No tracer: this thread is the only one that may wait for its child.
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(pid, &ws, 0, nil)
			if err != unix.EINTR {
				break
			}
		}
		s.exit <- ws
		unix.Kill(-pid, unix.SIGKILL)
		close(s.ended)
		return
	}
	<-s.release
}

// abortSupervisor stops a supervisor whose program never started. The
// listener hangs up when the forker thread, its only filter user, exits.
func (s *Session) abortSupervisor() {
	if s.sup != nil {
		s.sup.Stop()
	}
}

// follow waits for the root's exit, then for every other task, then for the
// supervisor, and records the end.
func (s *Session) follow() {
	ex := <-s.tr.RootExit()
	s.exit <- ex.Status
	<-s.tr.Done()
	close(s.release)
	s.sup.Stop()
	<-s.sup.Done()
	close(s.ended)
}

// Pid is the program's pid, the leader of its process group.
func (s *Session) Pid() int { return s.pid }

// Wait blocks until the program has exited and nothing of the sandbox is
// left: every task gone and every answer sent.
func (s *Session) Wait() unix.WaitStatus {
	s.once.Do(func() { s.status = <-s.exit })
	<-s.ended
	return s.status
}

// Ended is closed once Wait would return.
func (s *Session) Ended() <-chan struct{} { return s.ended }

// Kill SIGKILLs every process of the sandbox.
func (s *Session) Kill() {
	s.killed.Store(true)
	if s.tr != nil {
		s.tr.KillAll()
	}
	unix.Kill(-s.pid, unix.SIGKILL)
}

// Killed reports whether Kill was called.
func (s *Session) Killed() bool { return s.killed.Load() }

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
		return
	}
	unix.Kill(-s.pid, sig)
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

// ErrNotFound is returned by LookPath when no directory of PATH has the file.
var ErrNotFound = errors.New("command not found")
