//go:build linux

package netgate

import (
	"context"
	"encoding/binary"
	"net/netip"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/notify"
)

// sa4 is a sockaddr_in with the given family field.
func sa4(family uint16, addr string, port uint16) []byte {
	b := make([]byte, 16)
	binary.NativeEndian.PutUint16(b, family)
	binary.BigEndian.PutUint16(b[2:], port)
	a := netip.MustParseAddr(addr).As4()
	copy(b[4:], a[:])
	return b
}

func sa6(addr string, port uint16) []byte {
	b := make([]byte, 28)
	binary.NativeEndian.PutUint16(b, unix.AF_INET6)
	binary.BigEndian.PutUint16(b[2:], port)
	a := netip.MustParseAddr(addr).As16()
	copy(b[8:], a[:])
	return b
}

func saUnix(path string) []byte { return sockaddrUnix(path) }

// TestTarget: an address is read as the kernel reads it for each kind of
// socket and operation; everything the kernel would use as a destination
// is an inet, path or abstract target (judged), the rest passes as is.
func TestTarget(t *testing.T) {
	tcp4 := &socket{family: unix.AF_INET, sockType: unix.SOCK_STREAM, proto: unix.IPPROTO_TCP}
	udp4 := &socket{family: unix.AF_INET, sockType: unix.SOCK_DGRAM, proto: unix.IPPROTO_UDP}
	ping4 := &socket{family: unix.AF_INET, sockType: unix.SOCK_DGRAM, proto: unix.IPPROTO_ICMP}
	tcp6 := &socket{family: unix.AF_INET6, sockType: unix.SOCK_STREAM, proto: unix.IPPROTO_TCP}
	udp6 := &socket{family: unix.AF_INET6, sockType: unix.SOCK_DGRAM, proto: unix.IPPROTO_UDP}
	ustream := &socket{family: unix.AF_UNIX, sockType: unix.SOCK_STREAM}
	udgram := &socket{family: unix.AF_UNIX, sockType: unix.SOCK_DGRAM}
	useq := &socket{family: unix.AF_UNIX, sockType: unix.SOCK_SEQPACKET}
	netlink := &socket{family: unix.AF_NETLINK, sockType: unix.SOCK_RAW}
	abstract := append([]byte{byte(unix.AF_UNIX), 0, 0}, "name\x00x"...)
	for _, tc := range []struct {
		name  string
		s     *socket
		raw   []byte
		o     op
		flags int
		kind  targetKind
		addr  string
		port  uint16
		path  string
	}{
		{"tcp connect v4", tcp4, sa4(unix.AF_INET, "10.1.2.3", 80), opConnect, 0, inetTarget, "10.1.2.3", 80, ""},
		{"tcp connect AF_UNSPEC disconnects", tcp4, sa4(unix.AF_UNSPEC, "10.1.2.3", 80), opConnect, 0, asIs, "", 0, ""},
		{"tcp connect v6 on v4", tcp4, sa6("::1", 80), opConnect, 0, asIs, "", 0, ""},
		{"tcp connect unix on v4", tcp4, saUnix("/x"), opConnect, 0, asIs, "", 0, ""},
		{"tcp connect short", tcp4, sa4(unix.AF_INET, "10.1.2.3", 80)[:15], opConnect, 0, asIs, "", 0, ""},
		{"tcp connect empty", tcp4, []byte{}, opConnect, 0, asIs, "", 0, ""},
		{"tcp send ignores the address", tcp4, sa4(unix.AF_INET, "10.1.2.3", 80), opSend, 0, asIs, "", 0, ""},
		{"tcp fast open", tcp4, sa4(unix.AF_INET, "10.1.2.3", 80), opSend, unix.MSG_FASTOPEN, inetTarget, "10.1.2.3", 80, ""},
		{"tcp fast open AF_UNSPEC (strict)", tcp4, sa4(unix.AF_UNSPEC, "10.1.2.3", 80), opSend, unix.MSG_FASTOPEN, inetTarget, "10.1.2.3", 80, ""},
		{"udp send AF_UNSPEC", udp4, sa4(unix.AF_UNSPEC, "10.1.2.3", 53), opSend, 0, inetTarget, "10.1.2.3", 53, ""},
		{"udp connect AF_UNSPEC disconnects", udp4, sa4(unix.AF_UNSPEC, "10.1.2.3", 53), opConnect, 0, asIs, "", 0, ""},
		{"udp send long address", udp4, append(sa4(unix.AF_INET, "10.1.2.3", 53), make([]byte, 94)...), opSend, 0, inetTarget, "10.1.2.3", 53, ""},
		{"ping send", ping4, sa4(unix.AF_INET, "10.1.2.3", 0), opSend, 0, inetTarget, "10.1.2.3", 0, ""},
		{"bind AF_UNSPEC (INADDR_ANY compat)", tcp4, sa4(unix.AF_UNSPEC, "0.0.0.0", 8080), opBind, 0, inetTarget, "0.0.0.0", 8080, ""},
		{"tcp6 connect", tcp6, sa6("2001:db8::1", 443), opConnect, 0, inetTarget, "2001:db8::1", 443, ""},
		{"tcp6 connect mapped", tcp6, sa6("::ffff:10.1.2.3", 443), opConnect, 0, inetTarget, "10.1.2.3", 443, ""},
		{"tcp6 connect short", tcp6, sa6("::1", 443)[:23], opConnect, 0, asIs, "", 0, ""},
		{"tcp6 connect AF_INET", tcp6, sa4(unix.AF_INET, "10.1.2.3", 80), opConnect, 0, asIs, "", 0, ""},
		{"udp6 connect AF_INET", udp6, sa4(unix.AF_INET, "10.1.2.3", 53), opConnect, 0, inetTarget, "10.1.2.3", 53, ""},
		{"udp6 send AF_INET", udp6, sa4(unix.AF_INET, "10.1.2.3", 53), opSend, 0, inetTarget, "10.1.2.3", 53, ""},
		{"udp6 send AF_UNSPEC: no address", udp6, sa4(unix.AF_UNSPEC, "10.1.2.3", 53), opSend, 0, asIs, "", 0, ""},
		{"udp6 bind AF_INET", udp6, sa4(unix.AF_INET, "10.1.2.3", 53), opBind, 0, asIs, "", 0, ""},
		{"unix connect path", ustream, saUnix("/run/x.sock"), opConnect, 0, pathTarget, "", 0, "/run/x.sock"},
		{"unix connect path up to its NUL", ustream, append(saUnix("rel.sock"), "junk"...), opConnect, 0, pathTarget, "", 0, "rel.sock"},
		{"unix connect abstract", ustream, abstract, opConnect, 0, abstractTarget, "", 0, ""},
		{"unix connect unnamed", ustream, []byte{byte(unix.AF_UNIX), 0}, opConnect, 0, asIs, "", 0, ""},
		{"unix connect too long", ustream, append(saUnix("/x"), make([]byte, 110)...), opConnect, 0, asIs, "", 0, ""},
		{"unix connect inet", ustream, sa4(unix.AF_INET, "10.1.2.3", 80), opConnect, 0, asIs, "", 0, ""},
		{"unix stream send ignores the address", ustream, saUnix("/x"), opSend, 0, asIs, "", 0, ""},
		{"unix seqpacket send ignores the address", useq, saUnix("/x"), opSend, 0, asIs, "", 0, ""},
		{"unix datagram send", udgram, saUnix("/x"), opSend, 0, pathTarget, "", 0, "/x"},
		{"unix datagram send abstract", udgram, abstract, opSend, 0, abstractTarget, "", 0, ""},
		{"unix bind", ustream, saUnix("/x"), opBind, 0, pathTarget, "", 0, "/x"},
		{"unix autobind", ustream, []byte{byte(unix.AF_UNIX), 0}, opBind, 0, asIs, "", 0, ""},
		{"netlink", netlink, sa4(unix.AF_INET, "10.1.2.3", 80), opSend, 0, asIs, "", 0, ""},
	} {
		got := tc.s.target(tc.raw, tc.o, tc.flags)
		if got.kind != tc.kind || got.port != tc.port || got.path != tc.path || string(got.raw) != string(tc.raw) {
			t.Errorf("%s: got kind %d port %d path %q, want kind %d port %d path %q", tc.name, got.kind, got.port, got.path, tc.kind, tc.port, tc.path)
		}
		if tc.addr != "" && got.addr != netip.MustParseAddr(tc.addr) {
			t.Errorf("%s: got address %v, want %s", tc.name, got.addr, tc.addr)
		}
	}
}

