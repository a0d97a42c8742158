//go:build linux

package landlock

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// kernelABI returns this machine's Landlock ABI; the tests need Landlock
// and fail without it.
func kernelABI(t *testing.T) int {
	t.Helper()
	abi, err := ABI()
	if err != nil {
		t.Fatalf("ABI: %v (these tests need a kernel with Landlock enabled)", err)
	}
	return abi
}

func TestABI(t *testing.T) {
	abi := kernelABI(t)
	if abi < 6 {
		t.Fatalf("ABI() = %d, want at least 6 on this machine", abi)
	}
	if abi < MinABI {
		t.Errorf("ABI() = %d is below MinABI %d", abi, MinABI)
	}
	again, err := ABI()
	if err != nil || again != abi {
		t.Errorf("second ABI() = %d, %v", again, err)
	}
}

func TestPathError(t *testing.T) {
	err := error(&PathError{Path: "/a/b", Err: unix.ENOENT})
	if got, want := err.Error(), "/a/b: "+unix.ENOENT.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, unix.ENOENT) {
		t.Error("PathError does not unwrap to its cause")
	}
}

func TestBuildMissingPath(t *testing.T) {
	abi := kernelABI(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "does-not-exist")
	cfg := &Config{ABI: abi, HandledFS: HandledFS(abi), Paths: []PathRule{
		{Path: dir, Access: FSRead},
		{Path: missing, Access: FSRead},
		{Path: "/", Access: FSRead},
	}}
	rs, err := cfg.Build()
	if err == nil {
		rs.Close()
		t.Fatal("Build succeeded with a missing path")
	}
	var pe *PathError
	if !errors.As(err, &pe) {
		t.Fatalf("Build: %v (%T), want a *PathError", err, err)
	}
	if pe.Path != missing || !errors.Is(err, unix.ENOENT) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Build: %v; want the missing path and ENOENT", err)
	}
}

func TestBuildAndClose(t *testing.T) {
	abi := kernelABI(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := (&Postures{}).Resolve(Kernel{ABI: abi, Errata: allFixed})
	if err != nil {
		t.Fatal(err)
	}
	fs, net, scoped := Masks(abi, st)
	cfg := &Config{ABI: abi, HandledFS: fs, HandledNet: net, Scoped: scoped,
		Paths: []PathRule{
			{Path: dir, Access: fs},
			// Every right on a file: the directory-only ones must be
			// dropped or the kernel refuses the rule.
			{Path: file, Access: fs},
			// Nothing a file can use: no rule at all, no error.
			{Path: file, Access: FSReadDir | FSMakeDir},
		},
		Ports: []PortRule{{Port: 8080, Access: NetConnectTCP}, {Port: 0, Access: NetBindTCP}, {Port: 443, Access: 1 << 40}},
	}
	rs, err := cfg.Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if err := rs.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := rs.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestBuildABIChecks(t *testing.T) {
	abi := kernelABI(t)
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{ABI: 3, HandledFS: HandledFS(3), HandledNet: NetBindTCP}, "network rules need ABI 4, kernel has 3"},
		{Config{ABI: 1, HandledFS: HandledFS(1), Scoped: ScopeSignal}, "IPC scoping needs ABI 6, kernel has 1"},
		{Config{ABI: 5, HandledFS: HandledFS(5), Scoped: ScopeSignal}, "IPC scoping needs ABI 6, kernel has 5"},
		{Config{ABI: 4, HandledFS: HandledFS(4), HandledNet: NetConnectTCP, Scoped: ScopeAbstractUnixSocket}, "IPC scoping needs ABI 6"},
	} {
		rs, err := tc.cfg.Build()
		if err == nil {
			rs.Close()
			t.Errorf("Build(%+v) succeeded", tc.cfg)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Build(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	// The other side: older ABIs' shorter attributes are accepted by a newer
	// kernel.
	for _, c := range []Config{
		{ABI: 1, HandledFS: HandledFS(1)},
		{ABI: 3, HandledFS: HandledFS(3)},
		{ABI: 4, HandledFS: HandledFS(4), HandledNet: NetBindTCP | NetConnectTCP},
		{ABI: 5, HandledFS: HandledFS(5), HandledNet: NetConnectTCP},
		{ABI: abi, HandledFS: HandledFS(abi), Scoped: ScopeSignal},
	} {
		rs, err := c.Build()
		if err != nil {
			t.Errorf("Build(%+v): %v", c, err)
			continue
		}
		rs.Close()
	}
	// A right the kernel does not know is refused by the kernel.
	if rs, err := (&Config{ABI: abi, HandledFS: 1 << 62}).Build(); err == nil {
		rs.Close()
		t.Error("Build with an unknown FS right succeeded")
	}
}

// TestRestrictThread confines one locked OS thread (which the runtime then
// discards) and checks the rules from the outside in: what is granted
// works, what is not is refused, and rights on a file are narrowed rather
// than refused.
func TestRestrictThread(t *testing.T) {
	abi := kernelABI(t)
	base := t.TempDir()
	granted := filepath.Join(base, "granted")
	other := filepath.Join(base, "other")
	for _, d := range []string{granted, other} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "f"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	lone := filepath.Join(other, "lone")
	if err := os.WriteFile(lone, []byte("y"), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := HandledFS(abi)
	rs, err := (&Config{ABI: abi, HandledFS: fs, Paths: []PathRule{
		{Path: granted, Access: FSRead},
		{Path: lone, Access: fs}, // narrowed to the file rights
	}}).Build()
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()

	type result struct {
		name string
		err  error
	}
	results := make(chan []result, 1)
	go func() {
		// Never unlocked: the runtime ends this thread when the goroutine
		// returns, so the restriction dies with it.
		runtime.LockOSThread()
		var out []result
		defer func() { results <- out }()
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			out = append(out, result{"no_new_privs", err})
			return
		}
		if err := rs.RestrictThread(); err != nil {
			out = append(out, result{"restrict", err})
			return
		}
		try := func(name, path string, flags int) {
			fd, err := unix.Open(path, flags|unix.O_CLOEXEC, 0o600)
			if err == nil {
				unix.Close(fd)
			}
			out = append(out, result{name, err})
		}
		try("read granted", filepath.Join(granted, "f"), unix.O_RDONLY)
		try("list granted", granted, unix.O_RDONLY|unix.O_DIRECTORY)
		try("write granted", filepath.Join(granted, "f"), unix.O_WRONLY)
		try("create in granted", filepath.Join(granted, "new"), unix.O_WRONLY|unix.O_CREAT)
		try("read other", filepath.Join(other, "f"), unix.O_RDONLY)
		try("read lone file", lone, unix.O_RDONLY)
		try("write lone file", lone, unix.O_WRONLY|unix.O_TRUNC)
		try("list other", other, unix.O_RDONLY|unix.O_DIRECTORY)
	}()
	got := <-results
	want := map[string]error{
		"read granted": nil, "list granted": nil, "write granted": unix.EACCES,
		"create in granted": unix.EACCES, "read other": unix.EACCES,
		"read lone file": nil, "write lone file": nil, "list other": unix.EACCES,
	}
	if len(got) != len(want) {
		t.Fatalf("restricted thread reported %+v", got)
	}
	for _, r := range got {
		if w := want[r.name]; !errors.Is(r.err, w) || (w == nil && r.err != nil) {
			t.Errorf("%s: %v, want %v", r.name, r.err, w)
		}
	}
	// This goroutine's thread was never restricted.
	if f, err := os.Open(filepath.Join(other, "f")); err != nil {
		t.Errorf("unrestricted thread: %v", err)
	} else {
		f.Close()
	}
}
