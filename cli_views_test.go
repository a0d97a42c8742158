//go:build linux

package sandlock_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandlock-go/sandlock"
)

// TestCLIProcFlag: --proc and the profile key filesystem.proc take served,
// none or host; anything else is an error naming the flag or the key with
// its line; served needs the supervisor; the key works like the flag.
func TestCLIProcFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		err  string
	}{
		{[]string{"--proc", "bogus"}, `sandlock: --proc "bogus": want served, none or host`},
		{[]string{"--proc", ""}, `sandlock: --proc "": want served, none or host`},
		{[]string{"--proc", "served", "--no-supervisor"}, `sandlock: --proc "served": needs the supervisor, which NoSupervisor turns off`},
	} {
		code, _, stderr := cli(t, cliRunArgs(append(readArgs(), c.args...), "/bin/true")...)
		if code == 0 || strings.TrimSpace(stderr) != c.err {
			t.Errorf("%q: exit %d, stderr %q, want %q", c.args, code, stderr, c.err)
		}
	}
	dir := tempDir(t)
	bad := filepath.Join(dir, "bad.toml")
	must(t, os.WriteFile(bad, []byte("[filesystem]\nproc = \"nope\"\n"), 0o644))
	code, _, stderr := cli(t, "run", "--profile-file", bad, "--", "/bin/true")
	if want := "sandlock: " + bad + `:2: [filesystem] proc "nope": want served, none or host`; code == 0 || strings.TrimSpace(stderr) != want {
		t.Errorf("bad profile: exit %d, stderr %q, want %q", code, stderr, want)
	}
	for _, c := range []struct {
		tier, want string
	}{{"none", "Permission denied"}, {"served", "Name:"}, {"host", "Name:"}} {
		prof := filepath.Join(dir, c.tier+".toml")
		must(t, os.WriteFile(prof, []byte("[filesystem]\nread = [\"/usr\", \"/lib\", \"/lib64\", \"/bin\", \"/proc\"]\nproc = \""+c.tier+"\"\n"), 0o644))
		_, stdout, stderr := cli(t, "run", "--profile-file", prof, "--", "/bin/head", "-1", "/proc/self/status")
		if !strings.Contains(stdout+stderr, c.want) {
			t.Errorf("proc = %q: stdout %q, stderr %q, want %q", c.tier, stdout, stderr, c.want)
		}
	}
}

// TestConfineProcView: Confine has no supervisor: ProcView served is an
// error naming the field, before anything is applied.
func TestConfineProcView(t *testing.T) {
	err := sandlock.Confine(&sandlock.Sandbox{FSReadable: []string{"/"}, ProcView: sandlock.ProcViewServed})
	if err == nil || !strings.Contains(err.Error(), "ProcView") {
		t.Fatalf("Confine with ProcView served: %v, want an error naming ProcView", err)
	}
	if _, err := os.ReadFile("/proc/self/status"); err != nil {
		t.Fatalf("the test process was confined by a rejected Confine: %v", err)
	}
}
