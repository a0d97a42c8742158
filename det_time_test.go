//go:build linux

package sandlock_test

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock"
)

// Deterministic runs (issue 15): the wall clock of TimeStart.

// Two starts, one in the past and one in the future: a deadline left in
// the real clock's domain returns at once under the first and never under
// the second, so each direction catches what the other would miss.
var timeStarts = []struct {
	spec string
	unix int64
	year string
}{
	{"2000-01-01T00:00:00Z", 946684800, "2000"},
	{"4102444800", 4102444800, "2100"}, // Unix seconds: 2100-01-01
}

// timeSandbox is base() with TimeStart.
func timeSandbox(start string, extra ...string) *sandlock.Sandbox {
	sb := base()
	sb.TimeStart = start
	sb.FSReadable = append(sb.FSReadable, extra...)
	return sb
}

func realYear() string { return strconv.Itoa(time.Now().Year()) }

// date sees the shifted year, in the process started and in what it
// execs and forks; without TimeStart, the real one.
func TestTimeStartDate(t *testing.T) {
	for _, ts := range timeStarts {
		res := sh(t, timeSandbox(ts.spec), `date -u +%Y; (date -u +%Y); exec date -u +%Y`)
		want := strings.Repeat(ts.year+"\n", 3)
		if res.ExitCode != 0 || string(res.Stdout) != want {
			t.Errorf("TimeStart %s: exit %d stdout %q stderr %q, want %q", ts.spec, res.ExitCode, res.Stdout, res.Stderr, want)
		}
	}
	res := run(t, base(), "date", "-u", "+%Y")
	if got := strings.TrimSpace(string(res.Stdout)); got != realYear() {
		t.Errorf("without TimeStart: %q, want %s", got, realYear())
	}
}

// clockProgram prints every way a C program reads the wall clock, through
// the vDSO (libc) and by raw syscalls, and the clocks that must not move.
const clockProgram = `
#define _GNU_SOURCE
#include <stdio.h>
#include <time.h>
#include <sys/time.h>
#include <sys/syscall.h>
#include <unistd.h>

static void ts(const char *name, clockid_t id, int raw) {
	struct timespec t;
	int r = raw ? syscall(SYS_clock_gettime, id, &t) : clock_gettime(id, &t);
	printf("%s %d %lld.%09ld\n", name, r, (long long)t.tv_sec, t.tv_nsec);
}

int main(void) {
	struct timeval tv;
	time_t tloc = 0;
	ts("realtime", CLOCK_REALTIME, 0);
	ts("realtime_coarse", CLOCK_REALTIME_COARSE, 0);
	ts("tai", CLOCK_TAI, 0);
	gettimeofday(&tv, NULL);
	printf("gettimeofday 0 %lld.%06ld000\n", (long long)tv.tv_sec, (long)tv.tv_usec);
	printf("time 0 %lld.000000000\n", (long long)time(NULL));
	ts("raw_realtime", CLOCK_REALTIME, 1);
	ts("raw_realtime_coarse", CLOCK_REALTIME_COARSE, 1);
	ts("raw_tai", CLOCK_TAI, 1);
	syscall(SYS_gettimeofday, &tv, NULL);
	printf("raw_gettimeofday 0 %lld.%06ld000\n", (long long)tv.tv_sec, (long)tv.tv_usec);
	long r = syscall(SYS_time, &tloc);
	printf("raw_time 0 %ld.000000000\n", r);
	printf("raw_time_tloc 0 %lld.000000000\n", (long long)tloc);
	ts("monotonic", CLOCK_MONOTONIC, 0);
	ts("raw_monotonic", CLOCK_MONOTONIC, 1);
	ts("boottime", CLOCK_BOOTTIME, 0);
	ts("raw_boottime", CLOCK_BOOTTIME, 1);
	return 0;
}
`

