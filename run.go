//go:build linux

package sandlock

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/fielderr"
	"github.com/sandlock-go/sandlock/internal/session"
)

// Process is a sandboxed program started by Spawn or Popen. A Process that
// is dropped without Wait or Close is not leaked: once it is unreachable,
// its sandbox is killed and reaped.
type Process struct {
	// The caller's ends of the streams Popen wired StdioPiped; nil otherwise.
	Stdin  *os.File
	Stdout *os.File
	Stderr *os.File

	run *liveRun
}

// liveRun is a started run: what ends it, kept apart from Process so that
// the cleanup of an abandoned Process can end it (a cleanup must not reach
// the value it cleans up after).
type liveRun struct {
	p    *prepared
	sess *session.Session

	mu       sync.Mutex
	waited   bool
	waitOnce sync.Once
	result   *Result

	// The copy-on-write workdir (issue 18): the changes its branch held
	// when the run ended, and the error of a branch action that failed.
	changes   []Change
	branchErr error
}

// abandoned ends the run of a Process that became unreachable: it kills
// the sandbox, if it still runs, and reaps it, off the runtime's cleanup
// goroutine.
func (r *liveRun) abandoned() {
	select {
	case <-r.sess.Ended():
		r.collect()
	default:
		go func() {
			r.sess.Kill(session.ReasonKilled)
			r.collect()
		}()
	}
}

// Run runs cmd in the sandbox and waits for it, capturing its standard
// output and error; its standard input is the caller's. When ctx is done
// the whole sandbox is killed: a passed deadline gives ReasonTimeout, a
// cancellation ReasonKilled.
func (s *Sandbox) Run(ctx context.Context, cmd ...string) (*Result, error) {
	return s.RunWithHandlers(ctx, cmd)
}

// runCaptured runs cmd with its output captured, as Run does, and returns
// the ended Process too. A nil Result comes with the error; a Result with
// an error is a run whose copy-on-write branch could not be committed.
func (s *Sandbox) runCaptured(ctx context.Context, cmd []string, handlers []SyscallHandler) (*Result, *Process, error) {
	proc, err := s.start(ctx, cmd, handlers, Stdio{Stdin: StdioInherit, Stdout: StdioPiped, Stderr: StdioPiped}, false)
	if err != nil {
		return nil, nil, err
	}
	var stdout, stderr bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); io.Copy(&stdout, proc.Stdout) }()
	go func() { defer wg.Done(); io.Copy(&stderr, proc.Stderr) }()
	res, err := proc.waitContext(ctx)
	wg.Wait()
	proc.Close()
	if res == nil {
		return nil, proc, err
	}
	res.Stdout, res.Stderr = stdout.Bytes(), stderr.Bytes()
	return res, proc, err
}

// RunWithHandlers is Run with user syscall handlers in the supervisor. The
// handlers are validated before anything starts; see SyscallHandler.
func (s *Sandbox) RunWithHandlers(ctx context.Context, cmd []string, handlers ...SyscallHandler) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res, _, err := s.runCaptured(ctx, cmd, handlers)
	if res == nil {
		return nil, err
	}
	// err is a copy-on-write branch that could not be committed: the
	// program's result still stands.
	return res, err
}

// RunInteractive runs cmd with the caller's standard streams and waits for
// it. When standard input is a terminal, the program's process group becomes
// its foreground group for the run. It returns the exit code, or 128+N when
// the program died of signal N. When ctx is done the sandbox is killed.
func (s *Sandbox) RunInteractive(ctx context.Context, cmd ...string) (int, error) {
	return s.RunInteractiveWithHandlers(ctx, cmd)
}

// RunInteractiveWithHandlers is RunInteractive with user syscall handlers.
func (s *Sandbox) RunInteractiveWithHandlers(ctx context.Context, cmd []string, handlers ...SyscallHandler) (int, error) {
	if err := ctx.Err(); err != nil {
		return -1, err
	}
	proc, err := s.start(ctx, cmd, handlers, Stdio{}, true)
	if err != nil {
		return -1, err
	}
	res, err := proc.waitContext(ctx)
	proc.Close()
	if res == nil {
		return -1, err
	}
	return res.ShellCode(), err
}

