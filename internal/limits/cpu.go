package limits

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/sysnum"
)

// ThrottlePeriod is the duty cycle of the CPU throttle.
const ThrottlePeriod = 100 * time.Millisecond

// Throttle holds a sandbox to pct percent of one core: in every period it
// lets it run for pct% of the time and stops it (SIGSTOP) for the rest. It
// returns when ctx is done, leaving the sandbox running.
func Throttle(ctx context.Context, pct int, signal func(syscall.Signal)) {
	run := ThrottlePeriod * time.Duration(pct) / 100
	stop := ThrottlePeriod - run
	t := time.NewTimer(run)
	defer t.Stop()
	stopped := false
	for {
		select {
		case <-ctx.Done():
			if stopped {
				signal(unix.SIGCONT)
			}
			return
		case <-t.C:
		}
		if stopped {
			signal(unix.SIGCONT)
			t.Reset(run)
		} else {
			signal(unix.SIGSTOP)
			t.Reset(stop)
		}
		stopped = !stopped
	}
}

// CPUMask builds a sched_setaffinity mask of cores, checking each against
// the CPUs this process may use.
func CPUMask(cores []uint32) (unix.CPUSet, error) {
	var allowed, mask unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		return mask, err
	}
	for _, c := range cores {
		if int(c) >= len(mask)*64 || !allowed.IsSet(int(c)) {
			return mask, fmt.Errorf("CPU %d is not available to this process (%d CPUs)", c, allowed.Count())
		}
		mask.Set(int(c))
	}
	return mask, nil
}

// NumCPUs makes sched_getaffinity report n CPUs (the first n), so that
// nproc, os.cpu_count-style probes and thread pools size themselves to n.
type NumCPUs struct{ N int }

// Register adds the sched_getaffinity handler.
func (c NumCPUs) Register(t *notify.Table) {
	t.AddBuiltin(sysnum.Native().MustNr("sched_getaffinity"), "num cpus", true, c)
}

// Handle answers sched_getaffinity(pid, len, mask).
func (c NumCPUs) Handle(ctx context.Context, hc *notify.HandlerCtx) notify.Action {
	args := hc.Notif.Data.Args
	// The kernel takes len as an unsigned int.
	mask, errno := c.mask(uint64(uint32(args[1])))
	if errno != 0 {
		return notify.Errno(errno)
	}
	if err := hc.WriteMem(args[2], mask); err != nil {
		return notify.Errno(unix.EFAULT)
	}
	return notify.ReturnValue(int64(len(mask)))
}

// mask is what sched_getaffinity writes for a buffer of length bytes: the
// first N CPUs set, in whole longs as the kernel answers, or EINVAL for a
// buffer too small for N CPUs or not a whole number of longs.
func (c NumCPUs) mask(length uint64) ([]byte, syscall.Errno) {
	size := 8 * ((c.N + 63) / 64)
	if length < uint64(size) || length%8 != 0 {
		return nil, unix.EINVAL
	}
	mask := make([]byte, size)
	for i := 0; i < c.N; i++ {
		mask[i/8] |= 1 << (i % 8)
	}
	return mask, 0
}