// parseClocks reads "name ret sec.nsec" lines into nanoseconds.
func parseClocks(t *testing.T, out []byte) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[1] != "0" {
			t.Fatalf("bad line %q", line)
		}
		sec, frac, _ := strings.Cut(f[2], ".")
		s, err1 := strconv.ParseInt(sec, 10, 64)
		n, err2 := strconv.ParseInt(frac, 10, 64)
		if err1 != nil || err2 != nil || len(frac) != 9 {
			t.Fatalf("bad time in %q", line)
		}
		got[f[0]] = s*1e9 + n
	}
	return got
}

func now(clk int32) int64 {
	var ts unix.Timespec
	unix.ClockGettime(clk, &ts)
	return ts.Nano()
}

// checkClocks checks a clockProgram's output: the REALTIME family starts
// at start (it ran for less than a minute), by the vDSO and by raw
// syscalls alike; MONOTONIC and BOOTTIME read what the test's own clocks
// read around the run.
func checkClocks(t *testing.T, got map[string]int64, start int64, monoBefore, monoAfter, bootBefore, bootAfter int64) {
	t.Helper()
	lo, hi := start*1e9, (start+60)*1e9
	for _, name := range []string{"realtime", "realtime_coarse", "gettimeofday", "time", "raw_realtime", "raw_realtime_coarse", "raw_gettimeofday", "raw_time", "raw_time_tloc"} {
		v, ok := got[name]
		// The coarse clocks and time() may lag the start by a tick.
		if !ok || v < lo-1e9 || v > hi {
			t.Errorf("%s = %d, want within a minute of %d", name, v/1e9, start)
		}
	}
	for _, name := range []string{"tai", "raw_tai"} {
		// TAI runs ahead of UTC by the kernel's TAI offset (0 until NTP
		// sets it; 37 s today).
		if v, ok := got[name]; !ok || v < lo || v > hi+40e9 {
			t.Errorf("%s = %d, want within a minute (and the TAI offset) of %d", name, v/1e9, start)
		}
	}
	for _, c := range []struct {
		name   string
		lo, hi int64
	}{{"monotonic", monoBefore, monoAfter}, {"raw_monotonic", monoBefore, monoAfter}, {"boottime", bootBefore, bootAfter}, {"raw_boottime", bootBefore, bootAfter}} {
		if v := got[c.name]; v < c.lo || v > c.hi {
			t.Errorf("%s = %d, not within the run [%d, %d]: it moved", c.name, v, c.lo, c.hi)
		}
	}
}

// A C program sees the shifted wall clock through libc (the vDSO) and by
// raw syscalls, and the real MONOTONIC and BOOTTIME.
func TestTimeStartCProgram(t *testing.T) {
	prog := cProgram(t, "clocks", clockProgram)
	for _, ts := range timeStarts {
		mb, bb := now(unix.CLOCK_MONOTONIC), now(unix.CLOCK_BOOTTIME)
		res := run(t, timeSandbox(ts.spec, filepath.Dir(prog)), prog)
		ma, ba := now(unix.CLOCK_MONOTONIC), now(unix.CLOCK_BOOTTIME)
		if res.ExitCode != 0 {
			t.Fatalf("exit %d: %s", res.ExitCode, res.Stderr)
		}
		checkClocks(t, parseClocks(t, res.Stdout), ts.unix, mb, ma, bb, ba)
	}
	// Without TimeStart: the real clock.
	res := run(t, timeSandbox("", filepath.Dir(prog)), prog)
	got := parseClocks(t, res.Stdout)
	if real := time.Now().Unix(); got["realtime"]/1e9 < real-60 || got["raw_realtime"]/1e9 > real {
		t.Errorf("without TimeStart: %d / %d, want about %d", got["realtime"]/1e9, got["raw_realtime"]/1e9, real)
	}
}

// goClockProgram is a Go program (built static, CGO_ENABLED=0): its runtime
// reads the clock through the vDSO it finds itself.
const goClockProgram = `package main

import (
	"fmt"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	fmt.Println("year", time.Now().Year())
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 0, uintptr(unsafe.Pointer(&ts)), 0)
	fmt.Println("raw", ts.Sec)
	t0 := time.Now()
	time.Sleep(100 * time.Millisecond)
	fmt.Println("slept", time.Since(t0) >= 100*time.Millisecond && time.Since(t0) < 10*time.Second)
}
`

