//go:build linux

package sandlock_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock"
)

// End-to-end tests of the resource limits and process knobs (issue 4):
// each limit holds, and work under it is unaffected.

// pyRun runs a Python program with arguments and returns the result,
// whatever its exit.
func pyRun(t *testing.T, sb *sandlock.Sandbox, code string, args ...string) *sandlock.Result {
	t.Helper()
	return run(t, sb, append([]string{python, "-c", code}, args...)...)
}

// pyOut runs a Python program with arguments and returns its stdout,
// trimmed, failing the test if it did not exit 0.
func pyOut(t *testing.T, sb *sandlock.Sandbox, code string, args ...string) string {
	t.Helper()
	res := pyRun(t, sb, code, args...)
	wantExit0(t, "python", res)
	return strings.TrimSpace(string(res.Stdout))
}

// withProc is base() with /proc readable.
func withProc() *sandlock.Sandbox {
	sb := base()
	sb.FSReadable = append(sb.FSReadable, "/proc")
	return sb
}

// wantExit0 fails the test unless the run exited 0.
func wantExit0(t *testing.T, what string, res *sandlock.Result) {
	t.Helper()
	if res.ExitCode != 0 {
		t.Fatalf("%s: exit %d (reason %v, signal %d)\nstdout: %s\nstderr: %s", what, res.ExitCode, res.Reason, res.Signal, res.Stdout, res.Stderr)
	}
}

// markerSeq makes markers unique within this test binary.
var markerSeq atomic.Int64

// procMarker returns an argument no other process on the machine has.
func procMarker() string {
	return fmt.Sprintf("sandlock-limit-marker-%d-%d-%d", os.Getpid(), time.Now().UnixNano(), markerSeq.Add(1))
}

// markedProcs counts the live processes (not zombies: their cmdline is
// empty) whose command line contains marker as a whole argument.
func markedProcs(marker string) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		for _, arg := range bytes.Split(b, []byte{0}) {
			if string(arg) == marker {
				n++
				break
			}
		}
	}
	return n
}

// ---- Processes ----

func TestLimitProcessesShellBackground(t *testing.T) {
	sb := base()
	sb.MaxProcesses = 5
	// The shell is one process; four sleeps fit, the fifth cannot fork.
	res := sh(t, sb, `i=0; while [ $i -lt 10 ]; do sleep 30 & i=$((i+1)); echo started $i; done; echo all started`)
	if !strings.Contains(string(res.Stderr), "Cannot fork") {
		t.Errorf("no fork failure reported: exit %d, stderr %q", res.ExitCode, res.Stderr)
	}
	if res.ExitCode == 0 || strings.Contains(string(res.Stdout), "all started") {
		t.Errorf("all ten background sleeps started under MaxProcesses 5: exit %d, stdout %q", res.ExitCode, res.Stdout)
	}
	if got := strings.Count(string(res.Stdout), "started "); got != 4 {
		t.Errorf("%d background sleeps started, want 4 (5 processes with the shell)\nstdout: %s", got, res.Stdout)
	}
}

func TestLimitProcessesShellUnderLimit(t *testing.T) {
	sb := base()
	sb.MaxProcesses = 5
	// Four at once (five with the shell): exactly at the limit, all work.
	res := sh(t, sb, `for i in 1 2 3 4; do sleep 0.3 & done; wait; echo done`)
	wantExit0(t, "four sleeps", res)
	if string(res.Stdout) != "done\n" || len(res.Stderr) != 0 {
		t.Errorf("stdout %q stderr %q", res.Stdout, res.Stderr)
	}
}

// forkUntilEAGAIN forks children that wait on a pipe until a fork fails,
// and prints how many it made and the error.
const forkUntilEAGAIN = `
import errno, os, sys
r, w = os.pipe()
kids = []
err = "none"
for i in range(int(sys.argv[1])):
    try:
        pid = os.fork()
    except OSError as e:
        err = type(e).__name__ + " " + errno.errorcode[e.errno]
        break
    if pid == 0:
        os.close(w)
        os.read(r, 1)
        os._exit(0)
    kids.append(pid)
os.close(w)
for pid in kids:
    os.waitpid(pid, 0)
print(len(kids), err)
`

func TestLimitProcessesPythonFork(t *testing.T) {
	sb := base()
	sb.MaxProcesses = 5
	if got := pyOut(t, sb, forkUntilEAGAIN, "100"); got != "4 BlockingIOError EAGAIN" {
		t.Errorf("MaxProcesses 5: %q, want 4 children then BlockingIOError EAGAIN", got)
	}
	// Under the limit: as many children as asked.
	if got := pyOut(t, sb, forkUntilEAGAIN, "4"); got != "4 none" {
		t.Errorf("MaxProcesses 5, 4 children: %q", got)
	}
}

func TestLimitProcessesDefault(t *testing.T) {
	// Without MaxProcesses the limit is 64: 63 children besides python.
	if got := pyOut(t, base(), forkUntilEAGAIN, "200"); got != "63 BlockingIOError EAGAIN" {
		t.Errorf("default limit: %q, want 63 children then EAGAIN", got)
	}
}

