//go:build linux

package sandlock_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandlock-go/sandlock"
)

func TestEchoAndExitCode(t *testing.T) {
	res := run(t, base(), "echo", "hello")
	if res.ExitCode != 0 || !res.Success || res.Reason != sandlock.ReasonExited || string(res.Stdout) != "hello\n" {
		t.Fatalf("echo: %+v", res)
	}
	res = sh(t, base(), "echo out; echo err >&2; exit 42")
	if res.ExitCode != 42 || res.Success || string(res.Stdout) != "out\n" || string(res.Stderr) != "err\n" {
		t.Fatalf("exit 42: code %d stdout %q stderr %q", res.ExitCode, res.Stdout, res.Stderr)
	}
}

func TestSignalDeath(t *testing.T) {
	res := sh(t, base(), "kill -SEGV $$")
	if res.Reason != sandlock.ReasonSignaled || res.Signal != 11 || res.ExitCode != -1 {
		t.Fatalf("want death by SIGSEGV, got %+v", res)
	}
	if res.ShellCode() != 139 {
		t.Fatalf("ShellCode = %d, want 139", res.ShellCode())
	}
}

func TestLargeOutputBothStreams(t *testing.T) {
	res := run(t, base(), python, "-c", "import sys\nfor i in range(20000):\n  sys.stdout.write('o'*50+'\\n'); sys.stderr.write('e'*50+'\\n')")
	if res.ExitCode != 0 || len(res.Stdout) != 20000*51 || len(res.Stderr) != 20000*51 {
		t.Fatalf("exit %d, %d bytes out, %d bytes err", res.ExitCode, len(res.Stdout), len(res.Stderr))
	}
}

func TestReadGrant(t *testing.T) {
	dir := tempDir(t)
	secret := filepath.Join(dir, "data")
	os.WriteFile(secret, []byte("granted"), 0o644)

	// Without a grant the file cannot be read…
	res := run(t, base(), "cat", secret)
	if res.ExitCode == 0 || !strings.Contains(string(res.Stderr), "Permission denied") {
		t.Fatalf("read without grant: exit %d, stderr %q", res.ExitCode, res.Stderr)
	}
	// …with one it can, but not be written.
	sb := base()
	sb.FSReadable = append(sb.FSReadable, dir)
	res = run(t, sb, "cat", secret)
	if res.ExitCode != 0 || string(res.Stdout) != "granted" {
		t.Fatalf("read with grant: %+v", res)
	}
	res = sh(t, sb, "echo x > "+secret)
	if res.ExitCode == 0 {
		t.Fatal("wrote through a read-only grant")
	}
	if b, _ := os.ReadFile(secret); string(b) != "granted" {
		t.Fatalf("file changed to %q", b)
	}
}

func TestWriteGrant(t *testing.T) {
	dir := tempDir(t)
	sb := base()
	sb.FSWritable = []string{dir}
	res := sh(t, sb, fmt.Sprintf("echo made > %[1]s/f && mkdir %[1]s/d && mv %[1]s/f %[1]s/d/g && ln -s g %[1]s/d/l && cat %[1]s/d/l && rm -r %[1]s/d && : > %[1]s/h && truncate -s 3 %[1]s/h", dir))
	if res.ExitCode != 0 || string(res.Stdout) != "made\n" {
		t.Fatalf("writes in a writable grant: exit %d out %q err %q", res.ExitCode, res.Stdout, res.Stderr)
	}
	if st, err := os.Stat(filepath.Join(dir, "h")); err != nil || st.Size() != 3 {
		t.Fatalf("truncate did not happen: %v", err)
	}
	// Outside the grant nothing can be created.
	other := tempDir(t)
	res = sh(t, sb, "echo x > "+other+"/f")
	if res.ExitCode == 0 {
		t.Fatal("created a file outside the writable grant")
	}
	if _, err := os.Stat(filepath.Join(other, "f")); err == nil {
		t.Fatal("file exists outside the grant")
	}
}

func TestMissingPathIsAnError(t *testing.T) {
	for _, field := range []string{"FSReadable", "FSWritable"} {
		sb := base()
		if field == "FSReadable" {
			sb.FSReadable = append(sb.FSReadable, "/does/not/exist")
		} else {
			sb.FSWritable = []string{"/does/not/exist"}
		}
		_, err := sb.Run(ctxT(t), "true")
		if err == nil || !strings.Contains(err.Error(), "/does/not/exist") || !strings.Contains(err.Error(), field) || !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: want an error naming the missing path, got %v", field, err)
		}
	}
}

func TestNoGrantMeansNoProgram(t *testing.T) {
	_, err := (&sandlock.Sandbox{}).Run(ctxT(t), "/bin/true")
	if err == nil || !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), "-r /") {
		t.Fatalf("want an exec error naming the missing grant, got %v", err)
	}
	// The loader is named when the binary is readable but it is not.
	sb := &sandlock.Sandbox{FSReadable: []string{"/usr/bin", "/bin"}}
	_, err = sb.Run(ctxT(t), "/usr/bin/true")
	if err == nil || !strings.Contains(err.Error(), "ld-linux") {
		t.Fatalf("want an exec error naming the loader, got %v", err)
	}
}

