//go:build linux

package sandlock_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock"
)

// Helpers of this file are prefixed hdl so they cannot collide with the
// other test files of the package.

// hdlRun runs a Python program in sb with handlers and fails the test if
// the sandbox could not run it.
func hdlRun(t *testing.T, sb *sandlock.Sandbox, code string, hs ...sandlock.SyscallHandler) *sandlock.Result {
	t.Helper()
	res, err := sb.RunWithHandlers(ctxT(t), []string{python, "-c", code}, hs...)
	if err != nil {
		t.Fatalf("RunWithHandlers: %v", err)
	}
	return res
}

// hdlPy is hdlRun that also requires exit 0 and returns the trimmed stdout.
func hdlPy(t *testing.T, sb *sandlock.Sandbox, code string, hs ...sandlock.SyscallHandler) string {
	t.Helper()
	res := hdlRun(t, sb, code, hs...)
	if res.ExitCode != 0 {
		t.Fatalf("python exited %d (reason %v)\nstdout: %s\nstderr: %s", res.ExitCode, res.Reason, res.Stdout, res.Stderr)
	}
	return strings.TrimSpace(string(res.Stdout))
}

// hdlJSON decodes the program's JSON output into v.
func hdlJSON(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("decoding the program's output %q: %v", out, err)
	}
}

// hdl registers f on the syscall called name.
func hdl(t *testing.T, name string, f func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action) sandlock.SyscallHandler {
	t.Helper()
	return sandlock.SyscallHandler{Syscall: int64(mustNr(t, name)), Handler: sandlock.HandlerFunc(f)}
}

// hdlLog is a concurrency-safe record of events.
type hdlLog struct {
	mu sync.Mutex
	s  []string
}

func (l *hdlLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.s = append(l.s, fmt.Sprintf(format, args...))
}

func (l *hdlLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.s...)
}

// hdlPrelude defines libc, sc(nr, *args) → "OK" or an errno name, and
// raw(nr, *args) → (return value, errno) in the program.
const hdlPrelude = `
import ctypes, errno, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def raw(nr, *args):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return r, (ctypes.get_errno() if r == -1 else 0)
def sc(nr, *args):
    r, e = raw(nr, *args)
    return errno.errorcode[e] if r == -1 else "OK"
`

// hdlProg fills the {NAME} placeholders of a program with syscall numbers
// and other values.
func hdlProg(t *testing.T, code string, vals map[string]any) string {
	t.Helper()
	code = hdlPrelude + code
	for k, v := range vals {
		code = strings.ReplaceAll(code, "{"+k+"}", fmt.Sprint(v))
	}
	if i := strings.Index(code, "{NR_"); i >= 0 {
		t.Fatalf("program has an unfilled placeholder at %q", code[i:min(len(code), i+20)])
	}
	return code
}

// hdlFile writes content to a new file in a directory outside every grant
// and returns its path.
func hdlFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(tempDir(t), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHandlerOrder: user handlers of one syscall run in the order given, the
// first non-Continue answer ends the chain, and a builtin's answer is never
// overridden (the user handler does not even see that notification).
func TestHandlerOrder(t *testing.T) {
	t.Run("insertion order and short circuit", func(t *testing.T) {
		var mu sync.Mutex
		calls := map[uint64][]string{} // notification id → handlers called, in order
		rec := func(name string, a sandlock.Action) sandlock.Handler {
			return sandlock.HandlerFunc(func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
				mu.Lock()
				calls[hc.Notif.ID] = append(calls[hc.Notif.ID], name)
				mu.Unlock()
				return a
			})
		}
		nr := int64(mustNr(t, "getppid"))
		out := hdlPy(t, base(), "import os\nprint(os.getppid())\nprint(os.getppid())",
			sandlock.SyscallHandler{Syscall: nr, Handler: rec("first", sandlock.Continue())},
			sandlock.SyscallHandler{Syscall: nr, Handler: rec("second", sandlock.Continue())},
			sandlock.SyscallHandler{Syscall: nr, Handler: rec("third", sandlock.ReturnValue(77))},
			sandlock.SyscallHandler{Syscall: nr, Handler: rec("fourth", sandlock.ReturnValue(99))},
		)
		if out != "77\n77" {
			t.Errorf("getppid answered %q, want 77 twice (the third handler's answer)", out)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(calls) < 2 {
			t.Fatalf("saw %d getppid notifications, want at least 2: %v", len(calls), calls)
		}
		for id, order := range calls {
			if got := strings.Join(order, ","); got != "first,second,third" {
				t.Errorf("notification %d: handlers called %s, want first,second,third", id, got)
			}
		}
	})

	t.Run("builtin answer wins", func(t *testing.T) {
		root := tempDir(t)
		pub, secret := filepath.Join(root, "pub.txt"), filepath.Join(root, "secret.txt")
		must(t, os.WriteFile(pub, []byte("public"), 0o644))
		must(t, os.WriteFile(secret, []byte("SECRET"), 0o644))
		sb := base()
		sb.FSReadable = append(sb.FSReadable, root)
		sb.FSDenied = []string{secret}

		var seen hdlLog
		// A user handler that would let everything under root through: a
		// Continue for pub, a made-up fd for secret.
		h := hdl(t, "openat", func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
			path, err := hc.ReadCString(hc.Notif.Data.Args[1], 4096)
			if err != nil || !strings.HasPrefix(path, root+"/") {
				return sandlock.Continue()
			}
			flags := hc.Notif.Data.Args[2]
			seen.add("%s O_PATH=%v", filepath.Base(path), flags&unix.O_PATH != 0)
			if path == secret {
				return sandlock.ReturnValue(1000)
			}
			if flags&unix.O_PATH != 0 {
				return sandlock.ReturnValue(1001)
			}
			return sandlock.Continue()
		})
		code := hdlProg(t, `
R = {}
def attempt(name, fn):
    try:
        R[name] = str(fn())
    except OSError as e:
        R[name] = errno.errorcode[e.errno]
attempt("secret", lambda: open({SECRET!r}).read())
attempt("secret_path", lambda: os.open({SECRET!r}, os.O_PATH))
attempt("pub", lambda: open({PUB!r}).read())
attempt("pub_path", lambda: os.open({PUB!r}, os.O_PATH))
print(json.dumps(R))
`, map[string]any{"SECRET!r": strconv.Quote(secret), "PUB!r": strconv.Quote(pub)})
		var got map[string]string
		hdlJSON(t, hdlPy(t, sb, code, h), &got)
		want := map[string]string{
			"secret":      "EACCES", // the builtin's answer, not the user's 1000
			"secret_path": "EACCES",
			"pub":         "public", // the user said Continue; the builtin opened it on the program's behalf
			"pub_path":    "1001",   // the builtin's check said Continue: the user handler answered
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("results %v, want %v", got, want)
		}
		// The FSDenied check runs before the user handler, which never sees
		// the denied opens; allowed ones reach it, and the builtin acts on
		// them only after it said Continue.
		if s := seen.get(); !reflect.DeepEqual(s, []string{"pub.txt O_PATH=false", "pub.txt O_PATH=true"}) {
			t.Errorf("user handler saw %q, want the two opens of pub.txt only", s)
		}
	})
}

