//go:build linux

package limits

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sandlock-go/sandlock/internal/procfs"
	"golang.org/x/sys/unix"
)

// Sampler periods (see Run for the two tiers). A tick comes at least every
// maxSamplePeriod. Far from the budget the period is samplePeriodFactor
// times what the last tick cost, and no less than costPeriodFloor, so that
// the sampler takes no more than about a tenth of one CPU however many
// processes the sandbox has. Near the budget it shrinks, down to
// minSamplePeriod, so that a sandbox growing at assumedGrowthRate cannot
// pass the budget by more than the overshoot bound before the next tick;
// it never ticks more often than every two tick costs. Full samples the
// budget does not call for are spaced by fullSampleFactor times their own
// cost.
const (
	minSamplePeriod    = 2 * time.Millisecond
	costPeriodFloor    = 10 * time.Millisecond
	maxSamplePeriod    = 100 * time.Millisecond
	samplePeriodFactor = 10
	fullSampleFactor   = 20
	// assumedGrowthRate is how fast a sandbox can gain memory, in bytes
	// per second. Here both CPUs together fault in fresh pages or copy
	// copy-on-write pages at 1.3–2.1 GB/s; the margin covers a check of
	// the bound that comes up to 5 ms late for a sandbox growing at up to
	// 2.4 GB/s (near the budget the room is the 16 MiB bound and the
	// period 2 ms: 7 ms at 2.4 GB/s is 16 MiB), and more far from it.
	assumedGrowthRate = 8 << 30
)

// OvershootBound is how far over its budget a sandbox's footprint may have
// gone when the sampler kills it, by design: the larger of 10% of the
// budget or 16 MiB. It holds for a sandbox that grows no faster than
// assumedGrowthRate and a sampler that gets a CPU when its timer fires.
func OvershootBound(limit uint64) uint64 { return max(limit/10, 16<<20) }

// MemorySampler measures the real memory footprint of a sandbox at a
// short period and kills the whole sandbox once it exceeds the budget. It
// catches what the syscall accounting of Memory cannot see: memory gained
// without an allocation syscall (a growing stack, PROT_NONE mappings made
// writable, copy-on-write pages written after a fork, mremap with
// MREMAP_DONTUNMAP), memfd contents written with write(2) and never mapped,
// and SysV shared memory.
//
// The footprint is, summed over the sandbox's processes:
//   - anonymous memory, shared fairly between the processes that map it
//     (Pss_Anon + SwapPss of /proc/<pid>/smaps_rollup), so copy-on-write
//     pages shared after a fork count once in all;
//   - shared memory (memfds, MAP_SHARED|MAP_ANONYMOUS, tmpfs files) mapped
//     by the sandbox (Pss_Shmem), except the objects counted whole below;
//
// plus, once each (by inode, or SysV shmid), whatever their mappings:
//   - every memfd a process of the sandbox holds an fd to (/proc/<pid>/fd)
//     or maps, by the pages the kernel allocated to it (fstat's st_blocks),
//     mapped or not. A memfd mapped and then closed is sized through a
//     private duplicate the supervisor took at its mmap (MapMemfd); a
//     memfd mapping the supervisor holds no duplicate of (its fd was
//     swapped between the check and the kernel's mmap) cannot be sized,
//     and fails closed like an unreadable process;
//   - every SysV shared memory segment created by a process of the sandbox
//     (/proc/sysvipc/shm: cpid, and its resident and swapped bytes).
//
// A process whose entries cannot be read (made undumpable: an exec of an
// execute-only binary, prctl(PR_SET_DUMPABLE, 0); the supervisor lacks
// CAP_SYS_PTRACE to read them then) cannot be measured: the sampler fails
// closed and kills the sandbox, saying why.
//
// Not counted: kernel memory (page tables, socket buffers, pipes),
// descriptors in flight in unix sockets, the page cache and named files on
// tmpfs that no process of the sandbox maps.
type MemorySampler struct {
	limit uint64
	procs func() []int
	// kill kills the whole sandbox; detail says what was measured.
	kill func(detail string)
	// signal, if set, sends a signal to every process of the sandbox: it
	// is stopped during a full sample the upper bound calls for.
	signal func(syscall.Signal)
	log    *slog.Logger

	// started counts the processes the sandbox has had: a full sample
	// taken while one was being forked misses the share of the pages its
	// parent already shares with it, so a new process calls for a new
	// full sample.
	started atomic.Int64

	mu   sync.Mutex
	ever map[int]bool // every process the sandbox had: SysV creators
	// mapped: a private duplicate of every memfd the sandbox has mapped,
	// taken at its mmap, so that its size can be read once the sandbox
	// has closed its own fds; dropped once nothing of the sandbox holds
	// or maps it.
	mapped   map[objKey]mappedMemfd
	mapSeq   uint64             // counts MapMemfd calls
	closed   bool               // the sandbox has ended: no more duplicates
	peak     Footprint          // the largest footprint sampled
	cost     time.Duration      // what the last tick cost
	count    int                // ticks
	fullCost time.Duration      // what the last full sample cost
	fulls    int                // full samples
	late     time.Duration      // the most a tick came after its time
	last     Footprint          // the last sample
	scratch  map[objKey]objInfo // reused between samples
}

