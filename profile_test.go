//go:build linux

package sandlock_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sandlock-go/sandlock"
)

// Profiles: upstream's sectioned TOML schema, strict, with errors naming
// the key and its line, written back by MarshalTOML to the same policy.

// everySection is a profile with every section, using only features that
// exist, so that it runs.
const everySection = `# a profile with every section
[config]
allow_degraded = ["fs-refer"]

[determinism]
no_randomize_memory = true

[program]
exec = "/bin/sh"
args = ["-c", "echo \"$GREETING\" $(ulimit -n) $(cat /proc/self/personality)"]
env = { GREETING = "hello profile", "ODD KEY" = "x" }
cwd = "/"
clean_env = true
no_coredump = true
no_huge_pages = false

[filesystem]
read = ["/usr", "/lib", "/lib64", "/bin", "/etc", "/proc"]
write = ["/tmp"]
deny = ["/etc/shadow"]

[network]
allow_bind = [8080, "9000-9005"]
allow = ["tcp://127.0.0.1:1"]

[http]

[syscalls]
extra_allow = ["sysv_ipc"]
extra_deny = ["mincore"]

[limits]
memory = "512M"
processes = 10
open_files = 64
cpu = 90
cpu_cores = [0]
num_cpus = 1
`

func TestProfileEverySection(t *testing.T) {
	prof, err := sandlock.ParseProfile("every.toml", []byte(everySection))
	if err != nil {
		t.Fatal(err)
	}
	want := sandlock.Sandbox{
		AllowDegraded:      []sandlock.Protection{sandlock.ProtectionFSRefer},
		NoRandomizeMemory:  true,
		Env:                map[string]string{"GREETING": "hello profile", "ODD KEY": "x"},
		Cwd:                "/",
		CleanEnv:           true,
		NoCoredump:         true,
		FSReadable:         []string{"/usr", "/lib", "/lib64", "/bin", "/etc", "/proc"},
		FSWritable:         []string{"/tmp"},
		FSDenied:           []string{"/etc/shadow"},
		NetAllowBind:       []string{"8080", "9000-9005"},
		NetAllow:           []string{"tcp://127.0.0.1:1"},
		ExtraAllowSyscalls: []string{"sysv_ipc"},
		ExtraDenySyscalls:  []string{"mincore"},
		MaxMemory:          "512M",
		MaxProcesses:       10,
		MaxOpenFiles:       64,
		MaxCPU:             90,
		CPUCores:           []uint32{0},
		NumCPUs:            1,
	}
	if !reflect.DeepEqual(prof.Sandbox, want) {
		t.Errorf("parsed\n %+v\nwant\n %+v", prof.Sandbox, want)
	}
	if len(prof.Program) != 3 || prof.Program[0] != "/bin/sh" || prof.Program[1] != "-c" {
		t.Errorf("program %q", prof.Program)
	}
	// It runs, with what it says.
	res := run(t, &prof.Sandbox, prof.Program...)
	if res.ExitCode != 0 || string(res.Stdout) != "hello profile 64 00040000\n" {
		t.Errorf("exit %d stdout %q stderr %q", res.ExitCode, res.Stdout, res.Stderr)
	}
	// Written back, it reads back the same, and writes the same again.
	out, err := prof.MarshalTOML()
	if err != nil {
		t.Fatal(err)
	}
	again, err := sandlock.ParseProfile("again.toml", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !reflect.DeepEqual(again.Sandbox, prof.Sandbox) || !reflect.DeepEqual(again.Program, prof.Program) {
		t.Errorf("round trip:\n%s\n %+v\n %+v", out, again.Sandbox, prof.Sandbox)
	}
	if out2, _ := again.MarshalTOML(); string(out2) != string(out) {
		t.Errorf("not stable:\n%s\n--\n%s", out, out2)
	}
	// Sections in upstream's order.
	var order []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "[") {
			order = append(order, l)
		}
	}
	if got := strings.Join(order, " "); got != "[config] [determinism] [program] [filesystem] [network] [syscalls] [limits]" {
		t.Errorf("sections %s", got)
	}
}