// TestHandlerCoverage: handlers on syscalls no builtin traps fire, and their
// answers reach the program; Continue lets the syscall run.
func TestHandlerCoverage(t *testing.T) {
	var counts sync.Map // name → *atomic.Int64
	count := func(name string) *atomic.Int64 {
		v, _ := counts.LoadOrStore(name, new(atomic.Int64))
		return v.(*atomic.Int64)
	}
	const magic = 0x5eed
	hs := []sandlock.SyscallHandler{
		hdl(t, "getppid", func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
			count("getppid").Add(1)
			return sandlock.ReturnValue(4242)
		}),
		hdl(t, "getcwd", func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
			count("getcwd").Add(1)
			// Python's import machinery calls getcwd too: fail only the
			// program's own call, marked by its buffer size.
			if hc.Notif.Data.Args[1] == magic {
				return sandlock.Errno(syscall.EACCES)
			}
			return sandlock.Continue()
		}),
		// (Not uname: the host view answers it, with the sandbox's name,
		// before user handlers.)
		hdl(t, "getpid", func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
			count("getpid").Add(1)
			return sandlock.Continue()
		}),
		hdl(t, "sched_yield", func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
			count("sched_yield").Add(1)
			if hc.Notif.Data.Args[0] == magic {
				return sandlock.Errno(syscall.EXDEV)
			}
			return sandlock.Continue()
		}),
	}
	code := hdlProg(t, `
R = {"ppid": os.getppid()}
buf = ctypes.create_string_buffer({MAGIC})
R["cwd"] = sc({NR_getcwd}, ctypes.addressof(buf), {MAGIC})
R["cwd_plain"] = os.getcwd()
R["sysname"] = os.uname().sysname
R["pid"] = os.getpid() > 1
os.sched_yield()
R["yield"] = sc({NR_sched_yield})
R["yield_magic"] = sc({NR_sched_yield}, {MAGIC})
print(json.dumps(R))
`, map[string]any{"NR_sched_yield": mustNr(t, "sched_yield"), "NR_getcwd": mustNr(t, "getcwd"), "MAGIC": magic})
	var got map[string]any
	hdlJSON(t, hdlPy(t, base(), code, hs...), &got)
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"ppid": 4242.0, "cwd": "EACCES", "cwd_plain": wd, "sysname": "Linux", "pid": true, "yield": "OK", "yield_magic": "EXDEV"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("program saw %v, want %v", got, want)
	}
	for _, name := range []string{"getppid", "getcwd", "getpid", "sched_yield"} {
		if n := count(name).Load(); n == 0 {
			t.Errorf("the handler on %s never fired", name)
		}
	}
	if n := count("getcwd").Load(); n < 2 {
		t.Errorf("getcwd handler fired %d times, want at least 2", n)
	}
	if n := count("sched_yield").Load(); n < 3 {
		t.Errorf("sched_yield handler fired %d times, want at least 3", n)
	}

	// Continue everywhere: the syscalls run as without handlers.
	cont := func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action { return sandlock.Continue() }
	plain := hdlPy(t, base(), "import os\nprint(os.getppid() > 1, os.getcwd(), os.uname().sysname)")
	handled := hdlPy(t, base(), "import os\nprint(os.getppid() > 1, os.getcwd(), os.uname().sysname)",
		hdl(t, "getppid", cont), hdl(t, "getcwd", cont), hdl(t, "uname", cont))
	if plain != handled || !strings.HasPrefix(handled, "True ") {
		t.Errorf("with Continue handlers the program printed %q, without handlers %q", handled, plain)
	}
}