// A static Go binary sees the shifted year (its runtime parses the vDSO
// itself) and by a raw syscall, and its timers (monotonic) still fire.
func TestTimeStartStaticGo(t *testing.T) {
	prog := goProgram(t, "goclock", goClockProgram)
	if out, _ := exec.Command("file", prog).Output(); len(out) > 0 && !strings.Contains(string(out), "statically linked") {
		t.Fatalf("not a static binary: %s", out)
	}
	for _, ts := range timeStarts {
		res := run(t, timeSandbox(ts.spec, filepath.Dir(prog)), prog)
		want := fmt.Sprintf("year %s\nraw %d\nslept true\n", ts.year, ts.unix)
		if res.ExitCode != 0 || !strings.HasPrefix(string(res.Stdout), "year "+ts.year+"\nraw ") || !strings.HasSuffix(string(res.Stdout), "slept true\n") {
			t.Errorf("TimeStart %s: exit %d stdout %q stderr %q, want like %q", ts.spec, res.ExitCode, res.Stdout, res.Stderr, want)
			continue
		}
		raw, _ := strconv.ParseInt(strings.Fields(strings.Split(string(res.Stdout), "\n")[1])[1], 10, 64)
		if raw < ts.unix || raw > ts.unix+60 {
			t.Errorf("TimeStart %s: raw clock_gettime %d", ts.spec, raw)
		}
	}
}

// Python sees the shifted clock; its time.sleep (an absolute MONOTONIC
// deadline since 3.11) returns on time whatever the wall clock says.
func TestTimeStartPython(t *testing.T) {
	for _, ts := range timeStarts {
		out := py(t, timeSandbox(ts.spec), `
import time, datetime
t0 = time.monotonic()
time.sleep(0.2)
el = time.monotonic() - t0
print(datetime.datetime.now(datetime.timezone.utc).year, int(time.time()), el >= 0.2 and el < 3)`)
		f := strings.Fields(out)
		if len(f) != 3 || f[0] != ts.year || f[2] != "True" {
			t.Errorf("TimeStart %s: %q", ts.spec, out)
			continue
		}
		if sec, _ := strconv.ParseInt(f[1], 10, 64); sec < ts.unix || sec > ts.unix+60 {
			t.Errorf("TimeStart %s: time.time() %s", ts.spec, f[1])
		}
	}
}

// Setting the clock is refused, also to root with TimeStart.
func TestTimeStartClockSettime(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test runs as root (the machine's tests do)")
	}
	prog := cProgram(t, "settime", `
#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <sys/time.h>
int main(void) {
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int r1 = clock_settime(CLOCK_REALTIME, &ts);
	int e1 = errno;
	struct timeval tv = {ts.tv_sec, 0};
	int r2 = settimeofday(&tv, NULL);
	int e2 = errno;
	printf("%d %d %d %d\n", r1, e1 == EPERM, r2, e2 == EPERM);
	return 0;
}`)
	for _, start := range []string{"", timeStarts[0].spec} {
		sb := timeSandbox(start, filepath.Dir(prog))
		sb.KeepCaps = true // root with its capabilities: the filter still refuses
		res := run(t, sb, prog)
		if got := strings.TrimSpace(string(res.Stdout)); got != "-1 1 -1 1" {
			t.Errorf("TimeStart %q: %q (stderr %q), want both refused with EPERM", start, got, res.Stderr)
		}
	}
	if y := time.Now().Year(); y < 2020 || y > 2099 {
		t.Errorf("the host's clock moved: year %d", y)
	}
}