// Keys of features not built yet parse, then fail as their flags do: the
// run names the key and its line.
func TestProfileUnbuiltKeys(t *testing.T) {
	for _, tc := range []struct{ toml, field, src string }{
		{"[config]\nhttp_ca = \"/ca\"", "HTTPCAFile", "u.toml:2: [config] http_ca"},
		{"[program]\nuid = 0\ngid = 0", "UID", "u.toml:2: [program] uid"},
		{"[filesystem]\nchroot = \"/\"", "Chroot", "u.toml:2: [filesystem] chroot"},
		{"[filesystem]\nmount = [\"/work:/tmp:ro\"]", "FSMount", "u.toml:2: [filesystem] mount"},
		{"[network]\nport_remap = true", "PortRemap", "u.toml:2: [network] port_remap"},
		{"[http]\nports = [80]", "HTTPPorts", "u.toml:2: [http] ports"},
		{"[http]\nallow = [\"GET example.com/*\"]", "HTTPAllow", "u.toml:2: [http] allow"},
	} {
		prof, err := sandlock.ParseProfile("u.toml", []byte(tc.toml))
		if err != nil {
			t.Errorf("%q: %v", tc.toml, err)
			continue
		}
		prof.Sandbox.FSReadable = base().FSReadable
		_, err = prof.Sandbox.Run(ctxT(t), "true")
		var fe *sandlock.FieldError
		if !errors.Is(err, sandlock.ErrUnsupported) || !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%q: %v, want %s is not supported yet", tc.toml, err, tc.field)
			continue
		}
		if src := prof.Source(fe.Field, fe.Value); src != tc.src {
			t.Errorf("%q: Source = %q, want %q", tc.toml, src, tc.src)
		}
	}
	// Those without a field fail as they are read.
	for key, toml := range map[string]string{
		"[config] http_inject_ca": "[config]\nhttp_inject_ca = [\"/etc/ssl/certs/ca-certificates.crt\"]",
		"[config] http_ca_out":    "[config]\nhttp_ca_out = \"/tmp/ca.pem\"",
	} {
		_, err := sandlock.ParseProfile("u.toml", []byte(toml))
		if want := "sandlock: u.toml:2: " + key + ": is not supported yet"; err == nil || err.Error() != want || !errors.Is(err, sandlock.ErrUnsupported) {
			t.Errorf("%s: %v, want %q", key, err, want)
		}
	}
}

