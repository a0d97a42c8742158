//go:build linux

package netpolicy

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestProtoString(t *testing.T) {
	for _, tc := range []struct {
		p    Proto
		want string
	}{
		{TCP, "tcp"},
		{UDP, "udp"},
		{ICMP, "icmp"},
		{TCP | UDP, "tcp+udp"},
		{TCP | UDP | ICMP, "tcp+udp+icmp"},
		{0, "none"},
		{TCP | 0x80, "tcp+0x80"},
	} {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("Proto(%d).String() = %q, want %q", uint8(tc.p), got, tc.want)
		}
	}
}

func TestParseRuleValid(t *testing.T) {
	tu := TCP | UDP
	for _, tc := range []struct {
		in   string
		deny bool
		want Rule
	}{
		{in: "*", want: Rule{Protos: tu, Any: true}},
		{in: "*", deny: true, want: Rule{Protos: tu, Any: true}},
		{in: ":53", want: Rule{Protos: tu, Any: true, Ports: []PortRange{{53, 53}}}},
		{in: "*:443", want: Rule{Protos: tu, Any: true, Ports: []PortRange{{443, 443}}}},
		{in: "*:*", want: Rule{Protos: tu, Any: true}},
		{in: "1.2.3.4", want: Rule{Protos: tu, Prefix: pfx("1.2.3.4/32")}},
		{in: "1.2.3.4", deny: true, want: Rule{Protos: tu, Prefix: pfx("1.2.3.4/32")}},
		{in: "1.2.3.4:80,443", want: Rule{Protos: tu, Prefix: pfx("1.2.3.4/32"), Ports: []PortRange{{80, 80}, {443, 443}}}},
		{in: "1.2.3.4:*", want: Rule{Protos: tu, Prefix: pfx("1.2.3.4/32")}},
		{in: "10.0.0.0/8", want: Rule{Protos: tu, Prefix: pfx("10.0.0.0/8")}},
		{in: "10.0.0.0/8:443", want: Rule{Protos: tu, Prefix: pfx("10.0.0.0/8"), Ports: []PortRange{{443, 443}}}},
		{in: "10.1.2.3/8", want: Rule{Protos: tu, Prefix: pfx("10.0.0.0/8")}}, // host bits masked
		{in: "0.0.0.0/0", deny: true, want: Rule{Protos: tu, Prefix: pfx("0.0.0.0/0")}},
		{in: "[::1]:22", want: Rule{Protos: tu, Prefix: pfx("::1/128"), Ports: []PortRange{{22, 22}}}},
		{in: "[::1]", want: Rule{Protos: tu, Prefix: pfx("::1/128")}},
		{in: "::1", want: Rule{Protos: tu, Prefix: pfx("::1/128")}},
		{in: "::1:80", want: Rule{Protos: tu, Prefix: pfx("::1:80/128")}}, // bare IPv6 is taken whole
		{in: "2001:db8::/32", want: Rule{Protos: tu, Prefix: pfx("2001:db8::/32")}},
		{in: "2001:db8::1/32", deny: true, want: Rule{Protos: tu, Prefix: pfx("2001:db8::/32")}},
		{in: "[2001:db8::/32]:443", want: Rule{Protos: tu, Prefix: pfx("2001:db8::/32"), Ports: []PortRange{{443, 443}}}},
		{in: "[2001:db8::1]:443", want: Rule{Protos: tu, Prefix: pfx("2001:db8::1/128"), Ports: []PortRange{{443, 443}}}},
		{in: "::ffff:1.2.3.4", want: Rule{Protos: tu, Prefix: pfx("::ffff:1.2.3.4/128")}},
		{in: "udp://*:53", want: Rule{Protos: UDP, Any: true, Ports: []PortRange{{53, 53}}}},
		{in: "udp://:53", want: Rule{Protos: UDP, Any: true, Ports: []PortRange{{53, 53}}}},
		{in: "tcp://*", want: Rule{Protos: TCP, Any: true}},
		{in: "tcp://[::1]:8080", want: Rule{Protos: TCP, Prefix: pfx("::1/128"), Ports: []PortRange{{8080, 8080}}}},
		{in: "icmp://10.0.0.1", want: Rule{Protos: ICMP, Prefix: pfx("10.0.0.1/32")}},
		{in: "icmp://*", want: Rule{Protos: ICMP, Any: true}},
		{in: "icmp://*", deny: true, want: Rule{Protos: ICMP, Any: true}},
		{in: "icmp://2001:db8::/32", want: Rule{Protos: ICMP, Prefix: pfx("2001:db8::/32")}},
		{in: "icmp://[::1]", want: Rule{Protos: ICMP, Prefix: pfx("::1/128")}},
		{in: "icmp://example.com", want: Rule{Protos: ICMP, Host: "example.com"}},
		{in: "TCP://x.example:1-1024", want: Rule{Protos: TCP, Host: "x.example", Ports: []PortRange{{1, 1024}}}},
		{in: "Udp://1.1.1.1:53", want: Rule{Protos: UDP, Prefix: pfx("1.1.1.1/32"), Ports: []PortRange{{53, 53}}}},
		{in: "example.com", want: Rule{Protos: tu, Host: "example.com"}},
		{in: "Example.COM:443", want: Rule{Protos: tu, Host: "example.com", Ports: []PortRange{{443, 443}}}},
		{in: "example.com.:443", want: Rule{Protos: tu, Host: "example.com.", Ports: []PortRange{{443, 443}}}},
		{in: "localhost", want: Rule{Protos: tu, Host: "localhost"}},
		{in: "a-b.c-d.example", want: Rule{Protos: tu, Host: "a-b.c-d.example"}},
		{in: "1password.com", want: Rule{Protos: tu, Host: "1password.com"}},
		{in: strings.Repeat("a", 63) + ".example", want: Rule{Protos: tu, Host: strings.Repeat("a", 63) + ".example"}},
		{in: "h:1,2,3", want: Rule{Protos: tu, Host: "h", Ports: []PortRange{{1, 3}}}},                                             // adjacent ports merge
		{in: "h:443,80,8000-9000,8080", want: Rule{Protos: tu, Host: "h", Ports: []PortRange{{80, 80}, {443, 443}, {8000, 9000}}}}, // sorted, contained merged
		{in: "h:80,80", want: Rule{Protos: tu, Host: "h", Ports: []PortRange{{80, 80}}}},
		{in: "h:1-65535", want: Rule{Protos: tu, Host: "h", Ports: []PortRange{{1, 65535}}}},
		{in: "h:5-5", want: Rule{Protos: tu, Host: "h", Ports: []PortRange{{5, 5}}}},
		{in: "h:080", want: Rule{Protos: tu, Host: "h", Ports: []PortRange{{80, 80}}}},
	} {
		tc.want.Text = tc.in
		got, err := ParseRule(tc.in, tc.deny)
		if err != nil {
			t.Errorf("ParseRule(%q, %v): %v", tc.in, tc.deny, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseRule(%q, %v) =\n\t%+v\nwant\n\t%+v", tc.in, tc.deny, got, tc.want)
		}
	}
}

func TestParseRuleErrors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		deny bool
		want string // the whole message
	}{
		{"", false, `"": empty rule (use * for any host)`},
		{"http://x", false, `"http://x": unknown scheme "http" (want tcp://, udp:// or icmp://)`},
		{"://x", false, `"://x": unknown scheme "" (want tcp://, udp:// or icmp://)`},
		{"tcp://", false, `"tcp://": missing target (use * for any host)`},
		{"icmp://", false, `"icmp://": icmp rule needs a target (use icmp://* for any host)`},
		{"icmp://1.2.3.4:80", false, `"icmp://1.2.3.4:80": icmp rule takes no port`},
		{"icmp://*:*", false, `"icmp://*:*": icmp rule takes no port`},
		{"icmp://:", false, `"icmp://:": icmp rule takes no port`},
		{"icmp://[::1]:7", false, `"icmp://[::1]:7": icmp rule takes no port`},
		{"foo:99999", false, `"foo:99999": port 99999 out of range (1-65535)`},
		{"foo:65536", false, `"foo:65536": port 65536 out of range (1-65535)`},
		{"foo:123456789012345678901234567890", false, `"foo:123456789012345678901234567890": port 123456789012345678901234567890 out of range (1-65535)`},
		{"foo:0", false, `"foo:0": port 0 is not valid`},
		{"foo:0-10", false, `"foo:0-10": port 0 is not valid`},
		{"foo:", false, `"foo:": at least one port required`},
		{":", false, `":": at least one port required`},
		{"*:", false, `"*:": at least one port required`},
		{"foo:80,*", false, `"foo:80,*": cannot mix * with port numbers`},
		{"foo:*,80", false, `"foo:*,80": cannot mix * with port numbers`},
		{"foo:90-80", false, `"foo:90-80": port range 90-80 is reversed`},
		{"foo:80,", false, `"foo:80,": empty port in list`},
		{"foo:,80", false, `"foo:,80": empty port in list`},
		{"foo:http", false, `"foo:http": invalid port "http"`},
		{"foo:+80", false, `"foo:+80": invalid port "+80"`},
		{"foo: 80", false, `"foo: 80": invalid port " 80"`},
		{"foo:80-", false, `"foo:80-": invalid port range "80-" (want lo-hi)`},
		{"foo:-80", false, `"foo:-80": invalid port range "-80" (want lo-hi)`},
		{"foo:1-2-3", false, `"foo:1-2-3": invalid port range "1-2-3" (want lo-hi)`},
		{"foo:1-99999", false, `"foo:1-99999": port 99999 out of range (1-65535)`},
		{"a_b:80", false, `"a_b:80": "a_b" is not a valid host, IP address or CIDR`},
		{"-a.example", false, `"-a.example": "-a.example" is not a valid host, IP address or CIDR`},
		{"a-.example", false, `"a-.example": "a-.example" is not a valid host, IP address or CIDR`},
		{"a..example", false, `"a..example": "a..example" is not a valid host, IP address or CIDR`},
		{".example", false, `".example": ".example" is not a valid host, IP address or CIDR`},
		{strings.Repeat("a", 64) + ".example", false, `"` + strings.Repeat("a", 64) + `.example": "` + strings.Repeat("a", 64) + `.example" is not a valid host, IP address or CIDR`},
		{"*.example.com", false, `"*.example.com": "*.example.com" is not a valid host, IP address or CIDR`},
		{"1.2.3.256", false, `"1.2.3.256": "1.2.3.256" is not a valid host, IP address or CIDR`},
		{"10.1", false, `"10.1": "10.1" is not a valid host, IP address or CIDR`},
		{" 1.2.3.4", false, `" 1.2.3.4": " 1.2.3.4" is not a valid host, IP address or CIDR`},
		{"a:b:c", false, `"a:b:c": "a:b:c" is not a valid host, IP address or CIDR`},
		{"example.com", true, `"example.com": deny rules cannot name a host ("example.com"); use an IP address, CIDR or *`},
		{"tcp://example.com:443", true, `"tcp://example.com:443": deny rules cannot name a host ("example.com"); use an IP address, CIDR or *`},
		{"10.0.0.0/33", false, `"10.0.0.0/33": invalid CIDR "10.0.0.0/33": prefix length 33 out of range (0-32)`},
		{"2001:db8::/129", false, `"2001:db8::/129": invalid CIDR "2001:db8::/129": prefix length 129 out of range (0-128)`},
		{"10.0.0.0/", false, `"10.0.0.0/": invalid CIDR "10.0.0.0/": bad prefix length ""`},
		{"10.0.0.0/x", false, `"10.0.0.0/x": invalid CIDR "10.0.0.0/x": bad prefix length "x"`},
		{"10.0.0.0/-1", false, `"10.0.0.0/-1": invalid CIDR "10.0.0.0/-1": bad prefix length "-1"`},
		{"10.0.0.0/8/8", false, `"10.0.0.0/8/8": invalid CIDR "10.0.0.0/8/8": bad prefix length "8/8"`},
		{"example.com/8", false, `"example.com/8": invalid CIDR "example.com/8": "example.com" is not an IP address`},
		{"2001:db8::1:99999", false, `"2001:db8::1:99999": an IPv6 address with a port must be bracketed, e.g. [2001:db8::1]:99999`},
		{"2001:db8::/32:443", false, `"2001:db8::/32:443": an IPv6 CIDR with a port must be bracketed, e.g. [2001:db8::/32]:443`},
		{"fe80::1%eth0", false, `"fe80::1%eth0": "fe80::1%eth0": IPv6 zones are not supported`},
		{"[fe80::1%eth0]:22", false, `"[fe80::1%eth0]:22": "fe80::1%eth0": IPv6 zones are not supported`},
		{"[1.2.3.4]:80", false, `"[1.2.3.4]:80": [1.2.3.4] must hold an IPv6 address or CIDR (IPv4 takes no brackets)`},
		{"[10.0.0.0/8]", false, `"[10.0.0.0/8]": [10.0.0.0/8] must hold an IPv6 address or CIDR (IPv4 takes no brackets)`},
		{"[example.com]:80", false, `"[example.com]:80": [example.com] must hold an IPv6 address or CIDR (IPv4 takes no brackets)`},
		{"[*]:80", false, `"[*]:80": [*] must hold an IPv6 address or CIDR (IPv4 takes no brackets)`},
		{"[]:80", false, `"[]:80": [] must hold an IPv6 address or CIDR (IPv4 takes no brackets)`},
		{"[]", false, `"[]": [] must hold an IPv6 address or CIDR (IPv4 takes no brackets)`},
		{"[2001:db8::/200]", false, `"[2001:db8::/200]": invalid CIDR "2001:db8::/200": prefix length 200 out of range (0-128)`},
		{"[::1", false, `"[::1": missing ] after [`},
		{"[::1]80", false, `"[::1]80": unexpected "80" after ]`},
		{"[::1]:", false, `"[::1]:": at least one port required`},
	} {
		got, err := ParseRule(tc.in, tc.deny)
		if err == nil {
			t.Errorf("ParseRule(%q, %v) = %+v, want error %s", tc.in, tc.deny, got, tc.want)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("ParseRule(%q, %v) error\n\t%s\nwant\n\t%s", tc.in, tc.deny, err, tc.want)
		}
		if !reflect.DeepEqual(got, Rule{}) {
			t.Errorf("ParseRule(%q, %v) returned %+v with its error", tc.in, tc.deny, got)
		}
	}
}