func TestLimitProcessesSubprocess(t *testing.T) {
	// subprocess starts programs with vfork or clone(CLONE_VM|CLONE_VFORK):
	// those count too.
	sb := base()
	sb.MaxProcesses = 2
	got := py(t, sb, `
import subprocess, time
p = subprocess.Popen(["/bin/sleep", "5"])
try:
    subprocess.run(["/bin/true"])
    print("second started")
except BlockingIOError as e:
    print("EAGAIN", e.errno)
p.kill(); p.wait()
r = subprocess.run(["/bin/echo", "after"], capture_output=True, text=True)
print(r.stdout.strip())
`)
	if got != "EAGAIN 11\nafter" {
		t.Errorf("subprocess beyond MaxProcesses 2: %q", got)
	}
}

func TestLimitProcessesThreadsDoNotCount(t *testing.T) {
	sb := base()
	sb.MaxProcesses = 2
	got := py(t, sb, `
import os, threading
n = 20
barrier = threading.Barrier(n + 1)
def work():
    barrier.wait()   # all 20 alive at once
    barrier.wait()
ts = [threading.Thread(target=work) for _ in range(n)]
for t in ts: t.start()
barrier.wait()
alive = threading.active_count()
# One process slot is still free, threads or not.
pid = os.fork()
if pid == 0:
    os._exit(7)
_, st = os.waitpid(pid, 0)
barrier.wait()
for t in ts: t.join()
print(alive, os.waitstatus_to_exitcode(st))
`)
	if got != "21 7" {
		t.Errorf("20 threads under MaxProcesses 2: %q, want 21 threads alive and a child that exited 7", got)
	}
}

func TestLimitProcessesSequentialReuse(t *testing.T) {
	sb := base()
	sb.MaxProcesses = 3
	res := sh(t, sb, `i=0; while [ $i -lt 200 ]; do /bin/true || exit 1; i=$((i+1)); done; echo $i`)
	wantExit0(t, "200 sequential children", res)
	if string(res.Stdout) != "200\n" {
		t.Errorf("stdout %q", res.Stdout)
	}
}

func TestLimitProcessesCountDropsOnReap(t *testing.T) {
	// 200 children, one at a time, each reaped once it has exited: a
	// process holds its pid until it is reaped, and frees its slot then.
	// (Unreaped zombies do fill the limit: escapes_limits_test.go.)
	sb := base()
	sb.MaxProcesses = 3
	got := py(t, sb, `
import os
made = 0
for i in range(200):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    made += 1
print(made)
`)
	if got != "200" {
		t.Errorf("200 reaped children under MaxProcesses 3: %q, want 200 made", got)
	}
}

