//go:build linux

package sandlock_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// End-to-end tests of the CLI's network flags (--net-allow, --net-deny,
// --net-allow-bind, --net-deny-bind, with --no-supervisor), with the probes
// and servers of network_test.go.
//
// These tests are not parallel: a Sandbox run in this process (the
// parallel TestNet… tests) can reap a child that os/exec started earlier
// from the same OS thread, and exec.Cmd.Wait then fails with "waitid: no
// child processes".

// netCLI runs the cases under `sandlock run flags` (behind prefix, e.g.
// setpriv) and checks them.
func netCLI(t *testing.T, prefix, flags []string, cases []netCase) {
	t.Helper()
	what := fmt.Sprintf("sandlock run %q", flags)
	if prefix != nil {
		what = fmt.Sprintf("%q %s", prefix, what)
	}
	code, stdout, stderr := cliAs(t, prefix, cliRunArgs(cliGrants(flags...), python, "-c", netScript(cases))...)
	if code != 0 || stderr != "" {
		t.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", what, code, stdout, stderr)
	}
	netCheck(t, what, stdout, cases)
}

func TestCLINetRuleErrors(t *testing.T) {
	dir := tempDir(t)
	ran := dir + "/ran"
	for _, tc := range []struct {
		flags []string
		want  string // the whole of stderr
	}{
		{[]string{"--net-allow", "foo:99999"}, `sandlock: --net-allow "foo:99999": port 99999 out of range (1-65535)`},
		{[]string{"--net-allow", "tcp://127.0.0.1:80", "--net-allow", "foo:0"}, `sandlock: --net-allow "foo:0": port 0 is not valid`},
		{[]string{"--net-allow", ""}, `sandlock: --net-allow: empty rule (use * for any host)`},
		{[]string{"--net-allow", "ftp://x"}, `sandlock: --net-allow "ftp://x": unknown scheme "ftp" (want tcp://, udp:// or icmp://)`},
		{[]string{"--net-allow", "10.0.0.0/33"}, `sandlock: --net-allow "10.0.0.0/33": invalid CIDR "10.0.0.0/33": prefix length 33 out of range (0-32)`},
		{[]string{"--net-allow", "icmp://127.0.0.1:7"}, `sandlock: --net-allow "icmp://127.0.0.1:7": icmp rule takes no port`},
		{[]string{"--net-allow", "icmp://"}, `sandlock: --net-allow "icmp://": icmp rule needs a target (use icmp://* for any host)`},
		{[]string{"--net-allow", "[1.2.3.4]:80"}, `sandlock: --net-allow "[1.2.3.4]:80": [1.2.3.4] must hold an IPv6 address or CIDR (IPv4 takes no brackets)`},
		{[]string{"--net-allow", "2001:db8::1:99999"}, `sandlock: --net-allow "2001:db8::1:99999": an IPv6 address with a port must be bracketed, e.g. [2001:db8::1]:99999`},
		{[]string{"--net-deny", "example.com"}, `sandlock: --net-deny "example.com": deny rules cannot name a host ("example.com"); use an IP address, CIDR or *`},
		{[]string{"--net-deny", "10.0.0.0/8:0"}, `sandlock: --net-deny "10.0.0.0/8:0": port 0 is not valid`},
		{[]string{"--net-allow", ":80", "--net-deny", "10.0.0.0/8"}, `sandlock: --net-allow: NetAllow and NetDeny are mutually exclusive`},
		{[]string{"--net-allow-bind", "80", "--net-deny-bind", "81"}, `sandlock: --net-allow-bind: NetAllowBind and NetDenyBind are mutually exclusive`},
		{[]string{"--net-allow-bind", "x"}, `sandlock: --net-allow-bind "x": invalid port "x"`},
		{[]string{"--net-allow-bind", "0"}, `sandlock: --net-allow-bind "0": port 0 is not valid`},
		{[]string{"--net-allow-bind", "9005-9000"}, `sandlock: --net-allow-bind "9005-9000": port range 9005-9000 is reversed`},
		{[]string{"--net-allow-bind", ""}, `sandlock: --net-allow-bind: empty bind spec (use * for all ports)`},
		{[]string{"--net-deny-bind", "65536"}, `sandlock: --net-deny-bind "65536": port 65536 out of range (1-65535)`},
		{[]string{"--net-deny-bind", "*"}, `sandlock: --net-deny-bind "*": * would deny every port (omit the network bind flags instead)`},
		{[]string{"--no-supervisor", "--net-allow", "udp://*:53"}, `sandlock: --net-allow: these rules need the supervisor, which NoSupervisor turns off (only port-only TCP rules are enforced by Landlock alone)`},
		{[]string{"--no-supervisor", "--net-allow", ":8080"}, `sandlock: --net-allow: these rules need the supervisor, which NoSupervisor turns off (only port-only TCP rules are enforced by Landlock alone)`},
		{[]string{"--no-supervisor", "--net-allow", "tcp://127.0.0.1:8080"}, `sandlock: --net-allow: these rules need the supervisor, which NoSupervisor turns off (only port-only TCP rules are enforced by Landlock alone)`},
		{[]string{"--no-supervisor", "--net-deny", "10.0.0.0/8"}, `sandlock: --net-deny: these rules need the supervisor, which NoSupervisor turns off (only port-only TCP rules are enforced by Landlock alone)`},
		{[]string{"--no-supervisor", "--net-deny-bind", "80"}, `sandlock: --net-deny-bind: these rules need the supervisor, which NoSupervisor turns off (only port-only TCP rules are enforced by Landlock alone)`},
	} {
		code, stdout, stderr := cli(t, cliRunArgs(cliGrants(append(tc.flags, "-w", dir)...), "/bin/sh", "-c", "touch "+ran+"; echo RAN")...)
		if code != 1 || stderr != tc.want+"\n" || stdout != "" {
			t.Errorf("%q: exit %d stdout %q stderr %q; want exit 1 and stderr %q", tc.flags, code, stdout, stderr, tc.want+"\n")
		}
		if _, err := os.Stat(ran); err == nil {
			t.Fatalf("%q: the command ran", tc.flags)
		}
	}
	// --port-remap is refused, not ignored.
	code, stdout, stderr := cli(t, cliRunArgs(cliGrants("--port-remap"), "/bin/echo", "RAN")...)
	cliOneLine(t, "--port-remap", stderr)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "--port-remap") || !strings.Contains(stderr, "is not supported yet") {
		t.Errorf("--port-remap: exit %d stdout %q stderr %q; want exit 1 and a line saying it is not supported yet", code, stdout, stderr)
	}
}