// TestParseRuleDenyAcceptsAddresses: every non-host form an allow rule
// takes is a valid deny rule too, with the same meaning.
func TestParseRuleDenyAcceptsAddresses(t *testing.T) {
	for _, s := range []string{"*", ":53", "1.2.3.4:80", "10.0.0.0/8", "[::1]:22", "::1", "udp://*:53", "icmp://*", "icmp://10.0.0.1"} {
		a, err := ParseRule(s, false)
		if err != nil {
			t.Fatalf("ParseRule(%q, false): %v", s, err)
		}
		d, err := ParseRule(s, true)
		if err != nil {
			t.Errorf("ParseRule(%q, true): %v", s, err)
			continue
		}
		if !reflect.DeepEqual(a, d) {
			t.Errorf("ParseRule(%q): allow %+v, deny %+v", s, a, d)
		}
	}
}

func TestValidHost(t *testing.T) {
	long := strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("a", 61) // 253 characters
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"a", true},
		{"example.com", true},
		{"example.com.", true},
		{"EXAMPLE.com", true},
		{"x1.y-2.z3", true},
		{"123.example", true},
		{long, true},
		{long + "a", false},
		{long + ".", true},
		{"", false},
		{".", false},
		{"a..b", false},
		{"-a", false},
		{"a-", false},
		{"a_b", false},
		{"a b", false},
		{"a.123", false},
		{"123", false},
		{"ünicode.example", false},
	} {
		if got := validHost(tc.in); got != tc.want {
			t.Errorf("validHost(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseBind(t *testing.T) {
	for _, tc := range []struct {
		in   string
		all  bool
		want []PortRange
	}{
		{"*", true, nil},
		{"8080", false, []PortRange{{8080, 8080}}},
		{"8080,9000-9005", false, []PortRange{{8080, 8080}, {9000, 9005}}},
		{"3000-3010", false, []PortRange{{3000, 3010}}},
		{"9000-9005,8080", false, []PortRange{{8080, 8080}, {9000, 9005}}},
		{"1,2,3,5", false, []PortRange{{1, 3}, {5, 5}}},
		{"1-65535", false, []PortRange{{1, 65535}}},
		{"10-20,15-30,31", false, []PortRange{{10, 31}}},
		{"65535,65535", false, []PortRange{{65535, 65535}}},
	} {
		all, got, err := ParseBind(tc.in)
		if err != nil {
			t.Errorf("ParseBind(%q): %v", tc.in, err)
			continue
		}
		if all != tc.all || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseBind(%q) = %v, %v; want %v, %v", tc.in, all, got, tc.all, tc.want)
		}
	}
}

func TestParseBindErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", `"": empty bind spec (use * for all ports)`},
		{",", `",": empty port in list`},
		{"80,", `"80,": empty port in list`},
		{"80,,81", `"80,,81": empty port in list`},
		{"0", `"0": port 0 is not valid`},
		{"65536", `"65536": port 65536 out of range (1-65535)`},
		{"abc", `"abc": invalid port "abc"`},
		{"-1", `"-1": invalid port range "-1" (want lo-hi)`},
		{"9005-9000", `"9005-9000": port range 9005-9000 is reversed`},
		{"*,80", `"*,80": cannot mix * with port numbers`},
		{"80,*", `"80,*": cannot mix * with port numbers`},
		{"**", `"**": invalid port "**"`},
		{" 80", `" 80": invalid port " 80"`},
		{"80:81", `"80:81": invalid port "80:81"`},
	} {
		all, got, err := ParseBind(tc.in)
		if err == nil {
			t.Errorf("ParseBind(%q) = %v, %v; want error %s", tc.in, all, got, tc.want)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("ParseBind(%q) error\n\t%s\nwant\n\t%s", tc.in, err, tc.want)
		}
		if all || got != nil {
			t.Errorf("ParseBind(%q) returned %v, %v with its error", tc.in, all, got)
		}
	}
}
