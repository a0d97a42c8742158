//go:build linux

package sandlock

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sandlock-go/sandlock/internal/plan"
	"github.com/sandlock-go/sandlock/internal/registry"
	"github.com/sandlock-go/sandlock/internal/session"
)

// Named sandboxes. Every run is registered under a name in the user's
// runtime directory, /dev/shm/sandlock-<uid>/<name>/ (upstream Sandlock's
// layout), unless Sandbox.NoRegistry is set: `sandlock ps` lists it,
// `sandlock inspect` reads its policy and `sandlock kill` ends it, through
// the control socket its supervisor serves for the run's life.

// nameInUse is the error for a name a live sandbox holds.
type nameInUse struct{ *registry.RunningError }

func (e nameInUse) Error() string        { return "sandlock: " + e.RunningError.Error() }
func (e nameInUse) Is(target error) bool { return target == ErrNameInUse }

// nameSeq numbers the names generated in this process.
var nameSeq atomic.Uint64

// claim takes the run's name in the registry before anything starts, so
// that a live duplicate stops the run: Name, or sandbox-<pid>-<n>. A run
// with a generated name goes unregistered where the runtime directory
// cannot be reached at all (a nested sandlock in a sandbox without a
// grant for /dev/shm); one named explicitly fails, as does every run when
// the directory is someone else's.
func (s *Sandbox) claim() (*registry.Entry, error) {
	if s.Name != "" {
		e, err := registry.Claim(s.Name)
		var re *registry.RunningError
		if errors.As(err, &re) {
			return nil, nameInUse{re}
		}
		if err != nil {
			return nil, fmt.Errorf("sandlock: %w", err)
		}
		return e, nil
	}
	prefix := "sandbox-" + strconv.Itoa(os.Getpid()) + "-"
	for {
		// A generated name can only be taken by a process of the same pid
		// in another pid namespace sharing /dev/shm: take the next one.
		e, err := registry.Claim(prefix + strconv.FormatUint(nameSeq.Add(1), 10))
		var re *registry.RunningError
		if errors.As(err, &re) {
			continue
		}
		if errors.Is(err, registry.ErrUnavailable) {
			s.logger().Debug("sandlock: running unregistered: " + err.Error())
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("sandlock: %w", err)
		}
		return e, nil
	}
}

// registration is the registry as a builtin feature: the name is claimed
// when the run is planned, the entry published once the program runs and
// removed once the run has ended.
type registration struct {
	s       *Sandbox
	entry   *registry.Entry // nil: unregistered
	program []string        // the program's path and arguments
}

// Plan claims the name and arranges the rest.
func (r *registration) Plan(b *plan.Builder) error {
	e, err := r.s.claim()
	if err != nil || e == nil {
		return err
	}
	r.entry = e
	// The name goes once the run has ended, on the tracer's thread before
	// anyone waiting learns of the end (and so also for a caller that never
	// waits), or when the run will not start.
	b.OnEnd(e.Close)
	b.Close(e.Close)
	policy := *r.s
	run := b.Run()
	b.OnStart(func() {
		started := time.Now()
		h := registry.Handler{
			Config: func() ([]byte, error) {
				return json.Marshal(&Profile{Sandbox: policy, Program: r.program})
			},
			Status: func() any {
				return map[string]any{
					"name":           e.Name(),
					"pid":            run.Pid(),
					"supervisor_pid": os.Getpid(),
					"started":        started.UTC().Format(time.RFC3339Nano),
					"processes":      run.Processes(),
					"command":        r.program,
				}
			},
			Kill: func() { run.Kill(session.ReasonKilled) },
		}
		if err := e.Publish(run.Pid(), os.Getpid(), h); err != nil {
			b.Log.Warn("sandlock: registering the sandbox: "+err.Error(), "name", e.Name())
		}
	})
	return nil
}

// Name returns the name the sandbox is registered under (Sandbox.Name, or
// the one generated for it), or "" when it is not registered.
func (p *Process) Name() string {
	if n := p.run.p.named; n != nil && n.entry != nil {
		return n.entry.Name()
	}
	return ""
}

// Instances lists the calling user's running sandboxes, sorted by name,
// and removes the entries of sandboxes whose supervisor died.
func Instances() ([]Instance, error) {
	infos, err := registry.List()
	if err != nil {
		return nil, fmt.Errorf("sandlock: %w", err)
	}
	out := make([]Instance, 0, len(infos))
	for _, in := range infos {
		out = append(out, instance(in))
	}
	return out, nil
}

func instance(in registry.Info) Instance {
	i := Instance{Name: in.Name, Pid: in.Pid, Supervisor: in.Supervisor, Started: in.Started, Status: in.Mode}
	if i.Status == "" {
		i.Status = "running"
	}
	if in.Pid > 0 {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(in.Pid) + "/cmdline"); err == nil && len(b) > 0 {
			i.Command = strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
		}
	}
	return i
}

// Inspect asks the named sandbox's supervisor for its effective policy and
// command (its control socket's config verb).
func Inspect(name string) (*Profile, error) {
	data, err := registry.Ask(name, "config")
	if err != nil {
		return nil, fmt.Errorf("sandlock: %w", err)
	}
	return parseProfileJSON(fmt.Sprintf("sandbox %q", name), data)
}

// Kill ends the named sandbox and returns once nothing of it is left. It
// asks its supervisor first, so that the run ends through its normal path
// (Wait returns ReasonKilled there); a supervisor that does not answer is
// SIGKILLed, with the sandbox's process group, once they are verified to
// be the processes the registry names.
func Kill(name string) (Instance, error) {
	in, _, err := registry.Kill(name)
	if err != nil {
		return instance(in), fmt.Errorf("sandlock: %w", err)
	}
	return Instance{Name: in.Name, Pid: in.Pid, Supervisor: in.Supervisor, Started: in.Started, Status: "killed"}, nil
}
