//go:build linux

package sandlock_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock"
)

// pidProbeSrc makes the syscalls that name a process, with raw syscalls and
// exact arguments, and prints one "label=RESULT" line for each: OK (with
// ":value" for reads) or the errno's name.
//
//	pidprobe outside PID PGID  every syscall on PID, the process group
//	                           PGID, and signals; PID from outside
//	pidprobe inside            every syscall on itself (pid 0, its pid, a
//	                           thread), a child and a sibling
//	pidprobe groups PGID       process-group and user targets, PGID outside
//	pidprobe setpgid PGID      joining PGID (outside), and groups inside
//	pidprobe pidfd             the pidfd on fd 0: what Landlock refuses
const pidProbeSrc = `
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *ename(int e) {
	switch (e) {
	case EPERM: return "EPERM"; case ESRCH: return "ESRCH"; case EINVAL: return "EINVAL";
	case EACCES: return "EACCES"; case ENOSYS: return "ENOSYS"; case EBADF: return "EBADF";
	case ECHILD: return "ECHILD"; case EFAULT: return "EFAULT"; case ENOENT: return "ENOENT";
	}
	static char b[32]; snprintf(b, sizeof b, "E%d", e); return b;
}

static void report(const char *who, const char *what, long r, int e, int value) {
	if (r < 0) printf("%s.%s=%s\n", who, what, ename(e));
	else if (value) printf("%s.%s=OK:%ld\n", who, what, r);
	else printf("%s.%s=OK\n", who, what);
	fflush(stdout);
}

#define SC(who, what, value, ...) do { errno = 0; long r_ = syscall(__VA_ARGS__); report(who, what, r_, errno, value); } while (0)

struct sched_attr_ { uint32_t size, policy; uint64_t flags; int32_t nice; uint32_t prio; uint64_t rt, dl, period; };

// The RLIMIT_CPU prlimit64 sets: 1 s against a process outside (the
// attack), an hour (soft, the hard limit left as it is) on the sandbox's
// own.
static uint64_t cpu_soft = 3600, cpu_hard = RLIM_INFINITY;

// ops makes every pid syscall on pid (0: the caller) and reports under who.
static void ops(const char *who, long pid) {
	struct rlimit64 { uint64_t cur, max; } rl = {cpu_soft, cpu_hard}, old;
	SC(who, "prlimit64", 0, SYS_prlimit64, pid, RLIMIT_CPU, &rl, NULL);
	SC(who, "prlimit64_get", 0, SYS_prlimit64, pid, RLIMIT_NOFILE, NULL, &old);
	SC(who, "setpriority", 0, SYS_setpriority, PRIO_PROCESS, pid, 7);
	SC(who, "getpriority", 1, SYS_getpriority, PRIO_PROCESS, pid);
	cpu_set_t set; CPU_ZERO(&set); CPU_SET(0, &set);
	SC(who, "sched_setaffinity", 0, SYS_sched_setaffinity, pid, sizeof set, &set);
	SC(who, "sched_getaffinity", 0, SYS_sched_getaffinity, pid, sizeof set, &set);
	struct sched_param sp = {0};
	SC(who, "sched_setscheduler", 0, SYS_sched_setscheduler, pid, SCHED_BATCH, &sp);
	SC(who, "sched_setparam", 0, SYS_sched_setparam, pid, &sp);
	struct sched_attr_ attr = {.size = sizeof attr, .policy = SCHED_BATCH, .nice = 7};
	SC(who, "sched_setattr", 0, SYS_sched_setattr, pid, &attr, 0);
	SC(who, "sched_getscheduler", 1, SYS_sched_getscheduler, pid);
	SC(who, "sched_getparam", 0, SYS_sched_getparam, pid, &sp);
	SC(who, "sched_getattr", 0, SYS_sched_getattr, pid, &attr, sizeof attr, 0);
	struct timespec ts;
	SC(who, "sched_rr_get_interval", 0, SYS_sched_rr_get_interval, pid, &ts);
	SC(who, "getpgid", 0, SYS_getpgid, pid);
	SC(who, "getsid", 0, SYS_getsid, pid);
	SC(who, "ioprio_set", 0, SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, pid, 3 << 13 /* IDLE */);
	SC(who, "ioprio_get", 1, SYS_ioprio_get, 1, pid);
	void *head; size_t len;
	SC(who, "get_robust_list", 0, SYS_get_robust_list, pid, &head, &len);
	SC(who, "move_pages", 0, SYS_move_pages, pid, 0, NULL, NULL, NULL, 0);
	unsigned long nodes = 1;
	SC(who, "migrate_pages", 0, SYS_migrate_pages, pid, 8 * sizeof nodes, &nodes, &nodes);
	if (pid != 0) {
		// pid 0 means no process to these two.
		SC(who, "kcmp", 0, SYS_kcmp, getpid(), pid, 1 /* KCMP_VM */, 0, 0);
		errno = 0;
		long fd = syscall(SYS_pidfd_open, pid, 0);
		if (fd < 0 && (errno == EINVAL || errno == ENOENT)) // a thread: PIDFD_THREAD
			fd = syscall(SYS_pidfd_open, pid, O_EXCL);
		report(who, "pidfd_open", fd, errno, 0);
		if (fd >= 0) close(fd);
	}
}

// signals sends SIGKILL to pid by every way that names a process.
static void signals(const char *who, long pid) {
	siginfo_t si; memset(&si, 0, sizeof si);
	si.si_signo = SIGKILL; si.si_code = SI_QUEUE; si.si_pid = getpid(); si.si_uid = getuid();
	SC(who, "kill", 0, SYS_kill, pid, SIGKILL);
	SC(who, "tkill", 0, SYS_tkill, pid, SIGKILL);
	SC(who, "tgkill", 0, SYS_tgkill, pid, pid, SIGKILL);
	SC(who, "rt_sigqueueinfo", 0, SYS_rt_sigqueueinfo, pid, SIGKILL, &si);
	SC(who, "rt_tgsigqueueinfo", 0, SYS_rt_tgsigqueueinfo, pid, pid, SIGKILL, &si);
	char path[64]; snprintf(path, sizeof path, "/proc/%ld", pid);
	int dir = open(path, O_DIRECTORY | O_RDONLY);
	if (dir >= 0) {
		SC(who, "pidfd_send_signal_procfd", 0, SYS_pidfd_send_signal, dir, SIGKILL, NULL, 0);
		close(dir);
	} else {
		report(who, "pidfd_send_signal_procfd", -1, errno, 0);
	}
	// SIGIO through F_SETOWN: its default action ends the process.
	int p[2];
	if (pipe(p) == 0) {
		SC(who, "f_setown", 0, SYS_fcntl, p[0], F_SETOWN, pid);
		fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_ASYNC);
		write(p[1], "x", 1);
		close(p[0]); close(p[1]);
	}
}

static void *idle_thread(void *arg) {
	*(volatile long *)arg = syscall(SYS_gettid);
	for (;;) pause();
	return NULL;
}

static pid_t idle_child(void) {
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) { for (;;) pause(); }
	return c;
}

static void stop(pid_t c) { kill(c, SIGKILL); waitpid(c, NULL, 0); }

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	if (!strcmp(argv[1], "outside") && argc == 4) {
		long pid = atol(argv[2]), pgid = atol(argv[3]);
		cpu_soft = cpu_hard = 1;
		ops("out", pid);
		// The kernel reads a pid as a C int: high bits around it change
		// nothing.
		struct rlimit64 { uint64_t cur, max; } rl = {1, 1};
		SC("out", "prlimit64_highbits", 0, SYS_prlimit64, (1L << 32) | pid, RLIMIT_CPU, &rl, NULL);
		SC("out", "setpriority_pgrp", 0, SYS_setpriority, PRIO_PGRP, pgid, 19);
		SC("out", "getpriority_pgrp", 1, SYS_getpriority, PRIO_PGRP, pgid);
		SC("out", "ioprio_set_pgrp", 0, SYS_ioprio_set, 2 /* IOPRIO_WHO_PGRP */, pgid, 3 << 13);
		SC("out", "ioprio_get_pgrp", 1, SYS_ioprio_get, 2, pgid);
		signals("out", pid);
		return 0;
	}
	if (!strcmp(argv[1], "inside")) {
		ops("self0", 0);
		ops("self", getpid());
		// High bits over 0 still name the caller (the filter tests the
		// low 32 bits, as the kernel reads them).
		struct rlimit64 { uint64_t cur, max; } rl = {7200, RLIM_INFINITY}, got;
		SC("self", "prlimit64_highbits", 0, SYS_prlimit64, 1L << 32, RLIMIT_CPU, &rl, NULL);
		syscall(SYS_prlimit64, 0, RLIMIT_CPU, NULL, &got);
		printf("self.cpu_limit=%llu\n", (unsigned long long)got.cur);
		volatile long tid = 0;
		pthread_t th;
		pthread_create(&th, NULL, idle_thread, (void *)&tid);
		while (!tid) sched_yield();
		ops("thread", tid);
		pid_t c = idle_child();
		ops("child", c);
		syscall(SYS_prlimit64, c, RLIMIT_CPU, NULL, &got);
		printf("child.cpu_limit=%llu\n", (unsigned long long)got.cur);
		printf("child.nice=%d\n", getpriority(PRIO_PROCESS, c));
		cpu_set_t set; sched_getaffinity(c, sizeof set, &set);
		printf("child.cpus=%d\n", CPU_COUNT(&set));
		printf("child.ioprio=%ld\n", syscall(SYS_ioprio_get, 1, c));
		// A sibling: a second child acts on the first.
		pid_t s = fork();
		if (s == 0) { ops("sibling", c); fflush(stdout); _exit(0); }
		waitpid(s, NULL, 0);
		SC("child", "kill", 0, SYS_kill, c, SIGTERM);
		int st; waitpid(c, &st, 0);
		printf("child.killed=%d\n", WIFSIGNALED(st) ? WTERMSIG(st) : -1);
		return 0;
	}
	if (!strcmp(argv[1], "groups") && argc == 3) {
		long out = atol(argv[2]);
		pid_t c = idle_child();
		SC("pgrp", "setpriority", 0, SYS_setpriority, PRIO_PGRP, 0, 6);
		SC("pgrp", "getpriority", 1, SYS_getpriority, PRIO_PGRP, 0);
		SC("pgrp", "getpriority_explicit", 1, SYS_getpriority, PRIO_PGRP, getpgid(0));
		printf("pgrp.child_nice=%d\n", getpriority(PRIO_PROCESS, c));
		// No task has an I/O priority of its own yet: the kernel folds
		// the one their nice value gives them (best effort, (6+20)/5).
		SC("pgrp", "ioprio_get_from_nice", 1, SYS_ioprio_get, 2, 0);
		// Lowering the nice value needs CAP_SYS_NICE, which the program
		// lacks: so must the thread that does it on its behalf.
		SC("pgrp", "setpriority_lower", 0, SYS_setpriority, PRIO_PGRP, 0, 0);
		SC("user", "setpriority", 0, SYS_setpriority, PRIO_USER, 0, 8);
		SC("user", "getpriority", 1, SYS_getpriority, PRIO_USER, 0);
		SC("user", "getpriority_explicit", 1, SYS_getpriority, PRIO_USER, getuid());
		printf("user.child_nice=%d\n", getpriority(PRIO_PROCESS, c));
		SC("user", "setpriority_nobody_else", 0, SYS_setpriority, PRIO_USER, 4242, 9);
		SC("pgrp", "ioprio_set", 0, SYS_ioprio_set, 2, 0, (2 << 13) | 4);
		SC("pgrp", "ioprio_get", 1, SYS_ioprio_get, 2, 0);
		printf("pgrp.child_ioprio=%ld\n", syscall(SYS_ioprio_get, 1, c));
		SC("user", "ioprio_set", 0, SYS_ioprio_set, 3, 0, 3 << 13);
		SC("user", "ioprio_get", 1, SYS_ioprio_get, 3, 0);
		printf("user.child_ioprio=%ld\n", syscall(SYS_ioprio_get, 1, c));
		SC("out", "setpriority_pgrp", 0, SYS_setpriority, PRIO_PGRP, out, 19);
		SC("out", "getpriority_pgrp", 1, SYS_getpriority, PRIO_PGRP, out);
		SC("out", "ioprio_set_pgrp", 0, SYS_ioprio_set, 2, out, 3 << 13);
		SC("out", "ioprio_get_pgrp", 1, SYS_ioprio_get, 2, out);
		stop(c);
		return 0;
	}
	if (!strcmp(argv[1], "setpgid") && argc == 3) {
		long out = atol(argv[2]);
		pid_t before = getpgid(0);
		SC("out", "setpgid", 0, SYS_setpgid, 0, out);
		SC("out", "setpgid_highbits", 0, SYS_setpgid, 0, (1L << 32) | out);
		printf("out.unchanged=%d\n", getpgid(0) == before);
		pid_t a = idle_child();
		SC("in", "setpgid_new", 0, SYS_setpgid, a, a);
		pid_t b = idle_child();
		SC("in", "setpgid_join", 0, SYS_setpgid, b, a);
		pid_t c = idle_child();
		SC("in", "setpgid_root", 0, SYS_setpgid, c, getpid());
		// a's group outlives a, held by b.
		stop(a);
		pid_t d = idle_child();
		SC("in", "setpgid_leaderless", 0, SYS_setpgid, d, a);
		printf("in.groups=%d\n", getpgid(b) == a && getpgid(d) == a && getpgid(c) == getpid());
		stop(b); stop(c); stop(d);
		return 0;
	}
	if (!strcmp(argv[1], "pidfd")) {
		// fd 0 is a pidfd of a process outside, handed in by the caller.
		struct iovec iov = {(void *)0x10000, 4096};
		SC("pidfd", "pidfd_getfd", 0, SYS_pidfd_getfd, 0, 0, 0);
		SC("pidfd", "process_madvise", 0, SYS_process_madvise, 0, &iov, 1, 20 /* MADV_COLD */, 0);
		SC("pidfd", "pidfd_send_signal", 0, SYS_pidfd_send_signal, 0, SIGKILL, NULL, 0);
		SC("pidfd", "process_mrelease", 0, SYS_process_mrelease, 0, 0);
		return 0;
	}
	return 2;
}
`