// mappedMemfd is the supervisor's duplicate of a memfd the sandbox mapped.
type mappedMemfd struct {
	fd  int
	seq uint64 // mapSeq when it was last mapped
}

// objKey names a shared-memory object: a memfd by device and inode, a
// SysV segment by shmid.
type objKey struct {
	sysv  bool
	major uint32
	minor uint32
	ino   uint64
}

type objInfo struct {
	size uint64 // what counts for it
	held bool   // an fd to it was seen this sample
}

// Footprint is one sample, in bytes.
type Footprint struct {
	Anon      uint64 // Pss_Anon + SwapPss
	Shmem     uint64 // mapped shared memory not counted below
	Memfds    uint64 // memfds counted whole
	SysV      uint64 // SysV segments
	Processes int
}

// Total is what counts against the budget.
func (f Footprint) Total() uint64 { return f.Anon + f.Shmem + f.Memfds + f.SysV }

func (f Footprint) String() string {
	return fmt.Sprintf("%d bytes (anonymous %d, shared mappings %d, memfds %d, SysV shm %d; %d processes)",
		f.Total(), f.Anon, f.Shmem, f.Memfds, f.SysV, f.Processes)
}

// NewMemorySampler returns the sampler. procs lists the sandbox's live
// processes; kill kills the whole sandbox for the memory limit; log gets,
// at debug level, the peak and the cost of the samples when the run ends.
func NewMemorySampler(limit uint64, procs func() []int, kill func(detail string), signal func(syscall.Signal), log *slog.Logger) *MemorySampler {
	if log == nil {
		log = slog.Default()
	}
	return &MemorySampler{
		limit: limit, procs: procs, kill: kill, signal: signal, log: log,
		ever: make(map[int]bool), mapped: make(map[objKey]mappedMemfd), scratch: make(map[objKey]objInfo),
	}
}

// Started records a process of the sandbox (SysV segments are attributed
// by their creator's pid).
func (m *MemorySampler) Started(pid, parent int) {
	m.started.Add(1)
	m.mu.Lock()
	m.ever[pid] = true
	m.mu.Unlock()
}

// Peak returns the largest footprint sampled, over the budget or not.
func (m *MemorySampler) Peak() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peak.Total()
}

// Last returns the footprint the last full sample measured.
func (m *MemorySampler) Last() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last.Total()
}

// Cost returns what the last sample cost.
func (m *MemorySampler) Cost() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cost
}

// Report logs, at debug level, the peak footprint and what the samples
// cost; it is called once the sandbox has ended.
func (m *MemorySampler) Report() {
	m.mu.Lock()
	peak, count, cost, fulls, fullCost, late := m.peak, m.count, m.cost, m.fulls, m.fullCost, m.late
	m.mu.Unlock()
	m.log.Debug(fmt.Sprintf("sandlock: memory sampler: peak footprint %s", peak),
		"samples", count, "cost", cost, "full_samples", fulls, "full_cost", fullCost, "limit", m.limit,
		"late_ms", late.Milliseconds())
}