// hdlLastPid is the kernel's last allocated pid.
func hdlLastPid(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/kernel/ns_last_pid")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestHandlerValidation: invalid registrations are refused before anything
// starts.
func TestHandlerValidation(t *testing.T) {
	mount, ptrace, uname := int64(mustNr(t, "mount")), int64(mustNr(t, "ptrace")), int64(mustNr(t, "uname"))
	shmget, clone3 := int64(mustNr(t, "shmget")), int64(mustNr(t, "clone3"))
	cases := []struct {
		name  string
		nr    int64
		extra []string // ExtraDenySyscalls
		want  error
	}{
		{"negative", -1, nil, sandlock.ErrNegativeSyscall},
		{"very negative", -1 << 40, nil, sandlock.ErrNegativeSyscall},
		{"unknown", 99999, nil, sandlock.ErrUnknownSyscall},
		{"gap in the table", 400, nil, sandlock.ErrUnknownSyscall},
		{"huge", 1 << 40, nil, sandlock.ErrUnknownSyscall},
		{"mount (blocklist)", mount, nil, sandlock.ErrDeniedSyscall},
		{"ptrace (blocklist)", ptrace, nil, sandlock.ErrDeniedSyscall},
		{"shmget (default-denied group)", shmget, nil, sandlock.ErrDeniedSyscall},
		{"clone3 (answered ENOSYS)", clone3, nil, sandlock.ErrDeniedSyscall},
		{"ExtraDenySyscalls", uname, []string{"uname"}, sandlock.ErrDeniedSyscall},
	}
	getppid := int64(mustNr(t, "getppid"))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			marker := filepath.Join(tempDir(t), "marker")
			var called atomic.Int64
			h := sandlock.HandlerFunc(func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
				called.Add(1)
				return sandlock.Continue()
			})
			sb := base()
			sb.FSWritable = []string{filepath.Dir(marker)}
			sb.ExtraDenySyscalls = c.extra
			cmd := []string{"/bin/sh", "-c", "touch " + marker}
			hs := []sandlock.SyscallHandler{{Syscall: getppid, Handler: h}, {Syscall: c.nr, Handler: h}}

			check := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, c.want) {
					t.Fatalf("%s: error %v, want %v", what, err, c.want)
				}
				var se *sandlock.SyscallError
				if !errors.As(err, &se) {
					t.Fatalf("%s: error %T %v is not a *SyscallError", what, err, err)
				}
				if se.Nr != c.nr || se.Err != c.want || se.Unwrap() != c.want {
					t.Errorf("%s: SyscallError{Nr: %d, Err: %v}, want Nr %d, Err %v", what, se.Nr, se.Err, c.nr, c.want)
				}
				if !strings.Contains(err.Error(), strconv.FormatInt(c.nr, 10)) {
					t.Errorf("%s: message %q does not name the number", what, err)
				}
			}

			// No process may be created: the kernel's last pid stays put.
			// Another process on the machine may take a pid meanwhile, so
			// one attempt of several with no pid taken at all is the proof.
			quiet := false
			for i := 0; i < 50 && !quiet; i++ {
				before := hdlLastPid(t)
				res, err := sb.RunWithHandlers(ctxT(t), cmd, hs...)
				after := hdlLastPid(t)
				if res != nil {
					t.Fatalf("RunWithHandlers returned a result %+v with error %v", res, err)
				}
				check("RunWithHandlers", err)
				quiet = before == after
			}
			if !quiet {
				t.Errorf("a pid was allocated during every one of 50 refused runs")
			}
			code, err := sb.RunInteractiveWithHandlers(ctxT(t), cmd, hs...)
			if code != -1 {
				t.Errorf("RunInteractiveWithHandlers returned %d", code)
			}
			check("RunInteractiveWithHandlers", err)
			if _, err := os.Stat(marker); !os.IsNotExist(err) {
				t.Errorf("the command ran: %s exists (%v)", marker, err)
			}
			if n := called.Load(); n != 0 {
				t.Errorf("a handler was called %d times", n)
			}
		})
	}

	t.Run("nil handler", func(t *testing.T) {
		_, err := base().RunWithHandlers(ctxT(t), []string{"true"}, sandlock.SyscallHandler{Syscall: getppid})
		var se *sandlock.SyscallError
		if !errors.As(err, &se) || se.Nr != getppid {
			t.Errorf("nil Handler: %v, want a *SyscallError for %d", err, getppid)
		}
	})

	t.Run("valid handlers run", func(t *testing.T) {
		// The same sandbox with only valid handlers does run the command.
		marker := filepath.Join(tempDir(t), "marker")
		sb := base()
		sb.FSWritable = []string{filepath.Dir(marker)}
		res, err := sb.RunWithHandlers(ctxT(t), []string{"/bin/sh", "-c", "touch " + marker},
			hdl(t, "getppid", func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action { return sandlock.Continue() }))
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("run: %+v %v", res, err)
		}
		if _, err := os.Stat(marker); err != nil {
			t.Errorf("marker: %v", err)
		}
	})

	t.Run("CheckSyscall", func(t *testing.T) {
		for _, nr := range []int64{getppid, 0, mount, ptrace} {
			// CheckSyscall checks the architecture, not the policy.
			s, err := sandlock.CheckSyscall(nr)
			if err != nil || s != sandlock.Syscall(nr) {
				t.Errorf("CheckSyscall(%d) = %d, %v", nr, s, err)
			}
		}
		for nr, want := range map[int64]error{
			-1: sandlock.ErrNegativeSyscall, -1 << 62: sandlock.ErrNegativeSyscall,
			99999: sandlock.ErrUnknownSyscall, 400: sandlock.ErrUnknownSyscall, 1 << 62: sandlock.ErrUnknownSyscall,
		} {
			s, err := sandlock.CheckSyscall(nr)
			var se *sandlock.SyscallError
			if s != 0 || !errors.Is(err, want) || !errors.As(err, &se) || se.Nr != nr {
				t.Errorf("CheckSyscall(%d) = %d, %v; want a *SyscallError wrapping %v", nr, s, err, want)
			}
		}
		_, err := sandlock.CheckSyscall(-1)
		if errors.Is(err, sandlock.ErrUnknownSyscall) || errors.Is(err, sandlock.ErrDeniedSyscall) {
			t.Errorf("CheckSyscall(-1) = %v matches another sentinel", err)
		}
	})
}

// TestHandlerConcurrency: a handler that sleeps on one thread's syscall does
// not delay another thread's notified syscalls.
func TestHandlerConcurrency(t *testing.T) {
	const slowSize = 4099 // the getcwd buffer size that marks thread A's call
	var slowRunning atomic.Bool
	var slowCalls atomic.Int64
	var mu sync.Mutex
	during, outside := map[uint32]int{}, map[uint32]int{} // getppid calls by tid
	hs := []sandlock.SyscallHandler{
		hdl(t, "getcwd", func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
			if hc.Notif.Data.Args[1] != slowSize {
				return sandlock.Continue()
			}
			slowCalls.Add(1)
			// Tell thread B that A's call is in the handler: B starts its
			// calls only then.
			if err := hc.WriteMem(hc.Notif.Data.Args[0], []byte("!")); err != nil {
				t.Errorf("WriteMem: %v", err)
				return sandlock.Errno(syscall.EFAULT)
			}
			slowRunning.Store(true)
			time.Sleep(time.Second)
			slowRunning.Store(false)
			return sandlock.Continue()
		}),
		hdl(t, "getppid", func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
			running := slowRunning.Load()
			mu.Lock()
			if running {
				during[hc.Notif.PID]++
			} else {
				outside[hc.Notif.PID]++
			}
			mu.Unlock()
			return sandlock.Continue()
		}),
	}
	code := hdlProg(t, `
import threading, time
buf = ctypes.create_string_buffer({SIZE})
out = {}
def a():
    out["a_start"] = time.monotonic_ns()
    out["a_ret"] = libc.syscall(ctypes.c_long({NR_getcwd}), buf, ctypes.c_long({SIZE}))
    out["a_end"] = time.monotonic_ns()
def b():
    out["b_tid"] = threading.get_native_id()
    while buf[0] == b"\x00":
        time.sleep(0.0005)
    out["b_start"] = time.monotonic_ns()
    for _ in range(200):
        os.getppid()
    out["b_end"] = time.monotonic_ns()
ta, tb = threading.Thread(target=a), threading.Thread(target=b)
ta.start(); tb.start(); ta.join(); tb.join()
out["cwd"] = buf.value.decode()
print(json.dumps(out))
`, map[string]any{"SIZE": slowSize, "NR_getcwd": mustNr(t, "getcwd")})
	var out struct {
		AStart int64  `json:"a_start"`
		ARet   int64  `json:"a_ret"`
		AEnd   int64  `json:"a_end"`
		BTid   uint32 `json:"b_tid"`
		BStart int64  `json:"b_start"`
		BEnd   int64  `json:"b_end"`
		Cwd    string `json:"cwd"`
	}
	hdlJSON(t, hdlPy(t, base(), code, hs...), &out)
	if slowCalls.Load() != 1 || out.ARet <= 0 || !strings.HasPrefix(out.Cwd, "/") {
		t.Errorf("thread A's getcwd: %d slow calls, returned %d, %q", slowCalls.Load(), out.ARet, out.Cwd)
	}
	if !(out.AStart < out.BStart && out.BEnd < out.AEnd) {
		t.Errorf("thread B's 200 getppid calls ran from %d to %d, A's slow getcwd from %d to %d: B did not finish before A's call returned",
			out.BStart, out.BEnd, out.AStart, out.AEnd)
	}
	mu.Lock()
	defer mu.Unlock()
	if during[out.BTid] != 200 || outside[out.BTid] != 0 {
		t.Errorf("thread B's getppid calls: %d served while A's handler slept, %d outside; want 200 and 0",
			during[out.BTid], outside[out.BTid])
	}
}