func TestCLINetClosedByDefault(t *testing.T) {
	netFastOpenClient(t)
	g := newNetGroup(t, "127.0.0.1", "::1")
	netCLI(t, nil, nil, []netCase{
		netAt("tcp", 4, g.tcp["127.0.0.1"], "ERR EACCES"),
		netAt("tcp", 6, g.tcp["::1"], "ERR EACCES"),
		netAt("tfo", 4, g.tcp["127.0.0.1"], "ERR ECONNREFUSED"),
		netAt("udp", 4, g.udp["127.0.0.1"], "ERR EPERM"),
		netAt("udp", 6, g.udp["::1"], "ERR EPERM"),
		netExpr("ping socket", "mk(4, socket.SOCK_DGRAM, socket.IPPROTO_ICMP, p)", "ERR EPERM"),
		netExpr("raw socket", "mk(4, socket.SOCK_RAW, socket.IPPROTO_ICMP, p)", "ERR EPERM"),
		netExpr("mptcp socket", "mk(4, socket.SOCK_STREAM, 262, p)", "ERR EPROTONOSUPPORT"),
		netExpr("bind tcp 0", "bind(4, socket.SOCK_STREAM, '127.0.0.1', 0, p)", "ERR EACCES"),
	})
}

func TestCLINetAllow(t *testing.T) {
	netFastOpenClient(t)
	a := newNetGroup(t, "127.0.0.1", "127.0.0.2", "::1")
	b := newNetGroup(t, "127.0.0.1", "::1")
	P, Q := netP(a.port), netP(b.port)
	ok, refused := "OK", "ERR ECONNREFUSED"
	netCLI(t, nil, []string{"--net-allow", "tcp://127.0.0.1:" + P, "--net-allow", "udp://127.0.0.1:" + Q, "--net-allow", "[::1]:" + P}, []netCase{
		netAt("tcp", 4, a.tcp["127.0.0.1"], ok),
		netAt("tfo", 4, a.tcp["127.0.0.1"], ok),
		netOn("tcp", 6, "::ffff:127.0.0.1", a.tcp["127.0.0.1"], ok),
		netAt("udp", 4, b.udp["127.0.0.1"], ok),
		netAt("udp_msg", 4, b.udp["127.0.0.1"], ok),
		netMmsg(4, "OK 1", 1, b.udp["127.0.0.1"], a.udp["127.0.0.1"]),
		netAt("tcp", 6, a.tcp["::1"], ok),
		netAt("udp", 6, a.udp["::1"], ok),
		// Near misses: address, port, protocol.
		netAt("tcp", 4, a.tcp["127.0.0.2"], refused),
		netAt("tfo", 4, a.tcp["127.0.0.2"], refused),
		netAt("udp", 4, a.udp["127.0.0.2"], refused),
		netAt("tcp", 4, b.tcp["127.0.0.1"], refused),
		netAt("udp", 4, a.udp["127.0.0.1"], refused),
		netAt("udp_conn", 4, a.udp["127.0.0.1"], refused),
		netAt("tcp", 6, b.tcp["::1"], refused),
		netAt("udp", 6, b.udp["::1"], refused),
		netExpr("ping socket", "mk(4, socket.SOCK_DGRAM, socket.IPPROTO_ICMP, p)", "ERR EPERM"),
	})
	// Port-only: Landlock's.
	netCLI(t, nil, []string{"--net-allow", ":" + P}, []netCase{
		netAt("tcp", 4, a.tcp["127.0.0.2"], ok),
		netAt("tcp", 6, a.tcp["::1"], ok),
		netAt("udp", 4, a.udp["127.0.0.2"], ok),
		netAt("tcp", 4, b.tcp["127.0.0.1"], "ERR EACCES"),
		netAt("tfo", 4, b.tcp["127.0.0.1"], refused),
		netAt("udp", 4, b.udp["127.0.0.1"], refused),
	})
	// A host name, and the hosts file it brings.
	netCLI(t, nil, []string{"--net-allow", "tcp://localhost:" + P}, []netCase{
		netOn("tcp", 4, "localhost", a.tcp["127.0.0.1"], ok),
		netAt("tcp", 4, a.tcp["127.0.0.2"], refused),
		netAt("tcp", 4, b.tcp["127.0.0.1"], refused),
		netExpr("/etc/hosts starts with loopback", "hosts(p)[:len('127.0.0.1 localhost\\n::1 localhost\\n'.encode().hex())]",
			"OK "+fmt.Sprintf("%x", "127.0.0.1 localhost\n::1 localhost\n")),
	})
}

