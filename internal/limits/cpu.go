//go:build linux

package limits

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/plan"
)

// ThrottlePeriod is the CPU throttle's accounting period: the sandbox may
// run its share of one core per period, and no credit saved while idle
// carries over beyond one period's budget.
const ThrottlePeriod = 100 * time.Millisecond

// Throttle tick bounds: how often the CPU time of a running sandbox is
// read. The tick shrinks as the period's credit runs out, so that the
// overshoot carried into the next period stays about a tick's worth.
const (
	minThrottleTick = 5 * time.Millisecond
	maxThrottleTick = 50 * time.Millisecond
)

// CPUShare holds a sandbox to pct percent of one core in all: the CPU time
// of every process of the sandbox, and of those that have exited, is
// summed; once a period's budget is spent the whole sandbox is stopped
// (SIGSTOP) until the time run over is paid back at the pct rate, then
// continued (SIGCONT). Overshoot is carried into the next period as debt,
// so the share holds over any number of processes and CPUs.
//
// A live process's CPU time is read from its process CPU clock
// (clock_gettime of the clock clock_getcpuclockid names: all its threads,
// those that ended included, in nanoseconds, one syscall). At its exit the
// clock is read once more (a zombie's still reads); if the process is
// already reaped, its time is its wait4 rusage less what its children that
// exited before it reported (they were counted at their own exits), and no
// less than its last reading.
type CPUShare struct {
	pct    int
	procs  func() []int
	signal func(syscall.Signal)
	// cpus is how many CPUs the sandbox can burn at once, for the tick.
	cpus int

	mu       sync.Mutex
	last     map[int]time.Duration // live process → CPU time at its last reading
	parent   map[int]int           // live process → its parent
	children map[int]time.Duration // process → rusage of its children that exited
	total    time.Duration         // CPU time of the sandbox so far
}

// NewCPUShare returns the throttle. procs lists the live processes (the
// tracer's); signal sends a signal to all of them.
func NewCPUShare(pct int, procs func() []int, signal func(syscall.Signal)) *CPUShare {
	return &CPUShare{
		pct: pct, procs: procs, signal: signal, cpus: max(runtime.NumCPU(), 1),
		last: make(map[int]time.Duration), parent: make(map[int]int), children: make(map[int]time.Duration),
	}
}

// Started is called when process pid is first known.
func (c *CPUShare) Started(pid, parent int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.parent[pid] = parent
}

// Exited is called when process pid has exited, with the rusage wait4
// reported for it.
func (c *CPUShare) Exited(pid int, usage *unix.Rusage) {
	now, ok := processCPUTime(pid)
	var both time.Duration
	if usage != nil {
		both = time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	last := c.last[pid]
	if !ok {
		// Reaped already (by the tracer itself, or a quick parent): its
		// own time is its rusage less its children's, counted at their
		// exits.
		now = max(last, both-c.children[pid])
	}
	if now > last {
		c.total += now - last
	}
	if p, ok := c.parent[pid]; ok && p != 0 {
		c.children[p] += both
	}
	delete(c.last, pid)
	delete(c.parent, pid)
	delete(c.children, pid)
}

// Used reads the live processes' CPU clocks and returns the sandbox's CPU
// time so far.
func (c *CPUShare) Used() time.Duration {
	pids := c.procs()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, pid := range pids {
		now, ok := processCPUTime(pid)
		if !ok {
			continue // gone: Exited counts the rest
		}
		if last := c.last[pid]; now > last {
			c.total += now - last
			c.last[pid] = now
		}
	}
	return c.total
}

// Run throttles the sandbox until ctx is done, leaving it running.
func (c *CPUShare) Run(ctx context.Context) {
	rate := float64(c.pct) / 100 // CPU seconds per wall second
	budget := time.Duration(float64(ThrottlePeriod) * rate)
	credit := budget
	used := c.Used()
	lastWall := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	stopped := false
	for {
		var wait time.Duration
		if credit > 0 {
			if stopped {
				c.signal(unix.SIGCONT)
				stopped = false
			}
			// The credit can burn at most this fast.
			wait = min(max(credit/time.Duration(c.cpus), minThrottleTick), maxThrottleTick)
		} else {
			if !stopped {
				c.signal(unix.SIGSTOP)
				stopped = true
			}
			// Paid back at the share's rate.
			wait = max(time.Duration(float64(-credit)/rate), minThrottleTick)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			if stopped {
				c.signal(unix.SIGCONT)
			}
			return
		case <-timer.C:
		}
		now := time.Now()
		total := c.Used()
		credit += time.Duration(float64(now.Sub(lastWall))*rate) - (total - used)
		credit = min(credit, budget)
		used, lastWall = total, now
	}
}

// DutyCycle is the throttle for a sandbox whose processes nobody lists
// (NoSupervisor): in every period it lets the process group run for pct% of
// the time and stops it (SIGSTOP) for the rest. That bounds wall time, not
// CPU time: n busy processes on n CPUs get n times the share. It returns
// when ctx is done, leaving the sandbox running.
func DutyCycle(ctx context.Context, pct int, signal func(syscall.Signal)) {
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

// processCPUTime reads the CPU time of process pid (all its threads) from
// its process CPU clock. Any process's clock may be read; a reaped one's
// is gone.
func processCPUTime(pid int) (time.Duration, bool) {
	// MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED) of the kernel.
	clock := int32(^uint32(pid)<<3) | 2
	var ts unix.Timespec
	if err := unix.ClockGettime(clock, &ts); err != nil {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
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
func (c NumCPUs) Register(b *plan.Builder) {
	b.HandleNamed("sched_getaffinity", plan.Virtualize, "num cpus", true, c)
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
func (c *CPUPin) Register(b *plan.Builder) {
	b.HandleNamed("sched_setaffinity", plan.Guard, "cpu pin", false, c)
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
