// Package netpolicy is the grammar and matching of network rules: the
// --net-allow and --net-deny rules of upstream Sandlock's network model.
//
// A rule is
//
//	[tcp://|udp://|icmp://]target[:ports]
//
// where target is "*" (or empty before a port) for any address, an IPv4 or
// IPv6 address, a CIDR, or (in allow rules only) a hostname, and ports is "*"
// or a comma list of ports and lo-hi ranges. An IPv6 address or CIDR that is
// followed by ports must be bracketed: [2001:db8::1]:443. A rule without a
// scheme covers TCP and UDP; an icmp:// rule takes no ports.
//
// ParseRule and ParseBind check the text; Resolve turns hostnames into
// addresses; Match decides whether a destination is covered by a rule set.
package netpolicy

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Proto is a set of protocols.
type Proto uint8

// The protocols a rule can cover.
const (
	TCP Proto = 1 << iota
	UDP
	ICMP
)

// String names the protocols of p joined by "+" in the order tcp, udp,
// icmp: "tcp", "udp", "icmp", "tcp+udp". The empty set is "none".
func (p Proto) String() string {
	if p == 0 {
		return "none"
	}
	var names []string
	for _, n := range []struct {
		bit  Proto
		name string
	}{{TCP, "tcp"}, {UDP, "udp"}, {ICMP, "icmp"}} {
		if p&n.bit != 0 {
			names = append(names, n.name)
			p &^= n.bit
		}
	}
	if p != 0 {
		names = append(names, fmt.Sprintf("0x%x", uint8(p)))
	}
	return strings.Join(names, "+")
}

// PortRange is an inclusive range of ports, 1..65535.
type PortRange struct{ Lo, Hi uint16 }

// contains reports whether port lies in r.
func (r PortRange) contains(port uint16) bool { return r.Lo <= port && port <= r.Hi }

// Rule is one parsed --net-allow / --net-deny rule.
//
// Exactly one of Any, Host and Prefix describes the target. Ports, when not
// nil, is sorted by Lo, and its ranges neither overlap nor touch.
type Rule struct {
	Text   string       // the rule as written
	Protos Proto        // TCP|UDP when no scheme; one of them with tcp://, udp://, icmp://
	Any    bool         // target "*" or empty: any address
	Host   string       // a hostname to resolve (allow rules only), lower-cased; "" otherwise
	Prefix netip.Prefix // an IP literal (as /32 or /128) or CIDR, masked, when !Any and Host == ""
	Ports  []PortRange  // nil: all ports (always nil for ICMP)
}

// ParseRule parses "[tcp://|udp://|icmp://]target[:ports]".
// deny: hostnames are refused (a deny rule must be an IP, CIDR or "*").
//
// A bare IPv6 address is taken whole, so "::1:80" is the address ::1:80 on
// all ports; write [::1]:80 for port 80 of ::1.
func ParseRule(s string, deny bool) (Rule, error) {
	fail := func(format string, args ...any) (Rule, error) {
		return Rule{}, ruleError(s, format, args...)
	}
	if s == "" {
		return fail("empty rule (use * for any host)")
	}
	r := Rule{Text: s, Protos: TCP | UDP}
	rest := s
	if scheme, after, ok := strings.Cut(s, "://"); ok {
		switch strings.ToLower(scheme) {
		case "tcp":
			r.Protos = TCP
		case "udp":
			r.Protos = UDP
		case "icmp":
			r.Protos = ICMP
		default:
			return fail("unknown scheme %q (want tcp://, udp:// or icmp://)", scheme)
		}
		rest = after
	}

	target, ports, hasPorts, bracketed, err := splitTarget(rest)
	if err != nil {
		return Rule{}, ruleError(s, "%v", err)
	}
	if r.Protos == ICMP && hasPorts {
		return fail("icmp rule takes no port")
	}
	if target == "" && !hasPorts && !bracketed {
		if r.Protos == ICMP {
			return fail("icmp rule needs a target (use icmp://* for any host)")
		}
		return fail("missing target (use * for any host)")
	}

	switch {
	case bracketed:
		p, err := parseIP(target)
		if err != nil && !errors.Is(err, errNotIP) {
			return Rule{}, ruleError(s, "%v", err)
		}
		if err != nil || !p.Addr().Is6() {
			return fail("[%s] must hold an IPv6 address or CIDR (IPv4 takes no brackets)", target)
		}
		r.Prefix = p
	case target == "" || target == "*":
		r.Any = true
	case strings.ContainsAny(target, "/:"):
		p, err := parseIP(target)
		if errors.Is(err, errNotIP) {
			return fail("%q is not a valid host, IP address or CIDR", target)
		}
		if err != nil {
			return Rule{}, ruleError(s, "%v", err)
		}
		r.Prefix = p
	default:
		if a, err := netip.ParseAddr(target); err == nil {
			r.Prefix = netip.PrefixFrom(a, a.BitLen())
			break
		}
		if !validHost(target) {
			return fail("%q is not a valid host, IP address or CIDR", target)
		}
		if deny {
			return fail("deny rules cannot name a host (%q); use an IP address, CIDR or *", target)
		}
		r.Host = strings.ToLower(target)
	}

	if hasPorts {
		all, ranges, err := parsePorts(ports)
		if err != nil {
			return Rule{}, ruleError(s, "%v", err)
		}
		if !all {
			r.Ports = ranges
		}
	}
	return r, nil
}