// TestHandlerDefer: deferred answers, and the calls Defer is refused on.
func TestHandlerDefer(t *testing.T) {
	t.Run("answer", func(t *testing.T) {
		var ran atomic.Int64
		out := hdlPy(t, base(), "import os\nprint(os.getppid())",
			hdl(t, "getppid", func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
				return sandlock.Defer(func(ctx context.Context) sandlock.Action {
					ran.Add(1)
					return sandlock.ReturnValue(31337)
				})
			}))
		if out != "31337" || ran.Load() == 0 {
			t.Errorf("program printed %q (deferred fn ran %d times), want 31337", out, ran.Load())
		}
	})

	t.Run("deferred Continue", func(t *testing.T) {
		out := hdlPy(t, base(), "import os\nprint(os.getppid() > 1)",
			hdl(t, "getppid", func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
				return sandlock.Defer(func(ctx context.Context) sandlock.Action { return sandlock.Continue() })
			}))
		if out != "True" {
			t.Errorf("program printed %q, want True (the real getppid)", out)
		}
	})

	t.Run("execve refused", func(t *testing.T) {
		var deferredRan, seen atomic.Int64
		h := hdl(t, "execve", func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
			// The child stage's own exec of python passes through here too:
			// defer only the program's exec of /bin/true.
			path, err := hc.ReadCString(hc.Notif.Data.Args[0], 4096)
			if err != nil || path != "/bin/true" {
				return sandlock.Continue()
			}
			seen.Add(1)
			return sandlock.Defer(func(ctx context.Context) sandlock.Action {
				deferredRan.Add(1)
				return sandlock.Continue()
			})
		})
		out := hdlPy(t, base(), `
import os
try:
    os.execv("/bin/true", ["true"])
except OSError as e:
    print("errno", e.errno)
`, h)
		if out != fmt.Sprintf("errno %d", syscall.EPERM) {
			t.Errorf("program printed %q, want the exec to fail with EPERM", out)
		}
		if seen.Load() != 1 || deferredRan.Load() != 0 {
			t.Errorf("handler saw %d execs of /bin/true, the deferred fn ran %d times; want 1 and 0", seen.Load(), deferredRan.Load())
		}
	})

	t.Run("fork refused", func(t *testing.T) {
		var deferredRan atomic.Int64
		h := hdl(t, "clone", func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
			if hc.Notif.Data.Args[0]&unix.CLONE_THREAD != 0 {
				return sandlock.Continue()
			}
			return sandlock.Defer(func(ctx context.Context) sandlock.Action {
				deferredRan.Add(1)
				return sandlock.Continue()
			})
		})
		out := hdlPy(t, base(), `
import os
try:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    print("forked")
except OSError as e:
    print("errno", e.errno)
`, h)
		if out != fmt.Sprintf("errno %d", syscall.EPERM) || deferredRan.Load() != 0 {
			t.Errorf("program printed %q, deferred fn ran %d times; want the fork to fail with EPERM", out, deferredRan.Load())
		}
	})

	t.Run("Defer returning Defer", func(t *testing.T) {
		var inner atomic.Int64
		code := hdlProg(t, "print(sc({NR_getppid}))", map[string]any{"NR_getppid": mustNr(t, "getppid")})
		out := hdlPy(t, base(), code,
			hdl(t, "getppid", func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
				return sandlock.Defer(func(ctx context.Context) sandlock.Action {
					return sandlock.Defer(func(ctx context.Context) sandlock.Action {
						inner.Add(1)
						return sandlock.ReturnValue(1)
					})
				})
			}))
		if out != "EIO" || inner.Load() != 0 {
			t.Errorf("program printed %q (inner fn ran %d times), want EIO", out, inner.Load())
		}
	})

	t.Run("bound", func(t *testing.T) {
		const threads = 70
		const magic = 0xea6a1
		var calls, started, eagain atomic.Int64
		release := make(chan struct{})
		hs := []sandlock.SyscallHandler{
			hdl(t, "getppid", func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
				calls.Add(1)
				return sandlock.Defer(func(ctx context.Context) sandlock.Action {
					started.Add(1)
					select {
					case <-release:
					case <-ctx.Done():
					}
					return sandlock.ReturnValue(5)
				})
			}),
			// A thread that got EAGAIN reports it here, so the test knows
			// when to release the others.
			hdl(t, "sched_yield", func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
				if hc.Notif.Data.Args[0] == magic {
					eagain.Add(1)
				}
				return sandlock.Continue()
			}),
		}
		want := int64(threads - sandlock.MaxDeferred)
		go func() {
			deadline := time.Now().Add(45 * time.Second)
			for !(started.Load() == sandlock.MaxDeferred && eagain.Load() == want) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			close(release)
		}()
		code := hdlProg(t, `
import threading
res = []
lock = threading.Lock()
def w():
    r = sc({NR_getppid})
    if r == "EAGAIN":
        sc({NR_sched_yield}, {MAGIC})
    with lock:
        res.append(r)
ts = [threading.Thread(target=w) for _ in range({N})]
for t in ts: t.start()
for t in ts: t.join()
print(json.dumps({"ok": res.count("OK"), "eagain": res.count("EAGAIN"), "n": len(res), "after": sc({NR_getppid})}))
`, map[string]any{"NR_getppid": mustNr(t, "getppid"), "NR_sched_yield": mustNr(t, "sched_yield"), "MAGIC": magic, "N": threads})
		var got struct {
			OK, EAGAIN, N int
			After         string
		}
		hdlJSON(t, hdlPy(t, base(), code, hs...), &got)
		if got.N != threads || got.EAGAIN < int(want) || got.OK+got.EAGAIN != threads || got.OK > sandlock.MaxDeferred {
			t.Errorf("%d threads: %d OK, %d EAGAIN; want at least %d EAGAIN and the rest OK", got.N, got.OK, got.EAGAIN, want)
		}
		if got.After != "OK" {
			t.Errorf("a deferred call after the others were released: %s, want OK", got.After)
		}
		if started.Load() != sandlock.MaxDeferred+1 || calls.Load() != threads+1 {
			t.Errorf("handler called %d times, %d deferred fns ran; want %d and %d", calls.Load(), started.Load(), threads+1, sandlock.MaxDeferred+1)
		}
	})

	t.Run("task gone", func(t *testing.T) {
		// The deferred fn is still running when the sandbox is killed: its
		// answer is dropped, the memory helpers fail, and the run ends.
		type result struct {
			readErr, cstrErr, writeErr error
			live                       string
			liveErr                    error
		}
		started := make(chan uint32, 1)
		release := make(chan struct{})
		done := make(chan result, 1)
		h := hdl(t, "getppid", func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
			addr := hc.Notif.Data.Args[0]
			if addr == 0 {
				return sandlock.Continue()
			}
			var r result
			r.live, r.liveErr = hc.ReadCString(addr, 64) // still there
			return sandlock.Defer(func(ctx context.Context) sandlock.Action {
				started <- hc.Notif.PID
				<-release
				_, r.readErr = hc.ReadMem(addr, 5)
				_, r.cstrErr = hc.ReadCString(addr, 64)
				r.writeErr = hc.WriteMem(addr, []byte("x"))
				done <- r
				return sandlock.ReturnValue(1)
			})
		})
		code := hdlProg(t, `
buf = ctypes.create_string_buffer(b"hello", 16)
libc.syscall(ctypes.c_long({NR_getppid}), buf)
print("the deferred answer arrived", flush=True)
`, map[string]any{"NR_getppid": mustNr(t, "getppid")})
		ctx, cancel := context.WithCancel(ctxT(t))
		defer cancel()
		type runResult struct {
			res *sandlock.Result
			err error
		}
		ran := make(chan runResult, 1)
		go func() {
			res, err := base().RunWithHandlers(ctx, []string{python, "-c", code}, h)
			ran <- runResult{res, err}
		}()
		var pid uint32
		select {
		case pid = <-started:
		case r := <-ran:
			t.Fatalf("the run ended before the deferred fn started: %+v %v", r.res, r.err)
		}
		cancel() // kills the sandbox
		// Wait until the task is dead before releasing the fn.
		for deadline := time.Now().Add(20 * time.Second); ; {
			stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil {
				break
			}
			if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && (stat[i+2] == 'Z' || stat[i+2] == 'X') {
				break
			}
			if time.Now().After(deadline) {
				close(release)
				t.Fatalf("task %d survived the kill", pid)
			}
			time.Sleep(5 * time.Millisecond)
		}
		close(release)
		r := <-done
		if r.live != "hello" || r.liveErr != nil {
			t.Errorf("ReadCString while the task waited: %q, %v", r.live, r.liveErr)
		}
		if r.readErr == nil || r.cstrErr == nil || r.writeErr == nil {
			t.Errorf("helpers after the task died: ReadMem %v, ReadCString %v, WriteMem %v; want errors", r.readErr, r.cstrErr, r.writeErr)
		}
		rr := <-ran
		if rr.err != nil {
			t.Fatalf("RunWithHandlers: %v", rr.err)
		}
		if rr.res.Reason != sandlock.ReasonKilled || strings.Contains(string(rr.res.Stdout), "arrived") {
			t.Errorf("run ended %+v, stdout %q; want killed before the answer", rr.res, rr.res.Stdout)
		}
	})
}