// Run samples until ctx is done or the sandbox is killed.
//
// It works in two tiers. A full sample (Sample: smaps_rollup, fds, SysV)
// costs time in proportion to the memory the processes map, about 1 ms per
// 50 MiB here, more for pages shared after a fork. Between full samples, a
// tick reads only O(1) counters: each process's resident size and page
// fault count (/proc/<pid>/stat) and the system's shared memory
// (sysinfo(2)). Memory can only grow by a page fault (at most a page each,
// or a resident-size increase for a huge page), or, for shared memory,
// with the system's shared-memory count; so the last full sample plus
// that growth bounds the footprint from above. A full sample is taken when
// that bound passes the budget (with the sandbox stopped meanwhile: it
// cannot grow during the sample, nor outrun it with more runnable threads
// than the sampler has), and otherwise, spaced by twenty times its own
// cost, when a process has started since the last one (a full sample taken
// during a fork misses the share of the pages the parent already shares
// with its child; until then a new process counts whole in the bound) and
// at least every maxSamplePeriod.
func (m *MemorySampler) Run(ctx context.Context) {
	timer := time.NewTimer(minSamplePeriod)
	defer timer.Stop()
	// due is when the bound must be checked next: the last check's time
	// plus the period its bound allows. The overshoot bound holds for a
	// sampler that checks by then, so how late the checks came is
	// recorded: the timer's delay, the CPU taken from the sampler while
	// it reads the counters, or a slow stop.
	due := time.Now().Add(minSamplePeriod)
	var (
		marks       map[int]growthMark // per process, at the last full sample
		shmemMark   uint64             // the system's shared memory then
		startedMark int64              // m.started then
		last        Footprint          // the last full sample
		lastAt      time.Time
		nextFull    time.Time // a full sample not called for by the bound waits until then
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		start := time.Now()
		var bound uint64
		overBudget := false
		if marks != nil {
			bound = last.Total() + m.growth(marks, shmemMark)
			overBudget = bound > m.limit
		}
		wasDue := due
		m.noteLate(time.Since(wasDue))
		refresh := marks == nil || start.Sub(lastAt) >= maxSamplePeriod || m.started.Load() != startedMark
		tickCost := time.Since(start)
		// The counters were read from start on: the bound holds from then.
		due = start.Add(m.period(tickCost, bound))
		if overBudget || refresh && !start.Before(nextFull) {
			// Past the budget by the bound, the sandbox is stopped for
			// the full sample: it cannot grow meanwhile, nor outrun the
			// sample with more runnable threads than the sampler has.
			stopped := overBudget && m.signal != nil
			if stopped {
				m.signal(unix.SIGSTOP)
				// The check takes effect when the stop is sent.
				m.noteLate(time.Since(wasDue))
			}
			// The marks are taken first: what grows during the sample is
			// counted in the next bound.
			fullStart := time.Now()
			newStarted := m.started.Load()
			newMarks, newShmem := m.marks()
			// A long sample of a running sandbox keeps checking the bound
			// of the last one when due, and stops the sandbox once that
			// passes the budget; then the sample is taken again,
			// consistent.
			between := func() {
				checkAt := time.Now()
				if stopped || marks == nil || checkAt.Before(due) {
					return
				}
				b := last.Total() + m.growth(marks, shmemMark)
				if b > m.limit && m.signal != nil {
					m.signal(unix.SIGSTOP)
					stopped = true
				}
				m.noteLate(time.Since(due))
				due = checkAt.Add(m.period(tickCost, b))
			}
			f, err := m.sample(between)
			if err == nil && stopped && !overBudget {
				newStarted = m.started.Load()
				newMarks, newShmem = m.marks()
				f, err = m.Sample()
			}
			fullCost := time.Since(fullStart)
			if stopped && (err == nil && f.Total() <= m.limit || ctx.Err() != nil) {
				// Stopped, the sandbox gained nothing since the marks
				// until it resumes now: the next check is due a period
				// after.
				due = time.Now().Add(m.period(tickCost, f.Total()))
				m.signal(unix.SIGCONT)
			}
			if err != nil {
				if ctx.Err() != nil {
					return // the sandbox ended meanwhile
				}
				m.kill(err.Error())
				return
			}
			if f.Total() > m.limit {
				m.mu.Lock()
				late := m.late
				m.mu.Unlock()
				m.kill(fmt.Sprintf("footprint %s over the limit of %d bytes; the full sample before, %v earlier, saw %d bytes; this one took %v; its checks ran late by up to %v (late_ms=%d)",
					f, m.limit, start.Sub(lastAt), last.Total(), fullCost, late, late.Milliseconds()))
				return
			}
			// A running sandbox's next check stays due when the last
			// check of the old marks said: what it gained during the
			// sample is counted from the new marks, taken before.
			marks, shmemMark, last, lastAt, startedMark = newMarks, newShmem, f, start, newStarted
			// Full samples the bound does not call for take no more than
			// about a twentieth of a CPU.
			nextFull = time.Now().Add(fullCost * fullSampleFactor)
			m.mu.Lock()
			m.fullCost = fullCost
			m.fulls++
			m.mu.Unlock()
		}
		m.mu.Lock()
		m.cost = tickCost
		m.count++
		m.mu.Unlock()
		timer.Reset(max(time.Until(due), 0))
	}
}