// deadlineProgram waits for absolute deadlines of every kind, 200 ms
// ahead of the wall clock it reads, and reports how long each took by the
// monotonic clock, and whether its own deadline struct was left as it was.
const deadlineProgram = `
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <mqueue.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef FUTEX_LOCK_PI2
#define FUTEX_LOCK_PI2 13
#endif
#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#ifndef SYS_futex_wait
#define SYS_futex_wait 455
#endif
struct waitv { uint64_t val, uaddr; uint32_t flags, reserved; };

static double mono(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static struct timespec after(clockid_t clk, long ms) {
	struct timespec t;
	clock_gettime(clk, &t);
	t.tv_nsec += ms * 1000000L;
	while (t.tv_nsec >= 1000000000L) { t.tv_nsec -= 1000000000L; t.tv_sec++; }
	return t;
}

static double t0;
static struct timespec copy;
static void begin(struct timespec *dl) { if (dl) copy = *dl; t0 = mono(); }
static void report(const char *name, long r, struct timespec *dl) {
	int e = errno;
	int same = dl == NULL || memcmp(dl, &copy, sizeof copy) == 0;
	printf("%s %.3f %ld %s %s\n", name, mono() - t0, r, r < 0 ? strerror(e) : "-", same ? "same" : "changed");
	fflush(stdout);
}

static int word, pi_word, pi_word2;
static pthread_mutex_t pi_mutex;
static pthread_barrier_t barrier;
static void *hold_pi(void *arg) {
	pthread_mutex_lock(&pi_mutex);
	__atomic_store_n(&pi_word, (int)syscall(SYS_gettid), __ATOMIC_SEQ_CST);
	pthread_barrier_wait(&barrier);
	pthread_barrier_wait(&barrier); /* until the main thread is done */
	pthread_mutex_unlock(&pi_mutex);
	return NULL;
}

int main(void) {
	struct timespec dl;
	long r;
	alarm(30);

	dl = after(CLOCK_REALTIME, 200); begin(&dl);
	r = clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &dl, NULL); report("clock_nanosleep", r ? -1 : 0, &dl);
	dl = after(CLOCK_REALTIME, 200); begin(&dl);
	r = syscall(SYS_clock_nanosleep, CLOCK_REALTIME, TIMER_ABSTIME, &dl, NULL); report("clock_nanosleep_raw", r, &dl);
	dl = after(CLOCK_TAI, 200); begin(&dl);
	r = clock_nanosleep(CLOCK_TAI, TIMER_ABSTIME, &dl, NULL); report("clock_nanosleep_tai", r ? -1 : 0, &dl);
	dl = after(CLOCK_MONOTONIC, 200); begin(&dl);
	r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &dl, NULL); report("clock_nanosleep_monotonic", r ? -1 : 0, &dl);
	dl.tv_sec = 0; dl.tv_nsec = 200000000; begin(&dl);
	r = clock_nanosleep(CLOCK_REALTIME, 0, &dl, NULL); report("clock_nanosleep_relative", r ? -1 : 0, &dl);

	/* A periodic loop reusing its deadline: 5 x 100 ms. */
	dl = after(CLOCK_REALTIME, 0); begin(NULL);
	for (int i = 0; i < 5; i++) {
		dl.tv_nsec += 100000000L;
		if (dl.tv_nsec >= 1000000000L) { dl.tv_nsec -= 1000000000L; dl.tv_sec++; }
		if (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &dl, NULL)) break;
	}
	report("periodic_5x100ms", 0, NULL);

	/* Stopped and continued mid-sleep: the kernel restarts the call with
	 * the program's own registers, converted afresh. */
	dl = after(CLOCK_REALTIME, 300); begin(&dl);
	pid_t child = fork();
	if (child == 0) {
		usleep(50000); kill(getppid(), SIGSTOP);
		usleep(50000); kill(getppid(), SIGCONT);
		_exit(0);
	}
	r = clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &dl, NULL); report("clock_nanosleep_stopped_300ms", r ? -1 : 0, &dl);
	waitpid(child, NULL, 0);

	struct itimerspec its = {0};
	int tfd = timerfd_create(CLOCK_REALTIME, 0);
	its.it_value = after(CLOCK_REALTIME, 200); begin(&its.it_value);
	timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
	uint64_t ticks;
	r = read(tfd, &ticks, 8); report("timerfd", r == 8 ? 0 : -1, &its.it_value);
	close(tfd);
	tfd = timerfd_create(CLOCK_MONOTONIC, 0);
	its.it_value = after(CLOCK_MONOTONIC, 200); begin(&its.it_value);
	timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
	r = read(tfd, &ticks, 8); report("timerfd_monotonic", r == 8 ? 0 : -1, &its.it_value);
	close(tfd);

	sigset_t set;
	sigemptyset(&set); sigaddset(&set, SIGRTMIN);
	sigprocmask(SIG_BLOCK, &set, NULL);
	struct sigevent sev = {0};
	sev.sigev_notify = SIGEV_SIGNAL; sev.sigev_signo = SIGRTMIN;
	timer_t tm;
	timer_create(CLOCK_MONOTONIC, &sev, &tm); /* a first timer: the one under test is not ID 0 */
	timer_create(CLOCK_REALTIME, &sev, &tm);
	its.it_value = after(CLOCK_REALTIME, 200); begin(&its.it_value);
	timer_settime(tm, TIMER_ABSTIME, &its, NULL);
	r = sigwaitinfo(&set, NULL); report("timer_settime", r == SIGRTMIN ? 0 : -1, &its.it_value);

	pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&mu);
	dl = after(CLOCK_REALTIME, 200); begin(&dl);
	r = pthread_cond_timedwait(&cond, &mu, &dl); report("pthread_cond_timedwait", r == ETIMEDOUT ? 0 : -1, &dl);
	pthread_mutex_unlock(&mu);

	sem_t sem;
	sem_init(&sem, 0, 0);
	dl = after(CLOCK_REALTIME, 200); begin(&dl);
	r = sem_timedwait(&sem, &dl); report("sem_timedwait", r == -1 && errno == ETIMEDOUT ? 0 : -1, &dl);

	dl = after(CLOCK_REALTIME, 200); begin(&dl);
	r = syscall(SYS_futex, &word, FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME, 0, &dl, NULL, FUTEX_BITSET_MATCH_ANY);
	report("futex_wait_bitset", r == -1 && errno == ETIMEDOUT ? 0 : -1, &dl);

	/* PI futexes: a thread holds the lock. */
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setprotocol(&ma, PTHREAD_PRIO_INHERIT);
	pthread_mutex_init(&pi_mutex, &ma);
	pthread_barrier_init(&barrier, NULL, 2);
	pthread_t th;
	pthread_create(&th, NULL, hold_pi, NULL);
	pthread_barrier_wait(&barrier);
	dl = after(CLOCK_REALTIME, 200); begin(&dl);
	r = pthread_mutex_timedlock(&pi_mutex, &dl); report("pthread_mutex_timedlock_pi", r == ETIMEDOUT ? 0 : -1, &dl);
	dl = after(CLOCK_REALTIME, 200); begin(&dl);
	r = syscall(SYS_futex, &pi_word, FUTEX_LOCK_PI, 0, &dl, NULL, 0);
	report("futex_lock_pi", r == -1 && errno == ETIMEDOUT ? 0 : -1, &dl);
	dl = after(CLOCK_REALTIME, 200); begin(&dl);
	r = syscall(SYS_futex, &pi_word, FUTEX_LOCK_PI2 | FUTEX_CLOCK_REALTIME, 0, &dl, NULL, 0);
	report("futex_lock_pi2", r == -1 && errno == ETIMEDOUT ? 0 : -1, &dl);
	pthread_barrier_wait(&barrier);
	pthread_join(th, NULL);

	dl = after(CLOCK_REALTIME, 200); begin(&dl);
	r = syscall(SYS_futex, &word, FUTEX_WAIT_REQUEUE_PI | FUTEX_CLOCK_REALTIME, 0, &dl, &pi_word2, 0);
	report("futex_wait_requeue_pi", r == -1 && errno == ETIMEDOUT ? 0 : -1, &dl);

	struct waitv w = {0, (uint64_t)(uintptr_t)&word, 2 /* FUTEX2_SIZE_U32 */, 0};
	dl = after(CLOCK_REALTIME, 200); begin(&dl);
	r = syscall(SYS_futex_waitv, &w, 1, 0, &dl, CLOCK_REALTIME);
	report("futex_waitv", r == -1 && errno == ETIMEDOUT ? 0 : -1, &dl);

	/* futex2's futex_wait: an absolute timeout on the clock it names. */
	dl = after(CLOCK_REALTIME, 200); begin(&dl);
	r = syscall(SYS_futex_wait, &word, 0, 0xffffffffUL, 2 /* FUTEX2_SIZE_U32 */ | 128 /* FUTEX2_PRIVATE */, &dl, CLOCK_REALTIME);
	report("futex_wait", r == -1 && errno == ETIMEDOUT ? 0 : -1, &dl);

	char name[64];
	snprintf(name, sizeof name, "/sandlock-det-%d", getpid());
	struct mq_attr attr = {0};
	attr.mq_maxmsg = 1; attr.mq_msgsize = 16;
	mqd_t q = mq_open(name, O_CREAT | O_RDWR, 0600, &attr);
	if (q == (mqd_t)-1) {
		/* Landlock refuses POSIX message queues: their files live on the
		 * mqueue file system's internal mount, under no rule. */
		printf("mq_open unavailable %s\n", strerror(errno));
		return 0;
	}
	mq_unlink(name);
	char msg[16] = "x";
	dl = after(CLOCK_REALTIME, 200); begin(&dl);
	r = mq_timedreceive(q, msg, sizeof msg, NULL, &dl); report("mq_timedreceive", r == -1 && errno == ETIMEDOUT ? 0 : -1, &dl);
	mq_send(q, msg, 1, 0);
	dl = after(CLOCK_REALTIME, 200); begin(&dl);
	r = mq_timedsend(q, msg, 1, 0, &dl); report("mq_timedsend", r == -1 && errno == ETIMEDOUT ? 0 : -1, &dl);
	return 0;
}
`