// hdlBuffer is a concurrency-safe bytes.Buffer.
type hdlBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *hdlBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *hdlBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// hdlCaptureSlog sends slog's default output to a buffer for the rest of
// the test.
func hdlCaptureSlog(t *testing.T) *hdlBuffer {
	buf := new(hdlBuffer)
	old, oldW, oldFlags := slog.Default(), log.Writer(), log.Flags()
	slog.SetDefault(slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() {
		slog.SetDefault(old)
		// SetDefault pointed the log package at the test's handler; a
		// restored default handler does not point it back.
		log.SetOutput(oldW)
		log.SetFlags(oldFlags)
	})
	return buf
}

// TestHandlerPanic: a panicking handler fails the syscall with EPERM, is
// logged with its stack, and the supervisor keeps serving.
func TestHandlerPanic(t *testing.T) {
	logs := hdlCaptureSlog(t)
	const magic, deferMagic = 0xb00b, 0xdefe
	var served atomic.Int64
	hs := []sandlock.SyscallHandler{
		hdl(t, "getppid", func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
			switch hc.Notif.Data.Args[0] {
			case magic:
				panic(fmt.Sprintf("handler-boom-%x", magic))
			case deferMagic:
				return sandlock.Defer(func(ctx context.Context) sandlock.Action {
					panic(errors.New("deferred-boom"))
				})
			}
			served.Add(1)
			return sandlock.ReturnValue(4242)
		}),
	}
	code := hdlProg(t, `
R = [sc({NR}, {MAGIC}), os.getppid(), sc({NR}, {DMAGIC}), os.getppid(), sc({NR}, {MAGIC}), os.getppid()]
print(json.dumps(R))
`, map[string]any{"NR": mustNr(t, "getppid"), "MAGIC": magic, "DMAGIC": deferMagic})
	out := hdlPy(t, base(), code, hs...)
	if want := `["EPERM", 4242, "EPERM", 4242, "EPERM", 4242]`; out != want {
		t.Errorf("program printed %s, want %s", out, want)
	}
	if served.Load() != 3 {
		t.Errorf("handler served %d calls after panics, want 3", served.Load())
	}
	l := logs.String()
	for _, want := range []string{
		"handler-boom-b00b", "deferred-boom", // the panic values
		"EPERM", "goroutine ", "panic(", "handlers_test.go", // the stack
	} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %q:\n%s", want, l)
		}
	}
	if n := strings.Count(l, "handler-boom-b00b"); n != 2 {
		t.Errorf("handler panic logged %d times, want 2", n)
	}

	// The onSuccess callback of InjectFDSendTracked is user code too.
	path := hdlFile(t, "cb", "content")
	h := hdl(t, "openat", func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
		switch p, _ := hc.ReadCString(hc.Notif.Data.Args[1], 4096); p {
		case "/virtual/panic-cb":
			f, err := os.Open(path)
			if err != nil {
				t.Error(err)
				return sandlock.Errno(syscall.EIO)
			}
			return sandlock.InjectFDSendTracked(f, 0, func(int) { panic("callback-boom") })
		case "/virtual/ok":
			return sandlock.InjectBytes([]byte("still served"))
		}
		return sandlock.Continue()
	})
	out = hdlPy(t, base(), `
import errno, os
try:
    os.open("/virtual/panic-cb", os.O_RDONLY)
    print("opened")
except OSError as e:
    print(errno.errorcode[e.errno])
print(os.read(os.open("/virtual/ok", os.O_RDONLY), 100).decode())
`, h)
	if out != "EPERM\nstill served" {
		t.Errorf("a panicking onSuccess callback: program printed %q, want EPERM, then the next open served", out)
	}
	if l := logs.String(); !strings.Contains(l, "callback-boom") {
		t.Errorf("the callback's panic was not logged:\n%s", l)
	}
}

