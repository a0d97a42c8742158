//go:build linux

package netpolicy

import (
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// checkRanges reports what is wrong with a parsed port list: every range
// valid, sorted, neither overlapping nor touching the next.
func checkRanges(rs []PortRange) string {
	for i, r := range rs {
		if r.Lo == 0 || r.Lo > r.Hi {
			return "invalid range " + strconv.Itoa(int(r.Lo)) + "-" + strconv.Itoa(int(r.Hi))
		}
		if i > 0 && uint32(rs[i-1].Hi)+1 >= uint32(r.Lo) {
			return "ranges unsorted, overlapping or touching"
		}
	}
	return ""
}

var fuzzRuleSeeds = []string{
	"", "*", ":53", "*:443", "*:*", "1.2.3.4", "1.2.3.4:80,443", "10.0.0.0/8:443",
	"10.1.2.3/8", "[::1]:22", "::1", "::1:80", "2001:db8::/32", "[2001:db8::/32]:443",
	"udp://*:53", "icmp://10.0.0.1", "icmp://*", "icmp://", "TCP://x.example:1-1024",
	"example.com", "example.com.:443", "http://x", "foo:99999", "foo:0", "foo:",
	"foo:80,*", "foo:90-80", "a_b", "[1.2.3.4]:80", "[::1", "[::1]x", "fe80::1%eth0",
	"2001:db8::1:99999", "2001:db8::/32:443", "::ffff:10.0.0.0/104", "10.0.0.0/33",
	"h:1,2,3,8000-9000,8080", "tcp://udp://x", "[]", "[::]:", "icmp://[::1]:1",
}

func FuzzParseRule(f *testing.F) {
	for _, s := range fuzzRuleSeeds {
		f.Add(s, false)
		f.Add(s, true)
	}
	probes := []netip.Addr{
		netip.MustParseAddr("1.2.3.4"),
		netip.MustParseAddr("::ffff:10.0.0.1"),
		netip.MustParseAddr("2001:db8::1"),
		netip.MustParseAddr("::1"),
	}
	f.Fuzz(func(t *testing.T, s string, deny bool) {
		r, err := ParseRule(s, deny)
		if err != nil {
			if want := strconv.Quote(s) + ": "; !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("ParseRule(%q) error %q does not start with %q", s, err, want)
			}
			if !reflect.DeepEqual(r, Rule{}) {
				t.Fatalf("ParseRule(%q) returned %+v with its error", s, r)
			}
			return
		}
		if r.Text != s {
			t.Fatalf("ParseRule(%q).Text = %q", s, r.Text)
		}
		again, err := ParseRule(r.Text, deny)
		if err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("ParseRule(%q) = %+v, but its Text re-parses to %+v, %v", s, r, again, err)
		}
		switch r.Protos {
		case TCP, UDP, ICMP, TCP | UDP:
		default:
			t.Fatalf("ParseRule(%q).Protos = %v", s, r.Protos)
		}
		targets := 0
		if r.Any {
			targets++
		}
		if r.Host != "" {
			targets++
			if deny {
				t.Fatalf("deny rule %q has Host %q", s, r.Host)
			}
			if !validHost(r.Host) || r.Host != strings.ToLower(r.Host) {
				t.Fatalf("ParseRule(%q).Host = %q", s, r.Host)
			}
		}
		if r.Prefix.IsValid() {
			targets++
			if r.Prefix != r.Prefix.Masked() {
				t.Fatalf("ParseRule(%q).Prefix = %v is not masked", s, r.Prefix)
			}
		}
		if targets != 1 {
			t.Fatalf("ParseRule(%q) = %+v: %d targets, want 1", s, r, targets)
		}
		if r.Protos == ICMP && r.Ports != nil {
			t.Fatalf("icmp rule %q has Ports %v", s, r.Ports)
		}
		if r.Ports != nil && len(r.Ports) == 0 {
			t.Fatalf("ParseRule(%q).Ports is empty but not nil", s)
		}
		if msg := checkRanges(r.Ports); msg != "" {
			t.Fatalf("ParseRule(%q).Ports = %v: %s", s, r.Ports, msg)
		}
		// Matching never panics, and an any-rule without ports matches all.
		rs := []Resolved{{Rule: r}}
		for _, a := range probes {
			for _, p := range []Proto{TCP, UDP, ICMP} {
				got := Match(rs, p, a, 443)
				if r.Any && r.Ports == nil && r.Protos&p != 0 && !got {
					t.Fatalf("%q does not match %v %v", s, p, a)
				}
				if r.Protos&p == 0 && got {
					t.Fatalf("%q matches protocol %v", s, p)
				}
			}
		}
	})
}

func FuzzParseBind(f *testing.F) {
	for _, s := range []string{"", "*", "8080", "8080,9000-9005", "3000-3010", "1,2,3", "0", "65536",
		"80,", ",", "9005-9000", "*,80", "1-2-3", "-5", "99999999999999999999", "080"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		all, rs, err := ParseBind(s)
		if err != nil {
			if want := strconv.Quote(s) + ": "; !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("ParseBind(%q) error %q does not start with %q", s, err, want)
			}
			if all || rs != nil {
				t.Fatalf("ParseBind(%q) returned %v, %v with its error", s, all, rs)
			}
			return
		}
		if all != (s == "*") {
			t.Fatalf("ParseBind(%q) all = %v", s, all)
		}
		if all && rs != nil {
			t.Fatalf("ParseBind(%q) = all and %v", s, rs)
		}
		if !all && len(rs) == 0 {
			t.Fatalf("ParseBind(%q) = no ports", s)
		}
		if msg := checkRanges(rs); msg != "" {
			t.Fatalf("ParseBind(%q) = %v: %s", s, rs, msg)
		}
		// Every listed port and range end is covered.
		for _, part := range strings.Split(s, ",") {
			lo, hi, _ := strings.Cut(part, "-")
			if hi == "" {
				hi = lo
			}
			l, _ := strconv.ParseUint(lo, 10, 16)
			h, _ := strconv.ParseUint(hi, 10, 16)
			if !all && (!portsContain(rs, uint16(l)) || !portsContain(rs, uint16(h))) {
				t.Fatalf("ParseBind(%q) = %v misses %q", s, rs, part)
			}
		}
		again, rs2, err := ParseBind(s)
		if err != nil || again != all || !reflect.DeepEqual(rs, rs2) {
			t.Fatalf("ParseBind(%q) is not deterministic", s)
		}
	})
}
