//go:build linux

package sandlock_test

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock"
)

// End-to-end tests of the sandlock CLI (cmd/sandlock), run as a separate
// process exactly as a user would run it.

// cliNobody runs the CLI as an unprivileged user.
var cliNobody = []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}

// cliDeadline bounds every wait of these tests; it is a guard against hangs,
// never an assertion about how long something takes.
const cliDeadline = 60 * time.Second

// cliGrants returns readArgs plus extra arguments.
func cliGrants(extra ...string) []string {
	return append(readArgs(), extra...)
}

// cliRunArgs builds `run <grants> -- cmd...`.
func cliRunArgs(flags []string, cmd ...string) []string {
	return append(append(append([]string{"run"}, flags...), "--"), cmd...)
}

// cliOneLine asserts that s is exactly one line starting with "sandlock: ".
func cliOneLine(t *testing.T, what, s string) {
	t.Helper()
	if !strings.HasPrefix(s, "sandlock: ") || !strings.HasSuffix(s, "\n") || strings.Count(s, "\n") != 1 {
		t.Errorf("%s: stderr is not one \"sandlock: …\" line: %q", what, s)
	}
}

var cliMarkerSeq atomic.Int64

// cliMarker returns a unique argument for sleep (a number of seconds around
// base) so that pgrep -f finds exactly the processes of one test.
func cliMarker(base int) string {
	return fmt.Sprintf("%d.%d%04d", base, os.Getpid(), cliMarkerSeq.Add(1))
}

// cliMarkerProcs returns the pids of the processes `sleep MARKER`, for any
// of markers, that are still alive (zombies count as dead), each with a
// description.
func cliMarkerProcs(t *testing.T, markers ...string) map[int]string {
	t.Helper()
	quoted := make([]string, len(markers))
	for i, m := range markers {
		quoted[i] = regexp.QuoteMeta(m)
	}
	out, err := exec.Command("pgrep", "-f", "^sleep ("+strings.Join(quoted, "|")+")$").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
			return nil // no match
		}
		t.Fatalf("pgrep: %v", err)
	}
	procs := map[int]string{}
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("pgrep printed %q", f)
		}
		stat, err := os.ReadFile("/proc/" + f + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 || i+2 >= len(stat) {
			continue
		}
		state := stat[i+2]
		if state == 'Z' || state == 'X' {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + f + "/cmdline")
		procs[pid] = fmt.Sprintf("pid %d state %c: %s", pid, state, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
	}
	return procs
}

// cliAlive describes the marker processes still alive.
func cliAlive(t *testing.T, markers ...string) []string {
	t.Helper()
	var live []string
	for _, d := range cliMarkerProcs(t, markers...) {
		live = append(live, d)
	}
	return live
}

// cliKillMarkers SIGKILLs, by pid, whatever marker process a failed test
// left behind.
func cliKillMarkers(t *testing.T, markers ...string) {
	t.Helper()
	t.Cleanup(func() {
		for pid := range cliMarkerProcs(t, markers...) {
			unix.Kill(pid, unix.SIGKILL)
		}
	})
}

// cliWaitAlive polls until every marker process runs, or fails the test.
func cliWaitAlive(t *testing.T, markers ...string) {
	t.Helper()
	end := time.Now().Add(cliDeadline)
	for len(cliAlive(t, markers...)) < len(markers) {
		if time.Now().After(end) {
			t.Fatalf("marker processes never all ran; alive: %q", cliAlive(t, markers...))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cliCmd returns an unstarted command running the CLI.
func cliCmd(args ...string) *exec.Cmd {
	return exec.Command(cliBinary, args...)
}

// cliWait waits for a started command, failing the test (after killing it)
// if it does not end within the guard deadline, and returns its exit code.
func cliWait(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			return 0
		}
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("waiting for the CLI: %v", err)
		}
		return ee.ExitCode()
	case <-time.After(cliDeadline):
		cmd.Process.Kill()
		<-done
		t.Fatalf("the CLI did not exit")
	}
	return -1
}

