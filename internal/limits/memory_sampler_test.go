//go:build linux

package limits

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const mib = 1 << 20

// selfSampler samples this test process alone.
func selfSampler(limit uint64) *MemorySampler {
	m := NewMemorySampler(limit, func() []int { return []int{os.Getpid()} }, func(string) {}, nil, nil)
	m.Started(os.Getpid(), 0)
	return m
}

// touchAnon maps size bytes of private anonymous memory and touches
// every page, for the rest of the test.
func touchAnon(t *testing.T, size int) {
	t.Helper()
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(b) })
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
}

func TestSampleCountsMemfdOnce(t *testing.T) {
	m := selfSampler(1 << 40)
	before, err := m.Sample()
	if err != nil {
		t.Fatal(err)
	}
	// Written with write(2), never mapped: counted by its pages.
	fd, err := unix.MemfdCreate("sampler-test", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	buf := make([]byte, mib)
	for i := range buf {
		buf[i] = 'x'
	}
	for i := 0; i < 8; i++ {
		if _, err := unix.Write(fd, buf); err != nil {
			t.Fatal(err)
		}
	}
	held, err := m.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if got := held.Memfds - before.Memfds; got != 8*mib {
		t.Errorf("an 8 MiB memfd held, never mapped: memfds %d bytes more, want %d", got, 8*mib)
	}
	// Mapped and touched as well: still once. (The mmap handler tells
	// the sampler of the mapping first.)
	if err := m.MapMemfd(os.Getpid(), fd); err != nil {
		t.Fatal(err)
	}
	b, err := unix.Mmap(fd, 0, 8*mib, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(b)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	mapped, err := m.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if d := int64(mapped.Total()) - int64(held.Total()); d > mib || d < -mib {
		t.Errorf("mapping the memfd changed the footprint by %d bytes (%v → %v), want it counted once", d, held, mapped)
	}
	// Closed but still mapped: it keeps counting.
	unix.Close(fd)
	fd = -1
	closed, err := m.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if closed.Total()+mib < mapped.Total() {
		t.Errorf("closing the mapped memfd dropped the footprint: %v → %v", mapped, closed)
	}
	// (Unmapped and closed, it would no longer count; this process holds
	// the sampler's duplicate itself, so the end-to-end tests show that.)
	m.Close()
}

func TestSampleUnknownMemfdMappingFailsClosed(t *testing.T) {
	// A memfd mapped without the sampler being told (its fd swapped
	// between the handler's look and the kernel's mmap), then closed,
	// cannot be sized: the sample fails.
	m := selfSampler(1 << 40)
	fd, err := unix.MemfdCreate("sampler-unknown", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Ftruncate(fd, mib); err != nil {
		t.Fatal(err)
	}
	b, err := unix.Mmap(fd, 0, mib, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(b)
	// Held, it is sized through the fd.
	if _, err := m.Sample(); err != nil {
		t.Errorf("a mapped memfd still held: %v", err)
	}
	unix.Close(fd)
	if _, err := m.Sample(); err == nil || !strings.Contains(err.Error(), "memfd") {
		t.Errorf("a memfd mapped unseen and closed: %v, want an error", err)
	}
}

func TestSampleCountsSysVSegments(t *testing.T) {
	m := selfSampler(1 << 40)
	before, err := m.Sample()
	if err != nil {
		t.Fatal(err)
	}
	id, err := unix.SysvShmGet(unix.IPC_PRIVATE, 4*mib, unix.IPC_CREAT|0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.SysvShmCtl(id, unix.IPC_RMID, nil)
	b, err := unix.SysvShmAttach(id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	attached, err := m.Sample()
	if err != nil {
		t.Fatal(err)
	}
	// Detached, the segment keeps its memory.
	unix.SysvShmDetach(b)
	detached, err := m.Sample()
	if err != nil {
		t.Fatal(err)
	}
	for what, f := range map[string]Footprint{"attached": attached, "detached": detached} {
		if got := f.SysV - before.SysV; got != 4*mib {
			t.Errorf("a 4 MiB segment %s: SysV %d bytes more, want %d (%v)", what, got, 4*mib, f)
		}
		if d := f.Total() - before.Total(); d > 5*mib {
			t.Errorf("a 4 MiB segment %s added %d bytes: counted twice? (%v)", what, d, f)
		}
	}
	// A segment created by a process not of the sandbox is not its own.
	other := NewMemorySampler(1<<40, func() []int { return []int{os.Getpid()} }, func(string) {}, nil, nil)
	if f, err := other.Sample(); err != nil || f.SysV != 0 {
		t.Errorf("a sandbox that never had this process: SysV %d (%v)", f.SysV, err)
	}
}

func TestSampleAnonymous(t *testing.T) {
	m := selfSampler(1 << 40)
	before, err := m.Sample()
	if err != nil {
		t.Fatal(err)
	}
	// Reserved without access, then made writable and touched.
	b, err := unix.Mmap(-1, 0, 16*mib, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(b)
	if err := unix.Mprotect(b, unix.PROT_READ|unix.PROT_WRITE); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	after, err := m.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if d := int64(after.Anon) - int64(before.Anon); d < 15*mib || d > 20*mib {
		t.Errorf("16 MiB made writable and touched: anonymous grew by %d bytes", d)
	}
	// The growth bound between full samples covers it too.
	marks, shm := m.marks()
	touchAnon(t, 8*mib)
	if g := m.growth(marks, shm); g < 8*mib {
		t.Errorf("8 MiB touched: the growth bound is %d bytes", g)
	}
}

func TestSampleGoneProcess(t *testing.T) {
	// A process that has exited is skipped, not an error.
	m := NewMemorySampler(1<<40, func() []int { return []int{1 << 30} }, func(string) {}, nil, nil)
	if f, err := m.Sample(); err != nil || f.Processes != 0 {
		t.Errorf("a pid that does not exist: %v %v", f, err)
	}
}

func TestOvershootBound(t *testing.T) {
	for _, c := range []struct{ limit, want uint64 }{
		{64 * mib, 16 * mib}, {160 * mib, 16 * mib}, {1 << 30, (1 << 30) / 10}, {1, 16 * mib},
	} {
		if got := OvershootBound(c.limit); got != c.want {
			t.Errorf("OvershootBound(%d) = %d, want %d", c.limit, got, c.want)
		}
	}
}

func TestSamplerPeriod(t *testing.T) {
	// Far from the budget: the cost floor.
	if p := NewMemorySampler(1<<30, nil, nil, nil, nil).period(0, 0); p != costPeriodFloor {
		t.Errorf("period far from the budget: %v, want %v", p, costPeriodFloor)
	}
	m := NewMemorySampler(64*mib, nil, nil, nil, nil)
	// Near it: short enough that assumedGrowthRate cannot pass the bound.
	near := m.period(0, 62*mib)
	if room := 18 * mib; near > 0 && uint64(near.Seconds()*assumedGrowthRate) > uint64(room) {
		t.Errorf("period at 62 of 64 MiB: %v lets %d bytes grow", near, uint64(near.Seconds()*assumedGrowthRate))
	}
	if near < minSamplePeriod {
		t.Errorf("period %v under the minimum", near)
	}
	// Never more often than twice a tick's cost.
	if p := m.period(50*costPeriodFloor, 62*mib); p < 100*costPeriodFloor {
		t.Errorf("a tick costing %v: period %v", 50*costPeriodFloor, p)
	}
}

func TestSamplerCostFigures(t *testing.T) {
	// The cost of a tick (growth bound) and of a full sample, for 1 and
	// 64 processes, logged for the record (no timing is asserted).
	for _, n := range []int{1, 64} {
		var pids []int
		for i := 0; i < n; i++ {
			cmd := exec.Command("/bin/sleep", "30")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			pids = append(pids, cmd.Process.Pid)
		}
		m := NewMemorySampler(1<<40, func() []int { return pids }, func(string) {}, nil, nil)
		const rounds = 50
		start := time.Now()
		var f Footprint
		for i := 0; i < rounds; i++ {
			var err error
			if f, err = m.Sample(); err != nil {
				t.Fatal(err)
			}
		}
		full := time.Since(start) / rounds
		marks, shm := m.marks()
		start = time.Now()
		for i := 0; i < rounds; i++ {
			m.growth(marks, shm)
		}
		tick := time.Since(start) / rounds
		if f.Processes != n {
			t.Errorf("%d processes sampled, want %d", f.Processes, n)
		}
		t.Logf("%d processes: a tick costs %v, a full sample %v (footprint %v)", n, tick, full, f)
	}
}

func TestSamplerCountsASlowStopAsLate(t *testing.T) {
	// The bound is checked when the stop is sent, not when the timer
	// fires: a stop that takes 30 ms to send is reported as a check 30 ms
	// late, with the kill. This test process is the "sandbox"; the stop
	// only waits.
	base, err := selfSampler(1 << 40).Sample()
	if err != nil {
		t.Fatal(err)
	}
	killed := make(chan string, 1)
	const slowStop = 30 * time.Millisecond
	m := NewMemorySampler(base.Total()+4*mib, func() []int { return []int{os.Getpid()} },
		func(detail string) { killed <- detail },
		func(sig syscall.Signal) {
			if sig == unix.SIGSTOP {
				time.Sleep(slowStop)
			}
		}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	// Once the first full sample has set the marks, 8 MiB more passes the
	// budget by the bound.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		m.mu.Lock()
		fulls := m.fulls
		m.mu.Unlock()
		if fulls > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no full sample in 10 s")
		}
	}
	touchAnon(t, 8*mib)
	select {
	case detail := <-killed:
		m.mu.Lock()
		late := m.late
		m.mu.Unlock()
		if late < slowStop || !strings.Contains(detail, "late_ms=") {
			t.Errorf("a stop sent 30 ms after its check was due: late %v; the kill said %q", late, detail)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("8 MiB over a budget 4 MiB above the footprint: not killed in 10 s")
	}
}
