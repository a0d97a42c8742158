//go:build linux

package sysnum

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestNative(t *testing.T) {
	want := map[string]*Table{"amd64": AMD64, "arm64": ARM64}[runtime.GOARCH]
	if want == nil {
		t.Fatalf("no table for GOARCH %s", runtime.GOARCH)
	}
	if Native() != want {
		t.Errorf("Native() = %s, want %s", Native().Arch, want.Arch)
	}
	if Native().Arch != runtime.GOARCH {
		t.Errorf("Native().Arch = %q, want %q", Native().Arch, runtime.GOARCH)
	}
}

func TestArchMetadata(t *testing.T) {
	if AMD64.Arch != "amd64" || AMD64.AuditArch != unix.AUDIT_ARCH_X86_64 || !AMD64.X32 {
		t.Errorf("AMD64 = {%q %#x x32=%v}, want {amd64 %#x x32=true}", AMD64.Arch, AMD64.AuditArch, AMD64.X32, uint32(unix.AUDIT_ARCH_X86_64))
	}
	if ARM64.Arch != "arm64" || ARM64.AuditArch != unix.AUDIT_ARCH_AARCH64 || ARM64.X32 {
		t.Errorf("ARM64 = {%q %#x x32=%v}, want {arm64 %#x x32=false}", ARM64.Arch, ARM64.AuditArch, ARM64.X32, uint32(unix.AUDIT_ARCH_AARCH64))
	}
	if unix.AUDIT_ARCH_X86_64 != 0xc000003e || unix.AUDIT_ARCH_AARCH64 != 0xc00000b7 {
		t.Errorf("AUDIT_ARCH constants changed: %#x %#x", uint32(unix.AUDIT_ARCH_X86_64), uint32(unix.AUDIT_ARCH_AARCH64))
	}
}

func TestWellKnownNumbers(t *testing.T) {
	for _, tc := range []struct {
		tab  *Table
		name string
		nr   int
	}{
		{AMD64, "read", 0}, {AMD64, "write", 1}, {AMD64, "open", 2}, {AMD64, "close", 3},
		{AMD64, "ioctl", 16}, {AMD64, "socket", 41}, {AMD64, "clone", 56}, {AMD64, "fork", 57},
		{AMD64, "execve", 59}, {AMD64, "getcwd", 79}, {AMD64, "prctl", 157},
		{AMD64, "openat", 257}, {AMD64, "seccomp", 317}, {AMD64, "clone3", 435},
		{AMD64, "landlock_create_ruleset", 444}, {AMD64, "landlock_restrict_self", 446},

		{ARM64, "io_setup", 0}, {ARM64, "getcwd", 17}, {ARM64, "ioctl", 29}, {ARM64, "openat", 56},
		{ARM64, "close", 57}, {ARM64, "read", 63}, {ARM64, "write", 64}, {ARM64, "prctl", 167},
		{ARM64, "socket", 198}, {ARM64, "clone", 220}, {ARM64, "execve", 221},
		{ARM64, "seccomp", 277}, {ARM64, "clone3", 435}, {ARM64, "landlock_create_ruleset", 444},
	} {
		nr, ok := tc.tab.Nr(tc.name)
		if !ok || nr != tc.nr {
			t.Errorf("%s.Nr(%q) = %d, %v; want %d, true", tc.tab.Arch, tc.name, nr, ok, tc.nr)
		}
		if got := tc.tab.MustNr(tc.name); got != tc.nr {
			t.Errorf("%s.MustNr(%q) = %d, want %d", tc.tab.Arch, tc.name, got, tc.nr)
		}
		name, ok := tc.tab.Name(tc.nr)
		if !ok || name != tc.name {
			t.Errorf("%s.Name(%d) = %q, %v; want %q, true", tc.tab.Arch, tc.nr, name, ok, tc.name)
		}
	}
}

