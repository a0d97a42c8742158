//go:build linux

package sandlock_test

// Behaviours upstream's Go SDK tests pin down (issue 14), and the device
// files every sandbox gets without a grant.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sandlock-go/sandlock"
)

// TestNULIsErrInvalidString checks that every entry point returns
// ErrInvalidString itself (upstream's callers compare it with ==) for a NUL
// byte in the command or in any string field, before anything starts.
func TestNULIsErrInvalidString(t *testing.T) {
	ctx := ctxT(t)
	sb := base()
	entry := map[string]func(sb *sandlock.Sandbox, cmd ...string) error{
		"Run": func(sb *sandlock.Sandbox, cmd ...string) error { _, err := sb.Run(ctx, cmd...); return err },
		"RunInteractive": func(sb *sandlock.Sandbox, cmd ...string) error {
			_, err := sb.RunInteractive(ctx, cmd...)
			return err
		},
		"RunWithHandlers": func(sb *sandlock.Sandbox, cmd ...string) error {
			_, err := sb.RunWithHandlers(ctx, cmd)
			return err
		},
		"Spawn": func(sb *sandlock.Sandbox, cmd ...string) error { _, err := sb.Spawn(cmd...); return err },
		"Popen": func(sb *sandlock.Sandbox, cmd ...string) error {
			_, err := sb.Popen(sandlock.Stdio{}, cmd...)
			return err
		},
	}
	for name, f := range entry {
		if err := f(sb, "echo", "a\x00b"); err != sandlock.ErrInvalidString {
			t.Errorf("%s with a NUL in argv: got %v, want ErrInvalidString itself", name, err)
		}
	}
	fields := map[string]func(sb *sandlock.Sandbox){
		"FSReadable": func(sb *sandlock.Sandbox) { sb.FSReadable = append(sb.FSReadable, "/tmp\x00x") },
		"FSWritable": func(sb *sandlock.Sandbox) { sb.FSWritable = []string{"/tmp\x00x"} },
		"FSDenied":   func(sb *sandlock.Sandbox) { sb.FSDenied = []string{"/etc/\x00"} },
		"Cwd":        func(sb *sandlock.Sandbox) { sb.Cwd = "/\x00" },
		"NetAllow":   func(sb *sandlock.Sandbox) { sb.NetAllow = []string{"127.0.0.1:\x0080"} },
		"MaxMemory":  func(sb *sandlock.Sandbox) { sb.MaxMemory = "1\x00M" },
		"Env value":  func(sb *sandlock.Sandbox) { sb.Env = map[string]string{"A": "b\x00c"} },
		"Env name":   func(sb *sandlock.Sandbox) { sb.Env = map[string]string{"A\x00": "b"} },
		"Name":       func(sb *sandlock.Sandbox) { sb.Name = "x\x00" },
		"FSMount":    func(sb *sandlock.Sandbox) { sb.FSMount = map[string]string{"/a": "/b\x00"} },
	}
	for name, set := range fields {
		sb := base()
		set(sb)
		if _, err := sb.Run(ctx, "true"); err != sandlock.ErrInvalidString {
			t.Errorf("NUL in %s: Run got %v, want ErrInvalidString itself", name, err)
		}
		if err := sandlock.Confine(sb); err != sandlock.ErrInvalidString {
			t.Errorf("NUL in %s: Confine got %v, want ErrInvalidString itself", name, err)
		}
	}
	if _, err := base().DryRun(ctx, "echo", "a\x00b"); err == nil {
		t.Error("DryRun with a NUL: no error")
	}
	if _, err := sandlock.SyscallNr("open\x00at"); err != sandlock.ErrInvalidString {
		t.Errorf("SyscallNr with a NUL: got %v", err)
	}
}

