package limits

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"
	"unsafe"

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

// NumCPUs makes sched_getaffinity report n CPUs (the first n, or the first
// n of Pinned when the sandbox is pinned), so that nproc, os.cpu_count-style
// probes and thread pools size themselves to n.
type NumCPUs struct {
	N      int
	Pinned *unix.CPUSet // the sandbox's CPUs, if pinned
}

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
// CPUs reported set, in whole longs as the kernel answers, or EINVAL for a
// buffer too small for them or not a whole number of longs.
func (c NumCPUs) mask(length uint64) ([]byte, syscall.Errno) {
	cpus := c.cpus()
	size := 8 * ((cpus[len(cpus)-1] + 64) / 64)
	if length < uint64(size) || length%8 != 0 {
		return nil, unix.EINVAL
	}
	mask := make([]byte, size)
	for _, i := range cpus {
		mask[i/8] |= 1 << (i % 8)
	}
	return mask, 0
}

// cpus lists the CPUs reported, in order: never more than are pinned.
func (c NumCPUs) cpus() []int {
	var out []int
	for i := 0; len(out) < c.N; i++ {
		if c.Pinned == nil {
			out = append(out, i)
		} else if i >= len(c.Pinned)*64 {
			break
		} else if c.Pinned.IsSet(i) {
			out = append(out, i)
		}
	}
	return out
}

// CPUPin keeps a pinned sandbox on its CPUs: sched_setaffinity on a task of
// the sandbox is narrowed to the pinned CPUs (as a cpuset would), and
// fails with EINVAL if it names none of them.
type CPUPin struct {
	CPUs   unix.CPUSet
	Traced func(tid int) bool
}

// Register adds the sched_setaffinity handler.
func (c *CPUPin) Register(t *notify.Table) {
	t.AddBuiltin(sysnum.Native().MustNr("sched_setaffinity"), "cpu pin", false, c)
}

// Handle serves sched_setaffinity(pid, len, mask) on the program's behalf,
// with the mask narrowed; the mask is read once, so it cannot change
// between the check and the call.
func (c *CPUPin) Handle(ctx context.Context, hc *notify.HandlerCtx) notify.Action {
	args := hc.Notif.Data.Args
	tid := int(int32(args[0]))
	if tid == 0 {
		tid = int(hc.Notif.PID)
	}
	if tid < 0 {
		return notify.Errno(unix.EINVAL)
	}
	if !c.Traced(tid) {
		// Not the sandbox's. The pid gate, which runs first, has refused
		// it already; refusing again keeps this handler closed on its own.
		return notify.Errno(unix.ESRCH)
	}
	var want unix.CPUSet
	n := min(uint64(uint32(args[1])), uint64(unsafe.Sizeof(want)))
	if n == 0 {
		return notify.Errno(unix.EINVAL)
	}
	raw, err := hc.ReadMem(args[2], int(n))
	if err != nil {
		return notify.Errno(unix.EFAULT)
	}
	var got unix.CPUSet
	for i := 0; i < int(n)*8; i++ {
		if raw[i/8]&(1<<(i%8)) != 0 && c.CPUs.IsSet(i) {
			got.Set(i)
		}
	}
	if got.Count() == 0 {
		return notify.Errno(unix.EINVAL)
	}
	if err := notify.TaskAlive(hc); err != nil {
		return notify.Errno(unix.ESRCH)
	}
	if err := unix.SchedSetaffinity(tid, &got); err != nil {
		errno := unix.EPERM
		errors.As(err, &errno)
		return notify.Errno(errno)
	}
	return notify.ReturnValue(0)
}
