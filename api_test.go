//go:build linux

package sandlock_test

// The public API carries what users need (issue 13): typed errors, the
// Handlers and Logger fields, Features.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/sandlock-go/sandlock"
)

func TestErrorsAreTyped(t *testing.T) {
	ctx := ctxT(t)
	sb := base()
	sb.MaxMemory = "lots"
	_, err := sb.Run(ctx, "true")
	var fe *sandlock.FieldError
	if !errors.As(err, &fe) || fe.Field != "MaxMemory" || fe.Value != "lots" || fe.Err == nil {
		t.Errorf("a bad MaxMemory: %v, want a *FieldError naming it", err)
	}

	sb = base()
	sb.Chroot = "/"
	if _, err := sb.Run(ctx, "true"); !errors.Is(err, sandlock.ErrUnsupported) || !errors.As(err, &fe) || fe.Field != "Chroot" {
		t.Errorf("an unsupported field: %v, want ErrUnsupported in a *FieldError", err)
	}

	_, err = base().Run(ctx, "no-such-command-sandlock")
	var se *sandlock.StartError
	if !errors.Is(err, sandlock.ErrCommandNotFound) || !errors.As(err, &se) || !strings.Contains(se.Step, "no-such-command-sandlock") {
		t.Errorf("a missing command: %v, want ErrCommandNotFound in a *StartError", err)
	}

	dir := tempDir(t)
	sb = &sandlock.Sandbox{FSReadable: []string{dir}} // the program cannot even be loaded
	_, err = sb.Run(ctx, "/bin/true")
	if !errors.As(err, &se) || !errors.Is(err, syscall.EACCES) {
		t.Errorf("an exec Landlock refuses: %v, want a *StartError wrapping EACCES", err)
	}

	_, err = base().RunWithHandlers(ctx, []string{"true"}, sandlock.SyscallHandler{Syscall: -1, Handler: sandlock.HandlerFunc(nil)})
	var sce *sandlock.SyscallError
	if !errors.As(err, &sce) || !errors.Is(err, sandlock.ErrNegativeSyscall) {
		t.Errorf("a negative syscall number: %v", err)
	}
}

// TestErrTaskGone reads the memory of a task that is gone: the helpers say
// ErrTaskGone.
func TestErrTaskGone(t *testing.T) {
	entered := make(chan struct{}, 1)
	result := make(chan error, 1)
	sb := base()
	sb.Handlers = []sandlock.SyscallHandler{hdl(t, "getppid", func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
		return sandlock.Defer(func(ctx context.Context) sandlock.Action {
			entered <- struct{}{}
			<-ctx.Done() // the sandbox is killed: the task is gone
			_, err := hc.ReadMem(hc.Notif.Data.InstructionPointer, 1)
			result <- err
			return sandlock.Continue()
		})
	})}
	p, err := sb.Popen(sandlock.Stdio{Stdout: sandlock.StdioNull}, python, "-c", "import os; os.getppid()")
	if err != nil {
		t.Fatal(err)
	}
	<-entered
	p.Kill()
	p.Wait()
	p.Close()
	if err := <-result; !errors.Is(err, sandlock.ErrTaskGone) {
		t.Errorf("reading a gone task's memory: %v, want ErrTaskGone", err)
	}
}

// TestHandlersFieldEveryEntryPoint registers a handler through the Handlers
// field: Run, Spawn and Popen all honour it, and RunWithHandlers adds its
// own after it.
func TestHandlersFieldEveryEntryPoint(t *testing.T) {
	answer := func(v int64) sandlock.SyscallHandler {
		return hdl(t, "getppid", func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
			return sandlock.ReturnValue(v)
		})
	}
	sb := base()
	sb.Handlers = []sandlock.SyscallHandler{answer(4242)}
	code := "import os; print(os.getppid())"
	if out := py(t, sb, code); out != "4242" {
		t.Errorf("Run: %q", out)
	}
	p, err := sb.Popen(sandlock.Stdio{Stdout: sandlock.StdioPiped}, python, "-c", code)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(p.Stdout)
	p.Wait()
	p.Close()
	if strings.TrimSpace(string(out)) != "4242" {
		t.Errorf("Popen: %q", out)
	}
	// Spawn shares the caller's stdout: write to a file instead.
	dir := tempDir(t)
	sb.FSWritable = []string{dir}
	p, err = sb.Spawn(python, "-c", "import os; open('"+dir+"/out', 'w').write(str(os.getppid()))")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := p.Wait(); err != nil || !res.Success {
		t.Fatalf("Spawn: %+v %v", res, err)
	}
	p.Close()
	if b, err := os.ReadFile(dir + "/out"); err != nil || string(b) != "4242" {
		t.Errorf("Spawn: %q %v", b, err)
	}
	// The field's handlers come first: the first non-Continue answer wins.
	r, err := sb.RunWithHandlers(ctxT(t), []string{python, "-c", code}, answer(7))
	if err != nil || strings.TrimSpace(string(r.Stdout)) != "4242" {
		t.Errorf("RunWithHandlers after the field: %+v %v", r, err)
	}
}

// TestLoggerField sends a handler's panic to the sandbox's own logger.
func TestLoggerField(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	sb := base()
	sb.Logger = slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil))
	sb.Handlers = []sandlock.SyscallHandler{hdl(t, "getppid", func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
		panic("boom in a handler")
	})}
	out := py(t, sb, errnoProbe+fmt.Sprintf("print(sc(%d))", mustNr(t, "getppid")))
	if out != "EPERM" {
		t.Errorf("a panicking handler: %q, want EPERM", out)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(buf.String(), "boom in a handler") {
		t.Errorf("the panic was not logged to Logger: %q", buf.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestFeatures(t *testing.T) {
	f := sandlock.Features()
	if f.LandlockABI < 6 || !f.SeccompUserNotif || !f.SyncWakeUp || len(f.Protections) != 6 {
		t.Fatalf("this machine has Landlock ABI 7 and seccomp user notification with sync wake-up: %+v", f)
	}
	for _, p := range f.Protections {
		if !p.Available || p.MinABI != sandlock.ProtectionMinABI(p.Protection) || p.Name != p.Protection.String() {
			t.Errorf("protection %+v", p)
		}
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil || back["landlock_abi"] != float64(f.LandlockABI) {
		t.Errorf("JSON: %s", b)
	}
	code, stdout, _ := cli(t, "check", "--json")
	var cliF map[string]any
	if code != 0 || json.Unmarshal([]byte(stdout), &cliF) != nil || cliF["landlock_abi"] != float64(f.LandlockABI) || cliF["seccomp_user_notif"] != true {
		t.Errorf("sandlock check --json: exit %d, %s", code, stdout)
	}
}