func TestLimitProcessesForkBomb(t *testing.T) {
	const limit = 8
	sb := base()
	sb.MaxProcesses = limit
	marker := procMarker()

	var maxSeen, samples atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			n := int64(markedProcs(marker))
			samples.Add(1)
			for {
				m := maxSeen.Load()
				if n <= m || maxSeen.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	// The machine stays usable: the host starts programs while the bomb
	// runs.
	var hostRuns, hostFails atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := exec.Command("/bin/true").Run(); err != nil {
				hostFails.Add(1)
			} else {
				hostRuns.Add(1)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	res, err := sb.Run(ctx, python, "-c", `
import os
while True:
    try:
        os.fork()
    except BlockingIOError:
        pass
`, marker)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if res.Reason != sandlock.ReasonTimeout {
		t.Errorf("the fork bomb ended with reason %v (exit %d, signal %d), want the deadline\nstderr: %s", res.Reason, res.ExitCode, res.Signal, res.Stderr)
	}
	t.Logf("%d samples, at most %d processes, host started /bin/true %d times", samples.Load(), maxSeen.Load(), hostRuns.Load())
	if maxSeen.Load() > limit {
		t.Errorf("%d fork-bomb processes alive at once, limit %d", maxSeen.Load(), limit)
	}
	if maxSeen.Load() < 2 {
		t.Errorf("the fork bomb never forked (at most %d processes seen)", maxSeen.Load())
	}
	if hostFails.Load() > 0 || hostRuns.Load() == 0 {
		t.Errorf("the host could not start programs during the fork bomb: %d ok, %d failed", hostRuns.Load(), hostFails.Load())
	}
	// Nothing of the bomb survives the run.
	if n := markedProcs(marker); n != 0 {
		t.Errorf("%d fork-bomb processes left after the run", n)
	}
	if bytes.Contains(res.Stderr, []byte("Traceback")) {
		t.Errorf("the bomb saw an error other than EAGAIN:\n%s", res.Stderr)
	}
}

func TestLimitProcessesNoSupervisorIsAnError(t *testing.T) {
	sb := base()
	sb.NoSupervisor = true
	sb.MaxProcesses = 5
	_, err := sb.Run(ctxT(t), "/bin/true")
	if err == nil || !strings.Contains(err.Error(), "MaxProcesses") || !strings.Contains(err.Error(), "NoSupervisor") {
		t.Errorf("NoSupervisor with MaxProcesses: %v", err)
	}
	// Without the supervisor and no explicit limit, nothing counts.
	sb.MaxProcesses = 0
	res := sh(t, sb, `for i in $(seq 70); do sleep 0.5 & done; wait; echo ok`)
	wantExit0(t, "70 processes without the supervisor", res)
}

// ---- Memory ----

func memSandbox(size string) *sandlock.Sandbox {
	sb := base()
	sb.MaxMemory = size
	return sb
}

func wantMemoryKill(t *testing.T, what string, res *sandlock.Result) {
	t.Helper()
	if res.Reason != sandlock.ReasonMemoryLimit || res.Signal != -1 || res.ShellCode() != 128+int(unix.SIGKILL) || res.Success {
		t.Errorf("%s: reason %v, exit %d, signal %d; want killed by the memory limit\nstdout: %s\nstderr: %s",
			what, res.Reason, res.ExitCode, res.Signal, res.Stdout, res.Stderr)
	}
	if bytes.Contains(res.Stdout, []byte("alive")) {
		t.Errorf("%s: the program went on after the allocation: %s", what, res.Stdout)
	}
}

func TestLimitMemoryOverBudgetKilled(t *testing.T) {
	res := pyRun(t, memSandbox("64M"), `
b = bytearray(200 * 1024 * 1024)
print("alive")
`)
	wantMemoryKill(t, "bytearray(200M) under 64M", res)
}

func TestLimitMemoryUnderBudget(t *testing.T) {
	got := py(t, memSandbox("64M"), `
b = bytearray(20 * 1024 * 1024)
b[::4096] = b"x" * (len(b) // 4096)   # touch every page
print(len(b), b.count(b"x"))
`)
	if got != fmt.Sprint(20<<20, " ", 20<<20/4096) {
		t.Errorf("20M under 64M: %q", got)
	}
	// The same program, a size suffix in lower case.
	py(t, memSandbox("64m"), `b = bytearray(20 * 1024 * 1024)`)
}

func TestLimitMemoryChildKilledParentGoesOn(t *testing.T) {
	res := pyRun(t, memSandbox("64M"), `
import os, signal
pid = os.fork()
if pid == 0:
    b = bytearray(200 * 1024 * 1024)
    print("child alive", flush=True)
    os._exit(0)
_, st = os.waitpid(pid, 0)
print("child", "SIGKILL" if os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGKILL else st, flush=True)
# The dead child's memory is no longer counted: the parent has room.
b = bytearray(40 * 1024 * 1024)
print("parent ok")
`)
	wantExit0(t, "parent of a killed child", res)
	if res.Reason != sandlock.ReasonExited {
		t.Errorf("reason %v, want exited", res.Reason)
	}
	if got := string(res.Stdout); got != "child SIGKILL\nparent ok\n" {
		t.Errorf("stdout %q, want the child killed and the parent going on", got)
	}
}

// memfdMaps maps argv[1] memfds of argv[2] MB each, keeping them, and
// touches every page.
const memfdMaps = `
import mmap, os, sys
n, size = int(sys.argv[1]), int(sys.argv[2]) << 20
maps = []
for i in range(n):
    fd = os.memfd_create("sandlock-test")
    os.ftruncate(fd, size)
    m = mmap.mmap(fd, size)
    m[::4096] = b"x" * (size // 4096)
    maps.append(m)
    print("mapped", i, flush=True)
print("alive")
`

func TestLimitMemoryMemfdCounted(t *testing.T) {
	sb := memSandbox("64M")
	wantMemoryKill(t, "one 200M memfd under 64M", pyRun(t, sb, memfdMaps, "1", "200"))
	// Mappings add up: five of 30M are 150M.
	res := pyRun(t, sb, memfdMaps, "5", "30")
	wantMemoryKill(t, "five 30M memfds under 64M", res)
	if n := strings.Count(string(res.Stdout), "mapped"); n > 2 {
		t.Errorf("%d memfds of 30M mapped under 64M", n)
	}
	// MAP_SHARED|MAP_ANONYMOUS is the same memory by another name.
	res = pyRun(t, sb, `
import mmap
maps = []
for i in range(5):
    m = mmap.mmap(-1, 30 << 20, flags=mmap.MAP_SHARED)
    m[::4096] = b"x" * ((30 << 20) // 4096)
    maps.append(m)
print("alive")
`)
	wantMemoryKill(t, "five 30M shared anonymous mappings under 64M", res)
}

func TestLimitMemoryMemfdUnderBudget(t *testing.T) {
	got := pyOut(t, memSandbox("64M"), memfdMaps, "1", "30")
	if got != "mapped 0\nalive" {
		t.Errorf("one 30M memfd under 64M: %q", got)
	}
	// Unmapped, it no longer counts: map and unmap 30M twenty times.
	py(t, memSandbox("64M"), `
import mmap, os
for i in range(20):
    fd = os.memfd_create("sandlock-test")
    os.ftruncate(fd, 30 << 20)
    m = mmap.mmap(fd, 30 << 20)
    m[::4096] = b"x" * ((30 << 20) // 4096)
    m.close()
    os.close(fd)
`)
}

func TestLimitMemoryFreeAndReallocate(t *testing.T) {
	// 50 × 40M is 2G in all, never more than 40M at once: accounting that
	// leaked frees would kill this in the second round.
	got := py(t, memSandbox("64M"), `
for i in range(50):
    b = bytearray(40 * 1024 * 1024)
    b[::4096] = b"y" * (len(b) // 4096)
    del b
print("done")
`)
	if got != "done" {
		t.Errorf("stdout %q", got)
	}
}

func TestLimitMemoryBrk(t *testing.T) {
	// The heap grown with brk counts as soon as it is asked for.
	const sbrk = `
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.sbrk.restype = ctypes.c_void_p
libc.sbrk.argtypes = [ctypes.c_long]
size = int(sys.argv[1]) << 20
p = libc.sbrk(size)
if p is None or p == ctypes.c_void_p(-1).value:
    print("sbrk failed", ctypes.get_errno())
    sys.exit(1)
ctypes.memset(p, 1, size)
print("alive")
`
	wantMemoryKill(t, "sbrk(200M) under 64M", pyRun(t, memSandbox("64M"), sbrk, "200"))
	if got := pyOut(t, memSandbox("64M"), sbrk, "20"); got != "alive" {
		t.Errorf("sbrk(20M) under 64M: %q", got)
	}
	// Growing and shrinking the heap by 40M fifty times stays under 64M.
	got := pyOut(t, memSandbox("64M"), `
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.sbrk.restype = ctypes.c_void_p
libc.sbrk.argtypes = [ctypes.c_long]
for i in range(50):
    p = libc.sbrk(40 << 20)
    ctypes.memset(p, 1, 40 << 20)
    libc.sbrk(-(40 << 20))
print("done")
`)
	if got != "done" {
		t.Errorf("brk up and down: %q", got)
	}
}

func TestLimitMemoryReservationsAndThreads(t *testing.T) {
	// Address space reserved without access is not memory; malloc makes
	// such reservations for each thread's arena.
	got := py(t, memSandbox("64M"), `
import mmap, threading
r1 = mmap.mmap(-1, 1 << 30, flags=mmap.MAP_PRIVATE, prot=0)  # 1G reserved
r2 = mmap.mmap(-1, 1 << 30, flags=mmap.MAP_SHARED, prot=0)   # and 1G more
def work():
    xs = [bytearray(1000) for _ in range(1000)]
ts = [threading.Thread(target=work) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
print("ok")
`)
	if got != "ok" {
		t.Errorf("stdout %q", got)
	}
}

func TestLimitMemoryAfterExecStartsAfresh(t *testing.T) {
	// A program that allocated 40M and execs another that allocates 40M
	// stays under 64M: the first address space is gone.
	got := py(t, memSandbox("64M"), `
import os, sys
b = bytearray(40 * 1024 * 1024)
os.execv(sys.executable, [sys.executable, "-c", "b = bytearray(40 * 1024 * 1024); print('second ok')"])
`)
	if got != "second ok" {
		t.Errorf("stdout %q", got)
	}
}

func TestLimitMemoryInvalid(t *testing.T) {
	for _, v := range []string{"12X", "0", "0K", "-5", "1.5G", "64MiB", " 64M", "18446744073709551616", "17179869184G", "M"} {
		sb := memSandbox(v)
		res, err := sb.Run(ctxT(t), "/bin/echo", "ran")
		if err == nil {
			t.Errorf("MaxMemory %q: ran (stdout %q), want an error", v, res.Stdout)
			continue
		}
		if !strings.Contains(err.Error(), "MaxMemory") || !strings.Contains(err.Error(), strconv.Quote(v)) {
			t.Errorf("MaxMemory %q: error %q does not name the field and value", v, err)
		}
	}
	sb := memSandbox("64M")
	sb.NoSupervisor = true
	if _, err := sb.Run(ctxT(t), "/bin/true"); err == nil || !strings.Contains(err.Error(), "MaxMemory") || !strings.Contains(err.Error(), "NoSupervisor") {
		t.Errorf("NoSupervisor with MaxMemory: %v", err)
	}
}

// ---- Open files ----

// openUntilEMFILE opens /dev/null up to argv[1] times and prints how far
// it got: the error, and the highest descriptor it had.
const openUntilEMFILE = `
import errno, os, sys
fds = []
err = "none"
try:
    for i in range(int(sys.argv[1])):
        fds.append(os.open("/dev/null", os.O_RDONLY))
except OSError as e:
    err = errno.errorcode[e.errno]
print(err, max(fds))
`

func TestLimitOpenFiles(t *testing.T) {
	sb := base()
	sb.MaxOpenFiles = 50
	res := sh(t, sb, `ulimit -n; ulimit -Hn; ulimit -n 100 2>/dev/null && echo raised || echo cannot raise`)
	wantExit0(t, "ulimit", res)
	if string(res.Stdout) != "50\n50\ncannot raise\n" {
		t.Errorf("ulimit -n, -Hn, raise: %q, want 50, 50, cannot raise", res.Stdout)
	}
	// Descriptors are handed out lowest first: 0 to 49 fit, 50 does not.
	if got := pyOut(t, sb, openUntilEMFILE, "60"); got != "EMFILE 49" {
		t.Errorf("opening 60 files under 50: %q, want EMFILE after fd 49", got)
	}
}

func TestLimitOpenFilesUnderLimit(t *testing.T) {
	sb := base()
	sb.MaxOpenFiles = 50
	got := pyOut(t, sb, openUntilEMFILE, "40")
	if !strings.HasPrefix(got, "none ") {
		t.Errorf("opening 40 files under 50: %q", got)
	}
	// Without the field the caller's limit is inherited.
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	res := sh(t, base(), `ulimit -n`)
	if strings.TrimSpace(string(res.Stdout)) != strconv.FormatUint(rl.Cur, 10) {
		t.Errorf("inherited ulimit -n %q, want %d", res.Stdout, rl.Cur)
	}
}

func TestLimitOpenFilesClamped(t *testing.T) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	sb := base()
	sb.MaxOpenFiles = 1<<32 - 1
	res := sh(t, sb, `ulimit -n; ulimit -Hn`)
	wantExit0(t, "ulimit", res)
	want := fmt.Sprintf("%d\n%d\n", min(rl.Cur, rl.Max), min(rl.Cur, rl.Max))
	if string(res.Stdout) != want {
		t.Errorf("MaxOpenFiles 2^32-1 with sandlock's own limit %d/%d: %q, want %q", rl.Cur, rl.Max, res.Stdout, want)
	}
}

// ---- CPU ----

// cpuLoop burns argv[1] seconds of CPU time and prints the wall time and
// the CPU time it took.
const cpuLoop = `
import sys, time
# Time spent runnable but waiting for a CPU (other work on the machine),
# from /proc/self/schedstat; 0 where /proc is not readable.
def waited():
    try:
        with open("/proc/self/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except OSError:
        return 0.0
want = float(sys.argv[1])
w0, c0, q0 = time.monotonic(), time.process_time(), waited()
x = 0
while time.process_time() - c0 < want:
    for i in range(20000):
        x += i
print(time.monotonic() - w0, time.process_time() - c0, waited() - q0)
`

// cpuFigures parses cpuLoop's output: wall time / CPU time, and the share
// of the wall time the loop was neither running nor waiting for a CPU,
// that is stopped (by the throttle).
func cpuFigures(t *testing.T, out string) (ratio, stopped float64) {
	t.Helper()
	var wall, cpu, wait float64
	if _, err := fmt.Sscan(out, &wall, &cpu, &wait); err != nil || cpu <= 0 || wall <= 0 {
		t.Fatalf("cpu loop printed %q", out)
	}
	return wall / cpu, (wall - cpu - wait) / wall
}

// cpuRatio runs cpuLoop (with /proc readable) and returns its figures.
func cpuRatio(t *testing.T, sb *sandlock.Sandbox) (ratio, stopped float64) {
	t.Helper()
	sb.FSReadable = append(sb.FSReadable, "/proc")
	return cpuFigures(t, pyOut(t, sb, cpuLoop, "0.5"))
}

// The throttle holds the sandbox to its share of CPU time: other work on
// the machine may slow an unthrottled loop too, so the tests look at the
// share the throttled loop got (at most about a quarter of a core, however
// busy the machine) and at the time a loop spent stopped (none without a
// throttle, however busy the machine).

func TestLimitCPUThrottle(t *testing.T) {
	free, freeStopped := cpuRatio(t, base())
	sb := base()
	sb.MaxCPU = 25
	throttled, stopped := cpuRatio(t, sb)
	t.Logf("wall/cpu: unthrottled %.2f (stopped %.0f%%), at 25%% %.2f (stopped %.0f%%)", free, 100*freeStopped, throttled, 100*stopped)
	// At 25% the same CPU work takes about four times the wall time; ask
	// for three.
	if throttled < 3 {
		t.Errorf("at MaxCPU 25 the loop took %.2f× its CPU time in wall time, unthrottled %.2f×: want at least three times", throttled, free)
	}
	if freeStopped > 0.15 {
		t.Errorf("unthrottled, the loop was stopped %.0f%% of the time", 100*freeStopped)
	}
}

func TestLimitCPUHundredIsNoThrottle(t *testing.T) {
	sb := base()
	sb.MaxCPU = 25
	throttled, throttledStopped := cpuRatio(t, sb)
	sb = base()
	sb.MaxCPU = 100
	full, stopped := cpuRatio(t, sb)
	t.Logf("wall/cpu: at 100%% %.2f (stopped %.0f%%), at 25%% %.2f (stopped %.0f%%)", full, 100*stopped, throttled, 100*throttledStopped)
	if stopped > 0.15 {
		t.Errorf("at MaxCPU 100 the loop was stopped %.0f%% of the time (%.2f× its CPU time in wall time, at 25 %.2f×): 100 should not throttle", 100*stopped, full, throttled)
	}
}

func TestLimitCPUInvalid(t *testing.T) {
	for _, v := range []uint8{101, 200, 255} {
		sb := base()
		sb.MaxCPU = v
		_, err := sb.Run(ctxT(t), "/bin/echo", "ran")
		if err == nil || !strings.Contains(err.Error(), "MaxCPU") || !strings.Contains(err.Error(), strconv.Itoa(int(v))) {
			t.Errorf("MaxCPU %d: %v, want an error naming MaxCPU and the value", v, err)
		}
	}
}

// ---- Placement ----

// ownCPUs returns the CPUs this process may run on.
func ownCPUs(t *testing.T) []int {
	t.Helper()
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	var out []int
	for i := 0; i < len(set)*64; i++ {
		if set.IsSet(i) {
			out = append(out, i)
		}
	}
	return out
}

func cpusAllowed(t *testing.T, sb *sandlock.Sandbox) string {
	t.Helper()
	res := sh(t, sb, `grep Cpus_allowed_list /proc/self/status`)
	wantExit0(t, "Cpus_allowed_list", res)
	return strings.TrimSpace(strings.TrimPrefix(string(res.Stdout), "Cpus_allowed_list:"))
}

func TestLimitCPUCores(t *testing.T) {
	cpus := ownCPUs(t)
	last := cpus[len(cpus)-1]
	sb := withProc()
	sb.CPUCores = []uint32{uint32(last)}
	if got := cpusAllowed(t, sb); got != strconv.Itoa(last) {
		t.Errorf("CPUCores [%d]: Cpus_allowed_list %q", last, got)
	}
	// Children inherit the pinning.
	res := sh(t, sb, `sh -c 'grep Cpus_allowed_list /proc/self/status'`)
	if got := strings.TrimSpace(strings.TrimPrefix(string(res.Stdout), "Cpus_allowed_list:")); got != strconv.Itoa(last) {
		t.Errorf("CPUCores [%d], a child: %q", last, got)
	}
}

func TestLimitCPUCoresHold(t *testing.T) {
	// The program cannot move itself, a thread or a child off its CPUs; it
	// may narrow within them.
	cpus := ownCPUs(t)
	if len(cpus) < 2 {
		t.Fatalf("needs 2 CPUs, have %v", cpus)
	}
	first, last := cpus[0], cpus[len(cpus)-1]
	sb := withProc()
	sb.CPUCores = []uint32{uint32(last)}
	got := py(t, sb, fmt.Sprintf(`
import os, threading, subprocess
def tryset(pid, cpus):
    try:
        os.sched_setaffinity(pid, cpus)
        return "ok " + str(sorted(os.sched_getaffinity(pid)))
    except OSError as e:
        return "ERR %%d" %% e.errno
print(tryset(0, {%[1]d}))
print(tryset(0, {%[1]d, %[2]d}))
print(tryset(0, {%[2]d}))
out = []
t = threading.Thread(target=lambda: out.append(tryset(0, {%[1]d})))
t.start(); t.join(); print(out[0])
child = subprocess.Popen(["/bin/sleep", "5"])
print(tryset(child.pid, {%[1]d}))
child.kill(); child.wait()
`, first, last))
	want := fmt.Sprintf("ERR 22\nok [%[1]d]\nok [%[1]d]\nERR 22\nERR 22", last)
	if got != want {
		t.Errorf("pinned to %d: %q, want %q", last, got, want)
	}
	// Unpinned, the program may set its own affinity.
	got = py(t, withProc(), fmt.Sprintf(`
import os
os.sched_setaffinity(0, {%d})
print(sorted(os.sched_getaffinity(0)))`, first))
	if got != fmt.Sprintf("[%d]", first) {
		t.Errorf("unpinned sched_setaffinity: %q", got)
	}
}

func TestLimitNumCPUsWithinPin(t *testing.T) {
	cpus := ownCPUs(t)
	last := cpus[len(cpus)-1]
	sb := base()
	sb.CPUCores = []uint32{uint32(last)}
	sb.NumCPUs = 1
	if got := py(t, sb, "import os; print(sorted(os.sched_getaffinity(0)), os.cpu_count())"); got != fmt.Sprintf("[%d] 1", last) {
		t.Errorf("CPUCores [%d] NumCPUs 1: %q", last, got)
	}
	// NumCPUs above the pinned count reports the pinned CPUs.
	sb.NumCPUs = 4
	if got := py(t, sb, "import os; print(sorted(os.sched_getaffinity(0)))"); got != fmt.Sprintf("[%d]", last) {
		t.Errorf("CPUCores [%d] NumCPUs 4: %q", last, got)
	}
}

func TestLimitCPUCoresUnpinned(t *testing.T) {
	// Without CPUCores the program may use every CPU the caller may.
	own, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	var want string
	for _, l := range strings.Split(string(own), "\n") {
		if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
			want = strings.TrimSpace(v)
		}
	}
	if got := cpusAllowed(t, withProc()); got != want {
		t.Errorf("unpinned: %q, want the caller's %q", got, want)
	}
	cpus := ownCPUs(t)
	if len(cpus) > 1 {
		sb := withProc()
		for _, c := range cpus {
			sb.CPUCores = append(sb.CPUCores, uint32(c))
		}
		if got := cpusAllowed(t, sb); got != want {
			t.Errorf("pinned to every CPU: %q, want %q", got, want)
		}
	}
}

