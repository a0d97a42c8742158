package sandlock

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/landlock"
	"github.com/sandlock-go/sandlock/internal/limits"
	"github.com/sandlock-go/sandlock/internal/sandbox"
)

// resourceLimits is the validated form of the limit fields.
type resourceLimits struct {
	maxProcesses int    // 0: none (NoSupervisor without an explicit limit)
	maxMemory    uint64 // 0: none
	knobs        sandbox.Knobs
	cpuPercent   int
	traced       bool // the tracer follows every process (not NoSupervisor)
	numCPUs      int
	gpu          limits.GPUAccess

	// The memory budget's accounting, once registered: the /proc view's
	// meminfo reads it (views.go).
	memory  *limits.Memory
	sampler *limits.MemorySampler
}

// memoryLimitReason marks a process killed for exceeding MaxMemory.
const memoryLimitReason = "memory limit"

// limits validates the resource-limit and process-knob fields.
func (s *Sandbox) limits() (*resourceLimits, error) {
	l := &resourceLimits{
		knobs: sandbox.Knobs{
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
		for _, f := range []struct {
			name string
			set  bool
		}{{"MaxProcesses", s.MaxProcesses != 0}, {"MaxMemory", s.MaxMemory != ""}, {"NumCPUs", s.NumCPUs != 0}} {
			if f.set {
				return nil, field(f.name, "", errors.New("needs the supervisor, which NoSupervisor turns off"))
			}
		}
	} else {
		l.maxProcesses = limits.DefaultMaxProcesses
		if s.MaxProcesses != 0 {
			l.maxProcesses = int(s.MaxProcesses)
		}
	}
	if s.MaxMemory != "" {
		n, err := limits.ParseSize(s.MaxMemory)
		if err != nil {
			return nil, field("MaxMemory", s.MaxMemory, err)
		}
		if n == 0 {
			return nil, field("MaxMemory", s.MaxMemory, errors.New("must be more than 0 (leave it empty for no limit)"))
		}
		l.maxMemory = n
	}
	if s.MaxCPU > 100 {
		return nil, field("MaxCPU", strconv.Itoa(int(s.MaxCPU)), errors.New("must be a percentage of one core, from 1 to 100"))
	}
	if s.MaxOpenFiles != 0 {
		var lim [2]uint64
		if err := getNofile(&lim); err != nil {
			return nil, fmt.Errorf("sandlock: reading RLIMIT_NOFILE: %w", err)
		}
		// Clamped to sandlock's own limits: the program can have no more
		// than its caller.
		l.knobs.MaxOpenFiles = min(uint64(s.MaxOpenFiles), lim[0], lim[1])
	}
	if len(s.CPUCores) > 0 {
		mask, err := limits.CPUMask(s.CPUCores)
		if err != nil {
			list := make([]string, len(s.CPUCores))
			for i, c := range s.CPUCores {
				list[i] = strconv.FormatUint(uint64(c), 10)
			}
			return nil, field("CPUCores", strings.Join(list, ","), err)
		}
		l.knobs.CPUs = &mask
	}
	l.gpu = limits.GPUs("/", s.GPUDevices)
	return l, nil
}

// register adds the limit handlers and hooks to a session.
func (l *resourceLimits) register(sess *sandbox.Session) {
	if l.maxProcesses > 0 {
		p := limits.NewProcesses(l.maxProcesses, sess.Processes, sess.TGID)
		p.Register(sess.Table)
		sess.OnFork(p.Forked)
		sess.OnForkInterrupted(p.Interrupted)
		sess.OnProcessStart(p.Started)
		sess.OnExit(p.Exited)
		sess.OnEnd(p.Close)
	}
	if l.maxMemory > 0 {
		m := limits.NewMemory(l.maxMemory, sess.TGID, func(pid int, why string) {
			if why != "" {
				sess.Log.Warn("sandlock: "+why, "pid", pid)
			}
			sess.KillProcess(pid, memoryLimitReason)
		})
		m.Register(sess.Table)
		sess.OnExit(m.Exited)
		// What the syscalls do not show, the sampler sees.
		sampler := limits.NewMemorySampler(l.maxMemory, sess.ProcessIDs, func(detail string) {
			sess.KillSandbox(memoryLimitReason, detail)
		}, func(sig syscall.Signal) { sess.Signal(sig) }, sess.Log)
		m.MapMemfd = sampler.MapMemfd
		l.memory, l.sampler = m, sampler
		sess.OnProcessStart(sampler.Started)
		sess.Background(sampler.Run)
		sess.OnEnd(sampler.Report)
		sess.OnEnd(sampler.Close)
	}
	if l.cpuPercent > 0 && l.cpuPercent < 100 {
		signal := func(sig syscall.Signal) { sess.Signal(sig) }
		if l.traced {
			c := limits.NewCPUShare(l.cpuPercent, sess.ProcessIDs, signal)
			sess.OnProcessStart(c.Started)
			sess.OnExitUsage(c.Exited)
			sess.Background(c.Run)
		} else {
			// Without the tracer nobody lists the processes to sum: the
			// process group is stopped for the rest of each period.
			sess.Background(func(ctx context.Context) { limits.DutyCycle(ctx, l.cpuPercent, signal) })
		}
	}
	if l.numCPUs > 0 {
		limits.NumCPUs{N: l.numCPUs, Pinned: l.knobs.CPUs}.Register(sess.Table)
	}
	if l.knobs.CPUs != nil {
		(&limits.CPUPin{CPUs: *l.knobs.CPUs, Traced: sess.Traced}).Register(sess.Table)
	}
}

// memoryView returns the budget and what the sandbox uses of it, as the
// accounting and the sampler last counted it (for the /proc view).
func (l *resourceLimits) memoryView() (limit, used uint64) {
	if l.memory == nil {
		return l.maxMemory, 0
	}
	return l.maxMemory, max(l.memory.Used(), l.sampler.Last())
}

// grants are the Landlock rules the limits add (GPU devices).
func (l *resourceLimits) grants(handled uint64) []landlock.PathRule {
	var out []landlock.PathRule
	for _, d := range l.gpu.Devices {
		out = append(out, landlock.PathRule{Path: d, Access: handled})
	}
	for _, r := range l.gpu.Read {
		out = append(out, landlock.PathRule{Path: r, Access: landlock.FSRead})
	}
	return out
}

// getNofile reads RLIMIT_NOFILE (soft, hard).
func getNofile(lim *[2]uint64) error {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return err
	}
	lim[0], lim[1] = rl.Cur, rl.Max
	return nil
}