func TestCLIExitCodes(t *testing.T) {
	for _, tc := range []struct {
		script string
		want   int
	}{
		{"exit 0", 0},
		{"exit 3", 3},
		{"exit 255", 255},
		// The fork of sleep waits until the sandbox is traced, so the
		// signal comes after that (see "signal before tracing" below).
		{"sleep 0; kill -TERM $$", 128 + int(syscall.SIGTERM)},
		{"sleep 0; kill -KILL $$", 128 + int(syscall.SIGKILL)},
		{"sleep 0; kill -SEGV $$", 128 + int(syscall.SIGSEGV)},
	} {
		code, stdout, stderr := cli(t, cliRunArgs(cliGrants(), "/bin/sh", "-c", tc.script)...)
		if code != tc.want {
			t.Errorf("sh -c %q: exit %d, want %d (stdout %q, stderr %q)", tc.script, code, tc.want, stdout, stderr)
		}
	}
	// A program that dies of SIGKILL right away, possibly before sandlock
	// has started tracing it, still died of SIGKILL: 137, not a failure to
	// start. Each run is one chance to lose that race.
	for i := 0; i < 20; i++ {
		code, _, stderr := cli(t, cliRunArgs(cliGrants(), "/bin/sh", "-c", "kill -KILL $$")...)
		if code != 137 || stderr != "" {
			t.Errorf("signal before tracing, run %d: exit %d stderr %q, want 137 and nothing", i, code, stderr)
			break
		}
	}
	code, _, stderr := cli(t, cliRunArgs(cliGrants(), "false")...)
	if code != 1 || stderr != "" {
		t.Errorf("false: exit %d stderr %q, want 1 and nothing", code, stderr)
	}
	code, stdout, stderr := cli(t, cliRunArgs(cliGrants(), "echo", "hello")...)
	if code != 0 || stdout != "hello\n" || stderr != "" {
		t.Errorf("echo hello: exit %d stdout %q stderr %q", code, stdout, stderr)
	}
}

func TestCLITimeout(t *testing.T) {
	t.Run("sleep", func(t *testing.T) {
		code, stdout, stderr := cli(t, cliRunArgs(cliGrants("-t", "1"), "sleep", "30")...)
		if code != 124 {
			t.Errorf("exit %d, want 124", code)
		}
		if stderr != "sandlock: timeout after 1s\n" {
			t.Errorf("stderr %q, want exactly %q", stderr, "sandlock: timeout after 1s\n")
		}
		if stdout != "" {
			t.Errorf("stdout %q", stdout)
		}
	})
	t.Run("tree", func(t *testing.T) {
		m1, m2, m3 := cliMarker(500), cliMarker(501), cliMarker(502)
		cliKillMarkers(t, m1, m2, m3)
		script := fmt.Sprintf("sleep %s & setsid sleep %s & (sleep %s &); sleep 30", m1, m2, m3)
		cmd := cliCmd(cliRunArgs(cliGrants("-r", "/dev", "-t", "2"), "/bin/sh", "-c", script)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The background sleeps start long before the timeout; make sure
		// they did, so that the check below is not vacuous.
		cliWaitAlive(t, m1, m2, m3)
		code := cliWait(t, cmd)
		if code != 124 {
			t.Errorf("exit %d, want 124", code)
		}
		if stderr.String() != "sandlock: timeout after 2s\n" {
			t.Errorf("stderr %q", stderr.String())
		}
		// sandlock exits only once the whole tree is gone.
		if live := cliAlive(t, m1, m2, m3); len(live) > 0 {
			t.Errorf("survived the timeout: %q", live)
		}
	})
}

func TestCLIExecFailure(t *testing.T) {
	echo, err := exec.LookPath("echo")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("no grants", func(t *testing.T) {
		code, stdout, stderr := cli(t, "run", "--", "echo", "hi")
		if code != 127 {
			t.Errorf("exit %d, want 127", code)
		}
		if stdout != "" {
			t.Errorf("stdout %q", stdout)
		}
		cliOneLine(t, "no grants", stderr)
		prefix := "sandlock: exec " + echo + ": "
		hint := "grant it with -r " + filepath.Dir(echo)
		if !strings.HasPrefix(stderr, prefix) || !strings.Contains(stderr, hint) {
			t.Errorf("stderr %q, want %q… naming %q", stderr, prefix, hint)
		}
	})
	t.Run("interpreter outside grants", func(t *testing.T) {
		f, err := elf.Open(echo)
		if err != nil {
			t.Fatal(err)
		}
		interp := ""
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				b := make([]byte, p.Filesz)
				p.ReadAt(b, 0)
				interp = strings.TrimRight(string(b), "\x00")
			}
		}
		f.Close()
		if interp == "" {
			t.Fatalf("%s has no ELF interpreter", echo)
		}
		code, _, stderr := cli(t, "run", "-r", filepath.Dir(echo), "--", echo, "hi")
		if code != 127 {
			t.Errorf("exit %d, want 127", code)
		}
		cliOneLine(t, "interpreter", stderr)
		if !strings.HasPrefix(stderr, "sandlock: exec "+echo+": ") || !strings.Contains(stderr, interp) ||
			!strings.Contains(stderr, "grant it with -r "+filepath.Dir(interp)) {
			t.Errorf("stderr %q does not name %s and its directory", stderr, interp)
		}
	})
	t.Run("missing command", func(t *testing.T) {
		code, stdout, stderr := cli(t, cliRunArgs(cliGrants(), "sandlock-no-such-command")...)
		if code != 127 || stdout != "" {
			t.Errorf("exit %d stdout %q, want 127 and nothing", code, stdout)
		}
		cliOneLine(t, "missing command", stderr)
		if !strings.HasPrefix(stderr, "sandlock: exec sandlock-no-such-command: ") {
			t.Errorf("stderr %q", stderr)
		}
	})
	t.Run("missing path", func(t *testing.T) {
		code, _, stderr := cli(t, cliRunArgs(cliGrants(), "/etc/sandlock-no-such-file")...)
		if code != 127 {
			t.Errorf("exit %d, want 127", code)
		}
		cliOneLine(t, "missing path", stderr)
		if !strings.HasPrefix(stderr, "sandlock: exec /etc/sandlock-no-such-file: ") {
			t.Errorf("stderr %q", stderr)
		}
	})
	t.Run("not executable", func(t *testing.T) {
		code, _, stderr := cli(t, cliRunArgs(cliGrants(), "/etc/passwd")...)
		if code != 127 {
			t.Errorf("exit %d, want 127", code)
		}
		cliOneLine(t, "not executable", stderr)
		if !strings.HasPrefix(stderr, "sandlock: exec /etc/passwd: ") {
			t.Errorf("stderr %q", stderr)
		}
	})
}

func TestCLIPolicyErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags []string
		want  []string // substrings of the message
		exact string   // the whole of stderr, if set
	}{
		{name: "missing read path", flags: cliGrants("-r", "/nope"), exact: "sandlock: --fs-read \"/nope\": no such file or directory\n"},
		{name: "missing write path", flags: cliGrants("-w", "/nope"), want: []string{`--fs-write "/nope"`, "no such file"}},
		{name: "missing cwd", flags: cliGrants("--cwd", "/nope"), want: []string{`--cwd "/nope"`}},
		{name: "cwd not a directory", flags: cliGrants("--cwd", "/etc/passwd"), want: []string{`--cwd "/etc/passwd"`}},
		{name: "unknown deny syscall", flags: cliGrants("--extra-deny-syscall", "nosuchcall"), want: []string{"--extra-deny-syscall", "nosuchcall"}},
		{name: "allow single syscall", flags: cliGrants("--extra-allow-syscall", "getcwd"), want: []string{"--extra-allow-syscall", "getcwd"}},
		{name: "unknown allow group", flags: cliGrants("--extra-allow-syscall", "nosuchgroup"), want: []string{"--extra-allow-syscall", "nosuchgroup"}},
		{name: "allow and deny a group", flags: cliGrants("--extra-allow-syscall", "sysv_ipc", "--extra-deny-syscall", "sysv_ipc"), want: []string{"--extra-", "sysv_ipc"}},
		{name: "disable fs-refer", flags: cliGrants("--disable", "fs-refer"), want: []string{"--disable", "fs-refer"}},
		{name: "unknown disable", flags: cliGrants("--disable", "nosuchprot"), want: []string{"--disable", "nosuchprot"}},
		{name: "unknown allow-degraded", flags: cliGrants("--allow-degraded", "nosuchprot"), want: []string{"--allow-degraded", "nosuchprot"}},
		{name: "env without =", flags: cliGrants("--env", "FOO"), want: []string{"--env", "FOO"}},
		{name: "env without name", flags: cliGrants("--env", "=bar"), want: []string{"--env"}},
		{name: "closed status fd", flags: cliGrants("--status-fd", "3"), want: []string{"--status-fd", "3"}},
		{name: "no-supervisor with fs-deny", flags: cliGrants("--no-supervisor", "--fs-deny", "/etc/passwd"), want: []string{"--fs-deny"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := cli(t, cliRunArgs(tc.flags, "echo", "ran")...)
			if code != 1 {
				t.Errorf("exit %d, want 1 (stderr %q)", code, stderr)
			}
			if stdout != "" {
				t.Errorf("the command ran: stdout %q", stdout)
			}
			cliOneLine(t, tc.name, stderr)
			if tc.exact != "" && stderr != tc.exact {
				t.Errorf("stderr %q, want %q", stderr, tc.exact)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not contain %q", stderr, w)
				}
			}
		})
	}
}

func TestCLIUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"run", "--no-such-flag", "--", "echo", "ran"}, "--no-such-flag"},
		{"unknown short flag", []string{"run", "-Z", "--", "echo", "ran"}, "-Z"},
		{"missing value", []string{"run", "-r"}, "-r"},
		{"missing long value", []string{"run", "--fs-read"}, "--fs-read"},
		{"missing timeout value", append(append([]string{"run"}, cliGrants()...), "-t"), "-t"},
		{"bad timeout value", append([]string{"run", "-t", "soon"}, append(cliGrants(), "--", "echo", "ran")...), "soon"},
		{"no command", append([]string{"run"}, cliGrants()...), "command"},
		{"no command after --", append(append([]string{"run"}, cliGrants()...), "--"), "command"},
		{"unknown subcommand", []string{"no-such-subcommand"}, "no-such-subcommand"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			code, stdout, stderr := cli(t, args...)
			if code != 2 {
				t.Errorf("%q: exit %d, want 2 (stderr %q)", args, code, stderr)
			}
			if strings.Contains(stdout, "ran") {
				t.Errorf("the command ran: stdout %q", stdout)
			}
			cliOneLine(t, tc.name, stderr)
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q does not name %q", stderr, tc.want)
			}
		})
	}
}