// noteLate records that a check of the bound came late by late (if
// positive).
func (m *MemorySampler) noteLate(late time.Duration) {
	if late <= 0 {
		return
	}
	m.mu.Lock()
	m.late = max(m.late, late)
	m.mu.Unlock()
}

// growthMark is what a process's growth is measured from.
type growthMark struct {
	rss    uint64 // resident pages
	faults uint64 // minor and major page faults
}

// marks reads the growth marks of the sandbox's processes and the
// system's shared memory.
func (m *MemorySampler) marks() (map[int]growthMark, uint64) {
	pids := m.procs()
	out := make(map[int]growthMark, len(pids))
	for _, pid := range pids {
		if g, ok := readGrowthMark(pid); ok {
			out[pid] = g
		}
	}
	return out, sharedRAM()
}

// growth bounds from above what the sandbox gained since marks were taken:
// every page fault since, a page each, plus any rise of resident size (a
// huge page is one fault), plus the rise of the system's shared memory
// (memfds written with write(2), SysV segments). A process new since then
// counts its whole resident size and every fault since it started.
func (m *MemorySampler) growth(marks map[int]growthMark, shmemMark uint64) uint64 {
	var g uint64
	for _, pid := range m.procs() {
		now, ok := readGrowthMark(pid)
		if !ok {
			continue
		}
		// A process new since the marks counts all it has: what it still
		// shares with its parent was counted already, but the last full
		// sample may have missed the parent's share of it, taken while it
		// was being forked.
		was := marks[pid]
		if now.rss > was.rss {
			g += (now.rss - was.rss) * pageSize
		}
		if now.faults > was.faults {
			g += (now.faults - was.faults) * pageSize
		}
	}
	if shm := sharedRAM(); shm > shmemMark {
		g += shm - shmemMark
	}
	return g
}

// readGrowthMark reads a process's resident pages and page faults from
// /proc/<pid>/stat (readable even for an undumpable process).
func readGrowthMark(pid int) (growthMark, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return growthMark{}, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return growthMark{}, false
	}
	// Fields from the state (field 3) on: minflt 10, majflt 12, rss 24.
	f := bytes.Fields(b[i+1:])
	if len(f) < 24-2 {
		return growthMark{}, false
	}
	num := func(field int) uint64 {
		n, _ := strconv.ParseUint(string(f[field-3]), 10, 64)
		return n
	}
	return growthMark{rss: num(24), faults: num(10) + num(12)}, true
}

