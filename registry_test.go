//go:build linux

package sandlock_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandlock-go/sandlock"
)

// Named sandboxes through the library: the registry under
// /dev/shm/sandlock-<uid>/, its control socket, Instances, Inspect, Kill.

var nameSeq atomic.Int64

// uniqueName returns a sandbox name no other test (or test process) uses.
func uniqueName(what string) string {
	return fmt.Sprintf("t-%s-%d-%d", what, os.Getpid(), nameSeq.Add(1))
}

// entryDir is the registry entry of a name for this user.
func entryDir(name string) string {
	return fmt.Sprintf("/dev/shm/sandlock-%d/%s", os.Getuid(), name)
}

// listed reports whether Instances has name, and its entry.
func listed(t *testing.T, name string) (sandlock.Instance, bool) {
	t.Helper()
	list, err := sandlock.Instances()
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range list {
		if in.Name == name {
			return in, true
		}
	}
	return sandlock.Instance{}, false
}

// waitFile waits until path exists (a guard against hangs, not a timing
// assertion).
func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", path)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNamedRegistered(t *testing.T) {
	dir := tempDir(t)
	ready := filepath.Join(dir, "ready")
	sb := base()
	sb.FSWritable = []string{dir}
	sb.Name = uniqueName("reg")
	proc, err := sb.Spawn("/bin/sh", "-c", "touch "+ready+"; exec sleep 60")
	if err != nil {
		t.Fatal(err)
	}
	defer proc.Close()
	if proc.Name() != sb.Name {
		t.Errorf("Process.Name() = %q, want %q", proc.Name(), sb.Name)
	}
	waitFile(t, ready)
	in, ok := listed(t, sb.Name)
	if !ok {
		t.Fatalf("%s is not listed once its program runs", sb.Name)
	}
	// The shell touches the file before it execs sleep: the command line
	// is the shell's until then.
	for deadline := time.Now().Add(10 * time.Second); strings.Join(in.Command, " ") != "sleep 60" && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		in, _ = listed(t, sb.Name)
	}
	if in.Pid != proc.Pid() || in.Supervisor != os.Getpid() || in.Status != "running" || strings.Join(in.Command, " ") != "sleep 60" {
		t.Errorf("instance %+v; want pid %d, supervisor %d, running, sleep 60", in, proc.Pid(), os.Getpid())
	}
	if in.Started.IsZero() || time.Since(in.Started) < 0 {
		t.Errorf("start time %v", in.Started)
	}
	for f, mode := range map[string]os.FileMode{"": 0o700 | os.ModeDir, "pid": 0o600, "lock": 0o600, "control.sock": 0o600 | os.ModeSocket} {
		st, err := os.Lstat(filepath.Join(entryDir(sb.Name), f))
		if err != nil || st.Mode() != mode {
			t.Errorf("entry file %q: %v %v, want %v", f, st.Mode(), err, mode)
		}
	}
	base, err := os.Lstat(filepath.Dir(entryDir(sb.Name)))
	if err != nil || base.Mode() != 0o700|os.ModeDir {
		t.Errorf("runtime directory: %v %v", base.Mode(), err)
	}

	// The live name cannot be taken; nothing of the second command runs.
	ran := filepath.Join(dir, "ran")
	_, err = sb.Run(ctxT(t), "/bin/sh", "-c", "touch "+ran)
	want := fmt.Sprintf("sandlock: sandbox %q is already running (pid %d)", sb.Name, proc.Pid())
	if !errors.Is(err, sandlock.ErrNameInUse) || err.Error() != want {
		t.Errorf("duplicate name: %v, want %q wrapping ErrNameInUse", err, want)
	}
	if _, err := os.Stat(ran); err == nil {
		t.Error("the duplicate's command ran")
	}

	proc.Kill()
	res, _ := proc.Wait()
	if res.Reason != sandlock.ReasonKilled {
		t.Errorf("reason %v", res.Reason)
	}
	// Gone once the run has ended, and the name is free again.
	if _, err := os.Lstat(entryDir(sb.Name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("entry left after Wait: %v", err)
	}
	if res := run(t, sb, "true"); res.ExitCode != 0 {
		t.Errorf("reusing the name: %+v", res)
	}
}