func TestCLIFilesystem(t *testing.T) {
	dir := tempDir(t)
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	for _, d := range []string{in, out, filepath.Join(in, "sub")} {
		if err := os.Mkdir(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path, content string) {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(in, "granted.txt"), "granted\n")
	write(filepath.Join(in, "denied.txt"), "denied\n")
	write(filepath.Join(in, "sub", "deep.txt"), "deep\n")
	write(filepath.Join(out, "other.txt"), "other\n")

	mustRun := func(t *testing.T, flags []string, cmd ...string) string {
		t.Helper()
		code, stdout, stderr := cli(t, cliRunArgs(flags, cmd...)...)
		if code != 0 {
			t.Fatalf("%q: exit %d, stderr %q", cmd, code, stderr)
		}
		return stdout
	}
	mustFail := func(t *testing.T, flags []string, cmd ...string) string {
		t.Helper()
		code, stdout, stderr := cli(t, cliRunArgs(flags, cmd...)...)
		if code == 0 {
			t.Fatalf("%q succeeded: stdout %q", cmd, stdout)
		}
		if strings.HasPrefix(stderr, "sandlock:") {
			t.Fatalf("%q: sandlock refused to run it: %q", cmd, stderr)
		}
		return stderr
	}

	t.Run("read", func(t *testing.T) {
		if got := mustRun(t, cliGrants("-r", in), "cat", filepath.Join(in, "granted.txt")); got != "granted\n" {
			t.Errorf("read %q", got)
		}
		if e := mustFail(t, cliGrants("-r", in), "cat", filepath.Join(out, "other.txt")); !strings.Contains(e, "Permission denied") {
			t.Errorf("reading outside the grants: %q", e)
		}
		if e := mustFail(t, cliGrants("-r", in), "ls", out); !strings.Contains(e, "Permission denied") {
			t.Errorf("listing outside the grants: %q", e)
		}
	})
	t.Run("write", func(t *testing.T) {
		target := filepath.Join(in, "new.txt")
		mustFail(t, cliGrants("-r", in), "/bin/sh", "-c", "echo x > "+target)
		if _, err := os.Stat(target); err == nil {
			t.Fatalf("%s written under a read-only grant", target)
		}
		mustFail(t, cliGrants("-w", in), "/bin/sh", "-c", "echo x > "+filepath.Join(out, "new.txt"))
		if _, err := os.Stat(filepath.Join(out, "new.txt")); err == nil {
			t.Fatal("written outside the grants")
		}
		mustRun(t, cliGrants("-w", in), "/bin/sh", "-c", "echo written > "+target)
		if b, err := os.ReadFile(target); err != nil || string(b) != "written\n" {
			t.Errorf("write under -w: %q %v", b, err)
		}
	})
	t.Run("deny", func(t *testing.T) {
		flags := cliGrants("-r", in, "--fs-deny", filepath.Join(in, "denied.txt"), "--fs-deny", filepath.Join(in, "sub"))
		if got := mustRun(t, flags, "cat", filepath.Join(in, "granted.txt")); got != "granted\n" {
			t.Errorf("read beside a denied file: %q", got)
		}
		if e := mustFail(t, flags, "cat", filepath.Join(in, "denied.txt")); !strings.Contains(e, "Permission denied") {
			t.Errorf("denied file: %q", e)
		}
		mustFail(t, flags, "cat", filepath.Join(in, "sub", "deep.txt"))
		// Without --fs-deny the same files are readable.
		if got := mustRun(t, cliGrants("-r", in), "cat", filepath.Join(in, "denied.txt"), filepath.Join(in, "sub", "deep.txt")); got != "denied\ndeep\n" {
			t.Errorf("without --fs-deny: %q", got)
		}
	})
	t.Run("cwd", func(t *testing.T) {
		got := mustRun(t, cliGrants("-r", in, "--cwd", in), "/bin/sh", "-c", "pwd; cat granted.txt")
		if got != in+"\ngranted\n" {
			t.Errorf("--cwd: %q", got)
		}
		// --cwd is no grant: a working directory outside the grants
		// cannot be read.
		mustFail(t, cliGrants("--cwd", in), "cat", "granted.txt")
	})
}

func TestCLIEnvironment(t *testing.T) {
	t.Setenv("SANDLOCK_CLI_TEST", "outer")
	show := `echo "v=$SANDLOCK_CLI_TEST a=$A path=$PATH"`
	path := os.Getenv("PATH")
	for _, tc := range []struct {
		name  string
		flags []string
		want  string
	}{
		{"inherited", cliGrants(), "v=outer a= path=" + path},
		{"env", cliGrants("--env", "A=1=2"), "v=outer a=1=2 path=" + path},
		{"env override", cliGrants("--env", "SANDLOCK_CLI_TEST=inner"), "v=inner a= path=" + path},
		{"clean-env", cliGrants("--clean-env"), "v= a= path=" + path},
		{"clean-env with env", cliGrants("--clean-env", "--env", "A=x y", "--env", "SANDLOCK_CLI_TEST=set"), "v=set a=x y path=" + path},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := cli(t, cliRunArgs(tc.flags, "/bin/sh", "-c", show)...)
			if code != 0 || stdout != tc.want+"\n" {
				t.Errorf("exit %d stdout %q stderr %q, want %q", code, stdout, stderr, tc.want)
			}
		})
	}
	// --clean-env keeps only PATH, HOME, USER, TERM and LANG.
	code, stdout, _ := cli(t, cliRunArgs(cliGrants("--clean-env"), "env")...)
	if code != 0 {
		t.Fatalf("env: exit %d", code)
	}
	for _, kv := range strings.Split(strings.TrimSpace(stdout), "\n") {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "PATH", "HOME", "USER", "TERM", "LANG":
		default:
			t.Errorf("--clean-env kept %q", kv)
		}
	}
}