// Every absolute deadline on a REALTIME-family clock fires on time under
// a shifted clock, in the past or in the future; the program's own
// deadline struct is never written (a loop reusing it does not drift);
// relative and MONOTONIC deadlines are untouched. (POSIX message queues
// cannot be opened under Landlock: TestTimeStartMessageQueues hands the
// program a queue opened outside; here mq_open's refusal is expected.)
func TestTimeStartDeadlines(t *testing.T) {
	prog := cProgram(t, "deadlines", deadlineProgram)
	wants := map[string][2]float64{"periodic_5x100ms": {0.3, 3}, "clock_nanosleep_stopped_300ms": {0.25, 3}}
	for _, start := range append([]string{""}, timeStarts[0].spec, timeStarts[1].spec) {
		res := run(t, timeSandbox(start, filepath.Dir(prog)), prog)
		if res.ExitCode != 0 {
			t.Errorf("TimeStart %q: exit %d (%v) stdout %q stderr %q", start, res.ExitCode, res.Reason, res.Stdout, res.Stderr)
			continue
		}
		seen, want := 0, 21
		for _, line := range strings.Split(strings.TrimSpace(string(res.Stdout)), "\n") {
			if line == "mq_open unavailable Permission denied" {
				want = 19
				continue
			}
			f := strings.Fields(line)
			if len(f) < 5 {
				t.Errorf("TimeStart %q: bad line %q", start, line)
				continue
			}
			seen++
			el, _ := strconv.ParseFloat(f[1], 64)
			band, ok := wants[f[0]]
			if !ok {
				band = [2]float64{0.15, 3}
			}
			if f[2] != "0" || el < band[0] || el > band[1] || f[len(f)-1] != "same" {
				t.Errorf("TimeStart %q: %s: took %.3f s (want %.2f–%.0f s), result %s %s, deadline struct %s",
					start, f[0], el, band[0], band[1], f[2], strings.Join(f[3:len(f)-1], " "), f[len(f)-1])
			}
		}
		if seen != want {
			t.Errorf("TimeStart %q: %d cases reported, want %d:\n%s", start, seen, want, res.Stdout)
		}
	}
}