// TestNativeMatchesXSys compares the native table with the SYS_ constants
// the rest of the program's x/sys calls use.
func TestNativeMatchesXSys(t *testing.T) {
	for name, nr := range map[string]int{
		"read": unix.SYS_READ, "write": unix.SYS_WRITE, "openat": unix.SYS_OPENAT,
		"close": unix.SYS_CLOSE, "ioctl": unix.SYS_IOCTL, "socket": unix.SYS_SOCKET,
		"clone": unix.SYS_CLONE, "clone3": unix.SYS_CLONE3, "execve": unix.SYS_EXECVE,
		"prctl": unix.SYS_PRCTL, "getcwd": unix.SYS_GETCWD, "seccomp": unix.SYS_SECCOMP,
		"pidfd_getfd": unix.SYS_PIDFD_GETFD, "landlock_create_ruleset": unix.SYS_LANDLOCK_CREATE_RULESET,
		"landlock_add_rule": unix.SYS_LANDLOCK_ADD_RULE, "landlock_restrict_self": unix.SYS_LANDLOCK_RESTRICT_SELF,
		"mount": unix.SYS_MOUNT, "ptrace": unix.SYS_PTRACE, "exit_group": unix.SYS_EXIT_GROUP,
	} {
		if got, ok := Native().Nr(name); !ok || got != nr {
			t.Errorf("Native().Nr(%q) = %d, %v; x/sys says %d", name, got, ok, nr)
		}
	}
}

func TestTablesRoundTrip(t *testing.T) {
	for _, tab := range []*Table{AMD64, ARM64} {
		names := tab.Names()
		if len(names) < 300 {
			t.Errorf("%s has only %d syscalls", tab.Arch, len(names))
		}
		if !slices.IsSorted(names) {
			t.Errorf("%s.Names() is not sorted", tab.Arch)
		}
		seenNr := map[int]string{}
		for _, n := range names {
			if n == "" || n != strings.ToLower(n) {
				t.Errorf("%s: bad name %q", tab.Arch, n)
			}
			nr, ok := tab.Nr(n)
			if !ok || nr < 0 || nr >= 0x40000000 {
				t.Errorf("%s.Nr(%q) = %d, %v", tab.Arch, n, nr, ok)
				continue
			}
			if prev, dup := seenNr[nr]; dup {
				t.Errorf("%s: %q and %q both have number %d", tab.Arch, prev, n, nr)
			}
			seenNr[nr] = n
			if back, ok := tab.Name(nr); !ok || back != n {
				t.Errorf("%s.Name(Nr(%q)=%d) = %q, %v", tab.Arch, n, nr, back, ok)
			}
			if tab.MustNr(n) != nr {
				t.Errorf("%s.MustNr(%q) != Nr", tab.Arch, n)
			}
		}
		// Names() lists each entry once: the generated table has neither
		// duplicate names nor duplicate numbers.
		entries := tab.byName
		if len(entries) != len(names) || len(seenNr) != len(names) {
			t.Errorf("%s: %d entries, %d names, %d numbers", tab.Arch, len(entries), len(names), len(seenNr))
		}
		for _, e := range entries {
			if nr, _ := tab.Nr(e.name); nr != e.nr {
				t.Errorf("%s: entry %s=%d but Nr says %d", tab.Arch, e.name, e.nr, nr)
			}
		}
	}
}

func TestUnknown(t *testing.T) {
	for _, tab := range []*Table{AMD64, ARM64} {
		for _, n := range []string{"", "no_such_syscall", "READ", "openat ", "sys_openat"} {
			if nr, ok := tab.Nr(n); ok {
				t.Errorf("%s.Nr(%q) = %d, true", tab.Arch, n, nr)
			}
		}
		for _, nr := range []int{-1, 1000, 0x40000000, 0x40000000 | 257} {
			if n, ok := tab.Name(nr); ok {
				t.Errorf("%s.Name(%d) = %q, true", tab.Arch, nr, n)
			}
		}
	}
	// Numbers in the holes of the tables.
	if n, ok := AMD64.Name(400); ok {
		t.Errorf("AMD64.Name(400) = %q, true (x86_64 has no 337..423)", n)
	}
	if n, ok := ARM64.Name(250); ok {
		t.Errorf("ARM64.Name(250) = %q, true (arm64 has no 245..259)", n)
	}
}

// TestArchOnlyNames checks the legacy syscalls arm64 never had.
func TestArchOnlyNames(t *testing.T) {
	for _, n := range []string{"open", "fork", "vfork", "stat", "lstat", "access", "pipe", "dup2", "poll",
		"select", "creat", "mkdir", "rmdir", "unlink", "rename", "link", "symlink", "readlink",
		"chmod", "chown", "alarm", "getdents", "epoll_create", "inotify_init", "time", "arch_prctl",
		"ioperm", "iopl", "eventfd", "signalfd", "utime", "futimesat"} {
		if _, ok := AMD64.Nr(n); !ok {
			t.Errorf("amd64 lacks %s", n)
		}
		if nr, ok := ARM64.Nr(n); ok {
			t.Errorf("arm64 has %s = %d", n, nr)
		}
	}
	// And the other side: their replacements exist on both.
	for _, n := range []string{"openat", "clone", "newfstatat", "faccessat", "pipe2", "dup3", "ppoll",
		"pselect6", "mkdirat", "unlinkat", "renameat2", "linkat", "symlinkat", "readlinkat",
		"fchmodat", "fchownat", "getdents64", "epoll_create1", "inotify_init1", "eventfd2", "signalfd4"} {
		for _, tab := range []*Table{AMD64, ARM64} {
			if _, ok := tab.Nr(n); !ok {
				t.Errorf("%s lacks %s", tab.Arch, n)
			}
		}
	}
}

