//go:build linux

package sandlock_test

// Tests of the exec stop (issue 13 item 4): a hook registered through the
// test-only session hook (export_test.go) sees every new image before its
// first instruction; the tracer's books stay exact across an exec from a
// non-leader thread; signals sent during the stop are delivered once; a
// hook can kill before anything runs; no hook, no stop.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock"
	"github.com/sandlock-go/sandlock/internal/session"
	"github.com/sandlock-go/sandlock/internal/tracer"
)

// execHook runs f at every exec stop of sb's runs, and returns the session
// of the last run (nil before one started).
func execHook(t *testing.T, sb *sandlock.Sandbox, f func(st *tracer.ExecStop)) func() *session.Session {
	t.Helper()
	var mu sync.Mutex
	var last *session.Session
	remove := sandlock.WithTestSession(sb, func(sess *session.Session) {
		mu.Lock()
		last = sess
		mu.Unlock()
		if f != nil {
			sess.OnExec(f)
		}
	})
	t.Cleanup(remove)
	return func() *session.Session {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}

// sameFile reports whether fd is the file at path. (Hooks run on the
// tracer's thread, where a test must not call t.Fatal.)
func sameFile(fd int, path string) bool {
	var a, b unix.Stat_t
	if unix.Fstat(fd, &a) != nil || unix.Stat(path, &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// seen is what a hook saw at one exec stop.
type seen struct {
	pid, former int
	exe         string // the host path of the image's file, if it was one of the expected ones
}

// TestExecStopSuccess: at the program's own exec and at a later one, the
// hook sees the new image: its pid, its file (Exe), its auxiliary vector
// (AT_RANDOM, AT_SYSINFO_EHDR), its registers (the stack pointer at argc)
// and its memory; it can read the vDSO's ELF header and write into the
// vDSO, which is read-only for the program, and rewrite the AT_RANDOM
// bytes the program then reads.
func TestExecStopSuccess(t *testing.T) {
	sb := base()
	sb.FSReadable = append(sb.FSReadable, "/proc")
	random := []byte("sandlock-random!") // 16 bytes
	var mu sync.Mutex
	var stops []seen
	var failures []string
	fail := func(format string, args ...any) {
		failures = append(failures, fmt.Sprintf(format, args...))
	}
	execHook(t, sb, func(st *tracer.ExecStop) {
		mu.Lock()
		defer mu.Unlock()
		s := seen{pid: st.PID(), former: st.FormerTID()}
		fd, err := st.Exe()
		if err != nil {
			fail("Exe: %v", err)
			return
		}
		defer unix.Close(fd)
		for _, p := range []string{"/bin/sh", python} {
			if sameFile(fd, p) {
				s.exe = p
			}
		}
		stops = append(stops, s)
		auxv, err := st.Auxv()
		if err != nil {
			fail("Auxv: %v", err)
			return
		}
		vdso, ok := auxv.Get(tracer.AtSysinfoEhdr)
		if !ok || vdso == 0 {
			fail("no AT_SYSINFO_EHDR in %v", auxv)
			return
		}
		rnd, ok := auxv.Get(tracer.AtRandom)
		if !ok || rnd == 0 {
			fail("no AT_RANDOM in %v", auxv)
			return
		}
		hdr := make([]byte, 16)
		if err := st.ReadMem(vdso, hdr); err != nil {
			fail("ReadMem(vdso): %v", err)
			return
		}
		if string(hdr[:4]) != "\x7fELF" {
			fail("the vDSO starts with %q, not an ELF header", hdr[:4])
		}
		// e_ident's padding (bytes 9–15) is unused: write, read back.
		if err := st.WriteMem(vdso+9, []byte("sndlck")); err != nil {
			fail("WriteMem(vdso): %v", err)
			return
		}
		if err := st.ReadMem(vdso, hdr); err != nil || string(hdr[9:15]) != "sndlck" {
			fail("the vDSO reads %q after the write (%v)", hdr, err)
		}
		// The registers: the stack pointer points at argc.
		regs, err := st.Regs()
		if err != nil {
			fail("Regs: %v", err)
			return
		}
		pc, sp := pcSP(regs)
		argc := make([]byte, 8)
		if err := st.ReadMem(sp, argc); err != nil {
			fail("ReadMem(sp): %v", err)
			return
		}
		want := map[string]uint64{"/bin/sh": 5, python: 3}[s.exe]
		if n := binary.NativeEndian.Uint64(argc); n != want {
			fail("%s: argc at the stack pointer is %d, want %d", s.exe, n, want)
		}
		entry, _ := auxv.Get(tracer.AtEntry)
		interp, _ := auxv.Get(tracer.AtBase)
		if interp == 0 && pc != entry || interp != 0 && (pc == entry || pc < interp) {
			fail("%s: pc %#x, entry %#x, interpreter at %#x", s.exe, pc, entry, interp)
		}
		if err := st.SetRegs(regs); err != nil {
			fail("SetRegs: %v", err)
		}
		if s.exe == python {
			if err := st.WriteMem(rnd, random); err != nil {
				fail("WriteMem(AT_RANDOM): %v", err)
			}
		}
	})
	code := `import ctypes
libc = ctypes.CDLL(None)
libc.getauxval.restype = ctypes.c_ulong
libc.getauxval.argtypes = [ctypes.c_ulong]
print(ctypes.string_at(libc.getauxval(25), 16).decode())
maps = open("/proc/self/maps").read()
print([l.split()[1] for l in maps.splitlines() if l.endswith("[vdso]")][0])
`
	res := run(t, sb, "/bin/sh", "-c", `echo $$; exec "$0" -c "$1"`, python, code)
	mu.Lock()
	defer mu.Unlock()
	if res.ExitCode != 0 {
		t.Fatalf("exit %d, stderr %s", res.ExitCode, res.Stderr)
	}
	for _, f := range failures {
		t.Error(f)
	}
	lines := strings.Split(strings.TrimSpace(string(res.Stdout)), "\n")
	if len(lines) != 3 {
		t.Fatalf("output %q", res.Stdout)
	}
	pid, _ := strconv.Atoi(lines[0])
	want := []seen{{pid: pid, former: pid, exe: "/bin/sh"}, {pid: pid, former: pid, exe: python}}
	if !slices.Equal(stops, want) {
		t.Errorf("stops %+v, want %+v", stops, want)
	}
	if lines[1] != string(random) {
		t.Errorf("the program read AT_RANDOM bytes %q, want the hook's %q", lines[1], random)
	}
	// Written by the tracer, still not writable by the program.
	if lines[2] != "r-xp" {
		t.Errorf("the vDSO is mapped %s for the program, want r-xp", lines[2])
	}
}

// TestExecStopAfterHook: the handle is unusable once the hook returned.
func TestExecStopAfterHook(t *testing.T) {
	sb := base()
	var kept *tracer.ExecStop
	execHook(t, sb, func(st *tracer.ExecStop) { kept = st })
	res := run(t, sb, "/bin/true")
	if res.ExitCode != 0 || kept == nil {
		t.Fatalf("exit %d, stop %v", res.ExitCode, kept)
	}
	if _, err := kept.Regs(); err != tracer.ErrStopOver {
		t.Errorf("Regs after the hook: %v, want ErrStopOver", err)
	}
	if err := kept.ReadMem(0x1000, make([]byte, 1)); err != tracer.ErrStopOver {
		t.Errorf("ReadMem after the hook: %v, want ErrStopOver", err)
	}
	if _, err := kept.Exe(); err != tracer.ErrStopOver {
		t.Errorf("Exe after the hook: %v, want ErrStopOver", err)
	}
}

// execvpSrc runs argv[1] through execvp(3) with PATH=argv[2]: glibc tries
// each entry of PATH in turn, and each missing one is an execve failing
// with ENOENT.
const execvpSrc = `#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
	setenv("PATH", argv[2], 1);
	execvp(argv[1], &argv[1]);
	perror("execvp");
	return 127;
}
`

// TestExecStopExecvpWalk: an execvp through missing PATH entries makes
// several execve calls; only the one that succeeded stops.
func TestExecStopExecvpWalk(t *testing.T) {
	prog := cProgram(t, "execvp", execvpSrc)
	sb := base()
	sb.FSReadable = append(sb.FSReadable, filepath.Dir(prog))
	var mu sync.Mutex
	var exes []string
	ses := execHook(t, sb, func(st *tracer.ExecStop) {
		fd, err := st.Exe()
		if err != nil {
			t.Errorf("Exe: %v", err)
			return
		}
		defer unix.Close(fd)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case sameFile(fd, prog):
			exes = append(exes, "execvp")
		case sameFile(fd, "/bin/true"):
			exes = append(exes, "true")
		default:
			exes = append(exes, "other")
		}
	})
	res := run(t, sb, prog, "true", "/no/such/dir:/also/missing:/nor/this:/bin")
	if res.ExitCode != 0 {
		t.Fatalf("exit %d: %s", res.ExitCode, res.Stderr)
	}
	mu.Lock()
	if want := []string{"execvp", "true"}; !slices.Equal(exes, want) {
		t.Errorf("exec stops saw %q, want %q", exes, want)
	}
	mu.Unlock()
	if n := ses().ExecStops(); n != 2 {
		t.Errorf("%d exec stops, want 2", n)
	}
	// And when every entry is missing: the program's own exec only.
	res = run(t, sb, prog, "true", "/no/such/dir:/also/missing")
	if res.ExitCode != 127 || !strings.Contains(string(res.Stderr), "No such file") {
		t.Fatalf("exit %d: %s", res.ExitCode, res.Stderr)
	}
	if n := ses().ExecStops(); n != 1 {
		t.Errorf("%d exec stops for a walk that found nothing, want 1", n)
	}
}

// threadForkSrc: a thread other than the main one forks a child that
// execs argv[1] (as Go's os/exec does from whatever thread it runs on),
// and waits for it.
const threadForkSrc = `#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>
static char **args;
static void *run(void *a) {
	int st;
	pid_t pid = fork();
	if (pid == 0) {
		execv(args[1], &args[1]);
		_exit(127);
	}
	waitpid(pid, &st, 0);
	return (void *)(long)(!WIFEXITED(st) || WEXITSTATUS(st));
}
int main(int argc, char **argv) {
	pthread_t t;
	void *bad;
	args = argv;
	pthread_create(&t, NULL, run, NULL);
	pthread_join(t, &bad);
	return bad != NULL;
}
`

// TestExecStopCount: without a hook no exec takes a stop (the child stage
// even keeps its vfork mode), not even that of a process forked by a
// non-leader thread (which the tracer traces with PTRACE_O_TRACEEXEC);
// with one, each exec takes exactly one.
func TestExecStopCount(t *testing.T) {
	script := `/bin/true; /bin/true; exec /bin/true`
	sb := base()
	ses := execHook(t, sb, nil)
	if res := sh(t, sb, script); res.ExitCode != 0 {
		t.Fatalf("exit %d: %s", res.ExitCode, res.Stderr)
	}
	if n := ses().ExecStops(); n != 0 {
		t.Errorf("without a hook: %d exec stops, want 0", n)
	}
	prog := cProgram(t, "threadfork", threadForkSrc)
	sb.FSReadable = append(sb.FSReadable, filepath.Dir(prog))
	if res := run(t, sb, prog, "/bin/true"); res.ExitCode != 0 {
		t.Fatalf("exit %d: %s", res.ExitCode, res.Stderr)
	}
	if n := ses().ExecStops(); n != 0 {
		t.Errorf("without a hook, a child forked by a thread: %d exec stops, want 0", n)
	}
	var hooked int
	sb = base()
	ses = execHook(t, sb, func(*tracer.ExecStop) { hooked++ })
	if res := sh(t, sb, script); res.ExitCode != 0 {
		t.Fatalf("exit %d: %s", res.ExitCode, res.Stderr)
	}
	if n := ses().ExecStops(); n != 4 || hooked != 4 {
		t.Errorf("with a hook: %d exec stops and %d calls, want 4 (sh and three trues)", n, hooked)
	}
}

// vforkExecSrc starts argv[1] with vfork+exec and with posix_spawn (glibc:
// clone(CLONE_VM|CLONE_VFORK)), printing each child's pid, and waits.
const vforkExecSrc = `#include <spawn.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
extern char **environ;
int main(int argc, char **argv) {
	int st, bad = 0;
	pid_t pid = vfork();
	if (pid == 0) {
		execv(argv[1], &argv[1]);
		_exit(127);
	}
	printf("%d\n", pid);
	waitpid(pid, &st, 0);
	bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	if (posix_spawn(&pid, argv[1], NULL, NULL, &argv[1], environ) != 0)
		return 2;
	printf("%d\n", pid);
	waitpid(pid, &st, 0);
	bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	return bad;
}
`

// TestExecStopVfork: children created with vfork (which share the
// parent's memory until they exec) stop at their exec like any other,
// and the parent goes on once they have.
func TestExecStopVfork(t *testing.T) {
	prog := cProgram(t, "vforkexec", vforkExecSrc)
	sb := base()
	sb.FSReadable = append(sb.FSReadable, filepath.Dir(prog))
	var mu sync.Mutex
	var pids []int
	execHook(t, sb, func(st *tracer.ExecStop) {
		fd, err := st.Exe()
		if err != nil {
			t.Errorf("Exe: %v", err)
			return
		}
		defer unix.Close(fd)
		if sameFile(fd, "/bin/true") {
			mu.Lock()
			pids = append(pids, st.PID())
			mu.Unlock()
		}
	})
	res := run(t, sb, prog, "/bin/true")
	if res.ExitCode != 0 {
		t.Fatalf("exit %d: %s", res.ExitCode, res.Stderr)
	}
	var printed []int
	for _, f := range strings.Fields(string(res.Stdout)) {
		n, _ := strconv.Atoi(f)
		printed = append(printed, n)
	}
	mu.Lock()
	if len(printed) != 2 || !slices.Equal(pids, printed) {
		t.Errorf("exec stops of /bin/true in %v, children %v", pids, printed)
	}
	mu.Unlock()
	// make runs its recipes through vfork'ed or posix_spawn'ed shells.
	dir := tempDir(t)
	os.WriteFile(filepath.Join(dir, "Makefile"), []byte("all:\n\t/bin/true\n\techo made > out\n"), 0o644)
	sb.FSWritable = []string{dir}
	sb.Cwd = dir
	if res := run(t, sb, "make", "-s"); res.ExitCode != 0 {
		t.Fatalf("make: exit %d: %s", res.ExitCode, res.Stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "out")); string(b) != "made\n" {
		t.Errorf("make wrote %q", b)
	}
}

// threadExecSrc: a thread other than the main one prints its tid and the
// pid, then execs argv[1…]; the main thread waits forever (the exec ends
// it).
const threadExecSrc = `#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
static char **args;
static void *run(void *a) {
	printf("tid %ld pid %d\n", (long)syscall(SYS_gettid), getpid());
	fflush(stdout);
	execv(args[1], &args[1]);
	perror("execv");
	_exit(127);
}
int main(int argc, char **argv) {
	pthread_t t;
	args = argv;
	pthread_create(&t, NULL, run, NULL);
	for (;;)
		pause();
}
`

// TestExecFromThread: an exec from a thread that is not the leader gives
// that thread the leader's tid; its own tid disappears without an exit
// report. The hook sees FormerTID ≠ PID, and the books stay exact — the
// former tid is no longer the sandbox's (a pid the kernel may give to any
// process), the process is still one — with a hook and without.
func TestExecFromThread(t *testing.T) {
	prog := cProgram(t, "threadexec", threadExecSrc)
	for _, hooked := range []bool{true, false} {
		t.Run(fmt.Sprintf("hook=%v", hooked), func(t *testing.T) {
			sb := base()
			sb.FSReadable = append(sb.FSReadable, filepath.Dir(prog))
			var mu sync.Mutex
			var stops []seen
			var inHook []string
			var hook func(st *tracer.ExecStop)
			var ses func() *session.Session
			if hooked {
				hook = func(st *tracer.ExecStop) {
					mu.Lock()
					defer mu.Unlock()
					stops = append(stops, seen{pid: st.PID(), former: st.FormerTID()})
					if st.FormerTID() != st.PID() {
						// Already forgotten when the hook runs.
						sess := ses()
						inHook = append(inHook, fmt.Sprint(sess.Traced(st.PID()), sess.Traced(st.FormerTID())))
					}
				}
			}
			ses = execHook(t, sb, hook)
			proc, err := sb.Popen(sandlock.Stdio{Stdin: sandlock.StdioPiped, Stdout: sandlock.StdioPiped, Stderr: sandlock.StdioInherit},
				prog, "/bin/sh", "-c", `echo ready $$; read x; echo done`)
			if err != nil {
				t.Fatal(err)
			}
			defer proc.Close()
			out := bufio.NewReader(proc.Stdout)
			var tid, pid, shPid int
			line, _ := out.ReadString('\n')
			if _, err := fmt.Sscanf(line, "tid %d pid %d", &tid, &pid); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			line, _ = out.ReadString('\n')
			if _, err := fmt.Sscanf(line, "ready %d", &shPid); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			if tid == pid || shPid != pid || pid != proc.Pid() {
				t.Fatalf("thread %d of %d execs a shell %d; root %d", tid, pid, shPid, proc.Pid())
			}
			sess := ses()
			if !sess.Traced(pid) || sess.Traced(tid) {
				t.Errorf("after the exec: Traced(pid %d) %v, Traced(former tid %d) %v; want true, false", pid, sess.Traced(pid), tid, sess.Traced(tid))
			}
			if ids := sess.ProcessIDs(); !slices.Equal(ids, []int{pid}) || sess.Processes() != 1 {
				t.Errorf("processes %v (%d), want [%d]", ids, sess.Processes(), pid)
			}
			if g := sess.TGID(pid); g != pid {
				t.Errorf("TGID(%d) = %d", pid, g)
			}
			// The exec'ing thread takes a stop, with or without a hook: that is
			// how the tracer learns which tid went away.
			if n := sess.ExecStops(); n != map[bool]uint64{true: 2, false: 1}[hooked] {
				t.Errorf("%d exec stops", n)
			}
			proc.Stdin.Close()
			rest, _ := io.ReadAll(out)
			res, err := proc.Wait()
			if err != nil || res.ExitCode != 0 || string(rest) != "done\n" {
				t.Fatalf("exit %v, %v, output %q", res, err, rest)
			}
			mu.Lock()
			defer mu.Unlock()
			if hooked {
				want := []seen{{pid: pid, former: pid}, {pid: pid, former: tid}}
				if !slices.Equal(stops, want) {
					t.Errorf("stops %+v, want %+v", stops, want)
				}
				if !slices.Equal(inHook, []string{"true false"}) {
					t.Errorf("in the hook, Traced(pid), Traced(former): %v, want [true false]", inHook)
				}
			}
		})
	}
}

// TestExecFromThreadProcessLimit: after an exec from a non-leader thread,
// the process limit still counts exactly: with MaxProcesses 4, the
// exec'd program (one process) can fork exactly three children.
func TestExecFromThreadProcessLimit(t *testing.T) {
	prog := cProgram(t, "threadexec", threadExecSrc)
	code := `import os
r, w = os.pipe()
n = 0
for i in range(10):
    try:
        pid = os.fork()
    except BlockingIOError:
        break
    if pid == 0:
        os.close(w)
        os.read(r, 1)
        os._exit(0)
    n += 1
os.close(w)
for i in range(n):
    os.wait()
print("forked", n)
`
	for _, hooked := range []bool{true, false} {
		sb := base()
		sb.FSReadable = append(sb.FSReadable, filepath.Dir(prog))
		sb.MaxProcesses = 4
		var hook func(*tracer.ExecStop)
		if hooked {
			hook = func(*tracer.ExecStop) {}
		}
		execHook(t, sb, hook)
		res := run(t, sb, prog, python, "-c", code)
		out := strings.TrimSpace(string(res.Stdout))
		if res.ExitCode != 0 || !strings.HasSuffix(out, "forked 3") {
			t.Errorf("hook=%v: exit %d, output %q, stderr %s", hooked, res.ExitCode, out, res.Stderr)
		}
	}
}

// sigCountSrc: "block" blocks SIGRTMIN and execs itself with "count";
// "count" installs a handler that counts SIGRTMIN, unblocks it (pending
// instances are delivered at once) and prints the count. A real-time
// signal queues one instance per send, so a duplicate delivery would show.
const sigCountSrc = `#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static volatile sig_atomic_t n;
static void h(int sig) { n++; }
int main(int argc, char **argv) {
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN);
	if (argc > 1 && strcmp(argv[1], "block") == 0) {
		sigprocmask(SIG_BLOCK, &set, NULL);
		execl(argv[0], argv[0], "count", (char *)NULL);
		return 127;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = h;
	sigaction(SIGRTMIN, &sa, NULL);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	printf("count %d\n", (int)n);
	return 0;
}
`

// TestExecStopSignal: a signal sent to the process during its exec stop —
// by the hook itself, or by another process while the hook waits — is
// delivered exactly once, after the stop, to the new image.
func TestExecStopSignal(t *testing.T) {
	prog := cProgram(t, "sigcount", sigCountSrc)
	rtmin := 34 // SIGRTMIN as the kernel numbers it (glibc reserves 32 and 33, so its SIGRTMIN is 34)
	for _, from := range []string{"hook", "process"} {
		t.Run(from, func(t *testing.T) {
			sb := base()
			sb.FSReadable = append(sb.FSReadable, filepath.Dir(prog))
			stop := 0
			var hookErr error
			execHook(t, sb, func(st *tracer.ExecStop) {
				if stop++; stop != 2 {
					return // the program's own exec: "block"
				}
				if from == "hook" {
					hookErr = unix.Kill(st.PID(), unix.Signal(rtmin))
					return
				}
				hookErr = exec.Command("/bin/kill", "-s", strconv.Itoa(rtmin), strconv.Itoa(st.PID())).Run()
			})
			res := run(t, sb, prog, "block")
			if hookErr != nil {
				t.Fatal(hookErr)
			}
			if res.ExitCode != 0 || strings.TrimSpace(string(res.Stdout)) != "count 1" {
				t.Errorf("exit %d, output %q, want count 1", res.ExitCode, res.Stdout)
			}
		})
	}
	// A signal whose default action ends the process, sent during the
	// stop: the image dies of it before writing anything.
	sb := base()
	dir := tempDir(t)
	sb.FSWritable = []string{dir}
	marker := filepath.Join(dir, "ran")
	execHook(t, sb, func(st *tracer.ExecStop) {
		if fd, err := st.Exe(); err == nil {
			if sameFile(fd, "/usr/bin/touch") {
				unix.Kill(st.PID(), unix.SIGTERM)
			}
			unix.Close(fd)
		}
	})
	res := run(t, sb, "/bin/sh", "-c", `/usr/bin/touch "$0"; echo status $?`, marker)
	if got := strings.TrimSpace(string(res.Stdout)); got != "status 143" {
		t.Errorf("touch under SIGTERM: %q, want status 143", got)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("touch ran although SIGTERM came before its first instruction")
	}
}

// TestExecStopKill: a hook's Kill ends the process before the new image
// runs a single instruction (touch never creates its file), records the
// reason and logs it, and the hooks registered after it are not called;
// without the kill the same program runs.
func TestExecStopKill(t *testing.T) {
	for _, kill := range []bool{true, false} {
		sb := base()
		dir := tempDir(t)
		sb.FSWritable = []string{dir}
		var logs bytes.Buffer
		sb.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		marker := filepath.Join(dir, "ran")
		var ses *session.Session
		var secondSaw []string
		isTouch := func(st *tracer.ExecStop) bool {
			fd, err := st.Exe()
			if err != nil {
				t.Errorf("Exe: %v", err)
				return false
			}
			defer unix.Close(fd)
			return sameFile(fd, "/usr/bin/touch")
		}
		defer sandlock.WithTestSession(sb, func(sess *session.Session) {
			ses = sess
			sess.OnExec(func(st *tracer.ExecStop) {
				if kill && isTouch(st) {
					st.Kill("test: touch is not to run")
					if !st.Killed() {
						t.Error("Killed() false after Kill")
					}
				}
			})
			sess.OnExec(func(st *tracer.ExecStop) {
				if isTouch(st) {
					secondSaw = append(secondSaw, "touch")
				}
			})
		})()
		res := run(t, sb, "/usr/bin/touch", marker)
		_, err := os.Stat(marker)
		if kill {
			if err == nil {
				t.Error("the killed image created its file")
			}
			if res.Reason != sandlock.ReasonKilled || res.ExitCode != -1 {
				t.Errorf("result %v exit %d, want killed", res.Reason, res.ExitCode)
			}
			if r := ses.EndReason(); r != session.ReasonDenied {
				t.Errorf("kill reason %v", r)
			}
			if !strings.Contains(logs.String(), "killed at exec, before it ran: test: touch is not to run") {
				t.Errorf("log: %s", logs.String())
			}
			if len(secondSaw) != 0 {
				t.Errorf("the hook after the kill saw %v", secondSaw)
			}
		} else {
			if err != nil || res.ExitCode != 0 {
				t.Errorf("without the kill: exit %d, file %v", res.ExitCode, err)
			}
			if !slices.Equal(secondSaw, []string{"touch"}) {
				t.Errorf("the second hook saw %v", secondSaw)
			}
		}
	}
}

// memExecSrc: the process forks a child that waits, then allocates and
// touches 40 MiB (and a page more, so that the accounting has read its
// size since), then execs: "fail" a path that does not exist (the exec
// fails and the 40 MiB stay), "ok" itself as "released" (a small image).
// Either way it then lets the child allocate 40 MiB of its own and prints
// how the child ended; the child prints "child mapped" if its mmap
// returned.
const memExecSrc = `#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#define MIB (1 << 20)
static void release(int fd, pid_t child) {
	int st;
	if (write(fd, "g", 1) != 1)
		exit(3);
	waitpid(child, &st, 0);
	if (WIFSIGNALED(st))
		printf("child signal %d\n", WTERMSIG(st));
	else
		printf("child exit %d\n", WEXITSTATUS(st));
	exit(0);
}
int main(int argc, char **argv) {
	if (strcmp(argv[1], "released") == 0)
		release(atoi(argv[2]), atoi(argv[3]));
	int p[2];
	char c, fd[16], pid[16];
	if (pipe(p) != 0)
		return 2;
	pid_t child = fork();
	if (child == 0) {
		if (read(p[0], &c, 1) != 1)
			_exit(4);
		char *m = mmap(NULL, 40 * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED) {
			printf("child ENOMEM\n");
			_exit(5);
		}
		printf("child mapped\n");
		fflush(stdout);
		memset(m, 1, 40 * MIB);
		_exit(0);
	}
	char *m = mmap(NULL, 40 * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return 6;
	memset(m, 1, 40 * MIB);
	// An allocation after the 40 MiB: the accounting reads this process's
	// size at its allocations, so it now knows of them.
	if (mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED)
		return 7;
	snprintf(fd, sizeof fd, "%d", p[1]);
	snprintf(pid, sizeof pid, "%d", child);
	if (strcmp(argv[1], "fail") == 0)
		execl("/no/such/program", "nothing", (char *)NULL);
	else
		execl(argv[0], argv[0], "released", fd, pid, (char *)NULL);
	release(p[1], child);
}
`

// TestLimitMemoryFailedExecKeepsCount: a process holding 40 MiB of a
// 64 MiB budget whose exec fails still holds them, so a child asking for
// 40 MiB more is killed at its mmap (the mmap never returns); after an
// exec that succeeded the old image's memory is gone and the same child
// gets its 40 MiB.
func TestLimitMemoryFailedExecKeepsCount(t *testing.T) {
	prog := cProgram(t, "memexec", memExecSrc)
	for _, tc := range []struct{ mode, want string }{
		{"fail", "child signal 9"},
		{"ok", "child mapped\nchild exit 0"},
	} {
		sb := memSandbox("64M")
		sb.FSReadable = append(sb.FSReadable, filepath.Dir(prog))
		res := run(t, sb, prog, tc.mode)
		if got := strings.TrimSpace(string(res.Stdout)); res.ExitCode != 0 || got != tc.want {
			t.Errorf("%s: exit %d (%v), output %q, want %q; stderr %s", tc.mode, res.ExitCode, res.Reason, got, tc.want, res.Stderr)
		}
	}
}