// probeResults parses the probe's "label=RESULT" lines.
func probeResults(t *testing.T, out string) map[string]string {
	t.Helper()
	res := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("probe line %q", line)
		}
		res[k] = v
	}
	return res
}

// wantResults checks each label's result: a want ending in ":" is a
// prefix (OK: with any value).
func wantResults(t *testing.T, got map[string]string, want map[string]string) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("%s: no result", k)
		case strings.HasSuffix(w, ":") && strings.HasPrefix(g, w):
		case g != w:
			t.Errorf("%s = %s, want %s", k, g, w)
		}
	}
}

// pidOps are the labels ops() reports.
var pidOps = []string{
	"prlimit64", "prlimit64_get", "setpriority", "getpriority", "sched_setaffinity",
	"sched_getaffinity", "sched_setscheduler", "sched_setparam", "sched_setattr",
	"sched_getscheduler", "sched_getparam", "sched_getattr", "sched_rr_get_interval",
	"getpgid", "getsid", "ioprio_set", "ioprio_get", "get_robust_list", "move_pages",
	"migrate_pages", "kcmp", "pidfd_open",
}

// refusedByLandlock are the pid syscalls whose permission check is
// ptrace_may_access: Landlock's ptrace restriction refuses a target
// outside the sandbox's domain, with the kernel's own errno.
var refusedByLandlock = map[string]string{
	"get_robust_list": "EPERM", "move_pages": "EPERM", "migrate_pages": "EPERM", "kcmp": "EPERM",
}