// TestExitReasonUpstreamModel follows upstream's TestExitReason: exit,
// timeout, a catchable signal, and a SIGKILL nobody in sandlock sent.
func TestExitReasonUpstreamModel(t *testing.T) {
	cases := []struct {
		name    string
		script  string
		timeout time.Duration
		reason  sandlock.ExitReason
		exit    int
		signal  int
		shell   int // Result.ShellCode: what the CLI exits with
	}{
		{"exited", "exit 7", 0, sandlock.ReasonExited, 7, -1, 7},
		{"signaled", "kill -TERM $$", 0, sandlock.ReasonSignaled, -1, 15, 128 + 15},
		{"killed by itself", "kill -KILL $$", 0, sandlock.ReasonKilled, -1, -1, 128 + 9},
		{"timeout", "sleep 60", 300 * time.Millisecond, sandlock.ReasonTimeout, -1, -1, 128 + 9},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := ctxT(t)
			if c.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, c.timeout)
				defer cancel()
			}
			res, err := base().Run(ctx, "/bin/sh", "-c", c.script)
			if err != nil {
				t.Fatal(err)
			}
			if res.Reason != c.reason || res.ExitCode != c.exit || res.Signal != c.signal || res.ShellCode() != c.shell || res.Success {
				t.Errorf("got reason %v exit %d signal %d shell %d success %v; want %v %d %d %d false",
					res.Reason, res.ExitCode, res.Signal, res.ShellCode(), res.Success, c.reason, c.exit, c.signal, c.shell)
			}
		})
	}
	// The CLI keeps the shell's 128+N for a SIGKILL, whoever sent it.
	code, _, _ := cli(t, cliRunArgs(cliGrants(), "/bin/sh", "-c", "kill -KILL $$")...)
	if code != 137 {
		t.Errorf("CLI exit code after kill -KILL $$: %d, want 137", code)
	}
}

// TestAbandonedProcessIsReaped drops a Process without Wait or Close: once
// it is unreachable its whole sandbox is killed and reaped, with nothing of
// it left (setsid'd children included) and no zombie of ours.
func TestAbandonedProcessIsReaped(t *testing.T) {
	m := marker(t)
	func() {
		p, err := base().Popen(sandlock.Stdio{Stdout: sandlock.StdioPiped},
			"/bin/sh", "-c", fmt.Sprintf("setsid sleep %[1]s & sleep %[1]s", m))
		if err != nil {
			t.Fatal(err)
		}
		waitAlive(t, m, 2)
		_ = p.Pid() // p becomes unreachable when this function returns
	}()
	deadline := time.Now().Add(20 * time.Second)
	for len(alive(m)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("abandoned sandbox still runs: %v", alive(m))
		}
		runtime.GC()
		time.Sleep(50 * time.Millisecond)
	}
	deadline = time.Now().Add(10 * time.Second)
	for len(zombieChildren()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("zombies left: %v", zombieChildren())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A Process that was waited for is not touched again by its cleanup.
	p, err := base().Spawn("true")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := p.Wait(); err != nil || !res.Success {
		t.Fatalf("Wait: %+v %v", res, err)
	}
	p = nil
	runtime.GC()
	runtime.GC()
}

