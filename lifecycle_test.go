//go:build linux

package sandlock_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sandlock-go/sandlock"
)

// marker returns a sleep argument unique to this test, for finding stray
// processes with pgrep.
func marker(t *testing.T) string {
	return fmt.Sprintf("%d.%d", 1000+os.Getpid()%1000, time.Now().UnixNano()%1000000)
}

// alive lists the live (not zombie) processes whose command line contains s.
func alive(s string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.Contains(string(cmdline), s) {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
			continue
		}
		out = append(out, e.Name()+" "+strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	return out
}

// waitGone polls until no live process matches s.
func waitGone(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := alive(s)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes survived the sandbox: %v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestContextDeadlineKillsTheTree(t *testing.T) {
	m := marker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	res, err := base().Run(ctx, "/bin/sh", "-c", fmt.Sprintf("sleep %[1]s & setsid sleep %[1]s & sleep %[1]s", m))
	if err != nil {
		t.Fatal(err)
	}
	if res.Reason != sandlock.ReasonTimeout || res.Signal != -1 || res.ShellCode() != 128+int(syscall.SIGKILL) {
		t.Fatalf("want a timeout, got %+v", res)
	}
	// Run returns only when nothing of the sandbox is left.
	if left := alive(m); len(left) != 0 {
		t.Fatalf("still running after Run returned: %v", left)
	}
}

func TestContextCancelKills(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	res, err := base().Run(ctx, "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	if res.Reason != sandlock.ReasonKilled {
		t.Fatalf("want ReasonKilled, got %+v", res)
	}
	// A context already done starts nothing.
	if _, err := base().Run(ctx, "true"); err == nil {
		t.Fatal("Run with a cancelled context ran")
	}
}

func TestMainExitKillsTheRest(t *testing.T) {
	m := marker(t)
	res := sh(t, base(), fmt.Sprintf("sleep %[1]s & (sleep %[1]s &) ; setsid sleep %[1]s & echo started", m))
	if res.ExitCode != 0 || string(res.Stdout) != "started\n" {
		t.Fatalf("%+v", res)
	}
	if left := alive(m); len(left) != 0 {
		t.Fatalf("background processes outlived the main process: %v", left)
	}
}

func TestPopenPipes(t *testing.T) {
	p, err := base().Popen(sandlock.Stdio{Stdin: sandlock.StdioPiped, Stdout: sandlock.StdioPiped, Stderr: sandlock.StdioNull}, "tr", "a-z", "A-Z")
	if err != nil {
		t.Fatal(err)
	}
	if p.Pid() <= 0 {
		t.Fatalf("pid %d", p.Pid())
	}
	go func() {
		io.WriteString(p.Stdin, "hello sandbox\n")
		p.Stdin.Close()
	}()
	out, _ := io.ReadAll(p.Stdout)
	res, err := p.Wait()
	if err != nil || res.ExitCode != 0 || string(out) != "HELLO SANDBOX\n" {
		t.Fatalf("Popen: %q %+v %v", out, res, err)
	}
	if _, err := p.Wait(); err != sandlock.ErrNotRunning {
		t.Fatalf("second Wait: %v", err)
	}
	if err := p.Kill(); err != nil {
		t.Fatalf("Kill after Wait: %v", err)
	}
	if err := p.Pause(); err != sandlock.ErrNotRunning {
		t.Fatalf("Pause after Wait: %v", err)
	}
	p.Close()
	p.Close()
}

func TestPopenNullAndInvalidMode(t *testing.T) {
	p, err := base().Popen(sandlock.Stdio{Stdin: sandlock.StdioNull, Stdout: sandlock.StdioPiped, Stderr: sandlock.StdioPiped}, "cat")
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(p.Stdout)
	res, _ := p.Wait()
	p.Close()
	if res.ExitCode != 0 || len(out) != 0 {
		t.Fatalf("cat </dev/null: %q %+v", out, res)
	}
	if _, err := base().Popen(sandlock.Stdio{Stdout: 7}, "true"); err == nil {
		t.Fatal("invalid StdioMode accepted")
	}
}

func TestKillAndWait(t *testing.T) {
	m := marker(t)
	p, err := base().Popen(sandlock.Stdio{Stdout: sandlock.StdioNull}, "/bin/sh", "-c", fmt.Sprintf("setsid sleep %[1]s & sleep %[1]s", m))
	if err != nil {
		t.Fatal(err)
	}
	waitAlive(t, m, 2)
	p.Kill()
	res, err := p.Wait()
	if err != nil || res.Reason != sandlock.ReasonKilled || res.Signal != -1 || res.ShellCode() != 128+int(syscall.SIGKILL) {
		t.Fatalf("after Kill: %+v %v", res, err)
	}
	if left := alive(m); len(left) != 0 {
		t.Fatalf("survivors: %v", left)
	}
	p.Close()
}

// waitAlive polls until n live processes match s.
func waitAlive(t *testing.T, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(alive(s)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %v started", alive(s))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPauseResume(t *testing.T) {
	dir := tempDir(t)
	sb := base()
	sb.FSWritable = []string{dir}
	counter := filepath.Join(dir, "n")
	p, err := sb.Popen(sandlock.Stdio{Stdout: sandlock.StdioNull}, "/bin/sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > "+counter+".tmp && mv "+counter+".tmp "+counter+"; sleep 0.01; done")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	read := func() int {
		b, _ := os.ReadFile(counter)
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
	for read() < 3 {
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let an in-flight iteration finish
	a := read()
	time.Sleep(300 * time.Millisecond)
	if b := read(); b != a {
		t.Fatalf("counter moved while paused: %d → %d", a, b)
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for read() <= a {
		if time.Now().After(deadline) {
			t.Fatal("counter did not move after Resume")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestJobControlInsideTheSandbox(t *testing.T) {
	// A process stopped and continued by its own parent keeps working even
	// though every task is traced.
	res := sh(t, base(), "sleep 0.3 & pid=$!; kill -STOP $pid; kill -CONT $pid; wait $pid; echo $?")
	if strings.TrimSpace(string(res.Stdout)) != "0" {
		t.Fatalf("stop/cont inside: %q %q", res.Stdout, res.Stderr)
	}
}

func TestRunConcurrently(t *testing.T) {
	// Both child-stage modes at once: vfork mode by default; fork mode when
	// the child's exec is a notified syscall (MaxMemory, FSDenied, a user
	// handler on execve) or with NoHugePages.
	execve := sandlock.HandlerFunc(func(context.Context, *sandlock.HandlerCtx) sandlock.Action { return sandlock.Continue() })
	modes := []func() (*sandlock.Sandbox, []sandlock.SyscallHandler){
		func() (*sandlock.Sandbox, []sandlock.SyscallHandler) { return base(), nil },
		func() (*sandlock.Sandbox, []sandlock.SyscallHandler) {
			sb := base()
			sb.MaxMemory = "256M"
			return sb, nil
		},
		func() (*sandlock.Sandbox, []sandlock.SyscallHandler) {
			sb := base()
			sb.FSDenied = []string{"/etc/shadow"}
			return sb, nil
		},
		func() (*sandlock.Sandbox, []sandlock.SyscallHandler) {
			return base(), []sandlock.SyscallHandler{{Syscall: int64(mustNr(t, "execve")), Handler: execve}}
		},
		func() (*sandlock.Sandbox, []sandlock.SyscallHandler) {
			sb := base()
			sb.NoHugePages = true
			return sb, nil
		},
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sb, handlers := modes[i%len(modes)]()
			res, err := sb.RunWithHandlers(context.Background(), []string{"echo", strconv.Itoa(i)}, handlers...)
			if err != nil {
				errs <- err
				return
			}
			if string(res.Stdout) != strconv.Itoa(i)+"\n" {
				errs <- fmt.Errorf("run %d printed %q", i, res.Stdout)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestRunFromABusyProgram(t *testing.T) {
	// Many goroutines keep every P and thread busy while sandboxes start.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, _ := os.Open("/dev/null")
			defer f.Close()
			buf := make([]byte, 1)
			for {
				select {
				case <-stop:
					return
				default:
					f.Read(buf)
					runtime.Gosched()
				}
			}
		}()
	}
	for i := 0; i < 20; i++ {
		res := run(t, base(), "echo", "busy")
		if string(res.Stdout) != "busy\n" {
			t.Fatalf("run %d: %+v", i, res)
		}
	}
	close(stop)
	wg.Wait()
	// None of this process's own threads may have been confined.
	ents, _ := os.ReadDir("/proc/self/task")
	for _, e := range ents {
		b, _ := os.ReadFile("/proc/self/task/" + e.Name() + "/status")
		if strings.Contains(string(b), "Seccomp:\t2") {
			t.Errorf("thread %s of the test process carries a seccomp filter", e.Name())
		}
	}
}

func TestNoLeaks(t *testing.T) {
	settle := func() (goroutines, fds, threads int) {
		for i := 0; i < 50; i++ {
			runtime.GC()
			time.Sleep(20 * time.Millisecond)
		}
		f, _ := os.ReadDir("/proc/self/fd")
		th, _ := os.ReadDir("/proc/self/task")
		return runtime.NumGoroutine(), len(f), len(th)
	}
	run(t, base(), "true") // warm up lazily started runtime threads
	g0, f0, t0 := settle()
	for i := 0; i < 200; i++ {
		res, err := base().Run(context.Background(), "/bin/sh", "-c", "sleep 0.001 & true")
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("run %d: %+v %v", i, res, err)
		}
	}
	g1, f1, t1 := settle()
	if g1 > g0+2 {
		t.Errorf("goroutines: %d before, %d after 200 runs", g0, g1)
	}
	if f1 != f0 {
		t.Errorf("open fds: %d before, %d after 200 runs", f0, f1)
	}
	if t1 > t0+4 {
		t.Errorf("threads: %d before, %d after 200 runs", t0, t1)
	}
	if z := zombieChildren(); len(z) > 0 {
		t.Errorf("zombie children: %v", z)
	}
}

// zombieChildren lists this process's children that are zombies.
func zombieChildren() []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	me := strconv.Itoa(os.Getpid())
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[0] == "Z" && f[1] == me {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestSupervisorDeathKillsTheSandbox runs a sandbox in a child process (this
// test binary in helper mode), SIGKILLs that process, and checks that every
// sandboxed process dies with it.
func TestSupervisorDeathKillsTheSandbox(t *testing.T) {
	m := marker(t)
	cmd := exec.Command(os.Args[0], "-test.run=TestHelperSupervisor")
	cmd.Env = append(os.Environ(), "SANDLOCK_HELPER_MARKER="+m)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The helper prints a line once the sandbox runs.
	if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil {
		t.Fatalf("helper did not start: %v", err)
	}
	waitAlive(t, m, 3)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	waitGone(t, m)
}

// TestHelperSupervisor is the supervisor process of
// TestSupervisorDeathKillsTheSandbox; it does nothing in a normal run.
func TestHelperSupervisor(t *testing.T) {
	m := os.Getenv("SANDLOCK_HELPER_MARKER")
	if m == "" {
		return
	}
	p, err := base().Popen(sandlock.Stdio{Stdout: sandlock.StdioNull},
		"/bin/sh", "-c", fmt.Sprintf("sleep %[1]s & (setsid sleep %[1]s &) ; sleep %[1]s", m))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("running")
	p.Wait()
}

// TestCallerChildrenUntouched runs sandboxes from a program that has
// children of its own, forked from many of its threads (os/exec forks from
// whichever thread it runs on): no run waits for them, and their exit
// statuses stay the caller's.
func TestCallerChildrenUntouched(t *testing.T) {
	var cmds []*exec.Cmd
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := exec.Command("/bin/sleep", "600")
			if err := c.Start(); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			cmds = append(cmds, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	for i := 0; i < 60; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		res, err := base().Run(ctx, "true")
		cancel()
		if err != nil || res.Reason != sandlock.ReasonExited || res.ExitCode != 0 {
			t.Fatalf("run %d with children of the caller around: %+v %v", i, res, err)
		}
	}
	for _, c := range cmds {
		c.Process.Signal(syscall.SIGTERM)
		err := c.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
			t.Errorf("the caller's child: Wait %v, want its own death by SIGTERM", err)
		}
	}
}