// outsideWant is what every syscall on a process outside must answer in a
// supervised sandbox.
func outsideWant() map[string]string {
	want := map[string]string{}
	for _, op := range pidOps {
		want["out."+op] = "ESRCH"
		if e, ok := refusedByLandlock[op]; ok {
			want["out."+op] = e
		}
	}
	want["out.prlimit64_highbits"] = "ESRCH"
	for _, op := range []string{"setpriority_pgrp", "getpriority_pgrp", "ioprio_set_pgrp", "ioprio_get_pgrp"} {
		want["out."+op] = "ESRCH"
	}
	// Landlock's signal scope.
	for _, op := range []string{"kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_send_signal_procfd"} {
		want["out."+op] = "EPERM"
	}
	// F_SETOWN itself succeeds; Landlock drops the SIGIO (the victim
	// lives, checked by the caller).
	want["out.f_setown"] = "OK"
	return want
}

// victimState is what a process outside must keep: its limits, nice
// value, policy, affinity and I/O priority.
type victimState struct {
	limits   string
	nice     int
	policy   int
	cpus     unix.CPUSet
	ioprio   int
	pgrpNice int // getpriority(PRIO_PGRP) of its group
}

func readVictim(t *testing.T, pid int) victimState {
	t.Helper()
	var s victimState
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatalf("victim %d: %v", pid, err)
	}
	s.limits = string(b)
	if s.nice, err = unix.Getpriority(unix.PRIO_PROCESS, pid); err != nil {
		t.Fatal(err)
	}
	r, _, errno := unix.Syscall(unix.SYS_SCHED_GETSCHEDULER, uintptr(pid), 0, 0)
	if errno != 0 {
		t.Fatal(errno)
	}
	s.policy = int(r)
	if err := unix.SchedGetaffinity(pid, &s.cpus); err != nil {
		t.Fatal(err)
	}
	r, _, errno = unix.Syscall(unix.SYS_IOPRIO_GET, 1, uintptr(pid), 0)
	if errno != 0 {
		t.Fatal(errno)
	}
	s.ioprio = int(r)
	pgid, err := unix.Getpgid(pid)
	if err != nil {
		t.Fatal(err)
	}
	if s.pgrpNice, err = unix.Getpriority(unix.PRIO_PGRP, pgid); err != nil {
		t.Fatal(err)
	}
	return s
}

