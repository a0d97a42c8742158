//go:build linux

package netpolicy

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, addr(s))
	}
	return out
}

// parseAll parses allow (or deny) rules, failing the test on an error.
func parseAll(t *testing.T, deny bool, texts ...string) []Rule {
	t.Helper()
	var rules []Rule
	for _, s := range texts {
		r, err := ParseRule(s, deny)
		if err != nil {
			t.Fatalf("ParseRule(%q, %v): %v", s, deny, err)
		}
		rules = append(rules, r)
	}
	return rules
}

// fakeDNS is a lookup over a fixed table that counts its calls.
type fakeDNS struct {
	table map[string][]netip.Addr
	calls map[string]int
}

func newFakeDNS(table map[string][]netip.Addr) *fakeDNS {
	return &fakeDNS{table: table, calls: make(map[string]int)}
}

var errNXDomain = errors.New("no such host")

func (d *fakeDNS) lookup(host string) ([]netip.Addr, error) {
	d.calls[host]++
	as, ok := d.table[host]
	if !ok {
		return nil, errNXDomain
	}
	return as, nil
}

func TestResolve(t *testing.T) {
	dns := newFakeDNS(map[string][]netip.Addr{
		"a.example": addrs("192.0.2.2", "2001:db8::a", "192.0.2.1", "192.0.2.2"),
		"b.example": addrs("::ffff:198.51.100.7", "fe80::1%eth0"),
	})
	rules := parseAll(t, false, "a.example:443", "10.0.0.0/8", "udp://a.example:53", "*", "b.example", "[::1]:22")
	got, err := Resolve(rules, dns.lookup)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(rules) {
		t.Fatalf("Resolve returned %d rules, want %d", len(got), len(rules))
	}
	for i := range rules {
		if !reflect.DeepEqual(got[i].Rule, rules[i]) {
			t.Errorf("rule %d changed: %+v, want %+v", i, got[i].Rule, rules[i])
		}
	}
	want := [][]netip.Addr{
		addrs("192.0.2.1", "192.0.2.2", "2001:db8::a"), // sorted, deduplicated
		nil,
		addrs("192.0.2.1", "192.0.2.2", "2001:db8::a"),
		nil,
		addrs("198.51.100.7", "fe80::1"), // unmapped, zone dropped
		nil,
	}
	for i, w := range want {
		if !reflect.DeepEqual(got[i].Addrs, w) {
			t.Errorf("%q: Addrs = %v, want %v", rules[i].Text, got[i].Addrs, w)
		}
	}
	if !reflect.DeepEqual(dns.calls, map[string]int{"a.example": 1, "b.example": 1}) {
		t.Errorf("lookups = %v, want one per distinct host", dns.calls)
	}
	// Rules sharing a host do not share storage.
	got[0].Addrs[0] = addr("203.0.113.1")
	if got[2].Addrs[0] != addr("192.0.2.1") {
		t.Error("rules for the same host share their Addrs slice")
	}
}

func TestResolveHostCaseFolds(t *testing.T) {
	dns := newFakeDNS(map[string][]netip.Addr{"a.example": addrs("192.0.2.1")})
	if _, err := Resolve(parseAll(t, false, "A.example", "a.EXAMPLE:80"), dns.lookup); err != nil {
		t.Fatal(err)
	}
	if dns.calls["a.example"] != 1 || len(dns.calls) != 1 {
		t.Errorf("lookups = %v, want a.example once", dns.calls)
	}
}