func TestCLIExecShell(t *testing.T) {
	code, stdout, stderr := cli(t, append([]string{"run"}, cliGrants("-e", "echo abc | tr a-c x-z; exit 5")...)...)
	if code != 5 || stdout != "xyz\n" {
		t.Errorf("-e: exit %d stdout %q stderr %q", code, stdout, stderr)
	}
	code, stdout, _ = cli(t, append([]string{"run"}, cliGrants("--exec-shell", "echo $0")...)...)
	if code != 0 || stdout != "/bin/sh\n" {
		t.Errorf("--exec-shell: exit %d stdout %q", code, stdout)
	}
	// The shell is confined like any command.
	dir := tempDir(t)
	code, _, _ = cli(t, append([]string{"run"}, cliGrants("-e", "echo x > "+filepath.Join(dir, "f"))...)...)
	if code == 0 {
		t.Error("-e wrote outside the grants")
	}
}

// cliOpenPTY returns a new pseudo-terminal's master and slave.
func cliOpenPTY(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slave, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return master, slave
}

func TestCLIInteractive(t *testing.T) {
	t.Run("stdin", func(t *testing.T) {
		cmd := cliCmd(cliRunArgs(cliGrants("-i"), "/bin/sh", "-c", `read x; echo "got:$x"`)...)
		cmd.Stdin = strings.NewReader("line\n")
		var stdout strings.Builder
		cmd.Stdout = &stdout
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if code := cliWait(t, cmd); code != 0 || stdout.String() != "got:line\n" {
			t.Errorf("exit %d stdout %q", code, stdout.String())
		}
	})
	t.Run("terminal", func(t *testing.T) {
		master, slave := cliOpenPTY(t)
		defer master.Close()
		script := `read x; echo "got:$x"; ` + python + ` -c "import os; print('foreground', os.tcgetpgrp(0) == os.getpgrp())"`
		cmd := cliCmd(cliRunArgs(cliGrants("-i"), "/bin/sh", "-c", script)...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		slave.Close()
		var out bytes.Buffer
		read := make(chan struct{})
		go func() { io.Copy(&out, master); close(read) }() // ends with EIO once every slave fd is closed
		if _, err := master.Write([]byte("typed\n")); err != nil {
			t.Fatal(err)
		}
		code := cliWait(t, cmd)
		select {
		case <-read:
		case <-time.After(cliDeadline):
			t.Fatal("the terminal never hung up")
		}
		if code != 0 || !strings.Contains(out.String(), "got:typed") || !strings.Contains(out.String(), "foreground True") {
			t.Errorf("exit %d, terminal output %q", code, out.String())
		}
	})
}

func TestCLIStatusFD(t *testing.T) {
	status := func(t *testing.T, flags []string, cmd ...string) (int, string) {
		t.Helper()
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		c := cliCmd(cliRunArgs(append(flags, "--status-fd", "3"), cmd...)...)
		c.ExtraFiles = []*os.File{w}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		code := cliWait(t, c)
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		return code, strings.TrimSpace(string(b))
	}
	for _, tc := range []struct {
		script string
		code   int
		status string
	}{
		{"exit 0", 0, `{"exit_code":0}`},
		{"exit 42", 42, `{"exit_code":42}`},
		{"sleep 0; kill -KILL $$", 137, `{"exit_code":-1,"signal":9}`},
		{"sleep 0; kill -TERM $$", 143, `{"exit_code":-1,"signal":15}`},
		// The status fd is sandlock's, not the program's.
		{"echo leaked >&3", 2, `{"exit_code":2}`},
	} {
		code, st := status(t, cliGrants(), "/bin/sh", "-c", tc.script)
		if code != tc.code || st != tc.status {
			t.Errorf("sh -c %q: exit %d status %q, want %d and %q", tc.script, code, st, tc.code, tc.status)
		}
	}
	code, st := status(t, cliGrants("-t", "1"), "sleep", "30")
	if code != 124 || st != `{"exit_code":-1,"signal":9}` {
		t.Errorf("timeout: exit %d status %q", code, st)
	}
	// A closed fd is an error before anything runs (cli passes no fd 3).
	code, stdout, stderr := cli(t, cliRunArgs(cliGrants("--status-fd", "3"), "echo", "ran")...)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "--status-fd") {
		t.Errorf("closed status fd: exit %d stdout %q stderr %q", code, stdout, stderr)
	}
}

