//go:build linux

package sandlock_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/sandlock-go/sandlock"
)

// syscallLoop is a Perl program that makes n getppid syscalls and prints
// the mean time of one, in nanoseconds, measured inside the process so that
// start-up does not hide the per-call cost.
const syscallLoop = `use Time::HiRes qw(time); my $n = shift; my $t = time; getppid() for 1..$n; printf "%.1f\n", (time - $t) * 1e9 / $n;`

// perCall runs the loop in sb (with handlers) and returns ns per call.
func perCall(b *testing.B, sb *sandlock.Sandbox, n int, handlers ...sandlock.SyscallHandler) float64 {
	b.Helper()
	res, err := sb.RunWithHandlers(context.Background(), []string{"/usr/bin/perl", "-e", syscallLoop, strconv.Itoa(n)}, handlers...)
	if err != nil {
		b.Fatal(err)
	}
	if res.ExitCode != 0 {
		b.Fatalf("perl: %s", res.Stderr)
	}
	ns, err := strconv.ParseFloat(strings.TrimSpace(string(res.Stdout)), 64)
	if err != nil {
		b.Fatalf("perl printed %q", res.Stdout)
	}
	return ns
}

// BenchmarkNotifiedSyscall is one syscall answered Continue by a user
// handler: the full round trip through the kernel and the supervisor.
func BenchmarkNotifiedSyscall(b *testing.B) {
	nr, _ := sandlock.SyscallNr("getppid")
	h := sandlock.SyscallHandler{Syscall: int64(nr), Handler: sandlock.HandlerFunc(
		func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action { return sandlock.Continue() })}
	ns := perCall(b, base(), max(b.N, 1000), h)
	b.ReportMetric(ns/1000, "µs/call")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkUnnotifiedSyscall is the same syscall in a sandbox that does not
// notify it: the filter's cached verdict only.
func BenchmarkUnnotifiedSyscall(b *testing.B) {
	ns := perCall(b, base(), max(b.N, 1000))
	b.ReportMetric(ns, "ns/call")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkStartTrue is a whole run of /bin/true: validation, the child
// stage, exec, exit and teardown.
func BenchmarkStartTrue(b *testing.B) {
	sb := base()
	for i := 0; i < b.N; i++ {
		res, err := sb.Run(context.Background(), "/bin/true")
		if err != nil || res.ExitCode != 0 {
			b.Fatal(fmt.Sprint(res, err))
		}
	}
}
