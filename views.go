package sandlock

import (
	"errors"
	"os"
	"strconv"

	"github.com/sandlock-go/sandlock/internal/confine"
	"github.com/sandlock-go/sandlock/internal/landlock"
	"github.com/sandlock-go/sandlock/internal/netgate"
	"github.com/sandlock-go/sandlock/internal/netview"
	"github.com/sandlock-go/sandlock/internal/procview"
	"github.com/sandlock-go/sandlock/internal/sysnum"
)

// What the program sees of the host (issue 16): /proc, its hostname,
// synthetic /etc/hosts and /etc/hostname, and the network interfaces.
// The views are the "virtualize" phase: registered after the denials
// (fs-deny), so that a synthetic file never overrides a deny, and before
// user handlers.

// hostView is the validated form of the fields that shape the views.
type hostView struct {
	tier       ProcView // served, none or host
	carved     procview.Carved
	hosts      []byte // the synthetic /etc/hosts of hostname rules, or nil
	supervised bool

	// Hooks for other features, set before register: more synthetic
	// files below /proc, by path relative to it, made at each open
	// (deterministic randomness: "sys/kernel/random/boot_id" and "uuid"
	// from the seed; a sandbox clock: "uptime"), and the boot time
	// /proc/stat reports (a clock started at TimeStart). They show in the
	// served view only.
	procFiles map[string]func() []byte
	bootTime  func() int64
}

// hostView resolves ProcView and, unless /proc is the host's, carves the
// refused trees out of cfg's path rules. It needs every path rule in cfg.
func (s *Sandbox) hostView(cfg *landlock.Config, network *networkPolicy) (*hostView, error) {
	v := &hostView{tier: s.ProcView, supervised: !s.NoSupervisor}
	switch s.ProcView {
	case ProcViewDefault, ProcViewServed, ProcViewNone, ProcViewHost:
	default:
		return nil, field("ProcView", string(s.ProcView), errors.New("want served, none or host"))
	}
	if s.NoSupervisor {
		switch s.ProcView {
		case ProcViewServed:
			return nil, field("ProcView", string(s.ProcView), errors.New("needs the supervisor, which NoSupervisor turns off"))
		case ProcViewDefault:
			// A sandbox without a supervisor is where a nested sandlock
			// runs, whose own supervisor reads the host's /proc.
			v.tier = ProcViewHost
		}
	}
	if network.hosts {
		v.hosts = netgate.HostsFile(network.rules)
	}
	if v.tier == ProcViewHost {
		return v, nil
	}
	v.carved = procview.Carve(cfg.Paths, procview.Refused, procview.ReadOnly)
	cfg.Paths = v.carved.Rules
	if v.tier == ProcViewDefault {
		v.tier = ProcViewNone
		if len(v.carved.Proc) > 0 || len(v.carved.Hollow) > 0 {
			v.tier = ProcViewServed
		}
	}
	return v, nil
}

// readsEverywhere reports whether the grants, before the carve, let every
// path be read: the carve takes only trees whose metadata tells nothing,
// so reading metadata stays unjudged (see registerMeta).
func (v *hostView) readsEverywhere() bool {
	if v.tier == ProcViewHost {
		return false // the ruleset's own grants say it
	}
	for _, r := range v.carved.Reach {
		if r == "/" {
			return true
		}
	}
	return false
}

// register adds the views' handlers, after the denials.
func (v *hostView) register(p *prepared, s *Sandbox, lim *resourceLimits) {
	if !v.supervised {
		return
	}
	served := v.tier == ProcViewServed
	cfg := procview.Config{
		Proc:      served,
		HostFiles: map[string]func() []byte{},
		Nodename:  func() string { return p.hostname },
		NumCPUs:   int(s.NumCPUs),
		Processes: p.session.ProcessIDs,
		Reach:     v.carved.Reach,
		Refused:   procview.Refused,
		Visible:   p.session.Traced,
		TGID:      p.session.TGID,
		KeepCaps:  s.KeepCaps,
	}
	if served {
		cfg.ProcGrants, cfg.Hollow = v.carved.Proc, v.carved.Hollow
		cfg.Files, cfg.BootTime = v.procFiles, v.bootTime
		cfg.Pool = p.procHelpers(s)
		if lim.maxMemory > 0 {
			cfg.Memory = lim.memoryView
		}
	}
	if v.hosts != nil {
		hosts := v.hosts
		cfg.HostFiles["/etc/hosts"] = func() []byte { return hosts }
		cfg.Mounted = append(cfg.Mounted, "/etc/hosts")
	}
	if s.Name != "" {
		// Named: /etc/hostname says so, readable with or without a grant.
		cfg.HostFiles["/etc/hostname"] = func() []byte { return []byte(p.hostname + "\n") }
		cfg.Mounted = append(cfg.Mounted, "/etc/hostname")
	}
	pv := procview.New(cfg)
	pv.Register(p.session.Table)
	p.session.OnEnd(pv.Close)

	nv := netview.New(p.session.TGID)
	nv.Register(p.session.Table)
	p.session.OnEnd(nv.Close)
}

// socketNr is socket's number on this architecture.
var socketNr = sysnum.Native().MustNr("socket")

// netlinkOnly reports whether the interface view is all that watches
// socket: the filter then notifies only netlink-route sockets.
func (v *hostView) netlinkOnly(p *prepared) bool {
	return v.supervised && p.session.Table.Len(socketNr) == 1
}

// procHelpers returns the run's pool of threads that open /proc entries
// on the program's behalf: no capabilities, NO_NEW_PRIVS, no Landlock
// domain (the carved ruleset grants none of /proc; the view judges).
func (p *prepared) procHelpers(s *Sandbox) *confine.Pool {
	if p.procPool == nil {
		p.procPool = confine.NewPool(nil, s.KeepCaps)
	}
	return p.procPool
}

// nodename is the hostname the program sees: the sandbox's name, the one
// the registry generated, or one generated here for an unregistered run.
func (p *prepared) nodename(s *Sandbox) string {
	switch {
	case s.Name != "":
		return s.Name
	case p.entry != nil:
		return p.entry.Name()
	}
	return "sandbox-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(nameSeq.Add(1), 10)
}
