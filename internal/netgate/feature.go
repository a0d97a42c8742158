//go:build linux

package netgate

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/sandlock-go/sandlock/internal/fielderr"
	"github.com/sandlock-go/sandlock/internal/filter"
	"github.com/sandlock-go/sandlock/internal/landlock"
	"github.com/sandlock-go/sandlock/internal/netpolicy"
	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/plan"
)

// Settings are a sandbox's network fields, as the Sandbox fields of the
// same names.
type Settings struct {
	NetAllow, NetDeny         []string
	NetAllowBind, NetDenyBind []string
	// FSWritable are the writable grants: the only places a named unix
	// socket may be reached.
	FSWritable []string
	// NoSupervisor: only what Landlock enforces alone is possible.
	NoSupervisor bool
	// Lookup resolves a rule's hostname; nil uses the system's resolver.
	Lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	// Denied and DeniedEntry, if set, are fs-deny's checks, which named
	// unix sockets meet (see Config).
	Denied      func(pinned int) error
	DeniedEntry func(parent int, name string) error
}

// Feature is a sandbox's network policy, planned: which rules Landlock
// enforces, which the filter, which the supervisor.
type Feature struct {
	Mode  Mode
	Rules []netpolicy.Resolved
	// UDP and ICMP say which datagram sockets the filter lets be created.
	UDP, ICMP bool
	// ConnectByLandlock: every TCP rule is port-only, so Landlock's port
	// rules (ConnectPorts) are the verdict on TCP connects (checked on the
	// helper threads that connect). BindByLandlock likewise for binds.
	ConnectByLandlock bool
	ConnectPorts      []uint16
	BindByLandlock    bool
	BindPorts         []uint16
	// DenyBind are the ports NetDenyBind refuses (the supervisor's).
	DenyBind []netpolicy.PortRange
	// Hosts: rules name hosts, so /etc/hosts is served with their
	// addresses (HostsFile, by the host view).
	Hosts bool
	// NeedsSupervisor names the field whose rules Landlock cannot enforce
	// alone, or is "".
	NeedsSupervisor string

	settings Settings
}

// maxLandlockPorts bounds the port rules given to Landlock; wider port sets
// are judged by the supervisor instead.
const maxLandlockPorts = 1024

// New validates and resolves the network settings and decides who enforces
// what. Hostnames are resolved once, here (ctx cancels the lookups).
func New(ctx context.Context, s Settings) (*Feature, error) {
	if len(s.NetAllow) > 0 && len(s.NetDeny) > 0 {
		return nil, fielderr.New("NetAllow", "", errors.New("NetAllow and NetDeny are mutually exclusive"))
	}
	if len(s.NetAllowBind) > 0 && len(s.NetDenyBind) > 0 {
		return nil, fielderr.New("NetAllowBind", "", errors.New("NetAllowBind and NetDenyBind are mutually exclusive"))
	}
	f := &Feature{Mode: Closed, ConnectByLandlock: true, BindByLandlock: true, settings: s}
	var rules []netpolicy.Rule
	for _, spec := range s.NetAllow {
		r, err := netpolicy.ParseRule(spec, false)
		if err != nil {
			return nil, ruleField("NetAllow", err)
		}
		rules = append(rules, r)
		f.Mode = AllowList
	}
	for _, spec := range s.NetDeny {
		r, err := netpolicy.ParseRule(spec, true)
		if err != nil {
			return nil, ruleField("NetDeny", err)
		}
		rules = append(rules, r)
		f.Mode = DenyList
	}
	lookup := s.Lookup
	if lookup == nil {
		lookup = lookupHost
	}
	resolved, err := netpolicy.Resolve(rules, func(host string) ([]netip.Addr, error) { return lookup(ctx, host) })
	if err != nil {
		return nil, ruleField("NetAllow", err)
	}
	f.Rules = resolved

	switch f.Mode {
	case DenyList:
		// Default-allow: everything may be created; the supervisor judges
		// every destination.
		f.UDP, f.ICMP, f.ConnectByLandlock = true, true, false
	case AllowList:
		ports := map[uint16]bool{}
		for _, r := range resolved {
			f.UDP = f.UDP || r.Protos&netpolicy.UDP != 0
			f.ICMP = f.ICMP || r.Protos&netpolicy.ICMP != 0
			f.Hosts = f.Hosts || r.Host != ""
			if r.Protos&netpolicy.TCP == 0 {
				continue
			}
			if !r.Any || r.Ports == nil {
				// A host rule, or any host on every port: Landlock's port
				// rules cannot say it.
				f.ConnectByLandlock = false
				continue
			}
			for _, pr := range r.Ports {
				for p := int(pr.Lo); p <= int(pr.Hi) && len(ports) <= maxLandlockPorts; p++ {
					ports[uint16(p)] = true
				}
			}
		}
		if len(ports) > maxLandlockPorts {
			f.ConnectByLandlock = false
		}
		if f.ConnectByLandlock {
			for p := range ports {
				f.ConnectPorts = append(f.ConnectPorts, p)
			}
		}
	}

	for _, spec := range s.NetAllowBind {
		all, ranges, err := netpolicy.ParseBind(spec)
		if err != nil {
			return nil, ruleField("NetAllowBind", err)
		}
		if all {
			f.BindByLandlock = false
			continue
		}
		for _, r := range ranges {
			for p := int(r.Lo); p <= int(r.Hi); p++ {
				f.BindPorts = append(f.BindPorts, uint16(p))
			}
		}
	}
	if len(f.BindPorts) > maxLandlockPorts*16 {
		return nil, fielderr.New("NetAllowBind", "", errors.New("too many ports (use * to allow every port)"))
	}
	for _, spec := range s.NetDenyBind {
		all, ranges, err := netpolicy.ParseBind(spec)
		if err != nil {
			return nil, ruleField("NetDenyBind", err)
		}
		if all {
			return nil, fielderr.New("NetDenyBind", spec, errors.New("* would deny every port (omit the network bind flags instead)"))
		}
		f.DenyBind = append(f.DenyBind, ranges...)
		f.BindByLandlock = false
	}
	switch {
	case f.Mode == DenyList:
		f.NeedsSupervisor = "NetDeny"
	case f.Mode == AllowList && (!f.ConnectByLandlock || f.UDP || f.ICMP):
		f.NeedsSupervisor = "NetAllow"
	case len(f.DenyBind) > 0:
		f.NeedsSupervisor = "NetDenyBind"
	}
	if s.NoSupervisor && f.NeedsSupervisor != "" {
		return nil, fielderr.New(f.NeedsSupervisor, "", errors.New("these rules need the supervisor, which NoSupervisor turns off (only port-only TCP rules are enforced by Landlock alone)"))
	}
	return f, nil
}