// TestHandlerInject: the injection actions.
func TestHandlerInject(t *testing.T) {
	t.Run("InjectBytes", func(t *testing.T) {
		h := hdl(t, "openat", func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
			if p, _ := hc.ReadCString(hc.Notif.Data.Args[1], 4096); p == "/virtual/synthetic" {
				return sandlock.InjectBytes([]byte("synthetic"))
			}
			return sandlock.Continue()
		})
		sb := base()
		sb.FSReadable = append(sb.FSReadable, "/proc")
		code := hdlProg(t, `
import fcntl, subprocess
R = {}
def attempt(name, fn):
    try:
        R[name] = fn()
    except OSError as e:
        R[name] = errno.errorcode[e.errno]
# Occupy the low fds (close-on-exec, so free again in an exec'd child):
# the injected fd must not share its number with one the child opens.
fillers = [os.open("/dev/null", os.O_RDONLY) for _ in range(20)]
fd = os.open("/virtual/synthetic", os.O_RDONLY)
R["fd"] = fd
R["read"] = os.read(fd, 100).decode()
R["size"] = os.fstat(fd).st_size
attempt("write", lambda: os.write(fd, b"x"))
attempt("pwrite", lambda: os.pwrite(fd, b"x", 0))
attempt("truncate0", lambda: os.ftruncate(fd, 0))
attempt("truncate100", lambda: os.ftruncate(fd, 100))
attempt("addseals", lambda: fcntl.fcntl(fd, fcntl.F_ADD_SEALS, 0))
R["seals"] = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
R["cloexec"] = fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
ctl = os.open("/dev/null", os.O_RDONLY)
os.set_inheritable(ctl, True)
R["ctl"] = ctl
R["child_fds"] = subprocess.run(["/bin/ls", "/proc/self/fd"], close_fds=False, capture_output=True, check=True).stdout.decode().split()
os.lseek(fd, 0, 0)
R["reread"] = os.read(fd, 100).decode()
print(json.dumps(R))
`, nil)
		var got struct {
			FD, Size, Seals, Cloexec, Ctl                   int
			Read, Reread                                    string
			Write, Pwrite, Truncate0, Truncate100, Addseals any
			ChildFDs                                        []string `json:"child_fds"`
		}
		hdlJSON(t, hdlPy(t, sb, code, h), &got)
		if got.Read != "synthetic" || got.Reread != "synthetic" || got.Size != len("synthetic") {
			t.Errorf("read %q, reread %q, size %d; want synthetic", got.Read, got.Reread, got.Size)
		}
		for name, v := range map[string]any{"write": got.Write, "pwrite": got.Pwrite, "ftruncate 0": got.Truncate0, "ftruncate 100": got.Truncate100, "F_ADD_SEALS": got.Addseals} {
			if v != "EPERM" {
				t.Errorf("%s on the injected file: %v, want EPERM", name, v)
			}
		}
		if want := unix.F_SEAL_WRITE | unix.F_SEAL_GROW | unix.F_SEAL_SHRINK | unix.F_SEAL_SEAL; got.Seals != want {
			t.Errorf("seals %#x, want %#x (WRITE|GROW|SHRINK|SEAL)", got.Seals, want)
		}
		if got.Cloexec != unix.FD_CLOEXEC {
			t.Errorf("FD_CLOEXEC not set on the injected fd")
		}
		if !hdlContains(got.ChildFDs, strconv.Itoa(got.Ctl)) {
			t.Fatalf("the exec'd child lacks the inheritable control fd %d: %v", got.Ctl, got.ChildFDs)
		}
		if hdlContains(got.ChildFDs, strconv.Itoa(got.FD)) {
			t.Errorf("the exec'd child inherited the injected fd %d: %v", got.FD, got.ChildFDs)
		}
	})

	t.Run("InjectFDSend", func(t *testing.T) {
		trackedPath := hdlFile(t, "tracked", "tracked-content")
		plainPath := hdlFile(t, "plain", "plain-content")
		closedPath := hdlFile(t, "closed", "never")
		var tracked atomic.Int64
		tracked.Store(-100)
		h := hdl(t, "openat", func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
			p, _ := hc.ReadCString(hc.Notif.Data.Args[1], 4096)
			switch p {
			case "/virtual/tracked":
				f, err := os.Open(trackedPath)
				if err != nil {
					t.Error(err)
					return sandlock.Errno(syscall.EIO)
				}
				return sandlock.InjectFDSendTracked(f, unix.O_CLOEXEC, func(fd int) { tracked.Store(int64(fd)) })
			case "/virtual/plain":
				f, err := os.Open(plainPath)
				if err != nil {
					t.Error(err)
					return sandlock.Errno(syscall.EIO)
				}
				return sandlock.InjectFDSend(f, 0)
			case "/virtual/closed":
				f, err := os.Open(closedPath)
				if err != nil {
					t.Error(err)
					return sandlock.Errno(syscall.EIO)
				}
				f.Close()
				return sandlock.InjectFDSend(f, 0)
			case "/virtual/closed-tracked":
				f, err := os.Open(closedPath)
				if err != nil {
					t.Error(err)
					return sandlock.Errno(syscall.EIO)
				}
				f.Close()
				return sandlock.InjectFDSendTracked(f, 0, func(int) { t.Error("onSuccess called for a failed injection") })
			case "/virtual/nil":
				return sandlock.InjectFDSend(nil, 0)
			}
			return sandlock.Continue()
		})
		code := hdlProg(t, `
import fcntl
R = {}
def attempt(name, fn):
    try:
        R[name] = fn()
    except OSError as e:
        R[name] = errno.errorcode[e.errno]
fd = os.open("/virtual/tracked", os.O_RDONLY)
R["tracked_fd"] = fd
R["tracked"] = os.read(fd, 100).decode()
R["tracked_cloexec"] = fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
fd = os.open("/virtual/plain", os.O_RDONLY)
R["plain"] = os.read(fd, 100).decode()
attempt("direct", lambda: open({PLAIN!r}).read())
attempt("closed", lambda: os.open("/virtual/closed", os.O_RDONLY))
attempt("closed_tracked", lambda: os.open("/virtual/closed-tracked", os.O_RDONLY))
attempt("nil", lambda: os.open("/virtual/nil", os.O_RDONLY))
print(json.dumps(R))
`, map[string]any{"PLAIN!r": strconv.Quote(plainPath)})
		var got map[string]any
		hdlJSON(t, hdlPy(t, base(), code, h), &got)
		if fd, ok := got["tracked_fd"].(float64); !ok || int64(fd) != tracked.Load() {
			t.Errorf("program got fd %v, onSuccess saw %d", got["tracked_fd"], tracked.Load())
		}
		want := map[string]any{
			"tracked": "tracked-content", "tracked_cloexec": float64(unix.FD_CLOEXEC),
			"plain":  "plain-content",
			"direct": "EACCES", // the file is outside every grant
			// A failed injection fails the syscall; a Continue would give ENOENT.
			"closed": "EIO", "closed_tracked": "EIO", "nil": "EIO",
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %v, want %v", k, got[k], v)
			}
		}
	})

	t.Run("InjectFD", func(t *testing.T) {
		const magic, closedMagic, badFDMagic = 0x1f0, 0x1f1, 0x1f2
		const target = 77
		path := hdlFile(t, "fixed", "fixed-fd-content")
		h := hdl(t, "getppid", func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
			switch hc.Notif.Data.Args[0] {
			case magic:
				f, err := os.Open(path)
				if err != nil {
					t.Error(err)
					return sandlock.Errno(syscall.EIO)
				}
				return sandlock.InjectFD(f, target)
			case closedMagic:
				f, err := os.Open(path)
				if err != nil {
					t.Error(err)
					return sandlock.Errno(syscall.EIO)
				}
				f.Close()
				return sandlock.InjectFD(f, target+1)
			case badFDMagic:
				f, err := os.Open(path)
				if err != nil {
					t.Error(err)
					return sandlock.Errno(syscall.EIO)
				}
				return sandlock.InjectFD(f, 1<<30) // beyond RLIMIT_NOFILE
			}
			return sandlock.Continue()
		})
		code := hdlProg(t, `
R = {}
r, e = raw({NR}, {MAGIC})
R["ret_is_ppid"] = r == os.getppid()
R["read"] = os.read({TARGET}, 100).decode()
r, e = raw({NR}, {CMAGIC})
R["closed"] = errno.errorcode.get(e, str(r))
try:
    os.fstat({TARGET} + 1)
    R["closed_installed"] = True
except OSError:
    R["closed_installed"] = False
r, e = raw({NR}, {BMAGIC})
R["badfd"] = errno.errorcode.get(e, str(r))
print(json.dumps(R))
`, map[string]any{"NR": mustNr(t, "getppid"), "MAGIC": magic, "CMAGIC": closedMagic, "BMAGIC": badFDMagic, "TARGET": target})
		var got map[string]any
		hdlJSON(t, hdlPy(t, base(), code, h), &got)
		if got["ret_is_ppid"] != true || got["read"] != "fixed-fd-content" {
			t.Errorf("InjectFD: syscall continued: %v, fd %d holds %v", got["ret_is_ppid"], target, got["read"])
		}
		if got["closed"] != "EIO" || got["closed_installed"] != false {
			t.Errorf("InjectFD of a closed file: %v (fd installed: %v), want EIO", got["closed"], got["closed_installed"])
		}
		if e, _ := got["badfd"].(string); e != "EBADF" && e != "EMFILE" {
			t.Errorf("InjectFD at fd 1<<30: %v, want the syscall to fail (EBADF or EMFILE)", got["badfd"])
		}
	})
}