// realSocket makes a socket as the gate sees one.
func realSocket(t *testing.T, family, typ int) *socket {
	t.Helper()
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	s := &socket{fd: fd, family: family, sockType: typ}
	s.proto, _ = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	return s
}

// TestLocalize: an unspecified destination becomes the address the kernel
// would reach, in the copy.
func TestLocalize(t *testing.T) {
	udp4 := realSocket(t, unix.AF_INET, unix.SOCK_DGRAM)
	bound4 := realSocket(t, unix.AF_INET, unix.SOCK_DGRAM)
	if err := unix.Bind(bound4.fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 2}}); err != nil {
		t.Fatal(err)
	}
	udp6 := realSocket(t, unix.AF_INET6, unix.SOCK_DGRAM)
	mapped6 := realSocket(t, unix.AF_INET6, unix.SOCK_DGRAM)
	if err := unix.Bind(mapped6.fd, &unix.SockaddrInet6{Addr: netip.MustParseAddr("::ffff:127.0.0.3").As16()}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		s    *socket
		raw  []byte
		o    op
		want string // the address judged, and written into the copy
	}{
		{"0.0.0.0, unbound", udp4, sa4(unix.AF_INET, "0.0.0.0", 53), opSend, "127.0.0.1"},
		{"0.0.0.0, bound", bound4, sa4(unix.AF_INET, "0.0.0.0", 53), opSend, "127.0.0.2"},
		{"AF_UNSPEC 0.0.0.0, bound", bound4, sa4(unix.AF_UNSPEC, "0.0.0.0", 53), opSend, "127.0.0.2"},
		{"::", udp6, sa6("::", 53), opSend, "::1"},
		{"::ffff:0.0.0.0", udp6, sa6("::ffff:0.0.0.0", 53), opSend, "127.0.0.1"},
		{"::ffff:0.0.0.0, bound mapped", mapped6, sa6("::ffff:0.0.0.0", 53), opSend, "127.0.0.3"},
		{":: connect, bound mapped", mapped6, sa6("::", 53), opConnect, "127.0.0.1"},
		{":: send, bound mapped", mapped6, sa6("::", 53), opSend, "::1"},
		{"AF_INET 0.0.0.0 on IPv6, bound mapped", mapped6, sa4(unix.AF_INET, "0.0.0.0", 53), opSend, "127.0.0.3"},
		{"not unspecified", udp4, sa4(unix.AF_INET, "10.1.2.3", 53), opSend, "10.1.2.3"},
	} {
		orig := string(tc.raw)
		tg := tc.s.target(tc.raw, tc.o, 0)
		tc.s.localize(&tg, tc.o)
		want := netip.MustParseAddr(tc.want)
		if tg.addr != want {
			t.Errorf("%s: judged %v, want %v", tc.name, tg.addr, want)
		}
		var written netip.Addr
		if tg.v6 {
			written = netip.AddrFrom16([16]byte(tg.raw[8:24])).Unmap()
		} else {
			written = netip.AddrFrom4([4]byte(tg.raw[4:8]))
		}
		if written != want {
			t.Errorf("%s: the copy holds %v, want %v", tc.name, written, want)
		}
		if string(tc.raw) != orig {
			t.Errorf("%s: the program's copy was changed in place", tc.name)
		}
		if binary.BigEndian.Uint16(tg.raw[2:]) != 53 || binary.NativeEndian.Uint16(tg.raw) != binary.NativeEndian.Uint16(tc.raw) {
			t.Errorf("%s: family or port changed", tc.name)
		}
	}
}

