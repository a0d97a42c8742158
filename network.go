package sandlock

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/sandlock-go/sandlock/internal/confine"
	"github.com/sandlock-go/sandlock/internal/filter"
	"github.com/sandlock-go/sandlock/internal/landlock"
	"github.com/sandlock-go/sandlock/internal/netgate"
	"github.com/sandlock-go/sandlock/internal/netpolicy"
	"github.com/sandlock-go/sandlock/internal/sandbox"
	"github.com/sandlock-go/sandlock/internal/sysnum"
)

// networkPolicy is the validated, resolved form of the network fields.
type networkPolicy struct {
	mode  netgate.Mode
	rules []netpolicy.Resolved
	udp   bool // UDP sockets may be created
	icmp  bool // ping sockets may be created

	// Landlock's part: whether it handles TCP connect and bind, and the
	// ports it allows.
	connectByLandlock bool
	connectPorts      []uint16
	bindByLandlock    bool
	bindPorts         []uint16
	denyBind          []netpolicy.PortRange
	hosts             bool // rules name hosts: the host view serves a synthetic /etc/hosts (views.go)
	// abstractScoped: Landlock scopes the program's abstract unix sockets.
	abstractScoped bool
}

// maxLandlockPorts bounds the port rules given to Landlock; wider port sets
// are judged by the supervisor instead.
const maxLandlockPorts = 1024

// network validates and resolves the network fields.
func (s *Sandbox) network() (*networkPolicy, error) {
	if len(s.NetAllow) > 0 && len(s.NetDeny) > 0 {
		return nil, field("NetAllow", "", errors.New("NetAllow and NetDeny are mutually exclusive"))
	}
	if len(s.NetAllowBind) > 0 && len(s.NetDenyBind) > 0 {
		return nil, field("NetAllowBind", "", errors.New("NetAllowBind and NetDenyBind are mutually exclusive"))
	}
	n := &networkPolicy{mode: netgate.Closed, connectByLandlock: true, bindByLandlock: true}
	var rules []netpolicy.Rule
	for _, spec := range s.NetAllow {
		r, err := netpolicy.ParseRule(spec, false)
		if err != nil {
			return nil, ruleField("NetAllow", err)
		}
		rules = append(rules, r)
		n.mode = netgate.AllowList
	}
	for _, spec := range s.NetDeny {
		r, err := netpolicy.ParseRule(spec, true)
		if err != nil {
			return nil, ruleField("NetDeny", err)
		}
		rules = append(rules, r)
		n.mode = netgate.DenyList
	}
	resolved, err := netpolicy.Resolve(rules, lookupHost)
	if err != nil {
		return nil, ruleField("NetAllow", err)
	}
	n.rules = resolved

	switch n.mode {
	case netgate.DenyList:
		// Default-allow: everything may be created; the supervisor judges
		// every destination.
		n.udp, n.icmp, n.connectByLandlock = true, true, false
	case netgate.AllowList:
		ports := map[uint16]bool{}
		for _, r := range resolved {
			n.udp = n.udp || r.Protos&netpolicy.UDP != 0
			n.icmp = n.icmp || r.Protos&netpolicy.ICMP != 0
			n.hosts = n.hosts || r.Host != ""
			if r.Protos&netpolicy.TCP == 0 {
				continue
			}
			if !r.Any || r.Ports == nil {
				// A host rule, or any host on every port: Landlock's port
				// rules cannot say it.
				n.connectByLandlock = false
				continue
			}
			for _, pr := range r.Ports {
				for p := int(pr.Lo); p <= int(pr.Hi) && len(ports) <= maxLandlockPorts; p++ {
					ports[uint16(p)] = true
				}
			}
		}
		if len(ports) > maxLandlockPorts {
			n.connectByLandlock = false
		}
		for p := range ports {
			n.connectPorts = append(n.connectPorts, p)
		}
	}

	for _, spec := range s.NetAllowBind {
		all, ranges, err := netpolicy.ParseBind(spec)
		if err != nil {
			return nil, ruleField("NetAllowBind", err)
		}
		if all {
			n.bindByLandlock = false
			continue
		}
		for _, r := range ranges {
			for p := int(r.Lo); p <= int(r.Hi); p++ {
				n.bindPorts = append(n.bindPorts, uint16(p))
			}
		}
	}
	if len(n.bindPorts) > maxLandlockPorts*16 {
		return nil, field("NetAllowBind", "", errors.New("too many ports (use * to allow every port)"))
	}
	for _, spec := range s.NetDenyBind {
		all, ranges, err := netpolicy.ParseBind(spec)
		if err != nil {
			return nil, ruleField("NetDenyBind", err)
		}
		if all {
			return nil, field("NetDenyBind", spec, errors.New("* would deny every port (omit the network bind flags instead)"))
		}
		n.denyBind = append(n.denyBind, ranges...)
		n.bindByLandlock = false
	}
	return n, nil
}