func TestCLINetDeny(t *testing.T) {
	netFastOpenClient(t)
	a := newNetGroup(t, "127.0.0.1", "127.0.0.2", "::1")
	b := newNetGroup(t, "127.0.0.1")
	Q := netP(b.port)
	ok, refused := "OK", "ERR ECONNREFUSED"
	netCLI(t, nil, []string{"--net-deny", "127.0.0.2", "--net-deny", "udp://127.0.0.1:" + Q, "--net-deny", "tcp://[::1]"}, []netCase{
		netAt("tcp", 4, a.tcp["127.0.0.1"], ok),
		netAt("udp", 4, a.udp["127.0.0.1"], ok),
		netAt("tcp", 4, b.tcp["127.0.0.1"], ok),
		netAt("udp", 6, a.udp["::1"], ok),
		netAt("tcp", 4, a.tcp["127.0.0.2"], refused),
		netAt("tfo", 4, a.tcp["127.0.0.2"], refused),
		netAt("udp", 4, a.udp["127.0.0.2"], refused),
		netAt("udp_msg", 4, a.udp["127.0.0.2"], refused),
		netMmsg(4, refused, 0, a.udp["127.0.0.2"]),
		netOn("tcp", 6, "::ffff:127.0.0.2", a.tcp["127.0.0.2"], refused),
		netAt("udp", 4, b.udp["127.0.0.1"], refused),
		netAt("tcp", 6, a.tcp["::1"], refused),
		netExpr("udp socket", "mk(4, socket.SOCK_DGRAM, 0, p)", ok),
		netExpr("raw socket", "mk(4, socket.SOCK_RAW, socket.IPPROTO_ICMP, p)", "ERR EPERM"),
	})
}