// TestOwnsAbstract: only the socket that owns an abstract name counts: a
// listener or a bound datagram socket, not a socket accepted from the
// listener (which reports the listener's address).
func TestOwnsAbstract(t *testing.T) {
	name := "\x00sandlock-netgate-test-owns"
	addr := &unix.SockaddrUnix{Name: "@" + name[1:]}
	ls := realSocket(t, unix.AF_UNIX, unix.SOCK_STREAM)
	if err := unix.Bind(ls.fd, addr); err != nil {
		t.Fatal(err)
	}
	if ownsAbstract(ls.fd, []byte(name)) {
		t.Error("a bound stream socket that does not listen counts as the owner (connects to it are refused)")
	}
	if err := unix.Listen(ls.fd, 1); err != nil {
		t.Fatal(err)
	}
	c := realSocket(t, unix.AF_UNIX, unix.SOCK_STREAM)
	if err := unix.Connect(c.fd, addr); err != nil {
		t.Fatal(err)
	}
	acc, _, err := unix.Accept(ls.fd)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(acc)
	if !ownsAbstract(ls.fd, []byte(name)) {
		t.Error("the listener is not the owner")
	}
	if ownsAbstract(acc, []byte(name)) {
		t.Error("an accepted socket counts as the owner")
	}
	if ownsAbstract(ls.fd, []byte(name+"\x00")) || ownsAbstract(ls.fd, []byte(name[:len(name)-1])) {
		t.Error("a name that differs in length matches")
	}
	d := realSocket(t, unix.AF_UNIX, unix.SOCK_DGRAM)
	if err := unix.Bind(d.fd, &unix.SockaddrUnix{Name: "@" + name[1:] + "-d"}); err != nil {
		t.Fatal(err)
	}
	if !ownsAbstract(d.fd, []byte(name+"-d")) {
		t.Error("a bound datagram socket is not the owner")
	}
	in := realSocket(t, unix.AF_INET, unix.SOCK_STREAM)
	if ownsAbstract(in.fd, []byte(name)) {
		t.Error("an inet socket matches")
	}
}

