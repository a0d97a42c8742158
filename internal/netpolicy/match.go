package netpolicy

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
)

// Resolved is a rule whose hostname, if any, has been resolved.
type Resolved struct {
	Rule
	Addrs []netip.Addr // for a Host rule: its addresses
}

// Resolve resolves hostname rules with lookup (called once per distinct host);
// IP, CIDR and any-rules pass through. A host that does not resolve is an
// error naming the rule.
//
// A Host rule's Addrs are the looked-up addresses with IPv4-mapped IPv6
// addresses unmapped and zones dropped, sorted and without duplicates; each
// rule gets its own slice. A lookup that returns no valid address is an
// error, as is a nil lookup when a rule names a host.
func Resolve(rules []Rule, lookup func(host string) ([]netip.Addr, error)) ([]Resolved, error) {
	type result struct {
		addrs []netip.Addr
		err   error
	}
	seen := make(map[string]result)
	out := make([]Resolved, 0, len(rules))
	for _, r := range rules {
		res := Resolved{Rule: r}
		if r.Host != "" {
			got, ok := seen[r.Host]
			if !ok {
				got.addrs, got.err = lookupHost(r.Host, lookup)
				seen[r.Host] = got
			}
			if got.err != nil {
				return nil, &Error{Spec: r.Text, Err: got.err}
			}
			res.Addrs = append([]netip.Addr(nil), got.addrs...)
		}
		out = append(out, res)
	}
	return out, nil
}

// lookupHost resolves host with lookup and normalizes the result.
func lookupHost(host string, lookup func(string) ([]netip.Addr, error)) ([]netip.Addr, error) {
	if lookup == nil {
		return nil, fmt.Errorf("cannot resolve %s: no resolver", host)
	}
	raw, err := lookup(host)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve %s: %w", host, err)
	}
	var addrs []netip.Addr
	for _, a := range raw {
		if a.IsValid() {
			addrs = append(addrs, normAddr(a))
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("cannot resolve %s: %w", host, errNoAddrs)
	}
	sort.Slice(addrs, func(i, j int) bool { return addrs[i].Less(addrs[j]) })
	uniq := addrs[:1]
	for _, a := range addrs[1:] {
		if a != uniq[len(uniq)-1] {
			uniq = append(uniq, a)
		}
	}
	return uniq, nil
}

// errNoAddrs is wrapped by Resolve's error for a host that resolved to no
// address.
var errNoAddrs = errors.New("no addresses")

// Match reports whether a destination is matched by any rule for protocol p
// (one bit). IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) match as IPv4, in both
// the rule and the address; ICMP ignores the port (pass 0).
//
// A rule applies when its Protos include p. Its target matches when it is
// Any, when addr is one of a Host rule's Addrs (an unresolved Host rule
// matches nothing), or when its Prefix contains addr. An IPv6 prefix does not
// contain IPv4 addresses: ::/0 means every IPv6 address, not every address.
// An invalid addr matches nothing.
func Match(rules []Resolved, p Proto, addr netip.Addr, port uint16) bool {
	if p == 0 || !addr.IsValid() {
		return false
	}
	a := normAddr(addr)
	for i := range rules {
		r := &rules[i]
		if r.Protos&p != p {
			continue
		}
		if p != ICMP && r.Ports != nil && !portsContain(r.Ports, port) {
			continue
		}
		if matchTarget(r, a) {
			return true
		}
	}
	return false
}

// matchTarget reports whether r's target covers a, a normalized address.
func matchTarget(r *Resolved, a netip.Addr) bool {
	switch {
	case r.Any:
		return true
	case r.Host != "":
		for _, ra := range r.Addrs {
			if ra.IsValid() && normAddr(ra) == a {
				return true
			}
		}
		return false
	}
	pfx, ok := normPrefix(r.Prefix)
	return ok && pfx.Contains(a)
}

// normAddr unmaps an IPv4-mapped IPv6 address and drops any zone.
func normAddr(a netip.Addr) netip.Addr {
	return a.Unmap().WithZone("")
}

// normPrefix masks p and turns a prefix of IPv4-mapped IPv6 addresses
// (::ffff:a.b.c.d/n, n >= 96) into the IPv4 prefix a.b.c.d/(n-96).
func normPrefix(p netip.Prefix) (netip.Prefix, bool) {
	if !p.IsValid() {
		return netip.Prefix{}, false
	}
	p = p.Masked()
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96), true
	}
	return p, true
}