// DryRun runs cmd like Run, on the copy-on-write workdir (Workdir, which it
// needs), and discards its changes whatever OnExit and OnError say: the
// workdir is left as it was, and the result lists the changes a commit
// would have made, sorted by path.
func (s *Sandbox) DryRun(ctx context.Context, cmd ...string) (*DryRunResult, error) {
	if s.Workdir == "" {
		return nil, &fielderr.FieldError{Field: "Workdir", Err: errors.New("DryRun requires Workdir")}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := *s
	c.OnExit, c.OnError = BranchActionAbort, BranchActionAbort
	res, proc, err := c.runCaptured(ctx, cmd, nil)
	if res == nil {
		return nil, err
	}
	return &DryRunResult{Result: *res, Changes: proc.Changes()}, err
}

// Changes returns, once the run has ended, the changes its copy-on-write
// branch held (Workdir): those the commit made, or those an abort or a
// keep left out of the workdir; sorted by path. nil without Workdir.
func (p *Process) Changes() []Change {
	select {
	case <-p.run.sess.Ended():
		p.run.collect()
		return p.run.changes
	default:
		return nil
	}
}

// Spawn starts cmd with the caller's standard streams and returns without
// waiting.
func (s *Sandbox) Spawn(cmd ...string) (*Process, error) {
	return s.start(context.Background(), cmd, nil, Stdio{}, true)
}

// Popen starts cmd with each standard stream wired as stdio says and returns
// without waiting. For each StdioPiped stream the Process holds the caller's
// end. As with os/exec: close Stdin and drain Stdout and Stderr, or a program
// that reads to EOF or fills a pipe never exits; Wait closes Stdin for you.
func (s *Sandbox) Popen(stdio Stdio, cmd ...string) (*Process, error) {
	for _, m := range []StdioMode{stdio.Stdin, stdio.Stdout, stdio.Stderr} {
		if m > StdioNull {
			return nil, fmt.Errorf("sandlock: invalid StdioMode %d", uint32(m))
		}
	}
	return s.start(context.Background(), cmd, nil, stdio, stdio == Stdio{})
}

// start prepares and starts a run. foreground lets the program take the
// terminal when all its streams are the caller's and stdin is a terminal.
func (s *Sandbox) start(ctx context.Context, cmd []string, handlers []SyscallHandler, stdio Stdio, foreground bool) (*Process, error) {
	if len(s.Handlers) > 0 {
		handlers = append(append([]SyscallHandler(nil), s.Handlers...), handlers...)
	}
	p, err := s.prepare(ctx, cmd, handlers)
	if err != nil {
		return nil, err
	}
	proc := &Process{run: &liveRun{p: p, sess: p.session}}
	var childEnds []*os.File
	defer func() {
		for _, f := range childEnds {
			f.Close()
		}
	}()
	files := make([]*os.File, 3)
	std := []*os.File{os.Stdin, os.Stdout, os.Stderr}
	modes := []StdioMode{stdio.Stdin, stdio.Stdout, stdio.Stderr}
	for i, m := range modes {
		switch m {
		case StdioInherit:
			files[i] = std[i]
		case StdioNull:
			f, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
			if err != nil {
				proc.closeStreams()
				p.abandon()
				return nil, fmt.Errorf("sandlock: %w", err)
			}
			childEnds = append(childEnds, f)
			files[i] = f
		case StdioPiped:
			r, w, err := os.Pipe()
			if err != nil {
				proc.closeStreams()
				p.abandon()
				return nil, fmt.Errorf("sandlock: %w", err)
			}
			if i == 0 {
				proc.Stdin, files[i] = w, r
				childEnds = append(childEnds, r)
			} else {
				files[i] = w
				childEnds = append(childEnds, w)
				if i == 1 {
					proc.Stdout = r
				} else {
					proc.Stderr = r
				}
			}
		}
	}
	p.spec.Files = files
	if foreground && isTerminal(int(os.Stdin.Fd())) {
		p.spec.Foreground = true
		p.spec.ForegroundTTY = int(os.Stdin.Fd())
	}
	if err := p.session.Start(&p.spec); err != nil {
		proc.closeStreams()
		p.release()
		return nil, p.execHint(fmt.Errorf("sandlock: %w", err))
	}
	runtime.AddCleanup(proc, (*liveRun).abandoned, proc.run)
	return proc, nil
}

func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// Pid returns the program's pid (the leader of its process group).
func (p *Process) Pid() int { return p.run.sess.Pid() }

// Wait waits until the program has exited and nothing of the sandbox is
// left running, and returns how it ended. It closes a piped Stdin first. A
// second Wait returns ErrNotRunning.
func (p *Process) Wait() (*Result, error) {
	r := p.run
	r.mu.Lock()
	if r.waited {
		r.mu.Unlock()
		return nil, ErrNotRunning
	}
	r.waited = true
	r.mu.Unlock()
	if p.Stdin != nil {
		p.Stdin.Close()
	}
	res := r.collect()
	// p must stay reachable while collect waits: its cleanup (abandoned)
	// would otherwise kill the sandbox this Wait is waiting for.
	runtime.KeepAlive(p)
	// A copy-on-write branch that could not be committed (or aborted, or
	// kept) is an error beside the program's result.
	return res, r.branchErr
}

// waitContext waits, killing the sandbox when ctx is done first.
func (p *Process) waitContext(ctx context.Context) (*Result, error) {
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() {
			why := session.ReasonKilled
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				why = session.ReasonTimeout
			}
			p.run.sess.Kill(why)
		})
		defer stop()
	}
	return p.Wait()
}

