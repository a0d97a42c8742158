//go:build linux

package sandlock_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock"
)

// systemRead is what a program needs to be loaded and run.
var systemRead = []string{"/usr", "/lib", "/lib64", "/bin", "/etc", "/dev/null"}

// python is the interpreter tests run inside sandboxes (PATH's python3 may
// be a shim outside the grants).
const python = "/usr/bin/python3"

// base returns a sandbox that can run system programs and nothing more.
func base() *sandlock.Sandbox {
	var read []string
	for _, p := range systemRead {
		if _, err := os.Stat(p); err == nil {
			read = append(read, p)
		}
	}
	return &sandlock.Sandbox{FSReadable: read}
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// run runs cmd and fails the test if the sandbox could not run it.
func run(t *testing.T, sb *sandlock.Sandbox, cmd ...string) *sandlock.Result {
	t.Helper()
	res, err := sb.Run(ctxT(t), cmd...)
	if err != nil {
		t.Fatalf("Run(%q): %v", cmd, err)
	}
	return res
}

// sh runs a shell script in the sandbox.
func sh(t *testing.T, sb *sandlock.Sandbox, script string) *sandlock.Result {
	t.Helper()
	return run(t, sb, "/bin/sh", "-c", script)
}

// py runs a Python program in the sandbox and returns its stdout, failing
// the test if it did not exit 0.
func py(t *testing.T, sb *sandlock.Sandbox, code string) string {
	t.Helper()
	res := run(t, sb, python, "-c", code)
	if res.ExitCode != 0 {
		t.Fatalf("python exited %d (reason %v)\nstdout: %s\nstderr: %s", res.ExitCode, res.Reason, res.Stdout, res.Stderr)
	}
	return strings.TrimSpace(string(res.Stdout))
}

// errnoProbe is a Python prelude defining sc(nr, *args) → errno name or
// "OK": a raw syscall through libc, for testing what the filter answers.
const errnoProbe = `
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def sc(nr, *args):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    if r == -1:
        return errno.errorcode[ctypes.get_errno()]
    return "OK"
`

// mustNr returns a syscall's number on this architecture.
func mustNr(t *testing.T, name string) int {
	t.Helper()
	nr, err := sandlock.SyscallNr(name)
	if err != nil {
		t.Fatal(err)
	}
	return nr
}

// cliBinary is the sandlock CLI, built once by TestMain into a directory
// every user can read (the unprivileged tests run it as nobody).
var cliBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sandlock-cli-")
	if err != nil {
		panic(err)
	}
	os.Chmod(dir, 0o755)
	cliBinary = filepath.Join(dir, "sandlock")
	build := exec.Command("go", "build", "-o", cliBinary, "./cmd/sandlock")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		panic("building the CLI: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// tempDir returns a directory every user can use, removed after the test.
func tempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sandlock-test-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// cli runs the sandlock CLI with args and returns its exit code, stdout and
// stderr.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return cliAs(t, nil, args...)
}

// cliAs runs the CLI behind a prefix command (e.g. setpriv).
func cliAs(t *testing.T, prefix []string, args ...string) (int, string, string) {
	t.Helper()
	argv := append(append(append([]string(nil), prefix...), cliBinary), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("running %q: %v", argv, err)
		}
		code = ee.ExitCode()
	}
	return code, stdout.String(), stderr.String()
}

// readArgs are the -r flags of systemRead.
func readArgs() []string {
	var out []string
	for _, p := range base().FSReadable {
		out = append(out, "-r", p)
	}
	return out
}

// clearCloexec makes f inheritable, as an fd from a careless caller would be.
func clearCloexec(t *testing.T, f *os.File) {
	t.Helper()
	if _, err := unix.FcntlInt(f.Fd(), unix.F_SETFD, 0); err != nil {
		t.Fatal(err)
	}
}

// cPrograms caches the C programs built by cProgram, by source.
var cPrograms sync.Map // source → path or error

// cProgram compiles a C program (with pthreads) once per test binary into
// a directory every user can read, and returns its path. Tests use C where
// Python is too slow or too indirect: threads racing a syscall's memory
// arguments, raw syscalls with exact arguments.
func cProgram(t *testing.T, name, src string) string {
	t.Helper()
	if v, ok := cPrograms.Load(src); ok {
		if err, bad := v.(error); bad {
			t.Fatal(err)
		}
		return v.(string)
	}
	// Beside the CLI binary: a directory every user can read, removed
	// by TestMain. Each program gets its own name there.
	dir, err := os.MkdirTemp(filepath.Dir(cliBinary), name+"-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	cfile := filepath.Join(dir, name+".c")
	bin := filepath.Join(dir, name)
	if err := os.WriteFile(cfile, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("gcc", "-O2", "-Wall", "-pthread", "-o", bin, cfile).CombinedOutput()
	if err != nil {
		err = fmt.Errorf("compiling %s: %v\n%s", name, err, out)
		cPrograms.Store(src, err)
		t.Fatal(err)
	}
	v, _ := cPrograms.LoadOrStore(src, bin)
	return v.(string)
}

// goProgram builds a Go program (without cgo) once per test binary into a
// directory every user can read, and returns its path.
func goProgram(t *testing.T, name, src string) string {
	t.Helper()
	if v, ok := cPrograms.Load("go:" + src); ok {
		if err, bad := v.(error); bad {
			t.Fatal(err)
		}
		return v.(string)
	}
	dir, err := os.MkdirTemp(filepath.Dir(cliBinary), name+"-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	must(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module "+name+"\n\ngo 1.22\n"), 0o644))
	bin := filepath.Join(dir, name)
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir, build.Env = dir, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		err = fmt.Errorf("building %s: %v\n%s", name, err, out)
		cPrograms.Store("go:"+src, err)
		t.Fatal(err)
	}
	v, _ := cPrograms.LoadOrStore("go:"+src, bin)
	return v.(string)
}