func TestLimitCPUCoresInvalid(t *testing.T) {
	for _, cores := range [][]uint32{{999}, {0, 999}, {1 << 20}} {
		sb := base()
		sb.CPUCores = cores
		_, err := sb.Run(ctxT(t), "/bin/echo", "ran")
		if err == nil || !strings.Contains(err.Error(), "CPUCores") || !strings.Contains(err.Error(), "not available") {
			t.Errorf("CPUCores %v: %v", cores, err)
		}
		if err != nil && strings.Contains(err.Error(), "[") {
			t.Errorf("CPUCores %v: the error shows a Go slice: %v", cores, err)
		}
	}
}

func TestLimitNumCPUs(t *testing.T) {
	sb := base()
	sb.NumCPUs = 1
	res := run(t, sb, "nproc")
	wantExit0(t, "nproc", res)
	if string(res.Stdout) != "1\n" {
		t.Errorf("NumCPUs 1: nproc %q", res.Stdout)
	}
	sb.NumCPUs = 3
	got := py(t, sb, errnoProbe+`
print(sorted(os.sched_getaffinity(0)))
buf = ctypes.create_string_buffer(64)
libc.sched_getaffinity.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_void_p]
for n in (8, 4, 12, 64):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(204), ctypes.c_long(0), ctypes.c_long(n), buf)
    print(n, r if r >= 0 else errno.errorcode[ctypes.get_errno()], buf.raw[0])
`)
	want := "[0, 1, 2]\n8 8 7\n4 EINVAL 7\n12 EINVAL 7\n64 8 7"
	if got != want {
		t.Errorf("NumCPUs 3: %q, want %q", got, want)
	}
}