// Error is what is wrong with a rule or bind spec.
type Error struct {
	Spec string // the rule or spec as written
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("%q: %v", e.Spec, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// ruleError is an error about rule (or bind spec) s.
func ruleError(s, format string, args ...any) error {
	return &Error{Spec: s, Err: fmt.Errorf(format, args...)}
}

// splitTarget splits the part of a rule after its scheme into the target
// and the port list. hasPorts says whether a ':' introduced a port list
// (which may be empty); bracketed whether the target was written in [...].
// A bare target with several colons is an IPv6 address or CIDR taken whole.
func splitTarget(s string) (target, ports string, hasPorts, bracketed bool, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", false, false, fmt.Errorf("missing ] after [")
		}
		target, after := s[1:end], s[end+1:]
		if after == "" {
			return target, "", false, true, nil
		}
		if after[0] != ':' {
			return "", "", false, false, fmt.Errorf("unexpected %q after ]", after)
		}
		return target, after[1:], true, true, nil
	}
	switch strings.Count(s, ":") {
	case 0:
		return s, "", false, false, nil
	case 1:
		target, ports, _ := strings.Cut(s, ":")
		return target, ports, true, false, nil
	}
	// Several colons: a bare IPv6 address or CIDR, which cannot carry ports.
	// Name the likely mistake when the text is IPv6 followed by a port.
	last := strings.LastIndexByte(s, ':')
	if slash := strings.IndexByte(s, '/'); slash >= 0 && last > slash {
		return "", "", false, false, fmt.Errorf("an IPv6 CIDR with a port must be bracketed, e.g. [%s]:%s", s[:last], s[last+1:])
	}
	if _, err := netip.ParseAddr(s); err != nil && !strings.Contains(s, "/") {
		if _, err2 := netip.ParseAddr(s[:last]); err2 == nil {
			return "", "", false, false, fmt.Errorf("an IPv6 address with a port must be bracketed, e.g. [%s]:%s", s[:last], s[last+1:])
		}
	}
	return s, "", false, false, nil
}

// errNotIP is parseIP's error for text that is neither an IP address nor
// a CIDR; its callers know what else the text could have been.
var errNotIP = errors.New("not an IP address")

// parseIP parses an IP address (as a /32 or /128 prefix) or a CIDR, whose
// host bits are masked off. Zoned IPv6 addresses are refused: a rule names
// destinations, not interfaces.
func parseIP(s string) (netip.Prefix, error) {
	addrText, bitsText, isCIDR := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addrText)
	if err != nil {
		if isCIDR {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR %q: %q is not an IP address", s, addrText)
		}
		return netip.Prefix{}, errNotIP
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q: IPv6 zones are not supported", s)
	}
	if !isCIDR {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	if bitsText == "" || len(bitsText) > 3 || !allDigits(bitsText) {
		return netip.Prefix{}, fmt.Errorf("invalid CIDR %q: bad prefix length %q", s, bitsText)
	}
	bits, _ := strconv.Atoi(bitsText)
	if bits > a.BitLen() {
		return netip.Prefix{}, fmt.Errorf("invalid CIDR %q: prefix length %d out of range (0-%d)", s, bits, a.BitLen())
	}
	return netip.PrefixFrom(a, bits).Masked(), nil
}

// validHost reports whether s is a hostname per RFC 1123: dot-separated
// labels of 1 to 63 letters, digits and hyphens, not starting or ending
// with a hyphen, at most 253 characters, with an optional trailing dot. A
// name whose last label is all digits is refused: it is a mistyped IPv4
// address (resolvers would read "10.1" as 10.0.0.1), not a host.
func validHost(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return !allDigits(labels[len(labels)-1])
}

// allDigits reports whether s is non-empty and all ASCII digits.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
