//go:build linux

package procview

import (
	"errors"

	"github.com/sandlock-go/sandlock/internal/fielderr"
	"github.com/sandlock-go/sandlock/internal/plan"
)

// The tiers of Feature.Tier (Sandbox.ProcView).
const (
	// TierDefault is TierServed when a grant covers /proc or a refused
	// part of /sys, TierNone otherwise; TierHost without a supervisor.
	TierDefault = ""
	TierServed  = "served"
	TierNone    = "none"
	TierHost    = "host"
)

// Feature is what the program sees of the host, as a builtin feature: the
// carve of the grants and the served /proc view, the hostname, and the
// synthetic files that stand in for host files. It carves the Landlock
// path rules the features before it added: it comes after every feature
// that adds path rules.
type Feature struct {
	// Tier is the Sandbox's ProcView.
	Tier string
	// Named: the sandbox was given a name, which /etc/hostname then says.
	Named bool
	// Nodename returns the sandbox's hostname, once the run has started.
	Nodename func() string
	// NumCPUs is the Sandbox's NumCPUs.
	NumCPUs int
	// Memory, if set, returns the memory budget and what the sandbox
	// uses of it, once the run has started.
	Memory func() (limit, used uint64)
	// Hosts, if not nil, is the synthetic /etc/hosts (hostname rules).
	Hosts []byte
	// Files and BootTime are hooks for other features: see Config.
	Files    map[string]func(tgid int) []byte
	BootTime func() int64

	// Carved is the carve made at Plan (none for the host tier).
	Carved Carved
	// Served: the tier Plan settled on serves /proc.
	Served bool
}

// Plan settles the tier, carves the grants, and adds the handlers.
func (f *Feature) Plan(b *plan.Builder) error {
	tier := f.Tier
	switch tier {
	case TierDefault, TierServed, TierNone, TierHost:
	default:
		return fielderr.New("ProcView", tier, errors.New("want served, none or host"))
	}
	if !b.Supervised {
		switch tier {
		case TierServed:
			return fielderr.New("ProcView", tier, errors.New("needs the supervisor, which NoSupervisor turns off"))
		case TierDefault:
			// A sandbox without a supervisor is where a nested sandlock
			// runs, whose own supervisor reads the host's /proc.
			tier = TierHost
		}
	}
	refused := Refused
	// Grants that reach neither /proc nor /sys have nothing to carve: the
	// sandbox then pays no look at /sys at start (finding the interface
	// directories costs a quarter of a millisecond).
	if tier != TierHost && (tier == TierServed || Touches(b.Landlock.Paths, "/proc", "/sys")) {
		refused = RefusedTrees()
		f.Carved = Carve(b.Landlock.Paths, refused, ReadOnly)
		b.Landlock.Paths = f.Carved.Rules
		for _, r := range f.Carved.Reach {
			// Every path was readable: the metadata of the carved trees
			// tells nothing their listing does not, and fsmeta need not
			// judge reading it.
			b.Landlock.ReadsEverywhere = b.Landlock.ReadsEverywhere || r == "/"
		}
	}
	if tier == TierDefault {
		tier = TierNone
		if len(f.Carved.Proc) > 0 || len(f.Carved.Hollow) > 0 {
			tier = TierServed
		}
	}
	f.Served = tier == TierServed
	if !b.Supervised {
		return nil
	}
	run := b.Run()
	cfg := Config{
		Proc:      f.Served,
		HostFiles: map[string]func() []byte{},
		Nodename:  f.Nodename,
		NumCPUs:   f.NumCPUs,
		Processes: run.ProcessIDs,
		Reach:     f.Carved.Reach,
		Refused:   refused,
		Visible:   run.Traced,
		TGID:      run.TGID,
		Pool:      b.Unscoped(),
		KeepCaps:  b.KeepCaps,
	}
	if f.Served {
		cfg.ProcGrants, cfg.Hollow = f.Carved.Proc, f.Carved.Hollow
		cfg.Memory, cfg.Files, cfg.BootTime = f.Memory, f.Files, f.BootTime
	}
	if f.Hosts != nil {
		hosts := f.Hosts
		cfg.HostFiles["/etc/hosts"] = func() []byte { return hosts }
		cfg.Mounted = append(cfg.Mounted, "/etc/hosts")
	}
	if f.Named && f.Nodename != nil {
		// /etc/hostname says the name, readable with or without a grant.
		nodename := f.Nodename
		cfg.HostFiles["/etc/hostname"] = func() []byte { return []byte(nodename() + "\n") }
		cfg.Mounted = append(cfg.Mounted, "/etc/hostname")
	}
	v := New(cfg)
	v.register(b)
	b.Close(v.Close)
	return nil
}