// sharedRAM is the system's shared memory (shmem: tmpfs, memfds, SysV
// and shared anonymous pages), in bytes.
func sharedRAM() uint64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return uint64(si.Sharedram) * uint64(max(si.Unit, 1))
}

// period is the wait before the next tick after one that cost cost, with
// the footprint bounded by bound.
func (m *MemorySampler) period(cost time.Duration, bound uint64) time.Duration {
	p := min(max(cost*samplePeriodFactor, costPeriodFloor), maxSamplePeriod)
	if room := m.limit + OvershootBound(m.limit) - min(bound, m.limit); room < math.MaxUint64/uint64(time.Second) {
		// The time the sandbox needs to use up the room left.
		p = min(p, time.Duration(room*uint64(time.Second)/assumedGrowthRate))
	}
	return max(p, minSamplePeriod, 2*cost)
}

// UnmeasurableError is a process of the sandbox whose memory cannot be
// read.
type UnmeasurableError struct {
	PID  int
	What string
	Err  error
}

func (e *UnmeasurableError) Error() string {
	hint := ""
	if errors.Is(e.Err, fs.ErrPermission) {
		hint = " (a process that made itself undumpable, e.g. by running an execute-only binary, cannot be read)"
	}
	return fmt.Sprintf("cannot read %s of process %d: %v%s: its memory cannot be counted, so the sandbox counts as over its budget",
		e.What, e.PID, e.Err, hint)
}

func (e *UnmeasurableError) Unwrap() error { return e.Err }

// Sample measures the sandbox's footprint once. An error is a process that
// could not be measured.
func (m *MemorySampler) Sample() (Footprint, error) { return m.sample(nil) }