func TestProfileErrors(t *testing.T) {
	for _, tc := range []struct{ toml, want string }{
		// The old flat keys, and keys outside any section.
		{"# upstream before 0.8\n\nfs_readable = [\"/usr\"]", `p.toml:3: unknown key "fs_readable" (did you mean [filesystem] read?)`},
		{"max_memory = \"1G\"", `p.toml:1: unknown key "max_memory" (did you mean [limits] memory?)`},
		{"net_allow = [\"x:1\"]", `p.toml:1: unknown key "net_allow" (did you mean [network] allow?)`},
		{"exec = \"/bin/true\"", `p.toml:1: unknown key "exec" (did you mean [program] exec?)`},
		{"bogus = 1", `p.toml:1: unknown key "bogus"`},
		// Unknown sections and keys.
		{"[filesytem]\nread = []", `p.toml:1: unknown section [filesytem] (did you mean [filesystem]?)`},
		{"[nope]", `p.toml:1: unknown section [nope]`},
		{"[limits]\nmemory = \"1G\"\nmemroy = \"2G\"", `p.toml:3: unknown key "memroy" in [limits] (did you mean [limits] memory?)`},
		{"[filesystem]\nmemory = \"1G\"", `p.toml:2: unknown key "memory" in [filesystem] (did you mean [limits] memory?)`},
		{"[program]\nno_such = true", `p.toml:2: unknown key "no_such" in [program]`},
		{"[filesystem]\nfs_readable = [\"/usr\"]", `p.toml:2: unknown key "fs_readable" in [filesystem] (did you mean [filesystem] read?)`},
		// Types.
		{"[limits]\nprocesses = \"64\"", `p.toml:2: [limits] processes: want an integer, not a string`},
		{"[filesystem]\nread = \"/usr\"", `p.toml:2: [filesystem] read: want an array of strings, not a string`},
		{"[filesystem]\nread = [\"/usr\", 3]", `p.toml:2: [filesystem] read: want an array of strings; element 2 is an integer`},
		{"[program]\nclean_env = \"yes\"", `p.toml:2: [program] clean_env: want true or false, not a string`},
		{"[program]\nenv = { A = 1 }", `p.toml:2: [program] env: want a table of strings; A is an integer`},
		{"[network]\nallow_bind = [1.5]", `p.toml:2: [network] allow_bind: want an array of ports (integers, or strings such as "9000-9005" or "*"); element 1 is a float`},
		{"[determinism]\ntime_start = 2026-01-01T00:00:00Z", `p.toml:2: [determinism] time_start: want a string, not a date or time`},
		{"filesystem = 3", `p.toml:1: [filesystem] must be a table, not an integer`},
		{"[[filesystem]]\nread = []", `p.toml:1: [filesystem] must be a table, not an array`},
		// Values, named with the key and line.
		{"[limits]\ncpu = 300", `p.toml:2: [limits] cpu 300: not a number from 0 to 255`},
		{"[limits]\n\ncpu = 0", `p.toml:3: [limits] cpu 0: must be a percentage of one core, from 1 to 100`},
		{"[limits]\nprocesses = -1", `p.toml:2: [limits] processes: -1: want a number from 0`},
		{"[limits]\nprocesses = 0", `p.toml:2: [limits] processes 0: must be at least 1`},
		{"[limits]\nopen_files = 0", `p.toml:2: [limits] open_files 0: must be at least 1 (omit the key to keep the inherited limit)`},
		{"[limits]\nmemory = \"\"", `p.toml:2: [limits] memory "": empty size (omit the key for no limit)`},
		{"[limits]\ncpu_cores = [5, 70000]", `p.toml:2: [limits] cpu_cores "5,70000": "70000": not a number`},
		{"[config]\ndisable = [\"nosuch\"]", `p.toml:2: [config] disable "nosuch": `},
		{"[filesystem]\non_error = \"explode\"", `p.toml:2: [filesystem] on_error "explode": want commit, abort or keep`},
		{"[program]\nargs = [\"x\"]", `p.toml:2: [program] args without [program] exec`},
		{"[program]\nexec = \"\"", `p.toml:2: [program] exec "": empty command`},
		// Syntax.
		{"[limits]\nmemory = \"1G\"\nmemory = \"2G\"", `p.toml:3: `},
		{"[limits\nmemory = 1", `p.toml:1: `},
	} {
		_, err := sandlock.ParseProfile("p.toml", []byte(tc.toml))
		if err == nil || !strings.HasPrefix(err.Error(), "sandlock: "+tc.want) {
			t.Errorf("%q:\n got %v\nwant %q", tc.toml, err, "sandlock: "+tc.want)
		}
	}
}