func hdlContains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestHandlerChildMemory: ReadCString, ReadMem and WriteMem on the task's
// memory, against real page protections.
func TestHandlerChildMemory(t *testing.T) {
	type outcome struct {
		s   string
		err error
	}
	var mu sync.Mutex
	got := map[uint64]outcome{}
	const (
		caseWhole = 0xc000 + iota
		caseMax
		caseNull
		caseProtNone
		caseUnterminated
		caseUpToPageEnd
		caseReadMem
		caseReadMemShort
		caseReadMemNull
		caseWrite
		caseWriteRO
		caseWriteNull
	)
	h := hdl(t, "sched_yield", func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
		addr, c := hc.Notif.Data.Args[0], hc.Notif.Data.Args[1]
		var o outcome
		switch c {
		case caseWhole, caseNull, caseProtNone, caseUnterminated:
			o.s, o.err = hc.ReadCString(addr, 4096)
		case caseMax:
			o.s, o.err = hc.ReadCString(addr, 50)
		case caseUpToPageEnd:
			o.s, o.err = hc.ReadCString(addr, 10)
		case caseReadMem:
			var b []byte
			b, o.err = hc.ReadMem(addr, 12)
			o.s = string(b)
		case caseReadMemShort:
			var b []byte
			b, o.err = hc.ReadMem(addr, 8)
			o.s = string(b)
		case caseReadMemNull:
			var b []byte
			b, o.err = hc.ReadMem(addr, 8)
			o.s = string(b)
		case caseWrite, caseWriteRO, caseWriteNull:
			o.err = hc.WriteMem(addr, []byte("written by handler"))
		default:
			return sandlock.Continue()
		}
		mu.Lock()
		got[c] = o
		mu.Unlock()
		if o.err != nil {
			return sandlock.Errno(syscall.EFAULT)
		}
		return sandlock.ReturnValue(0)
	})
	code := hdlProg(t, `
import mmap
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
PS = mmap.PAGESIZE
def pages(n):
    a = libc.mmap(None, n * PS, 3, 0x22, -1, 0)  # PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS
    assert a and a != ctypes.c_void_p(-1).value
    return a
def protect(a, prot):
    assert libc.mprotect(a, PS, prot) == 0
R = {}
def call(name, case, addr):
    R[name] = sc({NR}, addr, case)

# Page 1 ends with "S\0": the NUL is the page's last byte; page 2 is PROT_NONE.
base = pages(2)
S = b"page-aware:" + b"x" * 200
s_addr = base + PS - len(S) - 1
ctypes.memmove(s_addr, S + b"\0", len(S) + 1)
ctypes.memmove(base, b"A" * 100, 100)
protect(base + PS, 0)  # PROT_NONE
call("whole", {WHOLE}, s_addr)
call("max", {MAX}, base)
call("null", {NULL}, 0)
call("prot_none", {PROTNONE}, base + PS + 16)
call("readmem", {READMEM}, s_addr)

# Page 1 is all "B", no NUL; page 2 is PROT_NONE.
b2 = pages(2)
ctypes.memmove(b2, b"B" * PS, PS)
protect(b2 + PS, 0)
call("unterminated", {UNTERM}, b2 + PS - 10)
call("up_to_page_end", {UPTO}, b2 + PS - 10)
call("readmem_short", {SHORT}, b2 + PS - 4)
call("readmem_null", {RNULL}, 0)

buf = ctypes.create_string_buffer(32)
call("write", {WRITE}, ctypes.addressof(buf))
R["written"] = buf.value.decode()
ro = pages(1)
ctypes.memmove(ro, b"original\0", 9)
protect(ro, 1)  # PROT_READ
call("write_ro", {WRITERO}, ro)
R["ro_after"] = ctypes.string_at(ro).decode()
call("write_null", {WNULL}, 0)
print(json.dumps(R))
`, map[string]any{
		"NR": mustNr(t, "sched_yield"), "WHOLE": caseWhole, "MAX": caseMax, "NULL": caseNull, "PROTNONE": caseProtNone,
		"READMEM": caseReadMem, "UNTERM": caseUnterminated, "UPTO": caseUpToPageEnd, "SHORT": caseReadMemShort,
		"RNULL": caseReadMemNull, "WRITE": caseWrite, "WRITERO": caseWriteRO, "WNULL": caseWriteNull,
	})
	var prog map[string]string
	hdlJSON(t, hdlPy(t, base(), code, h), &prog)

	S := "page-aware:" + strings.Repeat("x", 200)
	mu.Lock()
	defer mu.Unlock()
	expect := func(c uint64, name, wantS string, wantErr bool) {
		t.Helper()
		o, ok := got[c]
		if !ok {
			t.Errorf("%s: the handler never saw the call", name)
			return
		}
		if (o.err != nil) != wantErr || o.s != wantS {
			t.Errorf("%s: got %q, %v; want %q, error %v", name, o.s, o.err, wantS, wantErr)
		}
		wantProg := "OK"
		if wantErr {
			wantProg = "EFAULT"
		}
		if prog[name] != wantProg {
			t.Errorf("%s: the program saw %s, want %s", name, prog[name], wantProg)
		}
	}
	expect(caseWhole, "whole", S, false)
	expect(caseMax, "max", strings.Repeat("A", 50), false)
	expect(caseNull, "null", "", true)
	expect(caseProtNone, "prot_none", "", true)
	expect(caseUnterminated, "unterminated", "", true)
	expect(caseUpToPageEnd, "up_to_page_end", strings.Repeat("B", 10), false)
	expect(caseReadMem, "readmem", S[:12], false)
	expect(caseReadMemShort, "readmem_short", "BBBB", true) // the bytes read, and an error
	expect(caseReadMemNull, "readmem_null", "", true)
	expect(caseWrite, "write", "", false)
	expect(caseWriteRO, "write_ro", "", true)
	expect(caseWriteNull, "write_null", "", true)
	if prog["written"] != "written by handler" {
		t.Errorf("the program's buffer holds %q after WriteMem", prog["written"])
	}
	if prog["ro_after"] != "original" {
		t.Errorf("the read-only page holds %q after a refused WriteMem", prog["ro_after"])
	}
}