func TestLimitNumCPUsUnset(t *testing.T) {
	res := run(t, base(), "nproc")
	if want := strconv.Itoa(len(ownCPUs(t))) + "\n"; string(res.Stdout) != want {
		t.Errorf("without NumCPUs: nproc %q, want %q", res.Stdout, want)
	}
}

func TestLimitNumCPUsNoSupervisorIsAnError(t *testing.T) {
	sb := base()
	sb.NoSupervisor = true
	sb.NumCPUs = 1
	if _, err := sb.Run(ctxT(t), "nproc"); err == nil || !strings.Contains(err.Error(), "NumCPUs") {
		t.Errorf("NoSupervisor with NumCPUs: %v", err)
	}
}

// ---- GPU ----

func gpuEnv(t *testing.T, sb *sandlock.Sandbox) string {
	t.Helper()
	res := sh(t, sb, `echo "cuda=${CUDA_VISIBLE_DEVICES-unset} rocr=${ROCR_VISIBLE_DEVICES-unset}"`)
	wantExit0(t, "env", res)
	return strings.TrimSpace(string(res.Stdout))
}

func TestLimitGPU(t *testing.T) {
	// No GPU on the machine: selecting all grants nothing, sets nothing,
	// and the run works.
	sb := base()
	sb.CleanEnv = true
	if got := gpuEnv(t, sb); got != "cuda=unset rocr=unset" {
		t.Errorf("no GPUDevices: %q", got)
	}
	sb.GPUDevices = []uint32{}
	if got := gpuEnv(t, sb); got != "cuda=unset rocr=unset" {
		t.Errorf("GPUDevices all: %q", got)
	}
	sb.GPUDevices = []uint32{2, 0}
	if got := gpuEnv(t, sb); got != "cuda=0,2 rocr=0,2" {
		t.Errorf("GPUDevices [2 0]: %q", got)
	}
	// Env wins over what the selection sets.
	sb.Env = map[string]string{"CUDA_VISIBLE_DEVICES": "1"}
	if got := gpuEnv(t, sb); got != "cuda=1 rocr=0,2" {
		t.Errorf("GPUDevices [2 0] with Env: %q", got)
	}
}