// checkVictim asserts a process outside is alive and unchanged.
func checkVictim(t *testing.T, name string, pid int, before victimState) {
	t.Helper()
	if err := unix.Kill(pid, 0); err != nil {
		t.Errorf("%s (%d) is gone: %v", name, pid, err)
		return
	}
	after := readVictim(t, pid)
	if after != before {
		t.Errorf("%s (%d) changed:\nbefore %+v\nafter  %+v", name, pid, before, after)
	}
}

// victim starts a process outside every sandbox, a sleep behind prefix
// (e.g. setpriv to another user), in a process group of its own in the
// test's session, and returns its pid; it is killed after the test. It is
// started through a shell that exits at once, so that it is no child of
// the test: a sandbox's tracer thread may be the very thread that would
// otherwise be its parent, and waits for all of that thread's children.
func victim(t *testing.T, prefix ...string) int {
	t.Helper()
	argv := append(append([]string(nil), prefix...), "/bin/sh", "-c", "sleep 600 </dev/null >/dev/null 2>&1 & echo $!")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("victim pid %q: %v", out, err)
	}
	t.Cleanup(func() { unix.Kill(pid, unix.SIGKILL) })
	// Wait for the exec, so that the state read is sleep's.
	for end := time.Now().Add(10 * time.Second); ; {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if strings.TrimSpace(string(b)) == "sleep" {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("victim never became sleep: %q", b)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return pid
}

// pidProbeSandbox is a sandbox that can run the probe, and read /proc (for
// the signal through a /proc directory fd).
func pidProbeSandbox(probe string) *sandlock.Sandbox {
	sb := base()
	sb.FSReadable = append(sb.FSReadable, filepath.Dir(probe), "/proc")
	// The host's /proc, so that a process outside can be named through
	// its /proc directory (pidfd_send_signal_procfd) and the pid gate and
	// Landlock answer; the served view refuses to open it at all
	// (TestProcViewSignalThroughProcDir).
	sb.ProcView = sandlock.ProcViewHost
	return sb
}

func runProbe(t *testing.T, sb *sandlock.Sandbox, probe string, args ...string) map[string]string {
	t.Helper()
	res := run(t, sb, append([]string{probe}, args...)...)
	if res.ExitCode != 0 {
		t.Fatalf("probe %q: exit %d, stdout %q, stderr %q", args, res.ExitCode, res.Stdout, res.Stderr)
	}
	return probeResults(t, string(res.Stdout))
}

func TestPidOutsideProcessesRefused(t *testing.T) {
	probe := cProgram(t, "pidprobe", pidProbeSrc)
	v := victim(t)
	self := os.Getpid() // the supervisor
	for _, target := range []struct {
		name string
		pid  int
	}{{"victim", v}, {"supervisor", self}} {
		t.Run(target.name, func(t *testing.T) {
			pgid, err := unix.Getpgid(target.pid)
			if err != nil {
				t.Fatal(err)
			}
			before := readVictim(t, target.pid)
			got := runProbe(t, pidProbeSandbox(probe), probe, "outside", strconv.Itoa(target.pid), strconv.Itoa(pgid))
			wantResults(t, got, outsideWant())
			checkVictim(t, target.name, target.pid, before)
		})
	}
}

// insideWant is what the syscalls on the sandbox's own tasks answer.
func insideWant() map[string]string {
	want := map[string]string{}
	for _, who := range []string{"self0", "self", "thread", "child", "sibling"} {
		for _, op := range pidOps {
			if who == "self0" && (op == "kcmp" || op == "pidfd_open") {
				continue // pid 0 is no process to them
			}
			want[who+"."+op] = "OK"
		}
		want[who+".getpriority"] = "OK:13" // 20 - nice 7
		want[who+".sched_getscheduler"] = "OK:3"
		want[who+".ioprio_get"] = "OK:24576" // IDLE
	}
	want["self.prlimit64_highbits"] = "OK"
	want["self.cpu_limit"] = "7200"
	want["child.cpu_limit"] = "3600"
	want["child.nice"] = "7"
	want["child.cpus"] = "1"
	want["child.ioprio"] = "24576"
	want["child.kill"] = "OK"
	want["child.killed"] = "15"
	return want
}

func TestPidOwnProcessesAllowed(t *testing.T) {
	probe := cProgram(t, "pidprobe", pidProbeSrc)
	got := runProbe(t, pidProbeSandbox(probe), probe, "inside")
	wantResults(t, got, insideWant())
}

func TestPidGroupsAndUsers(t *testing.T) {
	// Process-group and user targets are computed over the sandbox's own
	// processes: a victim of the same user, outside, is never changed nor
	// counted (its nice 0 would make getpriority(PRIO_USER) answer 20).
	probe := cProgram(t, "pidprobe", pidProbeSrc)
	v := victim(t)
	before := readVictim(t, v)
	self := readVictim(t, os.Getpid())
	pgid, _ := unix.Getpgid(v)
	got := runProbe(t, pidProbeSandbox(probe), probe, "groups", strconv.Itoa(pgid))
	wantResults(t, got, groupsWant())
	checkVictim(t, "victim", v, before)
	checkVictim(t, "supervisor", os.Getpid(), self)
}

func groupsWant() map[string]string {
	return map[string]string{
		"pgrp.setpriority":          "OK",
		"pgrp.getpriority":          "OK:14",
		"pgrp.getpriority_explicit": "OK:14",
		"pgrp.child_nice":           "6",
		"pgrp.ioprio_get_from_nice": "OK:16389", // BE, level 5
		// Done on a thread without CAP_SYS_NICE, even when the
		// supervisor has it.
		"pgrp.setpriority_lower":       "EACCES",
		"user.setpriority":             "OK",
		"user.getpriority":             "OK:12",
		"user.getpriority_explicit":    "OK:12",
		"user.child_nice":              "8",
		"user.setpriority_nobody_else": "ESRCH",
		"pgrp.ioprio_set":              "OK",
		"pgrp.ioprio_get":              "OK:16388", // BE, level 4
		"pgrp.child_ioprio":            "16388",
		"user.ioprio_set":              "OK",
		"user.ioprio_get":              "OK:24576", // IDLE
		"user.child_ioprio":            "24576",
		"out.setpriority_pgrp":         "ESRCH",
		"out.getpriority_pgrp":         "ESRCH",
		"out.ioprio_set_pgrp":          "ESRCH",
		"out.ioprio_get_pgrp":          "ESRCH",
	}
}

func TestPidSetpgid(t *testing.T) {
	// The sandbox's root shares the test's session: joining the test's
	// group, or a victim's, is refused; groups inside work.
	probe := cProgram(t, "pidprobe", pidProbeSrc)
	v := victim(t)
	for _, pgid := range []int{unix.Getpgrp(), v} {
		got := runProbe(t, pidProbeSandbox(probe), probe, "setpgid", strconv.Itoa(pgid))
		wantResults(t, got, map[string]string{
			"out.setpgid": "EPERM", "out.setpgid_highbits": "EPERM", "out.unchanged": "1",
			"in.setpgid_new": "OK", "in.setpgid_join": "OK", "in.setpgid_root": "OK",
			"in.setpgid_leaderless": "OK", "in.groups": "1",
		})
	}
}

// commonPrograms runs everyday tools that name processes on the sandbox's
// own: nice, renice, taskset, ionice, chrt, prlimit, ps, kill, and Python's
// os.sched_setaffinity. commonProgramsOut is what it prints.
const commonPrograms = `
set -e
nice -n 5 nice
renice -n 3 -p $$ >/dev/null; nice
taskset -c 0 sh -c 'taskset -p $$' | sed 's/.*: //'
ionice -c 3 sh -c ionice
sleep 100 & c=$!
renice -n 4 -p $c >/dev/null; ps -o ni= -p $c | tr -d ' '
taskset -p -c 0 $c >/dev/null; taskset -p $c | sed 's/.*: //'
ionice -c 3 -p $c; ionice -p $c
chrt -b -p 0 $c; chrt -p $c | head -1 | sed 's/.*: //'
prlimit --cpu=100 --pid $c; prlimit --cpu --pid $c -o SOFT --noheadings | tr -d ' '
kill $c; wait $c || echo "killed $?"
` + python + ` -c 'import os; os.sched_setaffinity(0, {0}); print(sorted(os.sched_getaffinity(0)))'
`

const commonProgramsOut = "5\n3\n1\nidle\n4\n1\nidle\nSCHED_BATCH\n100\nkilled 143\n[0]\n"

func TestPidCommonPrograms(t *testing.T) {
	sb := base()
	sb.FSReadable = append(sb.FSReadable, "/proc")
	sb.FSWritable = []string{"/dev/null"}
	res := sh(t, sb, commonPrograms)
	if res.ExitCode != 0 || string(res.Stdout) != commonProgramsOut {
		t.Errorf("exit %d\nstdout %q\nwant   %q\nstderr %q", res.ExitCode, res.Stdout, commonProgramsOut, res.Stderr)
	}
}

func TestPidUnprivileged(t *testing.T) {
	// The same as an unprivileged user through the CLI: the kernel's own
	// uid checks would let nobody's sandbox reach nobody's other
	// processes, and sandlock itself (the supervisor, the sandbox's
	// parent).
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root to switch to cliNobody (run the tests as root, as CI does)")
	}
	probe := cProgram(t, "pidprobe", pidProbeSrc)
	v := victim(t, cliNobody...)
	pgid, _ := unix.Getpgid(v)
	before := readVictim(t, v)
	// --proc host: see pidProbeSandbox (and the supervisor's process
	// group is read from its /proc entry).
	args := cliGrants("-r", filepath.Dir(probe), "-r", "/proc", "--proc", "host")
	runCLI := func(probeArgs ...string) map[string]string {
		t.Helper()
		code, stdout, stderr := cliAs(t, cliNobody, cliRunArgs(args, append([]string{probe}, probeArgs...)...)...)
		if code != 0 {
			t.Fatalf("probe %q: exit %d, stdout %q, stderr %q", probeArgs, code, stdout, stderr)
		}
		return probeResults(t, stdout)
	}
	t.Run("outside", func(t *testing.T) {
		wantResults(t, runCLI("outside", strconv.Itoa(v), strconv.Itoa(pgid)), outsideWant())
		checkVictim(t, "victim", v, before)
	})
	t.Run("supervisor", func(t *testing.T) {
		// The probe's parent is sandlock: a shell finds its pid.
		code, stdout, stderr := cliAs(t, cliNobody, cliRunArgs(args, "/bin/sh", "-c",
			`exec `+probe+` outside $PPID $(ps -o pgid= -p $PPID)`)...)
		if code != 0 {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		wantResults(t, probeResults(t, stdout), outsideWant())
	})
	t.Run("inside", func(t *testing.T) {
		wantResults(t, runCLI("inside"), insideWant())
	})
	t.Run("groups", func(t *testing.T) {
		want := groupsWant()
		wantResults(t, runCLI("groups", strconv.Itoa(pgid)), want)
		checkVictim(t, "victim", v, before)
	})
	t.Run("programs", func(t *testing.T) {
		code, stdout, stderr := cliAs(t, cliNobody, cliRunArgs(cliGrants("-r", "/proc", "-w", "/dev/null"), "/bin/sh", "-c", commonPrograms)...)
		if code != 0 || stdout != commonProgramsOut {
			t.Errorf("exit %d\nstdout %q\nwant   %q\nstderr %q", code, stdout, commonProgramsOut, stderr)
		}
	})
	t.Run("setpgid", func(t *testing.T) {
		wantResults(t, runCLI("setpgid", strconv.Itoa(pgid)), map[string]string{
			"out.setpgid": "EPERM", "out.unchanged": "1", "in.setpgid_join": "OK", "in.groups": "1",
		})
	})
}

// TestPidfdHandedIn checks what Landlock's ptrace restriction and signal
// scope refuse through a pidfd of a process outside that the sandbox did
// not open itself (its caller handed it in as stdin).
func TestPidfdHandedIn(t *testing.T) {
	probe := cProgram(t, "pidprobe", pidProbeSrc)
	for _, who := range []struct {
		name   string
		prefix []string
	}{{"root", nil}, {"nobody", cliNobody}} {
		t.Run(who.name, func(t *testing.T) {
			v := victim(t, who.prefix...)
			fd, err := unix.PidfdOpen(v, 0)
			if err != nil {
				t.Fatal(err)
			}
			pidfd := os.NewFile(uintptr(fd), "pidfd")
			defer pidfd.Close()
			argv := append(append([]string(nil), who.prefix...), cliBinary)
			argv = append(argv, cliRunArgs(cliGrants("-r", filepath.Dir(probe)), probe, "pidfd")...)
			cmd := exec.Command(argv[0], argv[1:]...)
			var stdout, stderr bytes.Buffer
			cmd.Stdin, cmd.Stdout, cmd.Stderr = pidfd, &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%v: stdout %q stderr %q", err, stdout.String(), stderr.String())
			}
			wantResults(t, probeResults(t, stdout.String()), map[string]string{
				"pidfd.pidfd_getfd":       "EPERM",
				"pidfd.process_madvise":   "EACCES",
				"pidfd.pidfd_send_signal": "EPERM",
				// Only a process already being killed can be reaped.
				"pidfd.process_mrelease": "EINVAL",
			})
			if err := unix.Kill(v, 0); err != nil {
				t.Errorf("victim gone: %v", err)
			}
		})
	}
}

