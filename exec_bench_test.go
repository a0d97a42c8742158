//go:build linux

package sandlock_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sandlock-go/sandlock"
	"github.com/sandlock-go/sandlock/internal/session"
	"github.com/sandlock-go/sandlock/internal/tracer"
)

// execHooks are the two cases of the exec-stop benchmarks: no hook (no
// stop) and an empty hook (one stop per exec, resumed at once).
var execHooks = []struct {
	name string
	hook func(*tracer.ExecStop)
}{
	{"none", nil},
	{"empty", func(*tracer.ExecStop) {}},
}

// withExecHook registers hook (if any) on sb's runs and counts their exec
// stops into *stops.
func withExecHook(sb *sandlock.Sandbox, hook func(*tracer.ExecStop), stops *uint64) (remove func()) {
	return sandlock.WithTestSession(sb, func(sess *session.Session) {
		if hook != nil {
			sess.OnExec(hook)
		}
		sess.OnEnd(func() { *stops += sess.ExecStops() })
	})
}

// BenchmarkExecStop is the cost of the exec stop as a shell sees it:
// /bin/true run 200 times (fork, exec, wait), without and with a hook. The
// difference of the µs/exec figures is the stop's price per exec (each run
// also includes the sandbox's start and the shell's).
func BenchmarkExecStop(b *testing.B) {
	const script = `for i in $(seq 200); do /bin/true; done`
	for _, tc := range execHooks {
		b.Run("hook="+tc.name, func(b *testing.B) {
			sb := base()
			var stops uint64
			defer withExecHook(sb, tc.hook, &stops)()
			for i := 0; i < b.N; i++ {
				res, err := sb.Run(context.Background(), "/bin/sh", "-c", script)
				if err != nil || res.ExitCode != 0 {
					b.Fatalf("%v %v", err, res)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/200, "µs/exec")
			b.ReportMetric(float64(stops)/float64(b.N), "stops/run")
		})
	}
}

// forkExecLoopSrc runs argv[2] argv[1] times (fork, exec, wait) and prints
// the mean time of one, in microseconds, measured inside the process.
const forkExecLoopSrc = `#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
	int n = atoi(argv[1]), st;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			execv(argv[2], &argv[2]);
			_exit(127);
		}
		waitpid(pid, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.2f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n / 1e3);
	return 0;
}
`

// BenchmarkForkExec is fork+exec+wait of /bin/true timed inside the
// sandboxed program, without and with an exec hook: the per-exec figure
// without the sandbox's start.
func BenchmarkForkExec(b *testing.B) {
	dir := b.TempDir()
	prog := filepath.Join(dir, "forkexec")
	if err := os.WriteFile(prog+".c", []byte(forkExecLoopSrc), 0o644); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command("gcc", "-O2", "-o", prog, prog+".c").CombinedOutput(); err != nil {
		b.Fatalf("gcc: %v\n%s", err, out)
	}
	for _, tc := range execHooks {
		b.Run("hook="+tc.name, func(b *testing.B) {
			sb := base()
			sb.FSReadable = append(sb.FSReadable, dir)
			var stops uint64
			defer withExecHook(sb, tc.hook, &stops)()
			n := max(b.N, 500)
			res, err := sb.Run(context.Background(), prog, strconv.Itoa(n), "/bin/true")
			if err != nil || res.ExitCode != 0 {
				b.Fatalf("%v %v", err, res)
			}
			us, err := strconv.ParseFloat(strings.TrimSpace(string(res.Stdout)), 64)
			if err != nil {
				b.Fatalf("printed %q", res.Stdout)
			}
			b.ReportMetric(us, "µs/exec")
			b.ReportMetric(float64(stops)-1, "stops/run")
			b.ReportMetric(0, "ns/op")
		})
	}
}