func TestCLISyscalls(t *testing.T) {
	t.Run("extra-deny getcwd", func(t *testing.T) {
		dir := tempDir(t)
		prog := []string{python, "-c", "import os; print(os.getcwd())"}
		code, stdout, stderr := cli(t, cliRunArgs(cliGrants("--cwd", dir), prog...)...)
		if code != 0 || stdout != dir+"\n" {
			t.Errorf("default: exit %d stdout %q stderr %q", code, stdout, stderr)
		}
		code, stdout, stderr = cli(t, cliRunArgs(cliGrants("--cwd", dir, "--extra-deny-syscall", "getcwd"), prog...)...)
		if code != 1 || stdout != "" || !strings.Contains(stderr, "PermissionError") {
			t.Errorf("denied: exit %d stdout %q stderr %q, want a PermissionError", code, stdout, stderr)
		}
	})
	t.Run("extra-allow sysv_ipc", func(t *testing.T) {
		// shmget(IPC_PRIVATE, 4096, IPC_CREAT|0600) as a raw syscall; the
		// segment is removed again with shmctl(IPC_RMID).
		prog := fmt.Sprintf(`
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
r = libc.syscall(ctypes.c_long(%d), ctypes.c_long(0), ctypes.c_long(4096), ctypes.c_long(0o1600))
if r < 0:
    print("errno", ctypes.get_errno())
else:
    libc.syscall(ctypes.c_long(%d), ctypes.c_long(r), ctypes.c_long(0), ctypes.c_long(0))
    print("ok")
`, mustNr(t, "shmget"), mustNr(t, "shmctl"))
		for _, tc := range []struct {
			flags []string
			want  string
		}{
			{cliGrants(), fmt.Sprintf("errno %d", unix.EPERM)},
			{cliGrants("--extra-allow-syscall", "sysv_ipc"), "ok"},
			{cliGrants("--extra-deny-syscall", "shmget", "--extra-allow-syscall", "sysv_ipc"), ""}, // conflict: policy error
		} {
			code, stdout, stderr := cli(t, cliRunArgs(tc.flags, python, "-c", prog)...)
			if tc.want == "" {
				if code != 1 || stdout != "" {
					t.Errorf("%q: exit %d stdout %q stderr %q, want a policy error", tc.flags, code, stdout, stderr)
				}
				continue
			}
			if code != 0 || stdout != tc.want+"\n" {
				t.Errorf("%q: exit %d stdout %q stderr %q, want %q", tc.flags, code, stdout, stderr, tc.want)
			}
		}
	})
}