func TestPidNoSupervisor(t *testing.T) {
	// Without a supervisor nothing tells the sandbox's processes from
	// others: the filter refuses every change to a process other than the
	// caller (reads stay the kernel's, as /proc shows the same), and
	// joining another process group.
	probe := cProgram(t, "pidprobe", pidProbeSrc)
	v := victim(t)
	before := readVictim(t, v)
	pgid, _ := unix.Getpgid(v)
	sb := pidProbeSandbox(probe)
	sb.NoSupervisor = true
	got := runProbe(t, sb, probe, "outside", strconv.Itoa(v), strconv.Itoa(pgid))
	want := map[string]string{
		"out.prlimit64": "ESRCH", "out.prlimit64_highbits": "ESRCH", "out.setpriority": "ESRCH",
		"out.sched_setaffinity": "ESRCH", "out.sched_setscheduler": "ESRCH", "out.sched_setparam": "ESRCH",
		"out.sched_setattr": "ESRCH", "out.ioprio_set": "ESRCH", "out.setpriority_pgrp": "ESRCH",
		"out.ioprio_set_pgrp": "ESRCH",
		// Reads: the kernel's.
		"out.getpriority": "OK:", "out.prlimit64_get": "OK", "out.sched_getaffinity": "OK",
		"out.getpgid": "OK", "out.pidfd_open": "OK",
		// Landlock's.
		"out.kcmp": "EPERM", "out.get_robust_list": "EPERM", "out.kill": "EPERM", "out.tgkill": "EPERM",
	}
	wantResults(t, got, want)
	checkVictim(t, "victim", v, before)

	got = runProbe(t, sb, probe, "inside")
	want = map[string]string{}
	for k, v := range insideWant() {
		if strings.HasPrefix(k, "self0.") {
			want[k] = v
		}
	}
	want["self.prlimit64_highbits"] = "OK"
	want["self.cpu_limit"] = "7200"
	// The cost: changes to the sandbox's other processes are refused too.
	want["child.setpriority"] = "ESRCH"
	want["child.prlimit64"] = "ESRCH"
	want["child.getpriority"] = "OK:13"
	want["child.kill"] = "OK"
	want["child.killed"] = "15"
	wantResults(t, got, want)

	got = runProbe(t, sb, probe, "setpgid", strconv.Itoa(pgid))
	wantResults(t, got, map[string]string{"out.setpgid": "EPERM", "out.unchanged": "1", "in.setpgid_new": "EPERM"})
}