func TestUnsupportedFieldsAreErrors(t *testing.T) {
	cases := map[string]func(*sandlock.Sandbox){
		"PortRemap": func(s *sandlock.Sandbox) { s.PortRemap = true },
		"PolicyFn": func(s *sandlock.Sandbox) {
			s.PolicyFn = func(sandlock.SyscallEvent, *sandlock.PolicyContext) sandlock.PolicyDecision { return sandlock.Allow() }
		},
	}
	for field, set := range cases {
		sb := base()
		set(sb)
		_, err := sb.Run(ctxT(t), "true")
		want := "sandlock: " + field + " is not supported yet"
		if err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %q", field, err, want)
		}
	}
}

func TestNULByteIsAnError(t *testing.T) {
	_, err := base().Run(ctxT(t), "echo", "a\x00b")
	if !errors.Is(err, sandlock.ErrInvalidString) {
		t.Fatalf("NUL in argv: got %v", err)
	}
	sb := base()
	sb.FSWritable = []string{"/tmp\x00x"}
	if _, err := sb.Run(ctxT(t), "true"); !errors.Is(err, sandlock.ErrInvalidString) {
		t.Fatalf("NUL in a path: got %v", err)
	}
}

func TestEnvironment(t *testing.T) {
	t.Setenv("SANDLOCK_TEST_INHERITED", "yes")
	sb := base()
	sb.Env = map[string]string{"FOO": "bar"}
	res := sh(t, sb, `echo "$FOO $SANDLOCK_TEST_INHERITED"`)
	if string(res.Stdout) != "bar yes\n" {
		t.Fatalf("env: %q", res.Stdout)
	}
	// Env replaces an inherited variable: one entry, the new value.
	sb.Env["SANDLOCK_TEST_INHERITED"] = "over"
	res = run(t, sb, "/usr/bin/env")
	var got []string
	for _, kv := range strings.Split(string(res.Stdout), "\n") {
		if strings.HasPrefix(kv, "SANDLOCK_TEST_INHERITED=") {
			got = append(got, kv)
		}
	}
	if len(got) != 1 || got[0] != "SANDLOCK_TEST_INHERITED=over" {
		t.Fatalf("overridden variable: %q", got)
	}
	delete(sb.Env, "SANDLOCK_TEST_INHERITED")
	sb.CleanEnv = true
	res = sh(t, sb, `echo "$FOO ${SANDLOCK_TEST_INHERITED:-unset} ${PATH:+path}"`)
	if string(res.Stdout) != "bar unset path\n" {
		t.Fatalf("clean env: %q", res.Stdout)
	}
}

func TestCwd(t *testing.T) {
	dir := tempDir(t)
	sb := base()
	sb.Cwd = dir
	res := run(t, sb, "pwd")
	if strings.TrimSpace(string(res.Stdout)) != dir {
		t.Fatalf("pwd = %q, want %q", res.Stdout, dir)
	}
	sb.Cwd = "/does/not/exist"
	if _, err := sb.Run(ctxT(t), "pwd"); err == nil || !strings.Contains(err.Error(), "Cwd") {
		t.Fatalf("missing cwd: %v", err)
	}
}

func TestOnlyStandardFDsAreInherited(t *testing.T) {
	// An fd of the caller without O_CLOEXEC must not reach the program.
	f, err := os.Open("/etc/hostname")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	clearCloexec(t, f)
	sb := base()
	sb.FSReadable = append(sb.FSReadable, "/proc")
	res := run(t, sb, "ls", "/proc/self/fd")
	fds := strings.Fields(string(res.Stdout))
	// ls itself opens one fd for the directory it lists.
	if len(fds) > 4 {
		t.Fatalf("program inherited fds %v", fds)
	}
}

func TestCapabilitiesAreDropped(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (CI runs as root)")
	}
	sb := base()
	sb.FSReadable = append(sb.FSReadable, "/proc")
	res := run(t, sb, "grep", "^Cap", "/proc/self/status")
	for _, line := range strings.Split(strings.TrimSpace(string(res.Stdout)), "\n") {
		if !strings.HasSuffix(line, "0000000000000000") {
			t.Errorf("capability set not empty: %s", line)
		}
	}
	// uid 0 without capabilities cannot read a file of another user.
	dir := tempDir(t)
	private := filepath.Join(dir, "private")
	os.WriteFile(private, []byte("x"), 0o600)
	os.Chown(private, 1000, 1000)
	sb.FSReadable = append(sb.FSReadable, dir)
	if res := run(t, sb, "cat", private); res.ExitCode == 0 {
		t.Fatal("root without capabilities read another user's 0600 file")
	}
	sb.KeepCaps = true
	if res := run(t, sb, "cat", private); res.ExitCode != 0 {
		t.Fatalf("KeepCaps: root could not read the file: %s", res.Stderr)
	}
	res = run(t, sb, "grep", "^CapEff", "/proc/self/status")
	if strings.HasSuffix(strings.TrimSpace(string(res.Stdout)), "0000000000000000") {
		t.Fatalf("KeepCaps: capabilities gone: %s", res.Stdout)
	}
}