func TestLimitGPUGrantsNothingElse(t *testing.T) {
	// A fake device: a file named like one, outside every grant. It is not
	// openable without the GPU selection nor with it (GPU grants are for
	// the real device nodes), and neither is any other device outside the
	// default ones (/dev/ptmx here).
	dir := tempDir(t)
	fake := filepath.Join(dir, "nvidia0")
	if err := os.WriteFile(fake, []byte("gpu"), 0o666); err != nil {
		t.Fatal(err)
	}
	for _, sel := range [][]uint32{nil, {}, {0}} {
		sb := base()
		sb.GPUDevices = sel
		got := pyOut(t, sb, `
import sys
for p in sys.argv[1:]:
    try:
        open(p, "rb").close()
        print(p, "open")
    except OSError as e:
        print(p, type(e).__name__)
`, fake, "/dev/ptmx", "/dev/nvidia0")
		// (/dev/nvidia0 does not exist here: not found, or denied.)
		got = strings.Replace(got, "/dev/nvidia0 FileNotFoundError", "/dev/nvidia0 PermissionError", 1)
		want := fake + " PermissionError\n/dev/ptmx PermissionError\n/dev/nvidia0 PermissionError"
		if got != want {
			t.Errorf("GPUDevices %v: %q, want %q", sel, got, want)
		}
	}
}