func TestNamedGeneratedAndUnregistered(t *testing.T) {
	sb := base()
	proc, err := sb.Spawn("sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	defer proc.Close()
	if !regexp.MustCompile(fmt.Sprintf(`^sandbox-%d-[0-9]+$`, os.Getpid())).MatchString(proc.Name()) {
		t.Errorf("generated name %q", proc.Name())
	}
	if _, ok := listed(t, proc.Name()); !ok {
		t.Errorf("%s not listed", proc.Name())
	}

	sb.NoRegistry = true
	sb.Name = uniqueName("unreg")
	p2, err := sb.Spawn("sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if p2.Name() != "" {
		t.Errorf("NoRegistry: Name() = %q", p2.Name())
	}
	if _, ok := listed(t, sb.Name); ok {
		t.Error("NoRegistry: listed")
	}
	if _, err := os.Lstat(entryDir(sb.Name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("NoRegistry: an entry exists: %v", err)
	}
}

func TestNamedInvalidNames(t *testing.T) {
	for _, name := range []string{".", "..", "a/b", strings.Repeat("n", 65)} {
		sb := base()
		sb.Name = name
		_, err := sb.Run(ctxT(t), "true")
		var fe *sandlock.FieldError
		if !errors.As(err, &fe) || fe.Field != "Name" || fe.Value != name {
			t.Errorf("Name %q: %v, want a FieldError on Name", name, err)
		}
	}
	sb := base()
	sb.Name = "a\x00b"
	if _, err := sb.Run(ctxT(t), "true"); err != sandlock.ErrInvalidString {
		t.Errorf("a NUL in Name: %v", err)
	}
	sb.Name = strings.Repeat("n", 64)
	if res := run(t, sb, "true"); res.ExitCode != 0 {
		t.Errorf("a 64-byte name: %+v", res)
	}
}

func TestNamedInspectAndKill(t *testing.T) {
	seedFile := tempDir(t)
	sb := base()
	sb.Name = uniqueName("insp")
	sb.FSWritable = []string{seedFile}
	sb.MaxMemory = "256M"
	sb.MaxProcesses = 9
	sb.Env = map[string]string{"GREETING": "hello world"}
	sb.NetAllowBind = []string{"8080", "9000-9005"}
	sb.AllowDegraded = []sandlock.Protection{sandlock.ProtectionNetTCP}
	proc, err := sb.Spawn("/bin/sh", "-c", "sleep 60 & setsid sleep 61 & wait")
	if err != nil {
		t.Fatal(err)
	}
	defer proc.Close()
	prof, err := sandlock.Inspect(sb.Name)
	if err != nil {
		t.Fatal(err)
	}
	want := *sb
	want.Name = "" // a run-time setting, not policy
	got := prof.Sandbox
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("Inspect:\n got %+v\nwant %+v", got, want)
	}
	if len(prof.Program) != 3 || prof.Program[0] != "/bin/sh" || prof.Program[1] != "-c" {
		t.Errorf("program %q", prof.Program)
	}
	if _, err := sandlock.Inspect(uniqueName("none")); err == nil || !strings.Contains(err.Error(), "no such sandbox") {
		t.Errorf("Inspect of nothing: %v", err)
	}

	done := make(chan *sandlock.Result)
	go func() { r, _ := proc.Wait(); done <- r }()
	in, err := sandlock.Kill(sb.Name)
	if err != nil || in.Pid != proc.Pid() {
		t.Fatalf("Kill: %+v %v", in, err)
	}
	// Kill returns once the run has ended through its normal path.
	select {
	case res := <-done:
		if res.Reason != sandlock.ReasonKilled {
			t.Errorf("reason %v, want killed", res.Reason)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the run did not end after Kill")
	}
	if _, err := os.Lstat(entryDir(sb.Name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("entry left after Kill: %v", err)
	}
	if _, err := sandlock.Kill(sb.Name); err == nil {
		t.Error("a second Kill succeeded")
	}
}

// A sandboxed program of the same user, even one granted the runtime
// directory, cannot use another sandbox's control socket: not to end it,
// not to read its policy (which holds its environment).
func TestNamedControlSocketRefusesSandboxes(t *testing.T) {
	victim := base()
	victim.Name = uniqueName("victim")
	proc, err := victim.Spawn("sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	defer proc.Close()
	sock := filepath.Join(entryDir(victim.Name), "control.sock")
	attacker := base()
	attacker.FSWritable = []string{filepath.Dir(entryDir(victim.Name))}
	out := py(t, attacker, fmt.Sprintf(`
import socket, struct, json
for verb in ("kill", "config"):
    s = socket.socket(socket.AF_UNIX)
    s.connect(%q)
    body = json.dumps({"v": 1, "verb": verb, "args": {}}).encode()
    s.sendall(struct.pack(">I", len(body)) + body)
    n = struct.unpack(">I", s.recv(4))[0]
    r = json.loads(s.recv(n))
    print(verb, r["ok"], r.get("err", ""))
`, sock))
	for _, verb := range []string{"kill", "config"} {
		if !strings.Contains(out, verb+" False permission denied") {
			t.Errorf("%s from a sandbox: %q, want a refusal", verb, out)
		}
	}
	if _, ok := listed(t, victim.Name); !ok {
		t.Error("the victim is gone")
	}
	// The same request from outside any sandbox is served.
	if _, err := sandlock.Inspect(victim.Name); err != nil {
		t.Errorf("Inspect from the test process: %v", err)
	}
}

// BenchmarkStartTrueNoRegistry is BenchmarkStartTrue without the registry:
// the difference is what registering costs a start.
func BenchmarkStartTrueNoRegistry(b *testing.B) {
	sb := base()
	sb.NoRegistry = true
	for i := 0; i < b.N; i++ {
		res, err := sb.Run(context.Background(), "/bin/true")
		if err != nil || res.ExitCode != 0 {
			b.Fatal(fmt.Sprint(res, err))
		}
	}
}