// Errors found when the sandbox starts name the key and line the value
// came from, through Source.
func TestProfileSource(t *testing.T) {
	prof, err := sandlock.ParseProfile("s.toml", []byte("[filesystem]\nread = [\"/usr\", \"/nonexistent-dir\"]\n\n[network]\nallow = [\"foo:99999\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := prof.Set(settingOf(t, "fs-read"), "/bin"); err != nil {
		t.Fatal(err)
	}
	_, err = prof.Sandbox.Run(ctxT(t), "true")
	var fe *sandlock.FieldError
	if !errors.As(err, &fe) || prof.Source(fe.Field, fe.Value) != "s.toml:5: [network] allow" {
		t.Errorf("%v: source %q", err, prof.Source(fe.Field, fe.Value))
	}
	prof.Sandbox.NetAllow = nil
	_, err = prof.Sandbox.Run(ctxT(t), "true")
	if !errors.As(err, &fe) || fe.Value != "/nonexistent-dir" || prof.Source(fe.Field, fe.Value) != "s.toml:2: [filesystem] read" {
		t.Errorf("%v", err)
	}
	if got := prof.Source("FSReadable", "/bin"); got != "--fs-read" {
		t.Errorf("a flag's value: Source %q", got)
	}
	if got := prof.Source("MaxMemory", ""); got != "" {
		t.Errorf("an unset field: Source %q", got)
	}
}

// settingOf returns the setting of a flag.
func settingOf(t *testing.T, flag string) sandlock.Setting {
	t.Helper()
	for _, s := range sandlock.Settings() {
		if s.Flag == flag {
			return s
		}
	}
	t.Fatalf("no setting for --%s", flag)
	return sandlock.Setting{}
}

// The table: every flag, field and key appears once (--user and the uid
// and gid keys share UID), and every Sandbox field a user sets from a
// command line or a profile has a row.
func TestSettingsTable(t *testing.T) {
	flags, keys, shorts := map[string]bool{}, map[string]bool{}, map[string]bool{}
	fields := map[string]int{}
	for _, s := range sandlock.Settings() {
		for what, seen := range map[string]map[string]bool{s.Flag: flags, s.Key: keys, s.Short: shorts} {
			if what != "" && seen[what] {
				t.Errorf("%q appears twice", what)
			}
			seen[what] = true
		}
		if s.Field != "" {
			fields[s.Field]++
		}
		if s.Key != "" && !strings.Contains(s.Key, ".") {
			t.Errorf("key %q has no section", s.Key)
		}
		if s.Flag == "" && s.Key == "" {
			t.Errorf("row %+v has neither flag nor key", s)
		}
	}
	typ := reflect.TypeOf(sandlock.Sandbox{})
	for i := 0; i < typ.NumField(); i++ {
		name := typ.Field(i).Name
		switch name {
		case "PolicyFn", "Handlers", "Logger":
			continue // code, not settings
		}
		if fields[name] == 0 {
			t.Errorf("Sandbox.%s has no setting", name)
		}
	}
	if fields["UID"] != 2 {
		t.Errorf("UID: %d rows, want 2 (--user, [program] uid)", fields["UID"])
	}
}

// FuzzParseProfile: never a panic; an accepted profile writes out (when
// its strings are text) to one that reads back to the same Sandbox and
// Program, and writes the same again.
func FuzzParseProfile(f *testing.F) {
	f.Add(everySection)
	for _, s := range []string{
		"[limits]\nprocesses = 3", "fs_readable = []", "[program]\nexec = \"a\"\nargs = [\"\\u0001\", \"\\\"\"]",
		"[network]\nallow_bind = [1, \"*\"]", "[program]\nenv = { \"a b\" = \"c\\nd\" }", "[limits]\ngpu_devices = []",
		"[determinism]\nrandom_seed = 1", "[filesystem]\nmount = [\"/a:/b:rw\", \"/c:/d:ro\"]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		prof, err := sandlock.ParseProfile("f.toml", []byte(doc))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "sandlock: f.toml") {
				t.Fatalf("error not naming the file: %v", err)
			}
			return
		}
		out, err := prof.MarshalTOML()
		if err != nil {
			if utf8.ValidString(doc) {
				t.Fatalf("MarshalTOML of an accepted profile: %v", err)
			}
			return
		}
		again, err := sandlock.ParseProfile("g.toml", out)
		if err != nil {
			t.Fatalf("written profile does not parse: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(again.Sandbox, prof.Sandbox) || !reflect.DeepEqual(again.Program, prof.Program) {
			t.Fatalf("round trip changed the profile:\n%s\n%+v %q\n%+v %q", out, prof.Sandbox, prof.Program, again.Sandbox, again.Program)
		}
		if out2, _ := again.MarshalTOML(); string(out2) != string(out) {
			t.Fatalf("not stable:\n%s\n--\n%s", out, out2)
		}
	})
}

func TestProfilePaths(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	got, err := sandlock.ProfileDir()
	if err != nil || got != filepath.Join(dir, "sandlock", "profiles") {
		t.Errorf("ProfileDir with XDG_CONFIG_HOME: %q %v", got, err)
	}
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("HOME", "/home/someone")
	if got, _ := sandlock.ProfileDir(); got != "/home/someone/.config/sandlock/profiles" {
		t.Errorf("ProfileDir with HOME: %q", got)
	}
	for _, bad := range []string{"", ".", "..", "../x", "a/b", "x\x00"} {
		if _, err := sandlock.ProfilePath(bad); err == nil {
			t.Errorf("ProfilePath(%q) accepted", bad)
		}
	}
	t.Setenv("XDG_CONFIG_HOME", dir)
	pdir := filepath.Join(dir, "sandlock", "profiles")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(pdir, "mine.toml"), []byte("[limits]\nprocesses = 7\n"), 0o644)
	prof, err := sandlock.LoadProfile("mine")
	if err != nil || prof.Sandbox.MaxProcesses != 7 {
		t.Errorf("LoadProfile: %+v %v", prof, err)
	}
	if _, err := sandlock.LoadProfile("missing"); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", "missing")) {
		t.Errorf("a missing profile: %v", err)
	}
}
