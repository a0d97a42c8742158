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
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Deterministic runs (issue 15): the absolute deadlines of POSIX message
// queues. A sandboxed program cannot mq_open (Landlock refuses the files
// of the mqueue file system's internal mount, which no rule can name), so
// the test opens the queue itself and hands the program the descriptor as
// its standard input, the way a queue reaches a sandboxed program at all.

// mqProgram waits on the queue at fd 0: mq_timedreceive on the empty
// queue, then mq_timedsend on the full one (one message at most), each
// with a deadline 200 ms ahead of the wall clock it reads; it reports how
// long each took by the monotonic clock, and whether its deadline struct
// was left as it was. A deadline at the epoch (long past in either clock's
// domain) must time out rather than block.
const mqProgram = `
#define _GNU_SOURCE
#include <errno.h>
#include <mqueue.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double mono(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static struct timespec after(long ms) {
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_nsec += ms * 1000000L;
	while (t.tv_nsec >= 1000000000L) { t.tv_nsec -= 1000000000L; t.tv_sec++; }
	return t;
}

static void report(const char *name, double t0, long r, const struct timespec *dl, const struct timespec *copy) {
	int e = errno;
	printf("%s %.3f %s %s\n", name, mono() - t0, r == -1 && e == ETIMEDOUT ? "ETIMEDOUT" : "other",
		memcmp(dl, copy, sizeof *dl) == 0 ? "same" : "changed");
}

int main(void) {
	mqd_t q = 0;
	char msg[16] = "x";
	struct timespec dl, copy;
	double t0;
	long r;
	alarm(30);

	dl = after(200); copy = dl; t0 = mono();
	r = mq_timedreceive(q, msg, sizeof msg, NULL, &dl);
	report("mq_timedreceive", t0, r, &dl, &copy);

	if (mq_send(q, msg, 1, 0) != 0) { perror("mq_send"); return 1; }
	dl = after(200); copy = dl; t0 = mono();
	r = mq_timedsend(q, msg, 1, 0, &dl);
	report("mq_timedsend", t0, r, &dl, &copy);

	/* A deadline of the epoch: long past in every domain. */
	dl.tv_sec = 0; dl.tv_nsec = 0; copy = dl; t0 = mono();
	r = mq_timedsend(q, msg, 1, 0, &dl);
	report("mq_timedsend_epoch", t0, r, &dl, &copy);
	return 0;
}
`

// mqOpen creates an anonymous POSIX message queue of one 16-byte message
// and returns its descriptor as a file.
func mqOpen(t *testing.T) *os.File {
	t.Helper()
	name := fmt.Sprintf("sandlock-det-mq-%d", os.Getpid())
	attr := struct{ flags, maxmsg, msgsize, curmsgs, pad0, pad1, pad2, pad3 int64 }{maxmsg: 1, msgsize: 16}
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		t.Fatal(err)
	}
	fd, _, errno := unix.Syscall6(unix.SYS_MQ_OPEN, uintptr(unsafe.Pointer(p)), unix.O_CREAT|unix.O_EXCL|unix.O_RDWR, 0o600, uintptr(unsafe.Pointer(&attr)), 0, 0)
	if errno != 0 {
		t.Fatalf("mq_open: %v", errno)
	}
	if _, _, errno := unix.Syscall(unix.SYS_MQ_UNLINK, uintptr(unsafe.Pointer(p)), 0, 0); errno != 0 {
		t.Fatalf("mq_unlink: %v", errno)
	}
	f := os.NewFile(fd, "mqueue")
	t.Cleanup(func() { f.Close() })
	return f
}

// mq_timedreceive and mq_timedsend wait until their deadline, 200 ms ahead
// of the shifted wall clock, under a start in the past and in the future,
// and without one; the program's deadline struct is never written; a
// deadline long past times out in every case.
func TestTimeStartMessageQueues(t *testing.T) {
	prog := cProgram(t, "mqdeadlines", mqProgram)
	for _, start := range []string{"", timeStarts[0].spec, timeStarts[1].spec} {
		args := append([]string{"run"}, readArgs()...)
		args = append(args, "-r", filepath.Dir(prog))
		if start != "" {
			args = append(args, "--time-start", start)
		}
		args = append(args, "--", prog)
		cmd := exec.Command(cliBinary, args...)
		cmd.Stdin = mqOpen(t) // a fresh, empty queue for each run
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Errorf("TimeStart %q: %v\nstdout %q\nstderr %q", start, err, stdout.String(), stderr.String())
			continue
		}
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		if len(lines) != 3 {
			t.Errorf("TimeStart %q: output %q (stderr %q)", start, stdout.String(), stderr.String())
			continue
		}
		for i, line := range lines {
			f := strings.Fields(line)
			if len(f) != 4 {
				t.Errorf("TimeStart %q: bad line %q", start, line)
				continue
			}
			el, _ := strconv.ParseFloat(f[1], 64)
			lo, hi := 0.15, 3.0
			if i == 2 {
				lo = 0 // the epoch: due at once (not blocked until the alarm)
			}
			if f[2] != "ETIMEDOUT" || f[3] != "same" || el < lo || el > hi {
				t.Errorf("TimeStart %q: %s took %.3f s (want %.2f–%.1f s), result %s, deadline struct %s", start, f[0], el, lo, hi, f[2], f[3])
			}
		}
	}
}