func TestResolveErrors(t *testing.T) {
	dns := newFakeDNS(map[string][]netip.Addr{
		"ok.example":    addrs("192.0.2.1"),
		"empty.example": nil,
		"bad.example":   {netip.Addr{}},
	})
	for _, tc := range []struct {
		rule, want string
		is         error
	}{
		{"nx.example:443", `"nx.example:443": cannot resolve nx.example: no such host`, errNXDomain},
		{"empty.example", `"empty.example": cannot resolve empty.example: no addresses`, errNoAddrs},
		{"bad.example", `"bad.example": cannot resolve bad.example: no addresses`, errNoAddrs},
	} {
		rules := parseAll(t, false, "ok.example", "*", tc.rule)
		got, err := Resolve(rules, dns.lookup)
		if err == nil {
			t.Errorf("Resolve(%q) = %+v, want an error", tc.rule, got)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("Resolve(%q) error\n\t%s\nwant\n\t%s", tc.rule, err, tc.want)
		}
		if !errors.Is(err, tc.is) {
			t.Errorf("Resolve(%q) error %v does not wrap %v", tc.rule, err, tc.is)
		}
		if got != nil {
			t.Errorf("Resolve(%q) returned rules with its error", tc.rule)
		}
	}

	// A failed host fails every rule that names it, once looked up.
	dns.calls = make(map[string]int)
	_, err := Resolve(parseAll(t, false, "nx.example", "nx.example:80"), dns.lookup)
	if err == nil || !strings.HasPrefix(err.Error(), `"nx.example": `) {
		t.Errorf("error = %v, want one naming the first rule", err)
	}
	if dns.calls["nx.example"] != 1 {
		t.Errorf("nx.example looked up %d times", dns.calls["nx.example"])
	}

	// No lookup is needed, or allowed to be missing, only without hosts.
	if _, err := Resolve(parseAll(t, false, "*", "1.2.3.4:80", "icmp://*"), nil); err != nil {
		t.Errorf("Resolve without hosts and a nil lookup: %v", err)
	}
	if _, err := Resolve(parseAll(t, false, "h.example"), nil); err == nil ||
		err.Error() != `"h.example": cannot resolve h.example: no resolver` {
		t.Errorf("Resolve with a host and a nil lookup: %v", err)
	}
}

