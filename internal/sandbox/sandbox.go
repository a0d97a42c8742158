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
	// ForkSecret is passed in the fork that creates the program, in an
	// argument the kernel ignores, so that the filter can tell that fork
	// from the program's (see policy.FilterSpec.ForkSecret).
	ForkSecret uintptr
	// Prepare runs on the forker thread after NO_NEW_PRIVS and before the
	// capability drop and Landlock (for process knobs such as personality).
	Prepare func() error
}

// Session is one sandbox run. Build its handler table, then Start it.
type Session struct {
	Table *notify.Table
	Log   *slog.Logger

	pid    int
	tr     *tracer.Tracer
	sup    *notify.Supervisor
	exit   chan unix.WaitStatus
	ended  chan struct{}
	killed atomic.Bool
	once   sync.Once
	status unix.WaitStatus
}

// NewSession returns a session with an empty handler table.
func NewSession(log *slog.Logger) *Session {
	if log == nil {
		log = slog.Default()
	}
	s := &Session{
		Table: notify.NewTable(),
		Log:   log,
		exit:  make(chan unix.WaitStatus, 1),
		ended: make(chan struct{}),
	}
	return s
}

type forkResult struct {
	pid int
	err error
}

// Start runs the child stage and returns once the program runs (or failed to
// start). The program's pid is Pid.
func (s *Session) Start(spec *Spec) error {
	if spec.Supervised {
		s.tr = tracer.New(tracer.Config{})
	}
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
	if spec.Supervised {
		go s.follow()
	}
	return nil
}

// forker is the child stage; it runs on its own locked OS thread, which it
// confines, and never returns that thread to the Go runtime.
func (s *Session) forker(spec *Spec, res chan<- forkResult) {
	fail := func(step string, err error) {
		res <- forkResult{err: &StepError{Step: step, Err: err}}
	}
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
	stage, err := s.childStage(spec)
	if err != nil {
		s.abortSupervisor()
		fail("exec "+spec.Path, err)
		return
	}
	var gate, report [2]int
	if err := unix.Pipe2(gate[:], unix.O_CLOEXEC); err != nil {
		s.abortSupervisor()
		fail("pipe", err)
		return
	}
	if err := unix.Pipe2(report[:], unix.O_CLOEXEC); err != nil {
		s.abortSupervisor()
		fail("pipe", err)
		return
	}
	stage.gate, stage.report = gate[0], report[1]
	stage.high = max(report[1], gate[1], stage.high) + 1

	syscall.ForkLock.Lock()
	pid, errno := forkChild(stage)
	syscall.ForkLock.Unlock()
	if errno != 0 {
		s.abortSupervisor()
		fail("fork", errno)
		return
	}
	unix.Close(gate[0])
	unix.Close(report[1])

	// Trace the child before it may exec: from then on the kernel reports
	// every process and thread it creates to the tracer, and kills them all
	// if the supervisor dies. If tracing is impossible, nothing has run.
	if spec.Supervised {
		if err := s.tr.Seize(pid); err != nil {
			unix.Kill(pid, unix.SIGKILL)
			var ws unix.WaitStatus
			unix.Wait4(pid, &ws, 0, nil)
			s.abortSupervisor()
			fail("ptrace", err)
			return
		}
	}
	unix.Write(gate[1], []byte{1})
	unix.Close(gate[1])
	var buf [4]byte
	n, _ := readFull(report[0], buf[:])
	unix.Close(report[0])
	// The child has exec'd (or failed to): this thread's copy of the fd
	// table, which holds every fd the process had when it was unshared,
	// other sandboxes' pipe ends included, is no longer needed. Drop it
	// now, or their readers would wait for EOF until this thread ends.
	unix.CloseRange(0, ^uint(0), 0)

	if n == 4 {
		errno := syscall.Errno(uint32(buf[0]) | uint32(buf[1])<<8 | uint32(buf[2])<<16 | uint32(buf[3])<<24)
		s.reap(pid, spec.Supervised)
		if spec.Supervised {
			<-s.tr.Done()
		}
		s.abortSupervisor()
		fail("exec "+spec.Path, errno)
		return
	}
	res <- forkResult{pid: pid}

	// Stay alive while the program runs: PR_SET_PDEATHSIG fires when this
	// thread exits.
	s.exit <- s.reap(pid, spec.Supervised)
	if !spec.Supervised {
		// No tracer: the process group is all that can be followed.
		unix.Kill(-pid, unix.SIGKILL)
		close(s.ended)
	}
}

// reap waits for the root, this thread's child. With a tracer, the tracer
// sees the exit first and leaves the reaping to this thread.
func (s *Session) reap(pid int, traced bool) unix.WaitStatus {
	var ws unix.WaitStatus
	if traced {
		ws = (<-s.tr.RootExit()).Status
	}
	for {
		_, err := unix.Wait4(pid, &ws, unix.WALL|wNoThread, nil)
		if err != unix.EINTR {
			break
		}
	}
	if traced {
		s.tr.RootReaped()
	}
	return ws
}

// childStage prepares what the forked child needs.
func (s *Session) childStage(spec *Spec) (*childStage, error) {
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
	c := &childStage{path: path, argv: argv, envv: envv, tty: -1, secret: spec.ForkSecret}
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
	c.ppid = uintptr(unix.Getpid())
	return c, nil
}

// readFull reads len(b) bytes unless EOF comes first.
func readFull(fd int, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Read(fd, b[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil || m == 0 {
			return n, err
		}
		n += m
	}
	return n, nil
}

// wNoThread is __WNOTHREAD: wait for this thread's children only.
const wNoThread = 0x20000000

// abortSupervisor stops a supervisor whose program never started. The
// listener hangs up when the forker thread, its only filter user, exits.
func (s *Session) abortSupervisor() {
	if s.sup != nil {
		s.sup.Stop()
	}
}

// follow waits for every task of the sandbox, then for the supervisor, and
// records the end. (The forker thread reports the root's exit.)
func (s *Session) follow() {
	<-s.tr.Done()
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

// ChildStageSyscalls are the syscalls the child stage makes between fork
// and exec, under the program's filter (syscall.ForkExec with the
// attributes Start uses, and the Go runtime's after-fork code). Denying one
// of them would keep every program from starting.
var ChildStageSyscalls = []string{
	"clone", "setpgid", "getpid", "getppid", "ioctl", "chdir", "prctl", "kill",
	"dup2", "dup3", "close", "fcntl", "prlimit64", "execve", "write", "read",
	"exit", "exit_group", "rt_sigaction", "rt_sigprocmask",
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