// TestConfineRejectsWhatItCannotApply sets, one at a time, every field
// Confine cannot apply: each is an error naming the field, and nothing is
// applied (the test process stays unconfined, as the next case proves).
func TestConfineRejectsWhatItCannotApply(t *testing.T) {
	seed := uint64(1)
	uid := 0
	set := map[string]func(sb *sandlock.Sandbox){
		"MaxMemory":         func(sb *sandlock.Sandbox) { sb.MaxMemory = "256M" },
		"FSDenied":          func(sb *sandlock.Sandbox) { sb.FSDenied = []string{"/etc/shadow"} },
		"NetAllow":          func(sb *sandlock.Sandbox) { sb.NetAllow = []string{"127.0.0.1:80"} },
		"NetDeny":           func(sb *sandlock.Sandbox) { sb.NetDeny = []string{"127.0.0.1"} },
		"NetAllowBind":      func(sb *sandlock.Sandbox) { sb.NetAllowBind = []string{"80"} },
		"NetDenyBind":       func(sb *sandlock.Sandbox) { sb.NetDenyBind = []string{"80"} },
		"MaxProcesses":      func(sb *sandlock.Sandbox) { sb.MaxProcesses = 3 },
		"MaxCPU":            func(sb *sandlock.Sandbox) { sb.MaxCPU = 50 },
		"MaxOpenFiles":      func(sb *sandlock.Sandbox) { sb.MaxOpenFiles = 10 },
		"CPUCores":          func(sb *sandlock.Sandbox) { sb.CPUCores = []uint32{0} },
		"NumCPUs":           func(sb *sandlock.Sandbox) { sb.NumCPUs = 1 },
		"GPUDevices":        func(sb *sandlock.Sandbox) { sb.GPUDevices = []uint32{} },
		"RandomSeed":        func(sb *sandlock.Sandbox) { sb.RandomSeed = &seed },
		"TimeStart":         func(sb *sandlock.Sandbox) { sb.TimeStart = "2000-01-01T00:00:00Z" },
		"DeterministicDirs": func(sb *sandlock.Sandbox) { sb.DeterministicDirs = true },
		"NoRandomizeMemory": func(sb *sandlock.Sandbox) { sb.NoRandomizeMemory = true },
		"Workdir":           func(sb *sandlock.Sandbox) { sb.Workdir = "/tmp" },
		"Name":              func(sb *sandlock.Sandbox) { sb.Name = "x" },
		"PolicyFn": func(sb *sandlock.Sandbox) {
			sb.PolicyFn = func(sandlock.SyscallEvent, *sandlock.PolicyContext) sandlock.PolicyDecision { return 0 }
		},
		"UID":                func(sb *sandlock.Sandbox) { sb.UID = &uid },
		"Env":                func(sb *sandlock.Sandbox) { sb.Env = map[string]string{"A": "b"} },
		"ExtraDenySyscalls":  func(sb *sandlock.Sandbox) { sb.ExtraDenySyscalls = []string{"chmod"} },
		"ExtraAllowSyscalls": func(sb *sandlock.Sandbox) { sb.ExtraAllowSyscalls = []string{"sysv_ipc"} },
		"NoSupervisor":       func(sb *sandlock.Sandbox) { sb.NoSupervisor = true },
		"KeepCaps":           func(sb *sandlock.Sandbox) { sb.KeepCaps = true },
		"OnError":            func(sb *sandlock.Sandbox) { sb.OnError = sandlock.BranchActionAbort },
	}
	for name, f := range set {
		sb := &sandlock.Sandbox{FSReadable: []string{"/"}}
		f(sb)
		err := sandlock.Confine(sb)
		if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "cannot be applied by Confine") {
			t.Errorf("Confine with %s: got %v, want an error naming the field", name, err)
		}
	}
	// Still unconfined: a path outside "/" grants does not exist, so probe
	// that this process can write where a confined one could not.
	f, err := os.CreateTemp("", "sandlock-confine-")
	if err != nil {
		t.Fatalf("the test process was confined by a rejected Confine: %v", err)
	}
	f.Close()
	os.Remove(f.Name())
}