// sample is Sample, calling between, if set, between processes.
func (m *MemorySampler) sample(between func()) (Footprint, error) {
	m.mu.Lock()
	startSeq := m.mapSeq
	m.mu.Unlock()
	pids := m.procs()
	var f Footprint
	objs := m.scratch
	clear(objs)
	type shmemProc struct {
		pid int
		pss uint64
	}
	var shmemProcs []shmemProc
	memfdMaps := make(map[objKey]int) // memfds mapped → a process that maps it
	for _, pid := range pids {
		if between != nil {
			between()
		}
		r, err := readRollup(pid)
		if err != nil {
			if gone(pid, err) {
				continue
			}
			return f, &UnmeasurableError{PID: pid, What: "smaps_rollup", Err: err}
		}
		f.Processes++
		f.Anon += r.anon + r.swap
		if r.shmem > 0 {
			shmemProcs = append(shmemProcs, shmemProc{pid, r.shmem})
		}
		err = heldMemfds(pid, objs)
		if err == nil {
			err = mappedMemfds(pid, memfdMaps)
		}
		if err != nil {
			if gone(pid, err) {
				continue
			}
			return f, &UnmeasurableError{PID: pid, What: "fd or maps", Err: err}
		}
	}
	// SysV segments: the reader shares the sandbox's IPC namespace (the
	// filter denies CLONE_NEWIPC), so the system's list is the sandbox's.
	if err := m.sysvSegments(objs); err != nil {
		return f, &UnmeasurableError{PID: 0, What: "/proc/sysvipc/shm", Err: err}
	}
	if err := m.mappedSizes(objs, memfdMaps, startSeq); err != nil {
		return f, err
	}
	for _, p := range shmemProcs {
		unknown := p.pss
		if len(objs) > 0 {
			known, err := knownShmemPss(p.pid, objs)
			if err != nil {
				if gone(p.pid, err) {
					continue
				}
				return f, &UnmeasurableError{PID: p.pid, What: "smaps", Err: err}
			}
			unknown -= min(known, unknown)
		}
		f.Shmem += unknown
	}
	for k, o := range objs {
		if k.sysv {
			f.SysV += o.size
		} else {
			f.Memfds += o.size
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if f.Total() >= m.peak.Total() {
		m.peak = f
	}
	m.last = f
	return f, nil
}

// maxMappedMemfds is how many memfds a sandbox may have mapped at once
// (each costs the supervisor a descriptor); a mmap past it fails ENOMEM.
const maxMappedMemfds = 4096

// errTooManyMemfds refuses a mapping past maxMappedMemfds.
var errTooManyMemfds = errors.New("too many memfds mapped")

// MapMemfd is called by the mmap handler, before the kernel maps, for a
// shared mapping of fd of process pid: if fd is a memfd, the sampler takes
// a private duplicate of it, to size it after the sandbox has closed its
// own fds. A mapping past maxMappedMemfds is refused (errTooManyMemfds).
func (m *MemorySampler) MapMemfd(pid, fd int) error {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil // gone: nothing is mapped
	}
	dup, err := unix.PidfdGetfd(pidfd, fd, 0)
	unix.Close(pidfd)
	if err != nil {
		return nil // not an fd: the kernel refuses the mmap
	}
	k, ok := memfdKey(dup)
	if !ok {
		unix.Close(dup)
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mapSeq++
	if mm, known := m.mapped[k]; known || m.closed {
		unix.Close(dup)
		if known {
			// Mapped again: a sample under way may have missed it.
			m.mapped[k] = mappedMemfd{fd: mm.fd, seq: m.mapSeq}
		}
		return nil
	}
	if len(m.mapped) >= maxMappedMemfds {
		unix.Close(dup)
		return errTooManyMemfds
	}
	m.mapped[k] = mappedMemfd{fd: dup, seq: m.mapSeq}
	return nil
}

// memfdKey names the memfd fd refers to, if it is one.
func memfdKey(fd int) (objKey, bool) {
	link, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil || len(link) < 7 || link[:7] != "/memfd:" {
		return objKey{}, false
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return objKey{}, false
	}
	return objKey{major: unix.Major(st.Dev), minor: unix.Minor(st.Dev), ino: st.Ino}, true
}

// mappedSizes counts the memfds the sandbox maps, by their duplicates, and
// drops the duplicates of those nothing of the sandbox holds or maps any
// more. A memfd mapped with no duplicate cannot be sized: an error.
func (m *MemorySampler) mappedSizes(objs map[objKey]objInfo, maps map[objKey]int, startSeq uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, pid := range maps {
		mm, ok := m.mapped[k]
		if !ok {
			if _, held := objs[k]; held {
				continue // sized through the fd the sandbox holds
			}
			return &UnmeasurableError{PID: pid, What: "the size of a memfd it maps",
				Err: errors.New("mapped without the supervisor seeing it at its mmap (an fd swapped meanwhile?), and no fd to it is held")}
		}
		var st unix.Stat_t
		if unix.Fstat(mm.fd, &st) != nil {
			continue
		}
		o := objs[k]
		o.size = max(o.size, uint64(st.Blocks)*512)
		objs[k] = o
	}
	for k, mm := range m.mapped {
		if _, mapped := maps[k]; mapped {
			continue
		}
		if _, held := objs[k]; held || mm.seq > startSeq {
			continue // held, or mapped since the sample began
		}
		unix.Close(mm.fd)
		delete(m.mapped, k)
	}
	return nil
}

// Close drops the duplicates, once the sandbox has ended.
func (m *MemorySampler) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	for k, mm := range m.mapped {
		unix.Close(mm.fd)
		delete(m.mapped, k)
	}
}

// mappedMemfds adds the memfds process pid maps (shared) to maps.
func mappedMemfds(pid int, maps map[objKey]int) error {
	return procfs.Maps(pid, func(m procfs.Mapping) bool {
		if m.Shared() && strings.HasPrefix(m.Path, "/memfd:") {
			if k, ok := mappingKey(m); ok {
				maps[k] = pid
			}
		}
		return true
	})
}

// gone reports whether err reading a process's /proc entries means it has
// exited (and its memory with it).
func gone(pid int, err error) bool {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) {
		return true
	}
	// A zombie's entries can be unreadable too: then it has no memory.
	b, serr := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if serr != nil {
		return errors.Is(serr, fs.ErrNotExist) || errors.Is(serr, unix.ESRCH)
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X')
}

// rollup is what a process maps, from smaps_rollup, in bytes.
type rollup struct {
	anon, shmem, swap uint64
}

// readRollup reads /proc/<pid>/smaps_rollup. A process without a memory
// map (a zombie) reads as empty.
func readRollup(pid int) (rollup, error) {
	var r rollup
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return r, err
	}
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		switch {
		case bytes.HasPrefix(line, []byte("Pss_Anon:")):
			r.anon = kbField(line)
		case bytes.HasPrefix(line, []byte("Pss_Shmem:")):
			r.shmem = kbField(line)
		case bytes.HasPrefix(line, []byte("SwapPss:")):
			r.swap = kbField(line)
		}
	}
	return r, nil
}