// Bad values are refused before anything runs, naming the field; the
// feature needs the supervisor.
func TestTimeStartErrors(t *testing.T) {
	for _, v := range []string{"yesterday", "2000-13-01T00:00:00Z", "-5", "1e9", "99999999999999", "1969-12-31T23:59:59Z"} {
		_, err := timeSandbox(v).Run(ctxT(t), "true")
		var fe *sandlock.FieldError
		if !errors.As(err, &fe) || fe.Field != "TimeStart" {
			t.Errorf("TimeStart %q: %v, want a FieldError for TimeStart", v, err)
		}
	}
	sb := timeSandbox(timeStarts[0].spec)
	sb.NoSupervisor = true
	if _, err := sb.Run(ctxT(t), "true"); err == nil || !strings.Contains(err.Error(), "TimeStart") {
		t.Errorf("TimeStart with NoSupervisor: %v", err)
	}
	for _, v := range []string{"2000-01-01T00:00:00.5+02:00", "946684800", "946684800.25"} {
		if res := run(t, timeSandbox(v), "true"); res.ExitCode != 0 {
			t.Errorf("TimeStart %q: exit %d", v, res.ExitCode)
		}
	}
}

// The CLI flag and the profile key.
func TestTimeStartCLI(t *testing.T) {
	code, out, stderr := cli(t, append(append([]string{"run"}, readArgs()...), "--time-start", "2000-06-01T00:00:00Z", "--", "date", "-u", "+%Y-%m")...)
	if code != 0 || out != "2000-06\n" {
		t.Errorf("--time-start: exit %d stdout %q stderr %q", code, out, stderr)
	}
	code, _, stderr = cli(t, append(append([]string{"run"}, readArgs()...), "--time-start", "soon", "--", "true")...)
	if code == 0 || !strings.Contains(stderr, "--time-start") {
		t.Errorf("--time-start soon: exit %d stderr %q", code, stderr)
	}
	dir := tempDir(t)
	prof := filepath.Join(dir, "p.toml")
	os.WriteFile(prof, []byte("[determinism]\ntime_start = \"2000-06-01T00:00:00Z\"\n"), 0o644)
	code, out, stderr = cli(t, append(append([]string{"run", "--profile-file", prof}, readArgs()...), "--", "date", "-u", "+%Y")...)
	if code != 0 || out != "2000\n" {
		t.Errorf("[determinism] time_start: exit %d stdout %q stderr %q", code, out, stderr)
	}
}