// ruleField names the field of a netpolicy error.
func ruleField(name string, err error) error {
	var re *netpolicy.Error
	if errors.As(err, &re) {
		return fielderr.New(name, re.Spec, re.Err)
	}
	return fielderr.New(name, "", err)
}

// lookupHost resolves a rule's hostname once, at start.
func lookupHost(ctx context.Context, host string) ([]netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// Plan adds Landlock's part (its port rules and the network rights it
// handles: without an active net-tcp protection it handles none), the
// filter's (which datagram sockets may exist), and the supervisor's
// handlers: the gate in the deny phase. (The hosts file Hosts calls for is
// the host view's to serve: HostsFile.)
func (f *Feature) Plan(b *plan.Builder) error {
	cfg := b.Landlock
	connectByLandlock := f.ConnectByLandlock && cfg.HandledNet != 0
	if cfg.HandledNet != 0 {
		if !f.ConnectByLandlock {
			cfg.HandledNet &^= landlock.NetConnectTCP
		}
		if !f.BindByLandlock {
			cfg.HandledNet &^= landlock.NetBindTCP
		}
		for _, p := range f.ConnectPorts {
			cfg.Ports = append(cfg.Ports, landlock.PortRule{Port: p, Access: landlock.NetConnectTCP})
		}
		for _, p := range f.BindPorts {
			cfg.Ports = append(cfg.Ports, landlock.PortRule{Port: p, Access: landlock.NetBindTCP})
		}
	}
	b.Filter.UDP, b.Filter.ICMP = f.UDP, f.ICMP
	if !b.Supervised {
		// A fast-open send connects without Landlock's connect hook: where
		// nobody judges it, it must not happen at all.
		b.Filter.NoFastOpen = true
		return nil
	}
	var writable []string
	for _, w := range f.settings.FSWritable {
		if c, err := filepath.EvalSymlinks(w); err == nil {
			writable = append(writable, c)
		}
	}
	run := b.Run()
	gate := newGate(Config{
		Mode:           f.Mode,
		Rules:          f.Rules,
		TCPByLandlock:  connectByLandlock,
		DenyBind:       f.DenyBind,
		Writable:       writable,
		AbstractScoped: cfg.Scoped&landlock.ScopeAbstractUnixSocket != 0,
		ProcessIDs:     run.ProcessIDs,
		Traced:         run.Traced,
		TGID:           run.TGID,
		Pool:           b.Helpers(),
		Unscoped:       b.Unscoped(),
		Denied:         f.settings.Denied,
		DeniedEntry:    f.settings.DeniedEntry,
	})
	sendtoHandlers := gate.register(b)
	// A sendto without an address (a NULL pointer, or a zero length: the
	// kernel then reads none) goes to a connected socket, whose peer was
	// judged at connect: unless another handler wants to see every sendto,
	// the filter lets those through unnotified. Both are registers, which
	// the program cannot change once the syscall is made. (The length is
	// an int: only its low half counts.)
	if nr, ok := b.Arch.Nr("sendto"); ok && sendtoHandlers > 0 {
		b.NotifyExcept(nr, sendtoHandlers,
			filter.Cond{Tests: []filter.Test{{Arg: 4, Value: 0}, {Arg: 4, High: true, Value: 0}}},
			filter.Cond{Tests: []filter.Test{{Arg: 5, Value: 0}}})
	}
	return nil
}

// register adds the gate's handlers (deny phase) and returns how many it
// put on sendto. bind is notified only where the kernel cannot judge binds
// alone: a deny list of bind ports (Landlock cannot say "all but"), or
// denied paths where a unix socket could be created.
func (g *Gate) register(b *plan.Builder) (sendto int) {
	add := func(name string, h notify.HandlerFunc) {
		if b.HandleNamed(name, plan.Deny, "network: "+name, false, h) && name == "sendto" {
			sendto++
		}
	}
	add("connect", g.connect)
	add("sendto", g.sendto)
	add("sendmsg", g.sendmsg)
	add("sendmmsg", g.sendmmsg)
	add("listen", g.listen)
	if len(g.cfg.DenyBind) > 0 || g.cfg.DeniedEntry != nil {
		add("bind", g.bind)
	}
	return sendto
}