func TestCLINetBind(t *testing.T) {
	b := netFreePorts(t, 3)
	bindCase := func(f int, host string, port int, want string) netCase {
		return netExpr(fmt.Sprintf("bind tcp %s:%d", host, port), fmt.Sprintf("bind(%d, socket.SOCK_STREAM, %q, %d, p)", f, host, port), want)
	}
	udpBind := func(port int, want string) netCase {
		return netExpr(fmt.Sprintf("bind udp 127.0.0.1:%d", port), fmt.Sprintf("bind(4, socket.SOCK_DGRAM, '127.0.0.1', %d, p)", port), want)
	}
	B := func(i int) string { return strconv.Itoa(b + i) }
	udp := []string{"--net-allow", "udp://127.0.0.1:9"}
	netCLI(t, nil, udp, []netCase{
		bindCase(4, "127.0.0.1", b, "ERR EACCES"),
		bindCase(4, "127.0.0.1", 0, "ERR EACCES"),
		udpBind(b, "OK"),
	})
	netCLI(t, nil, append([]string{"--net-allow-bind", B(0)}, udp...), []netCase{
		bindCase(4, "127.0.0.1", b, "OK"),
		bindCase(6, "::1", b, "OK"),
		bindCase(4, "127.0.0.1", b+1, "ERR EACCES"),
		bindCase(4, "127.0.0.1", 0, "ERR EACCES"),
		udpBind(b+1, "OK"),
	})
	netCLI(t, nil, []string{"--net-allow-bind", B(1) + "-" + B(2)}, []netCase{
		bindCase(4, "127.0.0.1", b, "ERR EACCES"),
		bindCase(4, "127.0.0.1", b+1, "OK"),
		bindCase(4, "127.0.0.1", b+2, "OK"),
	})
	netCLI(t, nil, []string{"--net-allow-bind", "*"}, []netCase{
		bindCase(4, "127.0.0.1", b, "OK"),
		bindCase(4, "127.0.0.1", 0, "OK"),
		bindCase(6, "::1", 0, "OK"),
	})
	netCLI(t, nil, append([]string{"--net-deny-bind", B(0), "--net-deny-bind", B(2)}, udp...), []netCase{
		bindCase(4, "127.0.0.1", b, "ERR EACCES"),
		bindCase(6, "::1", b, "ERR EACCES"),
		bindCase(6, "::ffff:127.0.0.1", b+2, "ERR EACCES"),
		bindCase(4, "127.0.0.1", b+1, "OK"),
		bindCase(4, "127.0.0.1", 0, "OK"),
		udpBind(b, "OK"),
	})
}

func TestCLINetUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root to switch to cliNobody (run the tests as root, as CI does)")
	}
	netFastOpenClient(t)
	a := newNetGroup(t, "127.0.0.1", "127.0.0.2")
	b := newNetGroup(t, "127.0.0.1")
	P := netP(a.port)
	free := netFreePorts(t, 2)
	ok, refused := "OK", "ERR ECONNREFUSED"
	netCLI(t, cliNobody, []string{"--net-allow", "127.0.0.1:" + P, "--net-allow-bind", strconv.Itoa(free)}, []netCase{
		netAt("tcp", 4, a.tcp["127.0.0.1"], ok),
		netAt("tcp_nb", 4, a.tcp["127.0.0.1"], ok),
		netAt("tfo", 4, a.tcp["127.0.0.1"], ok),
		netAt("udp", 4, a.udp["127.0.0.1"], ok),
		netMmsg(4, "OK 1", 1, a.udp["127.0.0.1"], a.udp["127.0.0.2"]),
		netAt("tcp", 4, a.tcp["127.0.0.2"], refused),
		netAt("tfo", 4, a.tcp["127.0.0.2"], refused),
		netAt("udp", 4, a.udp["127.0.0.2"], refused),
		netAt("tcp", 4, b.tcp["127.0.0.1"], refused),
		netAt("udp", 4, b.udp["127.0.0.1"], refused),
		netExpr("bind allowed", fmt.Sprintf("bind(4, socket.SOCK_STREAM, '127.0.0.1', %d, p)", free), ok),
		netExpr("bind other", fmt.Sprintf("bind(4, socket.SOCK_STREAM, '127.0.0.1', %d, p)", free+1), "ERR EACCES"),
	})
	netCLI(t, cliNobody, []string{"--net-deny", "127.0.0.2", "--net-deny-bind", strconv.Itoa(free)}, []netCase{
		netAt("tcp", 4, a.tcp["127.0.0.1"], ok),
		netAt("udp", 4, b.udp["127.0.0.1"], ok),
		netAt("tcp", 4, a.tcp["127.0.0.2"], refused),
		netAt("udp", 4, a.udp["127.0.0.2"], refused),
		netExpr("bind denied", fmt.Sprintf("bind(4, socket.SOCK_STREAM, '127.0.0.1', %d, p)", free), "ERR EACCES"),
		netExpr("bind other", fmt.Sprintf("bind(4, socket.SOCK_STREAM, '127.0.0.1', %d, p)", free+1), ok),
	})
}

// netICMPNS runs its arguments in a new network namespace whose ping
// sockets every group may use, then prints the namespace's ICMP counters.
const netICMPNS = `echo "0 2147483647" > /proc/sys/net/ipv4/ping_group_range && ip link set lo up || exit 99
"$@"; rc=$?
echo "--counters--"
cat /proc/net/snmp /proc/net/snmp6
exit $rc`

// netEchoes returns how many ICMP and ICMPv6 echo requests the namespace
// received, from netICMPNS's counters.
func netEchoes(t *testing.T, counters string) (v4, v6 int) {
	t.Helper()
	lines := strings.Split(counters, "\n")
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) == 2 && f[0] == "Icmp6InEchos" {
			v6, _ = strconv.Atoi(f[1])
		}
		if strings.HasPrefix(l, "IcmpMsg:") && i+1 < len(lines) && strings.HasPrefix(lines[i+1], "IcmpMsg:") {
			names, vals := strings.Fields(l), strings.Fields(lines[i+1])
			for j := range names {
				if names[j] == "InType8" && j < len(vals) {
					v4, _ = strconv.Atoi(vals[j])
				}
			}
		}
	}
	return v4, v6
}