// resolveAll parses and resolves allow rules against a fixed table.
func resolveAll(t *testing.T, table map[string][]netip.Addr, texts ...string) []Resolved {
	t.Helper()
	rs, err := Resolve(parseAll(t, false, texts...), newFakeDNS(table).lookup)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

type probe struct {
	p    Proto
	addr string
	port uint16
	want bool
}

func checkMatch(t *testing.T, rules []Resolved, probes []probe) {
	t.Helper()
	for _, pr := range probes {
		if got := Match(rules, pr.p, addr(pr.addr), pr.port); got != pr.want {
			var texts []string
			for _, r := range rules {
				texts = append(texts, r.Text)
			}
			t.Errorf("Match(%q, %v, %s, %d) = %v, want %v", texts, pr.p, pr.addr, pr.port, got, pr.want)
		}
	}
}

func TestMatchProtocols(t *testing.T) {
	checkMatch(t, resolveAll(t, nil, "tcp://1.2.3.4:80"), []probe{
		{TCP, "1.2.3.4", 80, true},
		{UDP, "1.2.3.4", 80, false},
		{ICMP, "1.2.3.4", 0, false},
	})
	checkMatch(t, resolveAll(t, nil, "udp://*:53"), []probe{
		{UDP, "8.8.8.8", 53, true},
		{UDP, "2001:db8::1", 53, true},
		{TCP, "8.8.8.8", 53, false},
		{UDP, "8.8.8.8", 54, false},
	})
	checkMatch(t, resolveAll(t, nil, "1.2.3.4:80"), []probe{
		{TCP, "1.2.3.4", 80, true},
		{UDP, "1.2.3.4", 80, true},
		{ICMP, "1.2.3.4", 0, false}, // no scheme: TCP and UDP only
	})
	checkMatch(t, resolveAll(t, nil, "icmp://10.0.0.0/8"), []probe{
		{ICMP, "10.1.2.3", 0, true},
		{ICMP, "10.1.2.3", 1234, true}, // ICMP ignores the port
		{ICMP, "11.0.0.1", 0, false},
		{TCP, "10.1.2.3", 80, false},
		{UDP, "10.1.2.3", 80, false},
	})
	// p names one protocol; no protocol matches nothing.
	checkMatch(t, resolveAll(t, nil, "*"), []probe{
		{0, "1.2.3.4", 80, false},
		{TCP | ICMP, "1.2.3.4", 80, false},
		{TCP | UDP, "1.2.3.4", 80, true},
	})
}

func TestMatchAddresses(t *testing.T) {
	checkMatch(t, resolveAll(t, nil, "10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "[::1]:22"), []probe{
		{TCP, "10.0.0.0", 1, true},
		{TCP, "10.255.255.255", 65535, true},
		{TCP, "11.0.0.0", 1, false},
		{TCP, "9.255.255.255", 1, false},
		{TCP, "192.168.1.7", 443, true},
		{TCP, "192.168.1.8", 443, false},
		{TCP, "2001:db8:ffff::1", 443, true},
		{TCP, "2001:db9::1", 443, false},
		{TCP, "::1", 22, true},
		{TCP, "::1", 23, false},
		{TCP, "127.0.0.1", 22, false}, // ::1 is not 127.0.0.1
		{TCP, "::a00:1", 80, false},   // IPv4-compatible is not IPv4-mapped
	})
	// Masked host bits.
	checkMatch(t, resolveAll(t, nil, "172.16.9.9/12"), []probe{
		{TCP, "172.31.0.1", 80, true},
		{TCP, "172.32.0.1", 80, false},
	})
	// The zero prefixes stay in their family.
	checkMatch(t, resolveAll(t, nil, "::/0"), []probe{
		{TCP, "2001:db8::1", 80, true},
		{TCP, "1.2.3.4", 80, false},
		{TCP, "::ffff:1.2.3.4", 80, false},
	})
	checkMatch(t, resolveAll(t, nil, "0.0.0.0/0"), []probe{
		{TCP, "1.2.3.4", 80, true},
		{TCP, "::ffff:1.2.3.4", 80, true},
		{TCP, "2001:db8::1", 80, false},
	})
	// Nothing matches an empty rule set or an invalid address.
	checkMatch(t, nil, []probe{{TCP, "1.2.3.4", 80, false}})
	if Match(resolveAll(t, nil, "*"), TCP, netip.Addr{}, 80) {
		t.Error("an invalid address matched *")
	}
}

func TestMatchAny(t *testing.T) {
	checkMatch(t, resolveAll(t, nil, "*"), []probe{
		{TCP, "1.2.3.4", 1, true},
		{UDP, "2001:db8::1", 65535, true},
		{TCP, "::ffff:1.2.3.4", 0, true},
		{ICMP, "1.2.3.4", 0, false},
	})
	checkMatch(t, resolveAll(t, nil, ":443"), []probe{
		{TCP, "1.2.3.4", 443, true},
		{TCP, "2001:db8::1", 443, true},
		{TCP, "1.2.3.4", 80, false},
	})
	checkMatch(t, resolveAll(t, nil, "icmp://*"), []probe{
		{ICMP, "1.2.3.4", 0, true},
		{ICMP, "2001:db8::1", 0, true},
		{TCP, "1.2.3.4", 80, false},
	})
}

func TestMatchPorts(t *testing.T) {
	checkMatch(t, resolveAll(t, nil, "1.2.3.4:22,80,8000-8080,443"), []probe{
		{TCP, "1.2.3.4", 22, true},
		{TCP, "1.2.3.4", 80, true},
		{TCP, "1.2.3.4", 443, true},
		{TCP, "1.2.3.4", 8000, true},
		{TCP, "1.2.3.4", 8042, true},
		{TCP, "1.2.3.4", 8080, true},
		{TCP, "1.2.3.4", 7999, false},
		{TCP, "1.2.3.4", 8081, false},
		{TCP, "1.2.3.4", 23, false},
		{TCP, "1.2.3.4", 0, false},
		{TCP, "1.2.3.5", 80, false},
	})
	checkMatch(t, resolveAll(t, nil, "1.2.3.4", "5.6.7.8:*"), []probe{
		{TCP, "1.2.3.4", 0, true},
		{TCP, "1.2.3.4", 65535, true},
		{UDP, "5.6.7.8", 12345, true},
	})
	checkMatch(t, resolveAll(t, nil, "*:1-1024"), []probe{
		{TCP, "9.9.9.9", 1, true},
		{TCP, "9.9.9.9", 1024, true},
		{TCP, "9.9.9.9", 1025, false},
	})
	// A hand-built, unsorted port list still matches.
	hand := []Resolved{{Rule: Rule{Protos: TCP, Any: true, Ports: []PortRange{{9000, 9001}, {80, 80}}}}}
	checkMatch(t, hand, []probe{
		{TCP, "1.2.3.4", 80, true},
		{TCP, "1.2.3.4", 9001, true},
		{TCP, "1.2.3.4", 81, false},
	})
}

func TestMatchMappedIPv4(t *testing.T) {
	// An IPv4 rule matches the IPv4-mapped form of its addresses.
	checkMatch(t, resolveAll(t, nil, "10.0.0.0/8:443", "192.0.2.1"), []probe{
		{TCP, "::ffff:10.1.2.3", 443, true},
		{TCP, "::ffff:10.1.2.3", 80, false},
		{TCP, "::ffff:11.1.2.3", 443, false},
		{TCP, "::ffff:192.0.2.1", 80, true},
	})
	// An IPv4-mapped rule matches as IPv4, address, CIDR and bracketed.
	checkMatch(t, resolveAll(t, nil, "::ffff:192.0.2.1", "::ffff:10.0.0.0/104", "[::ffff:172.16.0.0/108]:443"), []probe{
		{TCP, "192.0.2.1", 80, true},
		{TCP, "::ffff:192.0.2.1", 80, true},
		{TCP, "192.0.2.2", 80, false},
		{TCP, "10.200.0.1", 80, true},
		{TCP, "::ffff:10.200.0.1", 80, true},
		{TCP, "11.0.0.1", 80, false},
		{TCP, "172.17.0.1", 443, true},
		{TCP, "172.17.0.1", 80, false},
		{TCP, "172.32.0.1", 443, false},
	})
	// ::ffff:0:0/96 is all of IPv4.
	checkMatch(t, resolveAll(t, nil, "::ffff:0.0.0.0/96"), []probe{
		{TCP, "1.2.3.4", 80, true},
		{TCP, "2001:db8::1", 80, false},
	})
	// Resolved addresses match in either form.
	table := map[string][]netip.Addr{
		"v4.example":     addrs("192.0.2.10"),
		"mapped.example": addrs("::ffff:192.0.2.20"),
	}
	checkMatch(t, resolveAll(t, table, "v4.example", "mapped.example"), []probe{
		{TCP, "192.0.2.10", 80, true},
		{TCP, "::ffff:192.0.2.10", 80, true},
		{TCP, "192.0.2.20", 80, true},
		{TCP, "::ffff:192.0.2.20", 80, true},
	})
	// Hand-built rules are normalized when matched.
	hand := []Resolved{{Rule: Rule{Protos: TCP, Host: "h"}, Addrs: addrs("::ffff:192.0.2.30")}}
	checkMatch(t, hand, []probe{{TCP, "192.0.2.30", 1, true}})
}

func TestMatchHosts(t *testing.T) {
	table := map[string][]netip.Addr{
		"web.example": addrs("192.0.2.1", "2001:db8::1"),
		"dns.example": addrs("198.51.100.53"),
	}
	checkMatch(t, resolveAll(t, table, "web.example:443", "udp://dns.example:53"), []probe{
		{TCP, "192.0.2.1", 443, true},
		{TCP, "2001:db8::1", 443, true},
		{TCP, "::ffff:192.0.2.1", 443, true},
		{TCP, "192.0.2.1", 80, false},
		{TCP, "192.0.2.2", 443, false},   // a neighbour, not a resolved address
		{TCP, "2001:db8::2", 443, false}, // likewise
		{UDP, "198.51.100.53", 53, true},
		{TCP, "198.51.100.53", 53, false},
		{UDP, "192.0.2.1", 53, false},
	})
	checkMatch(t, resolveAll(t, table, "icmp://web.example"), []probe{
		{ICMP, "192.0.2.1", 0, true},
		{ICMP, "2001:db8::1", 0, true},
		{ICMP, "192.0.2.9", 0, false},
	})
	// An unresolved host rule (never passed through Resolve) matches nothing.
	unresolved := []Resolved{{Rule: parseAll(t, false, "web.example")[0]}}
	checkMatch(t, unresolved, []probe{{TCP, "192.0.2.1", 443, false}})
	// Neither does a rule with no target.
	checkMatch(t, []Resolved{{Rule: Rule{Protos: TCP}}}, []probe{{TCP, "0.0.0.0", 1, false}})
}

// TestMatchZones: zones on the destination are ignored.
func TestMatchZones(t *testing.T) {
	checkMatch(t, resolveAll(t, nil, "fe80::/10"), []probe{
		{TCP, "fe80::1%eth0", 22, true},
	})
}