// TestTablesAgree compares the two tables name by name. The numbers differ
// (arm64 uses the generic table), but each table must be self-consistent
// for the shared names, the shared set must be large, and the syscalls
// added since the tables were unified (424+) carry the same number on both.
func TestTablesAgree(t *testing.T) {
	shared := 0
	for _, n := range ARM64.Names() {
		a, okA := AMD64.Nr(n)
		r, okR := ARM64.Nr(n)
		if !okR {
			t.Fatalf("ARM64.Names() lists %q but Nr does not know it", n)
		}
		if !okA {
			continue
		}
		shared++
		if back, _ := AMD64.Name(a); back != n {
			t.Errorf("amd64 %s: Name(Nr) = %q", n, back)
		}
		if back, _ := ARM64.Name(r); back != n {
			t.Errorf("arm64 %s: Name(Nr) = %q", n, back)
		}
		if (a >= 424) != (r >= 424) || (a >= 424 && a != r) {
			t.Errorf("%s: amd64 %d, arm64 %d; the unified numbers (424+) must agree", n, a, r)
		}
	}
	if shared < 250 {
		t.Errorf("only %d syscalls shared between amd64 and arm64", shared)
	}
	// Names only arm64 has are few and known.
	var armOnly []string
	for _, n := range ARM64.Names() {
		if _, ok := AMD64.Nr(n); !ok {
			armOnly = append(armOnly, n)
		}
	}
	for _, n := range armOnly {
		switch n {
		case "renameat", "sync_file_range2", "arch_specific_syscall", "fstatfs", "statfs", "truncate", "ftruncate",
			"fadvise64", "fcntl", "lseek", "sendfile", "fstat", "mmap", "fstatat":
		default:
			if !strings.HasSuffix(n, "64") {
				t.Errorf("unexpected arm64-only syscall %q", n)
			}
		}
	}
}

func TestMustNrPanics(t *testing.T) {
	for _, tc := range []struct {
		tab  *Table
		name string
	}{{AMD64, "no_such_syscall"}, {ARM64, "open"}, {ARM64, "fork"}} {
		func() {
			defer func() {
				r := recover()
				if r == nil {
					t.Errorf("%s.MustNr(%q) did not panic", tc.tab.Arch, tc.name)
					return
				}
				msg, _ := r.(string)
				if !strings.Contains(msg, tc.name) || !strings.Contains(msg, tc.tab.Arch) {
					t.Errorf("%s.MustNr(%q) panicked with %v; want the name and arch", tc.tab.Arch, tc.name, r)
				}
			}()
			tc.tab.MustNr(tc.name)
		}()
	}
}

func TestNamesIsACopy(t *testing.T) {
	names := AMD64.Names()
	names[0] = "clobbered"
	if AMD64.Names()[0] == "clobbered" {
		t.Error("Names returned the table's own storage")
	}
	if _, ok := AMD64.Nr("clobbered"); ok {
		t.Error("editing Names' result changed the table")
	}
}

// TestGeneratedTableIsCurrent reruns the generator against the x/sys version
// go.mod requires, in a scratch directory, and compares its output with the
// checked-in zsysnum.go.
func TestGeneratedTableIsCurrent(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to run the generator: %v", err)
	}
	dir := t.TempDir()
	for _, f := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join("..", "..", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gen := filepath.Join(dir, "gen")
	build := exec.Command(goBin, "build", "-o", gen, ".")
	build.Dir = "gen"
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the generator: %v\n%s", err, out)
	}
	run := exec.Command(gen)
	run.Dir = dir
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("running the generator: %v\n%s", err, out)
	}
	want, err := os.ReadFile(filepath.Join(dir, "zsysnum.go"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("zsysnum.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("zsysnum.go differs from what `go generate ./internal/sysnum` produces; regenerate it")
	}
}