// kbField parses "Name:   123 kB" into bytes.
func kbField(line []byte) uint64 {
	f := bytes.Fields(line)
	if len(f) < 2 {
		return 0
	}
	n, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil {
		return 0
	}
	return n << 10
}

// heldMemfds adds the memfds process pid holds an fd to, by the pages
// allocated to each.
func heldMemfds(pid int, objs map[objKey]objInfo) error {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd/"
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, name := range names {
		link, err := os.Readlink(dir + name)
		if err != nil || len(link) < 7 || link[:7] != "/memfd:" {
			continue // closed meanwhile, or not a memfd
		}
		var st unix.Stat_t
		if err := unix.Stat(dir+name, &st); err != nil {
			continue
		}
		k := objKey{major: unix.Major(st.Dev), minor: unix.Minor(st.Dev), ino: st.Ino}
		o := objs[k]
		o.size = max(o.size, uint64(st.Blocks)*512)
		o.held = true
		objs[k] = o
	}
	return nil
}

// sysvSegments adds the SysV shared memory segments created by a process
// of ever, by their resident and swapped bytes.
func (m *MemorySampler) sysvSegments(objs map[objKey]objInfo) error {
	b, err := os.ReadFile("/proc/sysvipc/shm")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // no SysV IPC in this kernel
		}
		return err
	}
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) < 2 {
		return nil
	}
	// key shmid perms size cpid lpid nattch uid gid cuid cgid atime dtime ctime rss swap
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, line := range lines[1:] {
		f := bytes.Fields(line)
		if len(f) < 16 {
			continue
		}
		cpid, err := strconv.Atoi(string(f[4]))
		if err != nil || !m.ever[cpid] {
			continue
		}
		id, err1 := strconv.ParseUint(string(f[1]), 10, 64)
		rss, err2 := strconv.ParseUint(string(f[14]), 10, 64)
		swap, err3 := strconv.ParseUint(string(f[15]), 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		objs[objKey{sysv: true, ino: id}] = objInfo{size: rss + swap, held: true}
	}
	return nil
}

// knownShmemPss reads /proc/<pid>/smaps and returns the Pss of the shared
// mappings of objects counted whole (in objs).
func knownShmemPss(pid int, objs map[objKey]objInfo) (uint64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/smaps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var known uint64
	counted := false // the current mapping is of an object counted whole
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) > 0 && isHexDigit(line[0]) && bytes.IndexByte(line, '-') > 0 {
			// A mapping's header: start-end perms offset dev inode path
			counted = false
			m, ok := procfs.ParseMapsLine(line)
			if !ok || !m.Shared() {
				continue
			}
			if k, ok := mappingKey(m); ok {
				_, counted = objs[k]
			}
			continue
		}
		if counted && bytes.HasPrefix(line, []byte("Pss:")) {
			known += kbField(line)
		}
	}
	return known, sc.Err()
}

// mappingKey names the object behind a shared mapping's header fields:
// SysV segments show as /SYSV<key> with the shmid as their inode.
func mappingKey(m procfs.Mapping) (objKey, bool) {
	if m.Inode == 0 {
		return objKey{}, false
	}
	if strings.HasPrefix(m.Path, "/SYSV") {
		return objKey{sysv: true, ino: m.Inode}, true
	}
	return objKey{major: m.Major, minor: m.Minor, ino: m.Inode}, true
}

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f'
}