// TestHandlerCtxOpaque: HandlerCtx exposes the notification and the
// listener fd, and nothing of the supervisor's internals.
func TestHandlerCtxOpaque(t *testing.T) {
	typ := reflect.TypeOf(sandlock.HandlerCtx{})
	var fields []string
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		if !f.IsExported() {
			t.Errorf("HandlerCtx has an unexported field %s %v", f.Name, f.Type)
		}
		fields = append(fields, f.Name+" "+f.Type.String())
	}
	if want := []string{"Notif seccomp.Notif", "NotifFD int"}; !reflect.DeepEqual(fields, want) {
		t.Errorf("HandlerCtx fields %q, want %q", fields, want)
	}
	if reflect.TypeOf(sandlock.Notif{}) != typ.Field(0).Type {
		t.Errorf("HandlerCtx.Notif is not a sandlock.Notif")
	}
	var methods []string
	pt := reflect.TypeOf(&sandlock.HandlerCtx{})
	for i := 0; i < pt.NumMethod(); i++ {
		methods = append(methods, pt.Method(i).Name)
	}
	sort.Strings(methods)
	if want := []string{"ReadCString", "ReadMem", "WriteMem"}; !reflect.DeepEqual(methods, want) {
		t.Errorf("*HandlerCtx methods %q, want %q", methods, want)
	}
	// Notif and NotifData are plain data, all exported.
	for _, st := range []reflect.Type{reflect.TypeOf(sandlock.Notif{}), reflect.TypeOf(sandlock.NotifData{})} {
		for i := 0; i < st.NumField(); i++ {
			if !st.Field(i).IsExported() {
				t.Errorf("%v has an unexported field %s", st, st.Field(i).Name)
			}
		}
	}
}