// ---- Process knobs ----

// limitsLine returns the soft and hard values of a /proc/self/limits row.
func limitsLine(t *testing.T, sb *sandlock.Sandbox, row string) string {
	t.Helper()
	res := run(t, sb, "/bin/grep", row, "/proc/self/limits")
	wantExit0(t, "limits", res)
	f := strings.Fields(strings.TrimPrefix(string(res.Stdout), row))
	if len(f) < 2 {
		t.Fatalf("limits row %q", res.Stdout)
	}
	return f[0] + " " + f[1]
}

// withCoreLimit gives the test process a non-zero soft core limit for the
// test, so that a sandbox has one to inherit (the default may be 0), and
// returns the soft and hard limits as /proc/self/limits shows them. Only
// the soft limit changes: lowering the hard limit could not be undone.
func withCoreLimit(t *testing.T) (soft, hard string) {
	t.Helper()
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CORE, &old); err != nil {
		t.Fatal(err)
	}
	if old.Max == 0 {
		t.Fatal("the hard RLIMIT_CORE of the test is 0: no core limit to give the sandbox")
	}
	lim := unix.Rlimit{Cur: min(1<<20, old.Max), Max: old.Max}
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &lim); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Setrlimit(unix.RLIMIT_CORE, &old) })
	show := func(v uint64) string {
		if v == unix.RLIM_INFINITY {
			return "unlimited"
		}
		return strconv.FormatUint(v, 10)
	}
	return show(lim.Cur), show(lim.Max)
}

func TestLimitNoCoredump(t *testing.T) {
	soft, hard := withCoreLimit(t)
	sb := withProc()
	if got := limitsLine(t, sb, "Max core file size"); got != soft+" "+hard {
		t.Errorf("without NoCoredump: core limit %q, want the caller's", got)
	}
	sb.NoCoredump = true
	if got := limitsLine(t, sb, "Max core file size"); got != "0 0" {
		t.Errorf("NoCoredump: core limit %q, want 0 0", got)
	}
	res := sh(t, sb, `ulimit -c; ulimit -c 100 2>/dev/null && echo raised || echo cannot raise`)
	if string(res.Stdout) != "0\ncannot raise\n" {
		t.Errorf("NoCoredump: ulimit -c %q", res.Stdout)
	}
}