func TestCLINoSupervisor(t *testing.T) {
	dir := tempDir(t)
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("landlock", func(t *testing.T) {
		code, stdout, stderr := cli(t, cliRunArgs(cliGrants("--no-supervisor"), "cat", secret)...)
		if code == 0 || strings.Contains(stdout, "secret") || !strings.Contains(stderr, "Permission denied") {
			t.Errorf("read outside the grants: exit %d stdout %q stderr %q", code, stdout, stderr)
		}
		code, stdout, stderr = cli(t, cliRunArgs(cliGrants("--no-supervisor", "-r", dir), "cat", secret)...)
		if code != 0 || stdout != "secret\n" {
			t.Errorf("read inside the grants: exit %d stdout %q stderr %q", code, stdout, stderr)
		}
		code, _, _ = cli(t, cliRunArgs(cliGrants("--no-supervisor", "-r", dir), "/bin/sh", "-c", "echo x > "+filepath.Join(dir, "new"))...)
		if _, err := os.Stat(filepath.Join(dir, "new")); code == 0 || err == nil {
			t.Errorf("wrote under a read grant: exit %d", code)
		}
		code, _, _ = cli(t, cliRunArgs(cliGrants("--no-supervisor"), "/bin/sh", "-c", "exit 9")...)
		if code != 9 {
			t.Errorf("exit code: %d, want 9", code)
		}
	})
	t.Run("nested", func(t *testing.T) {
		inner := append([]string{cliBinary, "run"}, cliGrants("-r", dir)...)
		inner = append(inner, "--", "/bin/sh", "-c", "echo nested; cat "+secret)
		code, stdout, stderr := cli(t, cliRunArgs(cliGrants("--no-supervisor", "-r", filepath.Dir(cliBinary), "-r", dir), inner...)...)
		if code != 0 || stdout != "nested\nsecret\n" {
			t.Errorf("nested sandlock: exit %d stdout %q stderr %q", code, stdout, stderr)
		}
		// The inner sandbox is confined by both: no grant of the outer one
		// widens the inner one.
		inner = append([]string{cliBinary, "run"}, cliGrants()...)
		inner = append(inner, "--", "cat", secret)
		code, stdout, _ = cli(t, cliRunArgs(cliGrants("--no-supervisor", "-r", filepath.Dir(cliBinary), "-r", dir), inner...)...)
		if code == 0 || strings.Contains(stdout, "secret") {
			t.Errorf("the inner sandbox read outside its grants: exit %d stdout %q", code, stdout)
		}
	})
	t.Run("orphans", func(t *testing.T) {
		// A grandchild that leaves the process group (setsid) and outlives
		// its parent is still ended with the run.
		m1, m2 := cliMarker(300), cliMarker(300)
		cliKillMarkers(t, m1, m2)
		code, _, stderr := cli(t, cliRunArgs(cliGrants("--no-supervisor"), "/bin/sh", "-c",
			"exec >/dev/null 2>&1 </dev/null; (setsid sleep "+m1+" &); setsid sh -c 'sleep "+m2+" & wait' & sleep 0.2; exit 3")...)
		if code != 3 {
			t.Errorf("exit %d, want 3; stderr %q", code, stderr)
		}
		if live := cliAlive(t, m1, m2); len(live) > 0 {
			t.Errorf("processes outlived the run: %q", live)
		}
	})
	t.Run("fs-deny", func(t *testing.T) {
		code, stdout, stderr := cli(t, cliRunArgs(cliGrants("--no-supervisor", "-r", dir, "--fs-deny", secret), "cat", secret)...)
		if code != 1 || stdout != "" || !strings.Contains(stderr, "--fs-deny") {
			t.Errorf("--no-supervisor --fs-deny: exit %d stdout %q stderr %q, want a policy error", code, stdout, stderr)
		}
	})
}

// cliCapEff returns the CapEff line's value from /proc/self/status as read by
// a sandboxed grep.
func cliCapEff(t *testing.T, args []string) uint64 {
	t.Helper()
	code, stdout, stderr := cliAs(t, nil, args...)
	if code != 0 {
		t.Fatalf("exit %d stderr %q", code, stderr)
	}
	_, v, ok := strings.Cut(strings.TrimSpace(stdout), ":")
	if !ok {
		t.Fatalf("no CapEff line: %q", stdout)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCLIKeepCaps(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (run the tests as root, as CI does)")
	}
	prog := []string{"grep", "CapEff", "/proc/self/status"}
	if c := cliCapEff(t, cliRunArgs(cliGrants("-r", "/proc"), prog...)); c != 0 {
		t.Errorf("without --keep-caps CapEff = %#x, want 0", c)
	}
	if c := cliCapEff(t, cliRunArgs(cliGrants("-r", "/proc", "--keep-caps"), prog...)); c == 0 {
		t.Error("with --keep-caps CapEff = 0")
	}
	// Without capabilities, root in the sandbox cannot bypass permissions.
	dir := tempDir(t)
	f := filepath.Join(dir, "private")
	if err := os.WriteFile(f, []byte("private\n"), 0o000); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ := cli(t, cliRunArgs(cliGrants("-r", dir), "cat", f)...)
	if code == 0 || stdout != "" {
		t.Errorf("root without capabilities read a mode-000 file: exit %d", code)
	}
	code, stdout, _ = cli(t, cliRunArgs(cliGrants("-r", dir, "--keep-caps"), "cat", f)...)
	if code != 0 || stdout != "private\n" {
		t.Errorf("--keep-caps: exit %d stdout %q", code, stdout)
	}
}

func TestCLISignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			name := map[syscall.Signal]string{syscall.SIGTERM: "TERM", syscall.SIGINT: "INT"}[sig]
			m1, m2 := cliMarker(600), cliMarker(601)
			cliKillMarkers(t, m1, m2)
			script := fmt.Sprintf(`trap "echo got; exit 7" %s; sleep %s & setsid sleep %s & echo ready; while :; do sleep 0.1; done`, name, m1, m2)
			cmd := cliCmd(cliRunArgs(cliGrants("-r", "/dev"), "/bin/sh", "-c", script)...)
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			cmd.Stdout = w
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			w.Close()
			lines := make(chan string)
			go func() {
				sc := bufio.NewScanner(r)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			select {
			case l := <-lines:
				if l != "ready" {
					t.Fatalf("first line %q", l)
				}
			case <-time.After(cliDeadline):
				cmd.Process.Kill()
				t.Fatal("the program never started")
			}
			cliWaitAlive(t, m1, m2)
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			code := cliWait(t, cmd)
			// sandlock has exited: nothing of the sandbox may be left.
			if live := cliAlive(t, m1, m2); len(live) > 0 {
				t.Errorf("alive after sandlock exited: %q", live)
			}
			var rest []string
			for l := range lines {
				rest = append(rest, l)
			}
			if code != 7 || strings.Join(rest, "\n") != "got" {
				t.Errorf("exit %d, output after ready %q, stderr %q; want 7 and \"got\"", code, rest, stderr.String())
			}
		})
	}
}

func TestCLIUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root to switch to cliNobody (run the tests as root, as CI does)")
	}
	dir := tempDir(t)
	t.Run("echo", func(t *testing.T) {
		code, stdout, stderr := cliAs(t, cliNobody, cliRunArgs(cliGrants(), "echo", "hello")...)
		if code != 0 || stdout != "hello\n" {
			t.Errorf("exit %d stdout %q stderr %q", code, stdout, stderr)
		}
		code, stdout, _ = cliAs(t, cliNobody, cliRunArgs(cliGrants("-r", "/proc"), "grep", "-E", "^(Uid|CapEff)", "/proc/self/status")...)
		if code != 0 || !strings.Contains(stdout, "65534") {
			t.Errorf("identity: exit %d stdout %q", code, stdout)
		}
	})
	t.Run("write", func(t *testing.T) {
		// dir is mode 0777: only the sandbox stands between nobody and it.
		f := filepath.Join(dir, "outside")
		code, _, stderr := cliAs(t, cliNobody, cliRunArgs(cliGrants(), "/bin/sh", "-c", "echo x > "+f)...)
		if _, err := os.Stat(f); code == 0 || err == nil {
			t.Errorf("wrote outside the grants: exit %d stderr %q", code, stderr)
		}
		f = filepath.Join(dir, "inside")
		code, _, stderr = cliAs(t, cliNobody, cliRunArgs(cliGrants("-w", dir), "/bin/sh", "-c", "echo x > "+f)...)
		if _, err := os.Stat(f); code != 0 || err != nil {
			t.Errorf("-w: exit %d stderr %q, stat %v", code, stderr, err)
		}
	})
	t.Run("fs-deny", func(t *testing.T) {
		f := filepath.Join(dir, "secret")
		if err := os.WriteFile(f, []byte("secret\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := cliAs(t, cliNobody, cliRunArgs(cliGrants("-r", dir), "cat", f)...)
		if code != 0 || stdout != "secret\n" {
			t.Fatalf("without --fs-deny: exit %d stdout %q stderr %q", code, stdout, stderr)
		}
		code, stdout, stderr = cliAs(t, cliNobody, cliRunArgs(cliGrants("-r", dir, "--fs-deny", f), "cat", f)...)
		if code == 0 || stdout != "" || strings.HasPrefix(stderr, "sandlock:") {
			t.Errorf("--fs-deny: exit %d stdout %q stderr %q", code, stdout, stderr)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		code, _, stderr := cliAs(t, cliNobody, cliRunArgs(cliGrants("-t", "1"), "sleep", "30")...)
		if code != 124 || stderr != "sandlock: timeout after 1s\n" {
			t.Errorf("exit %d stderr %q", code, stderr)
		}
	})
}

func TestCLICheck(t *testing.T) {
	code, stdout, stderr := cli(t, "check")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d stderr %q", code, stderr)
	}
	abi := sandlock.LandlockABIVersion()
	if abi < 6 {
		t.Fatalf("kernel Landlock ABI %d; these tests need 6 or later", abi)
	}
	want := []string{
		fmt.Sprintf("Landlock ABI: v%d\n", abi),
		"Seccomp user notification: available\n",
	}
	for _, p := range []string{"fs-refer", "fs-truncate", "net-tcp", "fs-ioctl-dev", "signal-scope", "abstract-unix-socket-scope"} {
		if !regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(p) + `\s.*\bavailable$`).MatchString(stdout) {
			t.Errorf("no available line for %s", p)
		}
	}
	for _, w := range want {
		if !strings.Contains(stdout, w) {
			t.Errorf("no %q", w)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", stdout)
	}
}

func TestCLIFailClosed(t *testing.T) {
	m1, m2, m3 := cliMarker(300), cliMarker(301), cliMarker(302)
	cliKillMarkers(t, m1, m2, m3)
	script := fmt.Sprintf("sleep %s & setsid sleep %s & sleep %s", m1, m2, m3)
	cmd := cliCmd(cliRunArgs(cliGrants("-r", "/dev"), "/bin/sh", "-c", script)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cliWaitAlive(t, m1, m2, m3)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if code := cliWait(t, cmd); code != -1 {
		t.Errorf("sandlock: exit %d after SIGKILL", code)
	}
	end := time.Now().Add(10 * time.Second)
	for {
		live := cliAlive(t, m1, m2, m3)
		if len(live) == 0 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("sandboxed processes outlived a SIGKILLed sandlock: %q", live)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