// Under TimeStart, the served /proc/stat's btime is as far before the
// shifted clock as the host's boot is before the real one, so that tools
// computing start times from it (ps, uptime) agree with the clock; without
// TimeStart it is the host's.
func TestTimeStartBootTime(t *testing.T) {
	hostBoot := func() int64 {
		b, err := os.ReadFile("/proc/stat")
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "btime "); ok {
				n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
		}
		t.Fatal("no btime in /proc/stat")
		return 0
	}()
	btime := func(sb *sandlock.Sandbox) int64 {
		res := sh(t, sb, `awk '/^btime /{print $2}' /proc/stat; date +%s`)
		f := strings.Fields(string(res.Stdout))
		if res.ExitCode != 0 || len(f) != 2 {
			t.Fatalf("exit %d stdout %q stderr %q", res.ExitCode, res.Stdout, res.Stderr)
		}
		b, _ := strconv.ParseInt(f[0], 10, 64)
		now, _ := strconv.ParseInt(f[1], 10, 64)
		// The uptime the program would compute: its clock minus btime.
		if up := time.Since(time.Unix(hostBoot, 0)).Seconds(); math.Abs(float64(now-b)-up) > 10 {
			t.Errorf("now %d - btime %d = %d s of uptime, the host has been up %.0f s", now, b, now-b, up)
		}
		return b
	}
	for _, ts := range timeStarts {
		if b := btime(timeSandbox(ts.spec, "/proc")); b >= ts.unix || b < ts.unix-int64(time.Since(time.Unix(hostBoot, 0)).Seconds())-10 {
			t.Errorf("TimeStart %s: btime %d, want shortly before %d", ts.spec, b, ts.unix)
		}
	}
	sb := base()
	sb.FSReadable = append(sb.FSReadable, "/proc")
	if b := btime(sb); b != hostBoot {
		t.Errorf("without TimeStart: btime %d, want the host's %d", b, hostBoot)
	}
}