func TestLimitNoHugePages(t *testing.T) {
	grepTHP := func(sb *sandlock.Sandbox) string {
		res := sh(t, sb, `grep THP_enabled /proc/self/status`)
		wantExit0(t, "THP_enabled", res)
		return strings.Join(strings.Fields(string(res.Stdout)), " ")
	}
	sb := withProc()
	if got := grepTHP(sb); got != "THP_enabled: 1" {
		t.Errorf("without NoHugePages: %q", got)
	}
	sb.NoHugePages = true
	if got := grepTHP(sb); got != "THP_enabled: 0" {
		t.Errorf("NoHugePages: %q", got)
	}
}

// layout prints where a Python process's heap, stack and first object are.
const layout = `
for l in open("/proc/self/maps"):
    if l.rstrip().endswith(("[heap]", "[stack]")):
        print(l.split()[0], l.split()[-1])
print(hex(id(object())))
print(open("/proc/self/personality").read().strip())
`

func TestLimitNoRandomizeMemory(t *testing.T) {
	sb := withProc()
	sb.NoRandomizeMemory = true
	sb.Env = map[string]string{"PYTHONHASHSEED": "0"}
	a, b := py(t, sb, layout), py(t, sb, layout)
	if !strings.HasSuffix(a, "\n00040000") {
		t.Errorf("personality is not ADDR_NO_RANDOMIZE:\n%s", a)
	}
	if a != b {
		t.Errorf("two runs with NoRandomizeMemory differ:\n%s\n--\n%s", a, b)
	}
	// Children inherit it.
	if got := sh(t, sb, `cat /proc/self/personality`); string(got.Stdout) != "00040000\n" {
		t.Errorf("a child's personality: %q", got.Stdout)
	}
}

func TestLimitRandomizedByDefault(t *testing.T) {
	sb := withProc()
	sb.Env = map[string]string{"PYTHONHASHSEED": "0"}
	a, b := py(t, sb, layout), py(t, sb, layout)
	if !strings.HasSuffix(a, "\n00000000") {
		t.Errorf("personality:\n%s", a)
	}
	if a == b {
		t.Errorf("two runs without NoRandomizeMemory have the same layout:\n%s", a)
	}
}

func TestLimitKnobsWithoutSupervisor(t *testing.T) {
	// The knobs and the open-files limit are the child's own settings:
	// they need no supervisor.
	sb := withProc()
	sb.NoSupervisor = true
	sb.NoCoredump, sb.NoHugePages, sb.NoRandomizeMemory = true, true, true
	sb.MaxOpenFiles = 40
	cpus := ownCPUs(t)
	sb.CPUCores = []uint32{uint32(cpus[0])}
	res := sh(t, sb, `ulimit -c; ulimit -n; cat /proc/self/personality; grep -E 'THP_enabled|Cpus_allowed_list' /proc/self/status`)
	wantExit0(t, "knobs", res)
	got := strings.Join(strings.Fields(string(res.Stdout)), " ")
	want := fmt.Sprintf("0 40 00040000 THP_enabled: 0 Cpus_allowed_list: %d", cpus[0])
	if got != want {
		t.Errorf("knobs without the supervisor: %q, want %q", got, want)
	}
}

// ---- Validation ----

func TestLimitValidationErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		set   func(*sandlock.Sandbox)
		field string
	}{
		{"MaxMemory 12X", func(s *sandlock.Sandbox) { s.MaxMemory = "12X" }, "MaxMemory"},
		{"MaxMemory 0", func(s *sandlock.Sandbox) { s.MaxMemory = "0" }, "MaxMemory"},
		{"MaxMemory -5", func(s *sandlock.Sandbox) { s.MaxMemory = "-5" }, "MaxMemory"},
		{"MaxCPU 101", func(s *sandlock.Sandbox) { s.MaxCPU = 101 }, "MaxCPU"},
		{"CPUCores 999", func(s *sandlock.Sandbox) { s.CPUCores = []uint32{999} }, "CPUCores"},
		{"NoSupervisor MaxMemory", func(s *sandlock.Sandbox) { s.NoSupervisor = true; s.MaxMemory = "64M" }, "MaxMemory"},
		{"NoSupervisor MaxProcesses", func(s *sandlock.Sandbox) { s.NoSupervisor = true; s.MaxProcesses = 3 }, "MaxProcesses"},
		{"NoSupervisor NumCPUs", func(s *sandlock.Sandbox) { s.NoSupervisor = true; s.NumCPUs = 1 }, "NumCPUs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tempDir(t)
			sb := base()
			sb.FSWritable = []string{dir}
			tc.set(sb)
			mark := filepath.Join(dir, "ran")
			_, err := sb.Run(ctxT(t), "/bin/touch", mark)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), "sandlock: "+tc.field) {
				t.Errorf("error %q does not start with the field %s", err, tc.field)
			}
			if strings.Count(err.Error(), "\n") != 0 {
				t.Errorf("error %q spans lines", err)
			}
			if _, serr := os.Stat(mark); !errors.Is(serr, os.ErrNotExist) {
				t.Errorf("the program ran despite the error")
			}
			// Spawn and Popen refuse it the same way.
			if p, err := sb.Spawn("/bin/touch", mark); err == nil {
				p.Wait()
				t.Errorf("Spawn accepted it")
			}
		})
	}
}
