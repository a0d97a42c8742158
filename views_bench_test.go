//go:build linux

package sandlock_test

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/sandlock-go/sandlock"
)

// openLoop is a Python program that opens and closes a file n times and
// prints the mean time of one, in microseconds, measured inside the
// process so that start-up does not hide the per-open cost.
const openLoop = `
import sys, time
n = int(sys.argv[1])
t = time.perf_counter()
for _ in range(n): open("/usr/lib/os-release").close()
print((time.perf_counter() - t) * 1e6 / n)
`

// perOpen runs the loop in sb (nil: bare) and returns µs per open.
func perOpen(b *testing.B, sb *sandlock.Sandbox, n int, handlers ...sandlock.SyscallHandler) float64 {
	b.Helper()
	argv := []string{python, "-c", openLoop, strconv.Itoa(n)}
	var out []byte
	if sb == nil {
		var err error
		if out, err = exec.Command(argv[0], argv[1:]...).Output(); err != nil {
			b.Fatal(err)
		}
	} else {
		res, err := sb.RunWithHandlers(context.Background(), argv, handlers...)
		if err != nil {
			b.Fatal(err)
		}
		if res.ExitCode != 0 {
			b.Fatalf("python: %s", res.Stderr)
		}
		out = res.Stdout
	}
	us, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		b.Fatalf("python printed %q", out)
	}
	return us
}

// BenchmarkOpenLoop is 20k open+close of one file: bare; in a sandbox
// without /proc (nothing notified); in one whose grants cover /proc (the
// served view: every open notified and resolved by the supervisor); with
// -r / (served, and the carved root); and, for scale, with a user handler
// that answers Continue on openat (the bare notification round trip).
func BenchmarkOpenLoop(b *testing.B) {
	const n = 20000
	openat, _ := sandlock.SyscallNr("openat")
	cont := sandlock.SyscallHandler{Syscall: int64(openat), Handler: sandlock.HandlerFunc(
		func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action { return sandlock.Continue() })}
	withProc := base()
	withProc.FSReadable = append(withProc.FSReadable, "/proc")
	root := &sandlock.Sandbox{FSReadable: []string{"/"}}
	for _, c := range []struct {
		name     string
		sb       *sandlock.Sandbox
		handlers []sandlock.SyscallHandler
	}{
		{"bare", nil, nil},
		{"sandbox", base(), nil},
		{"served", withProc, nil},
		{"served-root", root, nil},
		{"continue-handler", base(), []sandlock.SyscallHandler{cont}},
		{"root-none", &sandlock.Sandbox{FSReadable: []string{"/"}, ProcView: sandlock.ProcViewNone}, nil},
		{"root-host", &sandlock.Sandbox{FSReadable: []string{"/"}, ProcView: sandlock.ProcViewHost}, nil},
	} {
		b.Run(c.name, func(b *testing.B) {
			var sum float64
			for range b.N {
				sum += perOpen(b, c.sb, n, c.handlers...)
			}
			b.ReportMetric(sum/float64(b.N), "µs/open")
			b.ReportMetric(0, "ns/op")
		})
	}
}
