//go:build linux

package sandlock_test

// Signals and load change nothing (issue 12): a notified syscall that a
// signal interrupts before the supervisor has received it is restarted, as
// the native syscall would not have been interrupted; one that can natively
// fail with EINTR still does once it runs in the kernel.

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sandlock-go/sandlock"
)

// signalStormSrc runs an operation in a loop on the main thread while a
// second thread sends it SIGUSR1 about every 100 µs; the handler has no
// SA_RESTART, so an interrupted syscall would fail with EINTR. It prints
// how many calls succeeded, failed with EINTR, or failed otherwise.
const signalStormSrc = `
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got;
static volatile int stop;
static pid_t main_tid;

static void handler(int sig) { (void)sig; got++; }

static void *storm(void *arg) {
	(void)arg;
	while (!stop) {
		syscall(SYS_tgkill, getpid(), main_tid, SIGUSR1);
		usleep(100);
	}
	return NULL;
}

int main(int argc, char **argv) {
	if (argc != 3) return 2;
	int n = atoi(argv[2]);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART */
	sigaction(SIGUSR1, &sa, NULL);
	main_tid = syscall(SYS_gettid);
	pthread_t th;
	if (pthread_create(&th, NULL, storm, NULL) != 0) return 3;
	int ok = 0, eintr = 0, other = 0, lasterr = 0;
	for (int i = 0; i < n; i++) {
		if (strcmp(argv[1], "fork") == 0) {
			pid_t p = fork();
			if (p == 0) _exit(0);
			if (p < 0) { if (errno == EINTR) eintr++; else { other++; lasterr = errno; } continue; }
			ok++;
			while (waitpid(p, NULL, 0) < 0 && errno == EINTR) {}
		} else {
			void *m = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (m == MAP_FAILED) { if (errno == EINTR) eintr++; else { other++; lasterr = errno; } continue; }
			ok++;
			memset(m, 1, 4096);
			munmap(m, 65536);
		}
	}
	stop = 1;
	pthread_join(th, NULL);
	printf("ok=%d eintr=%d other=%d lasterr=%d signals=%d\n", ok, eintr, other, lasterr, (int)got);
	return 0;
}
`

var stormLine = regexp.MustCompile(`^ok=(\d+) eintr=(\d+) other=(\d+) lasterr=(\d+) signals=(\d+)\n$`)

// stormCounts parses signalStormSrc's line.
func stormCounts(t *testing.T, what string, out []byte) (ok, eintr, other, signals int) {
	t.Helper()
	m := stormLine.FindSubmatch(out)
	if m == nil {
		t.Fatalf("%s: unexpected output %q", what, out)
	}
	n := func(i int) int { v, _ := strconv.Atoi(string(m[i])); return v }
	return n(1), n(2), n(3), n(5)
}

func TestSignalStormNotifiedSyscalls(t *testing.T) {
	prog := cProgram(t, "signalstorm", signalStormSrc)
	cases := []struct {
		op, n string
		sb    func() *sandlock.Sandbox
	}{
		{"fork", "3000", base}, // fork is notified in every sandbox
		{"mmap", "30000", func() *sandlock.Sandbox { sb := base(); sb.MaxMemory = "256M"; return sb }}, // mmap is notified under a memory limit
	}
	for _, c := range cases {
		t.Run(c.op, func(t *testing.T) {
			// Natively, neither fails with EINTR.
			out, err := exec.Command(prog, c.op, c.n).Output()
			if err != nil {
				t.Fatal(err)
			}
			if _, eintr, other, _ := stormCounts(t, "native", out); eintr != 0 || other != 0 {
				t.Fatalf("native run: %q", out)
			}
			sb := c.sb()
			sb.FSReadable = append(sb.FSReadable, filepath.Dir(prog))
			res := run(t, sb, prog, c.op, c.n)
			if res.ExitCode != 0 {
				t.Fatalf("exit %d, stderr %s", res.ExitCode, res.Stderr)
			}
			ok, eintr, other, signals := stormCounts(t, "sandboxed", res.Stdout)
			if eintr != 0 || other != 0 || strconv.Itoa(ok) != c.n {
				t.Errorf("sandboxed %s under a signal storm: %q", c.op, res.Stdout)
			}
			if signals == 0 {
				t.Errorf("no signal was delivered: %q", res.Stdout)
			}
		})
	}
}

// TestShellPipelinesNeverFailToFork runs many short pipelines: dash's
// SIGCHLD handler has no SA_RESTART, so a fork notified while a child's
// SIGCHLD arrives used to fail with "Cannot fork".
func TestShellPipelinesNeverFailToFork(t *testing.T) {
	const runs = 300
	var wg sync.WaitGroup
	errs := make(chan string, runs)
	sem := make(chan struct{}, 4)
	for i := 0; i < runs; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			res, err := base().Run(context.Background(), "/bin/sh", "-c", "seq 1 2000 | sort -rn | head -1")
			switch {
			case err != nil:
				errs <- err.Error()
			case string(res.Stdout) != "2000\n" || res.ExitCode != 0 || len(res.Stderr) != 0:
				errs <- fmt.Sprintf("exit %d stdout %q stderr %q", res.ExitCode, res.Stdout, res.Stderr)
			}
		}()
	}
	wg.Wait()
	close(errs)
	var failed []string
	for e := range errs {
		failed = append(failed, e)
	}
	if len(failed) > 0 {
		t.Errorf("%d of %d pipelines failed, e.g. %s", len(failed), runs, failed[0])
	}
}

// blockingReadSrc blocks in read(2) on a pipe nobody writes while a timer
// interrupts it every 50 ms with a handler without SA_RESTART: natively the
// read fails with EINTR, which it prints.
const blockingReadSrc = `
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static void handler(int sig) { (void)sig; }

int main(void) {
	int p[2];
	if (pipe(p) != 0) return 2;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = {{0, 50000}, {0, 50000}};
	setitimer(ITIMER_REAL, &it, NULL);
	char c;
	ssize_t n = read(p[0], &c, 1);
	printf("read=%zd %s\n", n, n < 0 ? strerror(errno) : "");
	return 0;
}
`

// TestInterruptibleSyscallKeepsNativeEINTR continues a blocking read from
// a user handler: once it runs in the kernel, a signal interrupts it as it
// would natively.
func TestInterruptibleSyscallKeepsNativeEINTR(t *testing.T) {
	prog := cProgram(t, "blockingread", blockingReadSrc)
	sb := base()
	sb.FSReadable = append(sb.FSReadable, filepath.Dir(prog))
	read := hdl(t, "read", func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
		return sandlock.Continue()
	})
	res, err := sb.RunWithHandlers(ctxT(t), []string{prog}, read)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(res.Stdout)); got != "read=-1 Interrupted system call" {
		t.Errorf("a continued blocking read under SIGALRM: %q (stderr %s)", got, res.Stderr)
	}
}