func TestSplitParent(t *testing.T) {
	for _, tc := range []struct{ path, dir, name string }{
		{"/run/docker.sock", "/run", "docker.sock"},
		{"x.sock", ".", "x.sock"},
		{"a/b/x.sock", "a/b", "x.sock"},
		{"/x.sock", "/", "x.sock"},
		{"a/x.sock/", "a", "x.sock/"},
		{"/", "/", "."},
		{"a/..", "a", ".."},
	} {
		if dir, name := splitParent(tc.path); dir != tc.dir || name != tc.name {
			t.Errorf("splitParent(%q) = %q, %q, want %q, %q", tc.path, dir, name, tc.dir, tc.name)
		}
	}
}

// TestBudget: one notification's copies share CopyBound, handed out
// without overlap.
func TestBudget(t *testing.T) {
	b := newBudget()
	defer b.release()
	if b.left() != CopyBound {
		t.Fatalf("left %d", b.left())
	}
	p := b.take(1000)
	if len(p) != 1000 || cap(p) != 1000 || b.left() != CopyBound-1000 {
		t.Fatalf("take: len %d cap %d left %d", len(p), cap(p), b.left())
	}
	q := b.take(b.left())
	if &q[0] == &p[0] || b.left() != 0 {
		t.Fatal("take overlaps or leaves something")
	}
}

// TestPerformRefusedDeferReleases: a deferred operation that the
// supervisor refuses (too many in flight) never runs; what it held (the
// duplicate socket, the copy buffers) is released all the same, by the
// garbage collector.
func TestPerformRefusedDeferReleases(t *testing.T) {
	g := newGate(Config{})
	s := realSocket(t, unix.AF_INET, unix.SOCK_STREAM) // blocking: deferred
	dup, err := unix.Dup(s.fd)
	if err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	func() {
		a := g.perform(&socket{fd: dup, family: unix.AF_INET}, 0, func() { close(released) }, func(context.Context) notify.Action {
			t.Error("the work of a dropped Defer ran")
			return notify.Continue()
		})
		if a.String() != "Defer" {
			t.Fatalf("a blocking socket's operation is %v, want Defer", a)
		}
	}() // the Action is dropped, as a refused Defer is
	for i := 0; ; i++ {
		runtime.GC()
		select {
		case <-released:
			if _, err := unix.FcntlInt(uintptr(dup), unix.F_GETFD, 0); err != unix.EBADF {
				t.Errorf("the duplicate is still open: %v", err)
			}
			return
		default:
		}
		if i == 1000 {
			t.Fatal("nothing was released after 1000 collections")
		}
		runtime.Gosched()
	}
}
