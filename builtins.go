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
	var named *registration
	if !s.NoRegistry {
		named = &registration{s: s}
	}
	features = append(features,
		// Virtualize: what the program sees of the host (views.go). After
		// every feature that adds Landlock path rules: it carves /proc and
		// the host's parts of /sys out of them.
		s.hostView(lim, network, named),
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