func TestCLINetICMP(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root for a network namespace (run the tests as root, as CI does)")
	}
	ping := func(f int, host, how, want string) netCase {
		return netExpr(fmt.Sprintf("ping %s by %s", host, how), fmt.Sprintf("ping(%d, %q, p, %q)", f, host, how), want)
	}
	ok, refused, eperm := "OK", "ERR ECONNREFUSED", "ERR EPERM"
	for _, tc := range []struct {
		user   []string
		flags  []string
		cases  []netCase
		v4, v6 int // echo requests that must have arrived
	}{
		{nil, nil, []netCase{
			ping(4, "127.0.0.1", "sendto", eperm),
			ping(6, "::1", "sendto", eperm),
		}, 0, 0},
		{nil, []string{"--net-allow", "icmp://127.0.0.1", "--net-allow", "icmp://::1"}, []netCase{
			ping(4, "127.0.0.1", "sendto", ok),
			ping(4, "127.0.0.1", "sendmsg", ok),
			ping(4, "127.0.0.1", "connect", ok),
			ping(6, "::1", "sendto", ok),
			ping(4, "127.0.0.2", "sendto", refused),
			ping(4, "127.0.0.2", "sendmsg", refused),
			ping(4, "127.0.0.2", "connect", refused),
			netExpr("udp socket", "mk(4, socket.SOCK_DGRAM, 0, p)", eperm),
			netPort("tcp", 4, "127.0.0.1", 9, "ERR EACCES"),
		}, 3, 1},
		{nil, []string{"--net-allow", "icmp://*"}, []netCase{
			ping(4, "127.0.0.1", "sendto", ok),
			ping(4, "127.0.0.2", "sendto", ok),
			ping(6, "::1", "sendto", ok),
		}, 2, 1},
		{nil, []string{"--net-deny", "icmp://127.0.0.2"}, []netCase{
			ping(4, "127.0.0.1", "sendto", ok),
			ping(6, "::1", "sendto", ok),
			ping(4, "127.0.0.2", "sendto", refused),
			ping(4, "127.0.0.2", "sendmsg", refused),
			ping(4, "127.0.0.2", "connect", refused),
			netExpr("udp socket", "mk(4, socket.SOCK_DGRAM, 0, p)", ok),
		}, 1, 1},
		{nil, []string{"--net-allow", "127.0.0.1", "--net-allow", "udp://*"}, []netCase{
			ping(4, "127.0.0.1", "sendto", eperm),
			ping(6, "::1", "sendto", eperm),
		}, 0, 0},
		{cliNobody, []string{"--net-allow", "icmp://127.0.0.1"}, []netCase{
			ping(4, "127.0.0.1", "sendto", ok),
			ping(4, "127.0.0.2", "sendto", refused),
		}, 1, 0},
	} {
		prefix := append([]string{"unshare", "-n", "sh", "-c", netICMPNS, "sh"}, tc.user...)
		what := fmt.Sprintf("%q in a new network namespace", tc.flags)
		code, stdout, stderr := cliAs(t, prefix, cliRunArgs(cliGrants(tc.flags...), python, "-c", netScript(tc.cases))...)
		out, counters, found := strings.Cut(stdout, "--counters--\n")
		if code != 0 || stderr != "" || !found {
			t.Errorf("%s: exit %d\nstdout: %s\nstderr: %s", what, code, stdout, stderr)
			continue
		}
		netCheck(t, what, out, tc.cases)
		if v4, v6 := netEchoes(t, counters); v4 != tc.v4 || v6 != tc.v6 {
			t.Errorf("%s: %d ICMP and %d ICMPv6 echo requests arrived, want %d and %d", what, v4, v6, tc.v4, tc.v6)
		}
	}
}

func TestCLINetNoSupervisor(t *testing.T) {
	netFastOpenClient(t)
	a := newNetGroup(t, "127.0.0.1")
	b := newNetGroup(t, "127.0.0.1")
	free := netFreePorts(t, 2)
	netCLI(t, nil, []string{"--no-supervisor", "--net-allow", "tcp://*:" + netP(a.port), "--net-allow-bind", strconv.Itoa(free)}, []netCase{
		netAt("tcp", 4, a.tcp["127.0.0.1"], "OK"),
		netAt("tcp", 4, b.tcp["127.0.0.1"], "ERR EACCES"),
		netAt("udp", 4, a.udp["127.0.0.1"], "ERR EPERM"),
		netExpr("bind allowed", fmt.Sprintf("bind(4, socket.SOCK_STREAM, '127.0.0.1', %d, p)", free), "OK"),
		netExpr("bind other", fmt.Sprintf("bind(4, socket.SOCK_STREAM, '127.0.0.1', %d, p)", free+1), "ERR EACCES"),
		// A fast-open send must not get around the port rule: without
		// the supervisor none is made.
		netAt("tfo", 4, b.tcp["127.0.0.1"], "ERR ENOTSUP"),
	})
}