// TestConfineSubprocess runs examples/confine, built without cgo as
// Confine requires: reads inside the grants work, reads and writes outside
// fail with EACCES, the default devices stay usable, and the confinement
// passes to the program it execs (irreversible).
func TestConfineSubprocess(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "confine")
	build := exec.Command("go", "build", "-o", bin, "./examples/confine")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building examples/confine: %v\n%s", err, out)
	}
	inside, outside := tempDir(t), tempDir(t)
	must(t, os.WriteFile(filepath.Join(inside, "f"), []byte("inside"), 0o644))
	must(t, os.WriteFile(filepath.Join(outside, "f"), []byte("outside"), 0o644))
	args := []string{}
	for _, p := range append(base().FSReadable, inside) {
		args = append(args, "-r", p)
	}
	script := `cat ` + inside + `/f; echo
		cat ` + outside + `/f 2>&1 | grep -q 'Permission denied' && echo read-outside-EACCES
		(echo x > ` + outside + `/g) 2>&1 | grep -q 'Permission denied' && echo write-outside-EACCES
		echo x > /dev/null && echo null-ok
		head -c 2 /dev/zero | wc -c`
	out, err := exec.Command(bin, append(args, "--", "/bin/sh", "-c", script)...).CombinedOutput()
	if err != nil {
		t.Fatalf("confined shell: %v\n%s", err, out)
	}
	want := "inside\nread-outside-EACCES\nwrite-outside-EACCES\nnull-ok\n2\n"
	if string(out) != want {
		t.Errorf("confined shell:\ngot  %q\nwant %q", out, want)
	}
	if _, err := os.Stat(filepath.Join(outside, "g")); err == nil {
		t.Error("the confined shell created a file outside its grants")
	}
	// A field Confine cannot apply stops the example before the command.
	out, err = exec.Command(bin, "-r", "/", "-w", "/nonexistent-grant", "--", "true").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "/nonexistent-grant") {
		t.Errorf("a missing grant: %v, %s", err, out)
	}
}

// readmeGrants are the grants the README's examples use.
func readmeGrants() []string {
	var out []string
	for _, p := range []string{"/usr", "/lib", "/lib64", "/bin", "/etc"} {
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// TestDefaultDevices runs everyday programs that need /dev/null and its
// kin with only the README's grants, and checks that the devices are
// granted as files: the rest of /dev stays out of reach.
func TestDefaultDevices(t *testing.T) {
	work := tempDir(t)
	sb := &sandlock.Sandbox{FSReadable: readmeGrants(), FSWritable: []string{work},
		Env: map[string]string{"HOME": work, "GIT_CONFIG_NOSYSTEM": "1"}}
	res := sh(t, sb, "(sleep 0.1; echo a) & wait")
	if string(res.Stdout) != "a\n" || res.ExitCode != 0 {
		t.Errorf("a background job: exit %d, stdout %q, stderr %q", res.ExitCode, res.Stdout, res.Stderr)
	}
	res = sh(t, sb, `cd `+work+` && git init -q r && cd r && git config user.email a@b && git config user.name a &&
		echo x > f && git add f && git commit -qm first && git log --format=%s`)
	if string(res.Stdout) != "first\n" || res.ExitCode != 0 {
		t.Errorf("git init && git commit: exit %d, stdout %q, stderr %q", res.ExitCode, res.Stdout, res.Stderr)
	}
	res = run(t, sb, python, "-c", `import subprocess; r = subprocess.run(["true"], stdin=subprocess.DEVNULL); print(r.returncode)`)
	if string(res.Stdout) != "0\n" || res.ExitCode != 0 {
		t.Errorf("python subprocess with DEVNULL: exit %d, stdout %q, stderr %q", res.ExitCode, res.Stdout, res.Stderr)
	}
	res = sh(t, sb, `echo x > /dev/null && echo null-ok
		head -c 3 /dev/zero | od -An -tx1 | tr -d ' \n'; echo
		head -c 4 /dev/urandom | wc -c
		head -c 4 /dev/random | wc -c
		echo x > /dev/full || echo full-ENOSPC
		echo x > /dev/urandom 2>/dev/null || echo urandom-ro
		ls /dev >/dev/null 2>&1 || echo dev-closed
		cat /dev/tty >/dev/null 2>&1 || echo tty-closed`)
	want := "null-ok\n000000\n4\n4\nfull-ENOSPC\nurandom-ro\ndev-closed\ntty-closed\n"
	if string(res.Stdout) != want {
		t.Errorf("devices:\ngot  %q\nwant %q\nstderr %s", res.Stdout, want, res.Stderr)
	}
}
