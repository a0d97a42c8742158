//go:build linux

package sandlock

import (
	"context"

	"github.com/sandlock-go/sandlock/internal/fsdeny"
	"github.com/sandlock-go/sandlock/internal/fsmeta"
	"github.com/sandlock-go/sandlock/internal/limits"
	"github.com/sandlock-go/sandlock/internal/netgate"
	"github.com/sandlock-go/sandlock/internal/netview"
	"github.com/sandlock-go/sandlock/internal/pidgate"
	"github.com/sandlock-go/sandlock/internal/plan"
	"github.com/sandlock-go/sandlock/internal/seedrand"
	"github.com/sandlock-go/sandlock/internal/sortdirs"
	"github.com/sandlock-go/sandlock/internal/timeshift"
	"github.com/sandlock-go/sandlock/internal/vdso"
)

// builtins validates the fields the builtin features take and returns the
// features, in order. On one syscall, handlers run by phase (guard,
// translate, deny, virtualize, user, act: see plan.Phase), and within a
// phase in this order; a feature is added with its package and a line
// here. It also returns the registry's feature, for the run to report its
// name (nil with NoRegistry).
func (s *Sandbox) builtins(ctx context.Context) ([]plan.Feature, *registration, error) {
	lim, err := limits.New(limits.Settings{
		MaxProcesses: s.MaxProcesses, MaxMemory: s.MaxMemory, MaxCPU: s.MaxCPU, MaxOpenFiles: s.MaxOpenFiles,
		CPUCores: s.CPUCores, NumCPUs: s.NumCPUs, GPUDevices: s.GPUDevices,
		NoRandomizeMemory: s.NoRandomizeMemory, NoHugePages: s.NoHugePages, NoCoredump: s.NoCoredump,
		NoSupervisor: s.NoSupervisor,
	})
	if err != nil {
		return nil, nil, err
	}
	var deny *fsdeny.Feature
	netSettings := netgate.Settings{
		NetAllow: s.NetAllow, NetDeny: s.NetDeny, NetAllowBind: s.NetAllowBind, NetDenyBind: s.NetDenyBind,
		FSWritable: s.FSWritable, NoSupervisor: s.NoSupervisor,
	}
	var metaDeny func(fd int) error
	if len(s.FSDenied) > 0 {
		deny = &fsdeny.Feature{Paths: s.FSDenied}
		netSettings.Denied, netSettings.DeniedEntry, metaDeny = deny.CheckFD, deny.CheckEntry, deny.CheckFD
	}
	network, err := netgate.New(ctx, netSettings)
	if err != nil {
		return nil, nil, err
	}
	det, err := s.determinism()
	if err != nil {
		return nil, nil, err
	}
	if det.random != nil {
		// The random devices are known by what an open resolves to: every
		// open is resolved and done on the program's behalf, by fs-deny
		// (with nothing to deny when FSDenied is empty), whose act phase
		// hands the opens of the random devices to the seeded source.
		if deny == nil {
			deny = &fsdeny.Feature{}
		}
		deny.Serve = det.random.ServeOpen
	}

	features := []plan.Feature{
		// Guard, first: no other handler looks at a call that names another
		// process before the gate has said it is the sandbox's own.
		pidgate.Feature{},
		// Guard: the limits count every fork and allocation, whatever
		// answers it later; they also set the child's knobs and grant GPUs.
		lim,
	}
	if deny != nil {
		// Deny: fs-deny comes before the features that consult its checks.
		features = append(features, deny)
	}
	features = append(features,
		// Deny: the network rules (its named unix sockets meet fs-deny's
		// checks).
		network,
		// Deny, decided at finish: what Landlock does not cover, judged
		// against the built grants; checked before the user handlers only
		// where another handler watches the syscall.
		fsmeta.Feature{Deny: metaDeny},
		// Translate and act: the copy-on-write workdir; after every feature
		// that adds Landlock paths, which it carves.
		&workdirFeature{s: s, deny: deny},
	)
	// Virtualize: deterministic runs (issue 15), the shifted clock and the
	// seeded randomness, then (act) sorted directory listings, and the
	// vDSO patch the first two need at each exec.
	features = append(features, det.features()...)
	var named *registration
	if !s.NoRegistry {
		named = &registration{s: s}
	}
	features = append(features,
		// Virtualize: what the program sees of the host (views.go). After
		// every feature that adds Landlock path rules: it carves /proc and
		// the host's parts of /sys out of them.
		s.hostView(lim, network, named, det),
		// Virtualize: the network interfaces, loopback only.
		netview.Feature{},
	)
	if named != nil {
		// Last: the name is taken once every other setting was valid, and
		// before anything runs, so that a live duplicate stops the run.
		features = append(features, named)
	}
	return features, named, nil
}

// determinism is the deterministic-run features (issue 15), each nil when
// its field is unset: then nothing of it is trapped and no exec stop is
// taken.
type determinism struct {
	clock  *timeshift.Feature
	random *seedrand.Feature
	dirs   *sortdirs.Feature
	vdso   *vdso.Feature
}

// determinism validates TimeStart, RandomSeed and DeterministicDirs.
func (s *Sandbox) determinism() (*determinism, error) {
	var d determinism
	var err error
	if d.clock, err = timeshift.NewFeature(s.TimeStart, s.NoSupervisor); err != nil {
		return nil, err
	}
	if d.random, err = seedrand.NewFeature(s.RandomSeed, s.NoSupervisor); err != nil {
		return nil, err
	}
	if d.dirs, err = sortdirs.NewFeature(s.DeterministicDirs, s.NoSupervisor); err != nil {
		return nil, err
	}
	if d.clock != nil || d.random != nil {
		d.vdso = &vdso.Feature{Patch: vdso.Patch{HideGetrandom: d.random != nil}}
		if d.clock != nil {
			sh := d.clock.Shift()
			d.vdso.Patch.Clock, d.vdso.Patched = &sh, d.clock.SetVDSO
		}
	}
	return &d, nil
}

// features lists the features that are on, in order.
func (d *determinism) features() []plan.Feature {
	var out []plan.Feature
	if d.clock != nil {
		out = append(out, d.clock)
	}
	if d.random != nil {
		out = append(out, d.random)
	}
	if d.dirs != nil {
		out = append(out, d.dirs)
	}
	if d.vdso != nil {
		out = append(out, d.vdso)
	}
	return out
}
