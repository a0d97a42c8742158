//go:build linux

package limits

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/fielderr"
	"github.com/sandlock-go/sandlock/internal/landlock"
	"github.com/sandlock-go/sandlock/internal/plan"
	"github.com/sandlock-go/sandlock/internal/session"
)

// Settings are a sandbox's resource limits and process knobs, as the
// Sandbox fields of the same names.
type Settings struct {
	MaxProcesses uint32
	MaxMemory    string
	MaxCPU       uint8
	MaxOpenFiles uint32
	CPUCores     []uint32
	NumCPUs      uint32
	GPUDevices   []uint32

	NoRandomizeMemory bool
	NoHugePages       bool
	NoCoredump        bool

	// NoSupervisor: nothing is traced and no handler runs.
	NoSupervisor bool
}

// Feature is the validated limits: the process and memory limits, the CPU
// share, placement and visibility, GPU access and the knobs the child
// stage applies.
type Feature struct {
	maxProcesses int    // 0: none (NoSupervisor)
	maxMemory    uint64 // 0: none
	cpuPercent   int
	numCPUs      int
	traced       bool
	knobs        session.Knobs
	gpu          GPUAccess

	// The memory budget's accounting, once planned (MemoryUsed).
	memory  *Memory
	sampler *MemorySampler
}

// MaxMemory returns the memory budget in bytes, 0 for none.
func (f *Feature) MaxMemory() uint64 { return f.maxMemory }

// MemoryUsed returns what the sandbox uses of its budget: the accounting's
// count at the processes' last allocations, or the sampler's last full
// sample when it saw more (for the /proc view's meminfo, once the run has
// started).
func (f *Feature) MemoryUsed() uint64 {
	if f.memory == nil {
		return 0
	}
	return max(f.memory.Used(), f.sampler.Last())
}

func errField(name, value string, err error) error { return fielderr.New(name, value, err) }

// New validates the settings.
func New(s Settings) (*Feature, error) {
	f := &Feature{
		knobs: session.Knobs{
			NoRandomizeMemory: s.NoRandomizeMemory,
			NoHugePages:       s.NoHugePages,
			NoCoredump:        s.NoCoredump,
		},
		cpuPercent: int(s.MaxCPU),
		traced:     !s.NoSupervisor,
		numCPUs:    int(s.NumCPUs),
	}
	if s.NoSupervisor {
		// Counting processes and memory needs the supervisor.
		for _, x := range []struct {
			name string
			set  bool
		}{{"MaxProcesses", s.MaxProcesses != 0}, {"MaxMemory", s.MaxMemory != ""}, {"NumCPUs", s.NumCPUs != 0}} {
			if x.set {
				return nil, errField(x.name, "", errors.New("needs the supervisor, which NoSupervisor turns off"))
			}
		}
	} else {
		f.maxProcesses = DefaultMaxProcesses
		if s.MaxProcesses != 0 {
			f.maxProcesses = int(s.MaxProcesses)
		}
	}
	if s.MaxMemory != "" {
		n, err := ParseSize(s.MaxMemory)
		if err != nil {
			return nil, errField("MaxMemory", s.MaxMemory, err)
		}
		if n == 0 {
			return nil, errField("MaxMemory", s.MaxMemory, errors.New("must be more than 0 (leave it empty for no limit)"))
		}
		f.maxMemory = n
	}
	if s.MaxCPU > 100 {
		return nil, errField("MaxCPU", strconv.Itoa(int(s.MaxCPU)), errors.New("must be a percentage of one core, from 1 to 100"))
	}
	if s.MaxOpenFiles != 0 {
		var rl unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
			return nil, fmt.Errorf("sandlock: reading RLIMIT_NOFILE: %w", err)
		}
		// Clamped to sandlock's own limits: the program can have no more
		// than its caller.
		f.knobs.MaxOpenFiles = min(uint64(s.MaxOpenFiles), rl.Cur, rl.Max)
	}
	if len(s.CPUCores) > 0 {
		mask, err := CPUMask(s.CPUCores)
		if err != nil {
			list := make([]string, len(s.CPUCores))
			for i, c := range s.CPUCores {
				list[i] = strconv.FormatUint(uint64(c), 10)
			}
			return nil, errField("CPUCores", strings.Join(list, ","), err)
		}
		f.knobs.CPUs = &mask
	}
	f.gpu = GPUs("/", s.GPUDevices)
	return f, nil
}

// Plan adds the limits' rules, handlers and hooks.
func (f *Feature) Plan(b *plan.Builder) error {
	b.Knobs = f.knobs
	for k, v := range f.gpu.Env {
		b.Setenv(k, v)
	}
	for _, d := range f.gpu.Devices {
		b.Landlock.Paths = append(b.Landlock.Paths, landlock.PathRule{Path: d, Access: b.Landlock.HandledFS})
	}
	for _, r := range f.gpu.Read {
		b.Landlock.Paths = append(b.Landlock.Paths, landlock.PathRule{Path: r, Access: landlock.FSRead})
	}
	run := b.Run()
	signal := func(sig syscall.Signal) { run.Signal(sig) }
	if f.maxProcesses > 0 {
		p := NewProcesses(f.maxProcesses, run.Processes, run.TGID)
		p.Register(b)
		b.OnFork(p.Forked)
		b.OnForkInterrupted(p.Interrupted)
		b.OnProcessStart(p.Started)
		b.OnExit(p.Exited)
		b.OnEnd(p.Close)
	}
	if f.maxMemory > 0 {
		m := NewMemory(f.maxMemory, run.TGID, func(pid int, why string) {
			if why != "" {
				b.Log.Warn("sandlock: "+why, "pid", pid)
			}
			run.KillProcess(pid, session.ReasonMemoryLimit)
		})
		m.Register(b)
		b.OnExit(m.Exited)
		// What the syscalls do not show, the sampler sees.
		sampler := NewMemorySampler(f.maxMemory, run.ProcessIDs, func(detail string) {
			run.KillSandbox(session.ReasonMemoryLimit, detail)
		}, signal, b.Log)
		m.MapMemfd = sampler.MapMemfd
		f.memory, f.sampler = m, sampler
		b.OnProcessStart(sampler.Started)
		b.Background(sampler.Run)
		b.OnEnd(sampler.Report)
		b.OnEnd(sampler.Close)
	}
	if f.cpuPercent > 0 && f.cpuPercent < 100 {
		if f.traced {
			c := NewCPUShare(f.cpuPercent, run.ProcessIDs, signal)
			b.OnProcessStart(c.Started)
			b.OnExitUsage(c.Exited)
			b.Background(c.Run)
		} else {
			// Without the tracer nobody lists the processes to sum: the
			// process group is stopped for the rest of each period.
			b.Background(func(ctx context.Context) { DutyCycle(ctx, f.cpuPercent, signal) })
		}
	}
	if f.numCPUs > 0 {
		NumCPUs{N: f.numCPUs, Pinned: f.knobs.CPUs}.Register(b)
	}
	if f.knobs.CPUs != nil {
		(&CPUPin{CPUs: *f.knobs.CPUs, Traced: run.Traced}).Register(b)
	}
	return nil
}