// ruleField names the field of a netpolicy error.
func ruleField(name string, err error) error {
	var re *netpolicy.Error
	if errors.As(err, &re) {
		return field(name, re.Spec, re.Err)
	}
	return field(name, "", err)
}

// lookupHost resolves a rule's hostname once, at start.
func lookupHost(host string) ([]netip.Addr, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	return addrs, nil
}

// landlock adds the network part to a ruleset configuration. Without an
// active net-tcp protection, Landlock handles no network right at all.
func (n *networkPolicy) landlock(cfg *landlock.Config) {
	n.abstractScoped = cfg.Scoped&landlock.ScopeAbstractUnixSocket != 0
	if cfg.HandledNet == 0 {
		n.connectByLandlock = false
		return
	}
	if !n.connectByLandlock {
		cfg.HandledNet &^= landlock.NetConnectTCP
	}
	if !n.bindByLandlock {
		cfg.HandledNet &^= landlock.NetBindTCP
	}
	for _, p := range n.connectPorts {
		cfg.Ports = append(cfg.Ports, landlock.PortRule{Port: p, Access: landlock.NetConnectTCP})
	}
	for _, p := range n.bindPorts {
		cfg.Ports = append(cfg.Ports, landlock.PortRule{Port: p, Access: landlock.NetBindTCP})
	}
}

// needsSupervisor names the field whose rules Landlock cannot enforce
// alone, or returns "".
func (n *networkPolicy) needsSupervisor() string {
	switch {
	case n.mode == netgate.DenyList:
		return "NetDeny"
	case n.mode == netgate.AllowList && (!n.connectByLandlock || n.udp || n.icmp):
		return "NetAllow"
	case len(n.denyBind) > 0:
		return "NetDenyBind"
	}
	return ""
}

// register adds the network handlers. writable are the writable grants.
func (n *networkPolicy) register(sess *sandbox.Session, p *prepared, s *Sandbox, userSyscalls map[int]bool) map[int][]filter.Cond {
	var writable []string
	for _, w := range s.FSWritable {
		if c, err := filepath.EvalSymlinks(w); err == nil {
			writable = append(writable, c)
		}
	}
	cfg := netgate.Config{
		Mode:           n.mode,
		Rules:          n.rules,
		TCPByLandlock:  n.connectByLandlock,
		DenyBind:       n.denyBind,
		Writable:       writable,
		AbstractScoped: n.abstractScoped,
		ProcessIDs:     sess.ProcessIDs,
		Traced:         sess.Traced,
		TGID:           sess.TGID,
		Pool:           p.helpers(s),
		Unscoped:       p.unscopedHelpers(s),
	}
	if p.denier != nil {
		cfg.Denied, cfg.DeniedEntry = p.denier.CheckFD, p.denier.CheckEntry
	}
	netgate.New(cfg).Register(sess.Table)
	// A sendto without an address (a NULL pointer, or a zero length: the
	// kernel then reads none) goes to a connected socket, whose peer was
	// judged at connect: unless a user handler wants to see every sendto,
	// the filter lets those through unnotified. Both are registers, which
	// the program cannot change once the syscall is made. (The length is
	// an int: only its low half counts.)
	sendto := sysnum.Native().MustNr("sendto")
	if userSyscalls[sendto] {
		return nil
	}
	return map[int][]filter.Cond{sendto: {
		{Tests: []filter.Test{{Arg: 4, Value: 0}, {Arg: 4, High: true, Value: 0}}},
		{Tests: []filter.Test{{Arg: 5, Value: 0}}},
	}}
}

// unscopedHelpers returns the run's pool of threads for abstract unix
// socket operations the gate judged within the sandbox's scope: no Landlock
// domain (whose scope would refuse them the program's own sockets), but
// NO_NEW_PRIVS and no capabilities.
func (p *prepared) unscopedHelpers(s *Sandbox) *confine.Pool {
	if p.unscoped == nil {
		p.unscoped = confine.NewPool(nil, s.KeepCaps)
	}
	return p.unscoped
}