// collect waits for the end once and builds the Result.
func (r *liveRun) collect() *Result {
	r.waitOnce.Do(func() {
		ws := r.sess.Wait()
		res := result0(ws, r.sess.EndReason())
		// Copy-on-write workdir (issue 18): committed, aborted or kept
		// before anyone learns the run has ended.
		r.changes, r.branchErr = r.p.cow.finish(res, r.sess.Log)
		r.p.release()
		r.result = res
	})
	return r.result
}

// result0 turns how the program's root ended into a Result, in upstream's
// model: a catchable signal is ReasonSignaled with its number; SIGKILL, which
// carries no reason of its own, is ReasonKilled with Signal -1, unless
// sandlock sent it for a reason it knows (why: the deadline, the memory
// limit).
func result0(ws unix.WaitStatus, why session.Reason) *Result {
	r := &Result{ExitCode: -1, Signal: -1}
	switch {
	case ws.Exited():
		r.ExitCode = ws.ExitStatus()
		r.Reason = ReasonExited
		r.Success = r.ExitCode == 0
		return r
	case !ws.Signaled():
		r.Reason = ReasonKilled
		return r
	}
	r.termSignal = int(ws.Signal())
	if ws.Signal() != unix.SIGKILL {
		r.Reason, r.Signal = ReasonSignaled, int(ws.Signal())
		return r
	}
	switch why {
	case session.ReasonTimeout:
		r.Reason = ReasonTimeout
	case session.ReasonMemoryLimit:
		r.Reason = ReasonMemoryLimit
	default:
		r.Reason = ReasonKilled
	}
	return r
}

// Pause stops every process of the sandbox (SIGSTOP).
func (p *Process) Pause() error { return p.signal(syscall.SIGSTOP) }

// Resume continues every process of the sandbox (SIGCONT).
func (p *Process) Resume() error { return p.signal(syscall.SIGCONT) }

// Signal sends sig to every process of the sandbox.
func (p *Process) Signal(sig syscall.Signal) error { return p.signal(sig) }

func (p *Process) signal(sig syscall.Signal) error {
	if err := p.run.sess.Signal(sig); err != nil {
		return ErrNotRunning
	}
	return nil
}

// Kill kills every process of the sandbox. Killing a sandbox that already
// ended is not an error.
func (p *Process) Kill() error {
	p.run.sess.Kill(session.ReasonKilled)
	return nil
}

// Ports returns the virtual-to-real port mappings of PortRemap, which is not
// supported yet: always empty.
func (p *Process) Ports() (map[int]int, error) { return map[int]int{}, nil }

// Close closes the caller's pipe ends and, if the sandbox still runs, kills
// it and waits for it to end. It is safe to call more than once.
func (p *Process) Close() error {
	p.closeStreams()
	select {
	case <-p.run.sess.Ended():
	default:
		p.run.sess.Kill(session.ReasonKilled)
	}
	p.run.collect()
	return nil
}

func (p *Process) closeStreams() {
	for _, f := range []*os.File{p.Stdin, p.Stdout, p.Stderr} {
		if f != nil {
			f.Close()
		}
	}
}
