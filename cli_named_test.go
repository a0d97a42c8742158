//go:build linux

package sandlock_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// End-to-end tests of named sandboxes and profiles through the CLI, as
// root and as an unprivileged user (the registry is per uid).

// cliUser is who runs the CLI in a test.
type cliUser struct {
	name   string
	prefix []string // setpriv …, or nothing for root
	uid    int
}

var cliUsers = []cliUser{{"root", nil, 0}, {"nobody", cliNobody, 65534}}

// command builds the CLI's command line for u, with extra environment.
func (u cliUser) command(env []string, args ...string) *exec.Cmd {
	argv := append(append(append([]string(nil), u.prefix...), cliBinary), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// run runs the CLI as u and returns its exit code, stdout and stderr.
func (u cliUser) run(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := u.command(env, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("running %q: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return code, stdout.String(), stderr.String()
}

// entry is the registry entry of name for u.
func (u cliUser) entry(name string) string {
	return fmt.Sprintf("/dev/shm/sandlock-%d/%s", u.uid, name)
}

// start starts `sandlock run --name name … -- sh -c script` in the
// background as u; the script touches ready when it runs. The run is
// killed at the end of the test if still there.
func (u cliUser) start(t *testing.T, name, dir string, flags []string, script string) (*exec.Cmd, string) {
	t.Helper()
	ready := filepath.Join(dir, "ready-"+name)
	os.Remove(ready)
	args := append([]string{"run", "--name", name}, cliGrants(append([]string{"-w", dir}, flags...)...)...)
	args = append(args, "--", "/bin/sh", "-c", "touch "+ready+"; "+script)
	cmd := u.command(nil, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	deadline := time.Now().Add(cliDeadline)
	for {
		if _, err := os.Stat(ready); err == nil {
			return cmd, ready
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never ran; stderr %q", name, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// psLine returns the ps line of name, or "".
func psLine(t *testing.T, u cliUser, name string) string {
	t.Helper()
	code, stdout, stderr := u.run(t, nil, "ps")
	if code != 0 || stderr != "" {
		t.Fatalf("ps: exit %d stderr %q", code, stderr)
	}
	for _, l := range strings.Split(stdout, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == name {
			return l
		}
	}
	return ""
}

func TestCLINamedLifecycle(t *testing.T) {
	for _, u := range cliUsers {
		t.Run(u.name, func(t *testing.T) {
			dir := tempDir(t)
			name := uniqueName("life")
			m1, m2 := cliMarker(400), cliMarker(401)
			cliKillMarkers(t, m1, m2)
			cmd, _ := u.start(t, name, dir, nil, "sleep "+m1+" & setsid sleep "+m2+" & wait")
			cliWaitAlive(t, m1, m2)

			// ps lists it as soon as its program runs.
			code, stdout, _ := u.run(t, nil, "ps")
			if code != 0 || !strings.HasPrefix(stdout, "NAME") || !strings.Contains(strings.SplitN(stdout, "\n", 2)[0], "PID") {
				t.Fatalf("ps: exit %d\n%s", code, stdout)
			}
			line := psLine(t, u, name)
			f := strings.Fields(line)
			if len(f) < 5 || f[3] != "running" || !strings.HasPrefix(strings.Join(f[4:], " "), "/bin/sh -c touch") {
				t.Fatalf("ps line %q", line)
			}
			pid, _ := strconv.Atoi(f[1])
			if ppid, _, _ := procParent(pid); ppid != cmd.Process.Pid {
				t.Errorf("ps PID %d is not the program sandlock started (its parent is %d, sandlock is %d)", pid, ppid, cmd.Process.Pid)
			}
			if !regexp.MustCompile(`^[0-9]+[smhd]`).MatchString(f[2]) {
				t.Errorf("uptime %q", f[2])
			}

			// The live name cannot be taken: nothing runs.
			ran := filepath.Join(dir, "ran")
			code, stdout, stderr := u.run(t, nil, cliRunArgs(append([]string{"--name", name}, cliGrants("-w", dir)...), "touch", ran)...)
			if want := fmt.Sprintf("sandlock: sandbox %q is already running (pid %d)\n", name, pid); code != 1 || stderr != want || stdout != "" {
				t.Errorf("duplicate: exit %d stderr %q, want 1 and %q", code, stderr, want)
			}
			if _, err := os.Stat(ran); err == nil {
				t.Error("the duplicate ran")
			}

			// A silent client holds nothing up.
			silent, err := net.Dial("unix", filepath.Join(u.entry(name), "control.sock"))
			if err != nil {
				t.Fatal(err)
			}
			defer silent.Close()
			code, stdout, stderr = u.run(t, nil, "inspect", name)
			var policy map[string]map[string]any
			if code != 0 || json.Unmarshal([]byte(stdout), &policy) != nil {
				t.Fatalf("inspect with a silent client connected: exit %d stdout %q stderr %q", code, stdout, stderr)
			}
			if fmt.Sprint(policy["filesystem"]["write"]) != fmt.Sprint([]string{dir}) || policy["program"]["exec"] != "/bin/sh" {
				t.Errorf("inspect: %s", stdout)
			}
			silent.Close()

			// kill: exit 0, and nothing of the sandbox is left.
			code, stdout, stderr = u.run(t, nil, "kill", name)
			if want := fmt.Sprintf("Killed sandbox '%s' (child PID %d, supervisor PID %d)\n", name, pid, cmd.Process.Pid); code != 0 || stdout != want || stderr != "" {
				t.Errorf("kill: exit %d stdout %q stderr %q, want %q", code, stdout, stderr, want)
			}
			if live := cliAlive(t, m1, m2); len(live) > 0 {
				t.Errorf("alive after kill returned: %q", live)
			}
			if _, err := os.Lstat(u.entry(name)); err == nil {
				t.Error("the entry is left after kill")
			}
			if code := cliWait(t, cmd); code != 128+9 {
				t.Errorf("the killed run exited %d, want 137", code)
			}
			if line := psLine(t, u, name); line != "" {
				t.Errorf("ps after kill: %q", line)
			}
			code, _, stderr = u.run(t, nil, "kill", name)
			if code != 1 || stderr != fmt.Sprintf("sandlock: no such sandbox named %q\n", name) {
				t.Errorf("kill of nothing: exit %d stderr %q", code, stderr)
			}
			code, _, stderr = u.run(t, nil, "inspect", name)
			if code != 1 || !strings.HasPrefix(stderr, "sandlock: inspect failed: no such sandbox") {
				t.Errorf("inspect of nothing: exit %d stderr %q", code, stderr)
			}
			for _, bad := range []string{"..", "a/b", strings.Repeat("x", 65)} {
				if code, _, stderr := u.run(t, nil, "kill", bad); code != 1 || !strings.HasPrefix(stderr, "sandlock: ") {
					t.Errorf("kill %q: exit %d stderr %q", bad, code, stderr)
				}
			}
		})
	}
}

// procParent reads a process's parent and group.
func procParent(pid int) (ppid, pgrp int, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ppid, _ = strconv.Atoi(f[1])
	pgrp, _ = strconv.Atoi(f[2])
	return ppid, pgrp, nil
}

// A supervisor that does not answer (stopped) is killed by signals, once
// verified; nothing is left.
func TestCLINamedKillFallback(t *testing.T) {
	for _, u := range cliUsers {
		t.Run(u.name, func(t *testing.T) {
			dir := tempDir(t)
			name := uniqueName("stopped")
			m1, m2 := cliMarker(402), cliMarker(403)
			cliKillMarkers(t, m1, m2)
			cmd, _ := u.start(t, name, dir, nil, "sleep "+m1+" & setsid sleep "+m2+" & wait")
			cliWaitAlive(t, m1, m2)
			if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := u.run(t, nil, "kill", name)
			if code != 0 || !strings.HasPrefix(stdout, "Killed sandbox '"+name+"'") {
				t.Errorf("kill of a stopped supervisor: exit %d stdout %q stderr %q", code, stdout, stderr)
			}
			if live := cliAlive(t, m1, m2); len(live) > 0 {
				t.Errorf("alive after kill: %q", live)
			}
			if code := cliWait(t, cmd); code != -1 {
				t.Errorf("the stopped supervisor exited %d, want killed", code)
			}
			if _, err := os.Lstat(u.entry(name)); err == nil {
				t.Error("the entry is left")
			}
		})
	}
}

// The entry of a supervisor killed outright is stale: its name is taken
// again, and ps prunes such entries.
func TestCLINamedStale(t *testing.T) {
	for _, u := range cliUsers {
		t.Run(u.name, func(t *testing.T) {
			dir := tempDir(t)
			name := uniqueName("stale")
			for round := range 2 {
				m := cliMarker(404 + round)
				cliKillMarkers(t, m)
				cmd, _ := u.start(t, name, dir, nil, "exec sleep "+m)
				// The program runs before its entry is published: wait for
				// the pid file, then kill the supervisor outright.
				for deadline := time.Now().Add(cliDeadline); ; time.Sleep(10 * time.Millisecond) {
					if _, err := os.Lstat(filepath.Join(u.entry(name), "pid")); err == nil || time.Now().After(deadline) {
						break
					}
				}
				cmd.Process.Kill()
				cliWait(t, cmd)
				if _, err := os.Lstat(filepath.Join(u.entry(name), "pid")); err != nil {
					t.Fatalf("round %d: no stale entry to test with: %v", round, err)
				}
				if round == 0 {
					// Taken again by a new run.
					code, stdout, stderr := u.run(t, nil, cliRunArgs(append([]string{"--name", name}, cliGrants()...), "echo", "again")...)
					if code != 0 || stdout != "again\n" {
						t.Errorf("reusing a stale name: exit %d stdout %q stderr %q", code, stdout, stderr)
					}
				} else if line := psLine(t, u, name); line != "" {
					t.Errorf("ps lists a dead sandbox: %q", line)
				}
				if _, err := os.Lstat(u.entry(name)); err == nil {
					t.Errorf("round %d: the stale entry is left", round)
				}
				if live := cliAlive(t, m); len(live) > 0 {
					t.Errorf("alive after the supervisor's death: %q", live)
				}
			}
		})
	}
}

// A runtime directory that another user prepared, or a symlink planted in
// its place, is refused: nothing runs, and nothing is created through it.
func TestCLINamedBaseDirRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root to plant directories for another uid")
	}
	const victim = 65532
	as := cliUser{"victim", []string{"setpriv", "--reuid=65532", "--regid=65532", "--clear-groups"}, victim}
	base := fmt.Sprintf("/dev/shm/sandlock-%d", victim)
	os.RemoveAll(base)
	t.Cleanup(func() { os.RemoveAll(base) })
	dir := tempDir(t)
	target := filepath.Join(dir, "target")
	for _, tc := range []struct {
		what  string
		plant func()
		want  string
	}{
		{"another uid's", func() { os.Mkdir(base, 0o700) }, "belongs to uid 0, not to uid 65532: refusing to use it"},
		{"open to all", func() { os.Mkdir(base, 0o777); os.Chmod(base, 0o777); os.Chown(base, victim, victim) }, "open to other users: refusing to use it"},
		{"a symlink", func() {
			os.Mkdir(target, 0o700)
			os.Chown(target, victim, victim)
			os.Symlink(target, base)
		}, "is a symlink, which someone else may have planted: refusing to use it"},
	} {
		os.RemoveAll(base)
		tc.plant()
		ran := filepath.Join(dir, "ran")
		os.Remove(ran)
		code, stdout, stderr := as.run(t, nil, cliRunArgs(cliGrants("-w", dir), "touch", ran)...)
		if code != 1 || stdout != "" || !strings.Contains(stderr, base) || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s runtime directory: exit %d stderr %q, want 1 and %q", tc.what, code, stderr, tc.want)
		}
		cliOneLine(t, tc.what, stderr)
		if _, err := os.Stat(ran); err == nil {
			t.Errorf("%s runtime directory: the command ran", tc.what)
		}
		code, _, stderr = as.run(t, nil, "ps")
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s runtime directory: ps exit %d stderr %q", tc.what, code, stderr)
		}
		if ents, _ := os.ReadDir(target); len(ents) > 0 {
			t.Errorf("%s runtime directory: created through the symlink: %v", tc.what, ents)
		}
	}
	// Without the plant, it works.
	os.RemoveAll(base)
	if code, stdout, stderr := as.run(t, nil, cliRunArgs(cliGrants(), "echo", "ok")...); code != 0 || stdout != "ok\n" {
		t.Errorf("fresh runtime directory: exit %d stdout %q stderr %q", code, stdout, stderr)
	}
	if st, err := os.Lstat(base); err != nil || st.Mode() != os.ModeDir|0o700 || st.Sys().(*syscall.Stat_t).Uid != victim {
		t.Errorf("created runtime directory: %v %v", st.Mode(), err)
	}
}

// A sandboxed program cannot end another sandbox through its control
// socket, even granted the runtime directory, whose socket its own
// supervisor then connects to for it.
func TestCLINamedConfinedClientRefused(t *testing.T) {
	for _, u := range cliUsers {
		t.Run(u.name, func(t *testing.T) {
			dir := tempDir(t)
			name := uniqueName("target")
			m := cliMarker(406)
			cliKillMarkers(t, m)
			u.start(t, name, dir, nil, "exec sleep "+m)
			sock := filepath.Join(u.entry(name), "control.sock")
			script := fmt.Sprintf(`
import socket, struct, json
for verb in ("kill", "config"):
    s = socket.socket(socket.AF_UNIX)
    s.connect(%q)
    body = json.dumps({"v": 1, "verb": verb, "args": {}}).encode()
    s.sendall(struct.pack(">I", len(body)) + body)
    n = struct.unpack(">I", s.recv(4))[0]
    r = json.loads(s.recv(n))
    print(verb, r["ok"], r.get("err", ""))
`, sock)
			code, stdout, stderr := u.run(t, nil, cliRunArgs(cliGrants("-w", filepath.Dir(u.entry(name))), python, "-c", script)...)
			if code != 0 || strings.Count(stdout, "False permission denied") != 2 {
				t.Errorf("a sandboxed client: exit %d stdout %q stderr %q, want both verbs refused", code, stdout, stderr)
			}
			if len(cliAlive(t, m)) != 1 || psLine(t, u, name) == "" {
				t.Error("the target sandbox is gone")
			}
			if code, _, stderr := u.run(t, nil, "kill", name); code != 0 {
				t.Errorf("kill from outside: exit %d stderr %q", code, stderr)
			}
		})
	}
}

// writeProfile writes a profile for u into dir/sandlock/profiles.
func writeProfile(t *testing.T, xdg, name, body string) string {
	t.Helper()
	pdir := filepath.Join(xdg, "sandlock", "profiles")
	if err := os.MkdirAll(pdir, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(xdg, "sandlock"), 0o777)
	os.Chmod(pdir, 0o777)
	path := filepath.Join(pdir, name+".toml")
	if err := os.WriteFile(path, []byte(body), 0o666); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o666)
	return path
}

// tomlList renders paths as a TOML array.
func tomlList(paths []string) string {
	q := make([]string, len(paths))
	for i, p := range paths {
		q[i] = strconv.Quote(p)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func TestCLIProfiles(t *testing.T) {
	for _, u := range cliUsers {
		t.Run(u.name, func(t *testing.T) {
			xdg := tempDir(t)
			env := []string{"XDG_CONFIG_HOME=" + xdg}
			body := `[program]
exec = "/bin/sh"
args = ["-c", "echo from-profile A=$A B=$B"]
env = { A = "profile", B = "profile" }

[filesystem]
read = ` + tomlList(base().FSReadable) + `

[limits]
processes = 3
`
			path := writeProfile(t, xdg, "demo", body)

			// The profile's command, by name and by file.
			for _, sel := range [][]string{{"-p", "demo"}, {"--profile", "demo"}, {"--profile-file", path}} {
				code, stdout, stderr := u.run(t, env, append([]string{"run"}, sel...)...)
				if code != 0 || stdout != "from-profile A=profile B=profile\n" {
					t.Errorf("%q: exit %d stdout %q stderr %q", sel, code, stdout, stderr)
				}
			}
			// Flags over the profile; a trailing command over [program].
			code, stdout, stderr := u.run(t, env, "run", "-p", "demo", "--env", "B=flag", "--", "/bin/sh", "-c", "echo trailing A=$A B=$B")
			if code != 0 || stdout != "trailing A=profile B=flag\n" {
				t.Errorf("flags over profile: exit %d stdout %q stderr %q", code, stdout, stderr)
			}
			fork := []string{"/bin/sh", "-c", "for i in 1 2 3 4 5; do sleep 0.1 & echo started; done; wait"}
			_, stdout, _ = u.run(t, env, append([]string{"run", "-p", "demo", "--"}, fork...)...)
			if n := strings.Count(stdout, "started"); n != 2 {
				t.Errorf("[limits] processes = 3: %d children started, want 2", n)
			}
			code, stdout, stderr = u.run(t, env, append([]string{"run", "-p", "demo", "-P", "20", "--"}, fork...)...)
			if n := strings.Count(stdout, "started"); code != 0 || n != 5 {
				t.Errorf("-P 20 over [limits] processes = 3: exit %d, %d children started, want 5 (stderr %q)", code, n, stderr)
			}

			// Exclusive, and a usage error.
			code, _, stderr = u.run(t, env, "run", "-p", "demo", "--profile-file", path)
			if code != 2 || !strings.Contains(stderr, "cannot be used together") {
				t.Errorf("-p with --profile-file: exit %d stderr %q", code, stderr)
			}
			// Errors name the key and its line.
			bad := writeProfile(t, xdg, "bad", "[filesystem]\nread = ["+strconv.Quote(base().FSReadable[0])+"]\n\nfs_readable = [\"/usr\"]\n")
			code, stdout, stderr = u.run(t, env, "run", "--profile-file", bad, "--", "echo", "ran")
			if want := "sandlock: " + bad + `:4: unknown key "fs_readable" in [filesystem] (did you mean [filesystem] read?)` + "\n"; code != 1 || stderr != want || stdout != "" {
				t.Errorf("unknown key: exit %d stderr %q, want %q", code, stderr, want)
			}
			flat := writeProfile(t, xdg, "flat", "fs_readable = [\"/usr\"]\n")
			code, _, stderr = u.run(t, env, "run", "-p", "flat", "--", "echo", "ran")
			if want := "sandlock: " + flat + `:1: unknown key "fs_readable" (did you mean [filesystem] read?)` + "\n"; code != 1 || stderr != want {
				t.Errorf("flat key: exit %d stderr %q, want %q", code, stderr, want)
			}
			val := writeProfile(t, xdg, "val", "[filesystem]\nread = "+tomlList(base().FSReadable)+"\n[network]\nallow = [\"foo:99999\"]\n")
			code, _, stderr = u.run(t, env, "run", "-p", "val", "--", "echo", "ran")
			if want := "sandlock: " + val + `:4: [network] allow "foo:99999": port 99999 out of range (1-65535)` + "\n"; code != 1 || stderr != want {
				t.Errorf("bad value: exit %d stderr %q, want %q", code, stderr, want)
			}
			unb := writeProfile(t, xdg, "unbuilt", "[filesystem]\nread = "+tomlList(base().FSReadable)+"\n\nchroot = \"/\"\n")
			code, _, stderr = u.run(t, env, "run", "-p", "unbuilt", "--", "echo", "ran")
			if want := "sandlock: " + unb + ":4: [filesystem] chroot: is not supported yet\n"; code != 1 || stderr != want {
				t.Errorf("unbuilt key: exit %d stderr %q, want %q", code, stderr, want)
			}
			code, _, stderr = u.run(t, env, "run", "-p", "nosuch", "--", "true")
			if code != 1 || !strings.Contains(stderr, `profile "nosuch"`) {
				t.Errorf("missing profile: exit %d stderr %q", code, stderr)
			}
			code, _, stderr = u.run(t, env, "run", "-p", "../etc/passwd", "--", "true")
			if code != 1 || !strings.Contains(stderr, "invalid profile name") {
				t.Errorf("a path as profile name: exit %d stderr %q", code, stderr)
			}

			// profile list | show | delete.
			code, stdout, _ = u.run(t, env, "profile", "list")
			if code != 0 || stdout != "  bad\n  demo\n  flat\n  unbuilt\n  val\n" {
				t.Errorf("profile list: exit %d %q", code, stdout)
			}
			code, stdout, _ = u.run(t, env, "profile", "show", "demo")
			if code != 0 || stdout != body {
				t.Errorf("profile show: exit %d %q", code, stdout)
			}
			code, stdout, _ = u.run(t, env, "profile", "delete", "demo")
			if code != 0 || stdout != "Deleted profile 'demo'\n" {
				t.Errorf("profile delete: exit %d %q", code, stdout)
			}
			if _, err := os.Stat(path); err == nil {
				t.Error("the deleted profile is still there")
			}
			for _, n := range []string{"bad", "flat", "unbuilt", "val"} {
				u.run(t, env, "profile", "delete", n)
			}
			code, stdout, _ = u.run(t, env, "profile", "list")
			if want := "No profiles found in " + filepath.Join(xdg, "sandlock", "profiles") + "\n"; code != 0 || stdout != want {
				t.Errorf("empty profile list: %q, want %q", stdout, want)
			}
			if code, _, _ := u.run(t, env, "profile", "show"); code != 2 {
				t.Errorf("profile show without a name: exit %d, want 2", code)
			}
		})
	}
}

// inspect --toml of a running sandbox, loaded with --profile-file, gives a
// sandbox with the same policy and command.
func TestCLIInspectRoundTrip(t *testing.T) {
	for _, u := range cliUsers {
		t.Run(u.name, func(t *testing.T) {
			dir := tempDir(t)
			first, second := uniqueName("rt1"), uniqueName("rt2")
			m := cliMarker(407)
			cliKillMarkers(t, m)
			flags := []string{"-m", "256M", "-P", "12", "--max-open-files", "100", "-c", "80", "--env", "X=a b", "--clean-env",
				"--fs-deny", filepath.Join(dir, "secret"), "--net-allow", "tcp://127.0.0.1:8080", "--net-allow", "udp://[::1]:53",
				"--net-allow-bind", "9000-9005", "--extra-deny-syscall", "mincore", "--allow-degraded", "net-tcp",
				"--no-coredump", "--no-huge-pages", "--no-randomize-memory", "--cwd", dir, "--num-cpus", "1"}
			u.start(t, first, dir, flags, "exec sleep "+m)
			code, want, stderr := u.run(t, nil, "inspect", first)
			if code != 0 {
				t.Fatalf("inspect: exit %d stderr %q", code, stderr)
			}
			code, toml, stderr := u.run(t, nil, "inspect", "--toml", first)
			if code != 0 || !strings.Contains(toml, "[limits]\nmemory = \"256M\"\nprocesses = 12\n") {
				t.Fatalf("inspect --toml: exit %d stderr %q\n%s", code, stderr, toml)
			}
			file := filepath.Join(dir, "inspected.toml")
			os.WriteFile(file, []byte(toml), 0o666)
			os.Chmod(file, 0o666)
			// No trailing command: [program] runs the same command.
			cmd := u.command(nil, "run", "--name", second, "--profile-file", file)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			deadline := time.Now().Add(cliDeadline)
			for psLine(t, u, second) == "" {
				if time.Now().After(deadline) {
					t.Fatal("the sandbox from the inspected profile never started")
				}
				time.Sleep(20 * time.Millisecond)
			}
			code, got, stderr := u.run(t, nil, "inspect", second)
			if code != 0 || got != want {
				t.Errorf("round trip: exit %d stderr %q\nfirst:\n%s\nsecond:\n%s", code, stderr, want, got)
			}
			u.run(t, nil, "kill", second)
			u.run(t, nil, "kill", first)
		})
	}
}

// Flags of features not built yet fail as their fields do.
func TestCLIUnbuiltFlags(t *testing.T) {
	for _, tc := range []struct{ flags []string }{
		{[]string{"--chroot", "/"}}, {[]string{"--fs-mount", "/a:/tmp"}},
		{[]string{"--user", "0:0"}}, {[]string{"--http-allow", "GET x/*"}}, {[]string{"--http-port", "80"}},
		{[]string{"--http-inject-ca", "/x"}}, {[]string{"--credential", "A=env:B"}},
	} {
		code, stdout, stderr := cli(t, cliRunArgs(cliGrants(tc.flags...), "echo", "ran")...)
		if code != 1 || stdout != "" || !strings.HasPrefix(stderr, "sandlock: "+tc.flags[0]+": is not supported yet") {
			t.Errorf("%q: exit %d stdout %q stderr %q", tc.flags, code, stdout, stderr)
		}
	}
	// The unregistered run.
	code, stdout, _ := cli(t, cliRunArgs(cliGrants("--no-registry", "--name", "x/y"), "echo", "ran")...)
	if code != 1 || stdout != "" {
		t.Errorf("--no-registry still checks --name: exit %d", code)
	}
	code, stdout, _ = cli(t, cliRunArgs(cliGrants("--no-registry"), "/bin/sh", "-c", "echo ran")...)
	if code != 0 || stdout != "ran\n" {
		t.Errorf("--no-registry: exit %d stdout %q", code, stdout)
	}
}
