//go:build linux

package sandlock_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock"
)

// End-to-end tests of the network policy (NetAllow, NetDeny, NetAllowBind,
// NetDenyBind): Python programs in a sandbox probe loopback servers the test
// starts, one line per case, and every server records what reached it, so
// that a refused destination is shown to have received nothing.

// ---------------------------------------------------------------------
// Servers.

// netSrv is a loopback server that records every payload it receives and
// answers "R"+payload (TCP, UDP, unix stream; unix datagram senders are
// usually unbound and get no answer).
type netSrv struct {
	proto string // "tcp", "udp", "unix", "unixgram"
	host  string // IP literal, or the socket path for unix protocols
	port  int

	ln net.Listener
	pc net.PacketConn

	mu       sync.Mutex
	got      []string
	accepted int // TCP/unix connections accepted
	finished int // … and fully handled
}

// netSync is the payload a test sends itself to flush a server.
const netSync = "\x00sync"

func (s *netSrv) String() string {
	if s.port == 0 {
		return s.proto + ":" + s.host
	}
	return s.proto + "://" + s.addr()
}

func (s *netSrv) addr() string {
	if s.port == 0 {
		return s.host
	}
	return net.JoinHostPort(s.host, strconv.Itoa(s.port))
}

func (s *netSrv) record(data string) {
	s.mu.Lock()
	s.got = append(s.got, data)
	s.mu.Unlock()
}

// netListen starts a server; the caller closes it.
func netListen(proto, host string, port int) (*netSrv, error) {
	s := &netSrv{proto: proto, host: host, port: port}
	var err error
	switch proto {
	case "tcp", "unix":
		if s.ln, err = net.Listen(proto, s.addr()); err != nil {
			return nil, err
		}
		go s.acceptLoop()
	case "udp":
		if s.pc, err = net.ListenPacket("udp", s.addr()); err != nil {
			return nil, err
		}
		go s.readLoop()
	case "unixgram":
		c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: host, Net: "unixgram"})
		if err != nil {
			return nil, err
		}
		s.pc = c
		go s.readUnixgram(c)
	default:
		return nil, fmt.Errorf("unknown protocol %q", proto)
	}
	return s, nil
}

func (s *netSrv) close() {
	if s.ln != nil {
		s.ln.Close()
	}
	if s.pc != nil {
		s.pc.Close()
	}
}

func (s *netSrv) acceptLoop() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.accepted++
		s.mu.Unlock()
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			buf := make([]byte, 4096)
			n, _ := c.Read(buf)
			data := string(buf[:n])
			s.mu.Lock()
			s.got = append(s.got, data)
			s.finished++
			s.mu.Unlock()
			if n > 0 {
				c.Write([]byte("R" + data))
			}
		}()
	}
}

func (s *netSrv) readLoop() {
	buf := make([]byte, 4096)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		data := string(buf[:n])
		s.record(data)
		s.pc.WriteTo([]byte("R"+data), from)
	}
}

// readUnixgram records datagrams; a datagram carrying an fd (SCM_RIGHTS)
// is recorded as "payload|what the fd reads".
func (s *netSrv) readUnixgram(c *net.UnixConn) {
	buf := make([]byte, 4096)
	oob := make([]byte, 1024)
	for {
		n, oobn, _, from, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			return
		}
		data := string(buf[:n])
		if oobn > 0 {
			msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
			for _, m := range msgs {
				fds, err := unix.ParseUnixRights(&m)
				if err != nil {
					continue
				}
				for _, fd := range fds {
					f := os.NewFile(uintptr(fd), "passed")
					b := make([]byte, 100)
					k, _ := f.Read(b)
					f.Close()
					data += "|" + string(b[:k])
				}
			}
		}
		s.record(data)
		if from != nil && from.Name != "" {
			c.WriteTo([]byte("R"+data), from)
		}
	}
}

// take flushes the server (everything sent to it before this call has been
// recorded when it returns) and returns, sorted, what it received since the
// last take.
func (s *netSrv) take(t *testing.T) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	switch s.proto {
	case "tcp", "unix":
		// Connections are accepted in order: once ours is answered, every
		// earlier one has been accepted; then wait for them to be handled.
		c, err := net.DialTimeout(s.proto, s.addr(), 10*time.Second)
		if err != nil {
			t.Fatalf("flushing %v: %v", s, err)
		}
		c.SetDeadline(deadline)
		c.Write([]byte(netSync))
		buf := make([]byte, 100)
		if _, err := c.Read(buf); err != nil {
			t.Fatalf("flushing %v: %v", s, err)
		}
		c.Close()
		for {
			s.mu.Lock()
			done := s.accepted == s.finished
			s.mu.Unlock()
			if done {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("flushing %v: connections never finished", s)
			}
			time.Sleep(5 * time.Millisecond)
		}
	case "udp":
		c, err := net.Dial("udp", s.addr())
		if err != nil {
			t.Fatalf("flushing %v: %v", s, err)
		}
		c.SetDeadline(deadline)
		c.Write([]byte(netSync))
		buf := make([]byte, 100)
		if _, err := c.Read(buf); err != nil {
			t.Fatalf("flushing %v: %v", s, err)
		}
		c.Close()
	case "unixgram":
		c, err := net.Dial("unixgram", s.host)
		if err != nil {
			t.Fatalf("flushing %v: %v", s, err)
		}
		c.Write([]byte(netSync))
		c.Close()
		for {
			s.mu.Lock()
			done := slices.Contains(s.got, netSync)
			s.mu.Unlock()
			if done {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("flushing %v: the flush datagram never arrived", s)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, g := range s.got {
		if g != netSync {
			out = append(out, g)
		}
	}
	s.got = nil
	slices.Sort(out)
	return out
}

// netGroup is a TCP and a UDP server on each of several hosts, all on one
// port, so that a rule's near misses differ in one thing only.
type netGroup struct {
	port int
	tcp  map[string]*netSrv
	udp  map[string]*netSrv
}

// newNetGroup listens on a port from 20000-25999 (below the ephemeral
// range, away from netFreePorts' range).
func newNetGroup(t *testing.T, hosts ...string) *netGroup {
	t.Helper()
	for attempt := 0; attempt < 200; attempt++ {
		g := &netGroup{port: 20000 + rand.IntN(6000), tcp: map[string]*netSrv{}, udp: map[string]*netSrv{}}
		var made []*netSrv
		ok := true
		for _, h := range hosts {
			for _, proto := range []string{"tcp", "udp"} {
				s, err := netListen(proto, h, g.port)
				if err != nil {
					ok = false
					break
				}
				made = append(made, s)
				if proto == "tcp" {
					g.tcp[h] = s
				} else {
					g.udp[h] = s
				}
			}
			if !ok {
				break
			}
		}
		if !ok {
			for _, s := range made {
				s.close()
			}
			continue
		}
		t.Cleanup(func() {
			for _, s := range made {
				s.close()
			}
		})
		return g
	}
	t.Fatalf("no free port for servers on %v", hosts)
	return nil
}

// netPortNext hands out blocks of ports in 26000-31999 (see netFreePorts),
// so that tests running in parallel never bind the same ones.
var (
	netPortMu   sync.Mutex
	netPortNext = 26000 + rand.IntN(6000)
)

// netFreePorts returns the first of n consecutive ports (in 26000-31999)
// that nothing uses on 127.0.0.1 and ::1, TCP or UDP, and that no other
// test of this process got.
func netFreePorts(t *testing.T, n int) int {
	t.Helper()
	netPortMu.Lock()
	defer netPortMu.Unlock()
	for attempt := 0; attempt < 200; attempt++ {
		if netPortNext+n > 32000 {
			netPortNext = 26000
		}
		b := netPortNext
		netPortNext += n
		free := true
		for p := b; p < b+n && free; p++ {
			for _, a := range []string{"127.0.0.1", "::1"} {
				addr := net.JoinHostPort(a, strconv.Itoa(p))
				ln, err := net.Listen("tcp", addr)
				if err != nil {
					free = false
					break
				}
				ln.Close()
				pc, err := net.ListenPacket("udp", addr)
				if err != nil {
					free = false
					break
				}
				pc.Close()
			}
		}
		if free {
			return b
		}
	}
	t.Fatal("no free ports")
	return 0
}

// ---------------------------------------------------------------------
// Probes.

// netPrelude defines the probes a sandboxed Python program runs. Each
// takes the payload p last; case(label, fn) prints "label OK[ value]",
// "label ERR ERRNO" or "label EXC …". Sockets are blocking (operations on
// the program's behalf take the blocking path) with a receive timeout.
const netPrelude = `
import array, ctypes, errno, os, select, socket, struct, sys
F = {4: socket.AF_INET, 6: socket.AF_INET6}
libc = ctypes.CDLL(None, use_errno=True)
def case(label, fn):
    try:
        r = fn(label.encode())
        out = "OK" if r is None else "OK %s" % r
    except OSError as e:
        out = "ERR " + (errno.errorcode.get(e.errno) or repr(e))
    except Exception as e:
        out = "EXC " + repr(e)
    print(label, out.replace("\n", " "), flush=True)
def timeo(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 10, 0))
    return s
def reply(s, p):
    r = s.recv(4096)
    if r != b"R" + p:
        raise RuntimeError("reply %r" % r)
def tcp(f, h, port, p):
    s = timeo(socket.socket(F[f], socket.SOCK_STREAM))
    s.connect((h, port)); s.sendall(p); reply(s, p); s.close()
def tcp_nb(f, h, port, p):
    s = socket.socket(F[f], socket.SOCK_STREAM)
    s.setblocking(False)
    r = s.connect_ex((h, port))
    if r == errno.EINPROGRESS:
        select.select([], [s], [], 10)
        r = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if r:
        raise OSError(r, os.strerror(r))
    s.setblocking(True); timeo(s); s.sendall(p); reply(s, p); s.close()
def tfo(f, h, port, p):
    s = timeo(socket.socket(F[f], socket.SOCK_STREAM))
    s.sendto(p, socket.MSG_FASTOPEN, (h, port)); reply(s, p); s.close()
def tfo_msg(f, h, port, p):
    s = timeo(socket.socket(F[f], socket.SOCK_STREAM))
    s.sendmsg([p], [], socket.MSG_FASTOPEN, (h, port)); reply(s, p); s.close()
def tfo_connect(f, h, port, p):
    s = timeo(socket.socket(F[f], socket.SOCK_STREAM))
    s.setsockopt(socket.IPPROTO_TCP, 30, 1)  # TCP_FASTOPEN_CONNECT
    s.connect((h, port)); s.sendall(p); reply(s, p); s.close()
def udp(f, h, port, p):
    s = timeo(socket.socket(F[f], socket.SOCK_DGRAM))
    s.sendto(p, (h, port)); reply(s, p); s.close()
def udp_msg(f, h, port, p):
    s = timeo(socket.socket(F[f], socket.SOCK_DGRAM))
    s.sendmsg([p], [], 0, (h, port)); reply(s, p); s.close()
def udp_conn(f, h, port, p):
    s = timeo(socket.socket(F[f], socket.SOCK_DGRAM))
    s.connect((h, port)); s.send(p); reply(s, p); s.close()
def udp_conn_msg(f, h, port, p):
    s = timeo(socket.socket(F[f], socket.SOCK_DGRAM))
    s.connect((h, port)); s.sendmsg([p]); reply(s, p); s.close()
def udp_redirect(f, ch, cport, h, port, p):
    # Connected to (ch, cport), then sent to (h, port) explicitly.
    s = timeo(socket.socket(F[f], socket.SOCK_DGRAM))
    s.connect((ch, cport)); s.sendto(p, (h, port)); reply(s, p); s.close()
def udp_redirect_msg(f, ch, cport, h, port, p):
    s = timeo(socket.socket(F[f], socket.SOCK_DGRAM))
    s.connect((ch, cport)); s.sendmsg([p], [], 0, (h, port)); reply(s, p); s.close()
def sa(f, h, port):
    if f == 4:
        return struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + socket.inet_pton(socket.AF_INET, h) + bytes(8)
    return struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", port, 0) + socket.inet_pton(socket.AF_INET6, h) + bytes(4)
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
class msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.POINTER(iovec)),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]
class mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", msghdr), ("len", ctypes.c_uint)]
def udp_mmsg(f, dests, p):
    # One sendmmsg of p.0, p.1, … to dests; returns how many were sent,
    # after checking each one sent was answered.
    s = timeo(socket.socket(F[f], socket.SOCK_DGRAM))
    n = len(dests)
    msgs = (mmsghdr * n)()
    keep = []
    for i, (h, port) in enumerate(dests):
        raw = sa(f, h, port)
        name = ctypes.create_string_buffer(raw, len(raw))
        data = p + b"." + str(i).encode()
        buf = ctypes.create_string_buffer(data, len(data))
        iov = iovec(ctypes.cast(buf, ctypes.c_void_p), len(data))
        keep += [name, buf, iov]
        msgs[i].hdr.name = ctypes.cast(name, ctypes.c_void_p)
        msgs[i].hdr.namelen = len(raw)
        msgs[i].hdr.iov = ctypes.pointer(iov)
        msgs[i].hdr.iovlen = 1
    r = libc.sendmmsg(s.fileno(), msgs, n, 0)
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    want = sorted(b"R" + p + b"." + str(i).encode() for i in range(r))
    got = sorted(s.recv(4096) for i in range(r))
    if got != want:
        raise RuntimeError("replies %r" % got)
    for i in range(r):
        if msgs[i].len != len(p) + 2:
            raise RuntimeError("msg_len %d" % msgs[i].len)
    s.close()
    return r
def mk(f, typ, proto, p):
    socket.socket(F[f], typ, proto).close()
def bind(f, typ, h, port, p):
    s = socket.socket(F[f], typ)
    s.bind((h, port))
    if typ == socket.SOCK_STREAM:
        s.listen(1)
    s.close()
def ping(f, h, p, how="sendto"):
    proto = socket.IPPROTO_ICMP if f == 4 else socket.IPPROTO_ICMPV6
    s = timeo(socket.socket(F[f], socket.SOCK_DGRAM, proto))
    pkt = struct.pack("!BBHHH", 8 if f == 4 else 128, 0, 0, 1, 1) + p
    if how == "sendto":
        s.sendto(pkt, (h, 0))
    elif how == "sendmsg":
        s.sendmsg([pkt], [], 0, (h, 0))
    else:
        s.connect((h, 0)); s.send(pkt)
    r = s.recv(4096)
    if r[0] != (0 if f == 4 else 129) or r[8:] != p:
        raise RuntimeError("reply %r" % r)
    s.close()
def hosts(p):
    return open("/etc/hosts", "rb").read().hex()
def ux(path, p):
    s = timeo(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    s.connect(path); s.sendall(p); reply(s, p); s.close()
def ux_rel(d, name, p):
    old = os.getcwd(); os.chdir(d)
    try:
        ux(name, p)
    finally:
        os.chdir(old)
def uxd(path, p):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(p, path); s.close()
def uxd_msg(path, p):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendmsg([p], [], 0, path); s.close()
def uxd_conn(path, p):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.connect(path); s.send(p); s.close()
def uxd_rights(path, fpath, p):
    fd = os.open(fpath, os.O_RDONLY)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendmsg([p], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))], 0, path)
    s.close(); os.close(fd)
def ux_abstract(p):
    name = b"\0sandlock-net-test-%d" % os.getpid()
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); srv.bind(name); srv.listen(1)
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); c.connect(name)
    a, _ = srv.accept(); c.sendall(p)
    if a.recv(100) != p:
        raise RuntimeError("abstract")
    d = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); d.bind(name + b"-d")
    socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(p, name + b"-d")
    if d.recv(100) != p:
        raise RuntimeError("abstract datagram")
def ux_pair(p):
    a, b = socket.socketpair()
    a.sendall(p)
    if b.recv(100) != p:
        raise RuntimeError("pair")
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.send(p)
    if b.recv(100) != p:
        raise RuntimeError("pair datagram")
`

// netHit is a payload that must reach a server.
type netHit struct {
	srv     *netSrv
	payload string // appended to the case's label
}

// netCase is one probe.
type netCase struct {
	desc string  // what it does, for failure messages
	call string  // Python expression of p, the payload
	want string  // "OK", "OK <value>", "ERR <ERRNO>", or "ERR *" for any error
	dst  *netSrv // the server it is aimed at (nothing may reach it unless want is OK)
	hits []netHit
}

// netOn is fn(f, host, port, p) aimed at srv (reached through host, which
// may differ from srv.host: "::ffff:127.0.0.1"); if want is "OK", the
// payload must reach srv.
func netOn(fn string, f int, host string, srv *netSrv, want string) netCase {
	c := netCase{
		desc: fmt.Sprintf("%s(%d, %s, %d)", fn, f, host, srv.port),
		call: fmt.Sprintf("%s(%d, %q, %d, p)", fn, f, host, srv.port),
		want: want,
		dst:  srv,
	}
	if strings.HasPrefix(want, "OK") {
		c.hits = []netHit{{srv: srv}}
	}
	return c
}

// netAt is like netOn with srv's own host.
func netAt(fn string, f int, srv *netSrv, want string) netCase {
	return netOn(fn, f, srv.host, srv, want)
}

// netEverySyscall is every way of reaching one host's TCP and UDP servers
// of a group: connect (blocking and not), fast open (sendto, sendmsg,
// TCP_FASTOPEN_CONNECT), UDP sendto, sendmsg and connect.
func netEverySyscall(f int, tcp, udp *netSrv, want string) []netCase {
	var cases []netCase
	for _, fn := range []string{"tcp", "tcp_nb", "tfo", "tfo_msg", "tfo_connect"} {
		cases = append(cases, netAt(fn, f, tcp, want))
	}
	for _, fn := range []string{"udp", "udp_msg", "udp_conn"} {
		cases = append(cases, netAt(fn, f, udp, want))
	}
	return cases
}

// netPort is fn to host:port where no server of ours listens.
func netPort(fn string, f int, host string, port int, want string) netCase {
	return netCase{
		desc: fmt.Sprintf("%s(%d, %s, %d)", fn, f, host, port),
		call: fmt.Sprintf("%s(%d, %q, %d, p)", fn, f, host, port),
		want: want,
	}
}

// netExpr is a probe with a free-form call and no server.
func netExpr(desc, call, want string) netCase {
	return netCase{desc: desc, call: call, want: want}
}

// netMmsg is one sendmmsg to srvs (each reached at its own host); the
// first `sent` messages must arrive, the rest must not.
func netMmsg(f int, want string, sent int, srvs ...*netSrv) netCase {
	var dests, names []string
	c := netCase{want: want}
	for i, s := range srvs {
		dests = append(dests, fmt.Sprintf("(%q, %d)", s.host, s.port))
		names = append(names, s.addr())
		if i < sent {
			c.hits = append(c.hits, netHit{srv: s, payload: "." + strconv.Itoa(i)})
		}
	}
	c.desc = fmt.Sprintf("sendmmsg to %v", names)
	c.call = fmt.Sprintf("udp_mmsg(%d, [%s], p)", f, strings.Join(dests, ", "))
	if len(srvs) > 0 {
		c.dst = srvs[0]
	}
	return c
}

// netScript is the Python program running cases, labelled n00, n01, …
func netScript(cases []netCase) string {
	var b strings.Builder
	b.WriteString(netPrelude)
	for i, c := range cases {
		fmt.Fprintf(&b, "case(%q, lambda p: %s)\n", netLabel(i), c.call)
	}
	return b.String()
}

func netLabel(i int) string { return fmt.Sprintf("n%02d", i) }

// netCheck compares a run's output with the cases, then what each server
// aimed at received with what the cases let through.
func netCheck(t *testing.T, what, out string, cases []netCase) {
	t.Helper()
	results := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		label, result, _ := strings.Cut(line, " ")
		results[label] = result
	}
	if len(results) != len(cases) {
		t.Errorf("%s: %d result lines for %d cases:\n%s", what, len(results), len(cases), out)
	}
	want := map[*netSrv][]string{}
	var servers []*netSrv
	addSrv := func(s *netSrv) {
		if s != nil && !slices.Contains(servers, s) {
			servers = append(servers, s)
		}
	}
	for i, c := range cases {
		label := netLabel(i)
		got, ok := results[label]
		switch {
		case !ok:
			t.Errorf("%s: %s: no result", what, c.desc)
		case c.want == "ERR *":
			if !strings.HasPrefix(got, "ERR ") {
				t.Errorf("%s: %s: got %q, want an error", what, c.desc, got)
			}
		case got != c.want:
			t.Errorf("%s: %s: got %q, want %q", what, c.desc, got, c.want)
		}
		addSrv(c.dst)
		for _, h := range c.hits {
			addSrv(h.srv)
			want[h.srv] = append(want[h.srv], label+h.payload)
		}
	}
	for _, s := range servers {
		w := want[s]
		slices.Sort(w)
		if got := s.take(t); !slices.Equal(got, w) {
			t.Errorf("%s: %v received %q, want %q", what, s, got, w)
		}
	}
}

// netRun runs cases in sb and checks them.
func netRun(t *testing.T, what string, sb *sandlock.Sandbox, cases []netCase) {
	t.Helper()
	res := run(t, sb, python, "-c", netScript(cases))
	if res.ExitCode != 0 {
		t.Fatalf("%s: python exited %d (reason %v)\nstdout: %s\nstderr: %s", what, res.ExitCode, res.Reason, res.Stdout, res.Stderr)
	}
	netCheck(t, what, string(res.Stdout), cases)
}

// netSb returns base() with network fields set.
func netSb(allow, deny, allowBind, denyBind []string) *sandlock.Sandbox {
	sb := base()
	sb.NetAllow, sb.NetDeny, sb.NetAllowBind, sb.NetDenyBind = allow, deny, allowBind, denyBind
	return sb
}

func netP(port int) string { return strconv.Itoa(port) }

// netFastOpenClient fails the test if the kernel does not let clients use
// TCP fast open (bit 1 of net.ipv4.tcp_fastopen).
func netFastOpenClient(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_fastopen")
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || v&1 == 0 {
		t.Fatalf("net.ipv4.tcp_fastopen is %q: these tests need the client bit (1) set: sysctl -w net.ipv4.tcp_fastopen=1", strings.TrimSpace(string(b)))
	}
}

// ---------------------------------------------------------------------
// Tests.

func TestNetConfigErrors(t *testing.T) {
	t.Parallel()
	dir := tempDir(t)
	ranFile := filepath.Join(dir, "ran")
	for _, tc := range []struct {
		set  func(sb *sandlock.Sandbox)
		want string
	}{
		{func(sb *sandlock.Sandbox) { sb.NetAllow = []string{"foo:99999"} },
			`sandlock: NetAllow "foo:99999": port 99999 out of range (1-65535)`},
		{func(sb *sandlock.Sandbox) { sb.NetAllow = []string{"tcp://127.0.0.1:80", "foo:0"} },
			`sandlock: NetAllow "foo:0": port 0 is not valid`},
		{func(sb *sandlock.Sandbox) { sb.NetAllow = []string{""} },
			`sandlock: NetAllow: empty rule (use * for any host)`},
		{func(sb *sandlock.Sandbox) { sb.NetAllow = []string{"http://x"} },
			`sandlock: NetAllow "http://x": unknown scheme "http" (want tcp://, udp:// or icmp://)`},
		{func(sb *sandlock.Sandbox) { sb.NetAllow = []string{"10.0.0.0/33"} },
			`sandlock: NetAllow "10.0.0.0/33": invalid CIDR "10.0.0.0/33": prefix length 33 out of range (0-32)`},
		{func(sb *sandlock.Sandbox) { sb.NetAllow = []string{"icmp://127.0.0.1:80"} },
			`sandlock: NetAllow "icmp://127.0.0.1:80": icmp rule takes no port`},
		{func(sb *sandlock.Sandbox) { sb.NetAllow = []string{"foo:80,*"} },
			`sandlock: NetAllow "foo:80,*": cannot mix * with port numbers`},
		{func(sb *sandlock.Sandbox) { sb.NetAllow = []string{"foo:90-80"} },
			`sandlock: NetAllow "foo:90-80": port range 90-80 is reversed`},
		{func(sb *sandlock.Sandbox) { sb.NetAllow = []string{"::1:99999"} },
			`sandlock: NetAllow "::1:99999": an IPv6 address with a port must be bracketed, e.g. [::1]:99999`},
		{func(sb *sandlock.Sandbox) { sb.NetDeny = []string{"10.0.0.0/8:0"} },
			`sandlock: NetDeny "10.0.0.0/8:0": port 0 is not valid`},
		{func(sb *sandlock.Sandbox) { sb.NetDeny = []string{"localhost"} },
			`sandlock: NetDeny "localhost": deny rules cannot name a host ("localhost"); use an IP address, CIDR or *`},
		{func(sb *sandlock.Sandbox) {
			sb.NetAllow, sb.NetDeny = []string{"tcp://127.0.0.1:80"}, []string{"10.0.0.0/8"}
		}, `sandlock: NetAllow: NetAllow and NetDeny are mutually exclusive`},
		{func(sb *sandlock.Sandbox) { sb.NetAllowBind, sb.NetDenyBind = []string{"8080"}, []string{"9090"} },
			`sandlock: NetAllowBind: NetAllowBind and NetDenyBind are mutually exclusive`},
		{func(sb *sandlock.Sandbox) { sb.NetAllowBind = []string{"0"} },
			`sandlock: NetAllowBind "0": port 0 is not valid`},
		{func(sb *sandlock.Sandbox) { sb.NetAllowBind = []string{"65536"} },
			`sandlock: NetAllowBind "65536": port 65536 out of range (1-65535)`},
		{func(sb *sandlock.Sandbox) { sb.NetAllowBind = []string{"9005-9000"} },
			`sandlock: NetAllowBind "9005-9000": port range 9005-9000 is reversed`},
		{func(sb *sandlock.Sandbox) { sb.NetAllowBind = []string{"x"} },
			`sandlock: NetAllowBind "x": invalid port "x"`},
		{func(sb *sandlock.Sandbox) { sb.NetDenyBind = []string{"*"} },
			`sandlock: NetDenyBind "*": * would deny every port (omit the network bind flags instead)`},
		{func(sb *sandlock.Sandbox) { sb.NetDenyBind = []string{"80,x"} },
			`sandlock: NetDenyBind "80,x": invalid port "x"`},
		{func(sb *sandlock.Sandbox) { sb.PortRemap = true },
			`sandlock: PortRemap is not supported yet`},
	} {
		sb := base()
		sb.FSWritable = []string{dir}
		tc.set(sb)
		res, err := sb.Run(ctxT(t), "/bin/sh", "-c", "touch "+ranFile)
		if err == nil {
			t.Errorf("want error %q, got a run: %+v", tc.want, res)
		} else if err.Error() != tc.want {
			t.Errorf("got error %q, want %q", err, tc.want)
		}
		if _, err := os.Stat(ranFile); err == nil {
			t.Fatalf("the command ran despite the error %q", tc.want)
		}
	}
}

func TestNetClosedByDefault(t *testing.T) {
	t.Parallel()
	netFastOpenClient(t)
	g := newNetGroup(t, "127.0.0.1", "::1")
	free := netFreePorts(t, 1)
	sock := func(f int, typ, proto int, want string) netCase {
		return netExpr(fmt.Sprintf("socket(%d, %d, %d)", f, typ, proto), fmt.Sprintf("mk(%d, %d, %d, p)", f, typ, proto), want)
	}
	bindC := func(f int, typ int, host string, port int, want string) netCase {
		return netExpr(fmt.Sprintf("bind(%d, type %d, %s, %d)", f, typ, host, port), fmt.Sprintf("bind(%d, %d, %q, %d, p)", f, typ, host, port), want)
	}
	cases := []netCase{
		netAt("tcp", 4, g.tcp["127.0.0.1"], "ERR EACCES"),
		netAt("tcp_nb", 4, g.tcp["127.0.0.1"], "ERR EACCES"),
		netAt("tcp", 6, g.tcp["::1"], "ERR EACCES"),
		netOn("tcp", 6, "::ffff:127.0.0.1", g.tcp["127.0.0.1"], "ERR EACCES"),
		netAt("tfo_connect", 4, g.tcp["127.0.0.1"], "ERR EACCES"),
		netAt("tfo", 4, g.tcp["127.0.0.1"], "ERR ECONNREFUSED"),
		netAt("tfo_msg", 4, g.tcp["127.0.0.1"], "ERR ECONNREFUSED"),
		netAt("tfo", 6, g.tcp["::1"], "ERR ECONNREFUSED"),
		netAt("udp", 4, g.udp["127.0.0.1"], "ERR EPERM"),
		netAt("udp", 6, g.udp["::1"], "ERR EPERM"),
		sock(4, unix.SOCK_DGRAM, 0, "ERR EPERM"),
		sock(4, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP, "ERR EPERM"),
		sock(6, unix.SOCK_DGRAM, unix.IPPROTO_UDP, "ERR EPERM"),
		sock(4, unix.SOCK_DGRAM, unix.IPPROTO_UDPLITE, "ERR EPERM"),
		sock(4, unix.SOCK_DGRAM, unix.IPPROTO_ICMP, "ERR EPERM"),
		sock(6, unix.SOCK_DGRAM, unix.IPPROTO_ICMPV6, "ERR EPERM"),
		sock(4, unix.SOCK_RAW, unix.IPPROTO_ICMP, "ERR EPERM"),
		sock(6, unix.SOCK_RAW, unix.IPPROTO_RAW, "ERR EPERM"),
		sock(4, unix.SOCK_STREAM, 262, "ERR EPROTONOSUPPORT"), // MPTCP
		sock(6, unix.SOCK_STREAM, 262, "ERR EPROTONOSUPPORT"),
		sock(4, unix.SOCK_STREAM, unix.IPPROTO_SCTP, "ERR EPROTONOSUPPORT"),
		sock(4, unix.SOCK_STREAM, 0, "OK"),
		bindC(4, unix.SOCK_STREAM, "127.0.0.1", 0, "ERR EACCES"),
		bindC(4, unix.SOCK_STREAM, "127.0.0.1", free, "ERR EACCES"),
		bindC(6, unix.SOCK_STREAM, "::1", 0, "ERR EACCES"),
		bindC(6, unix.SOCK_STREAM, "::1", free, "ERR EACCES"),
	}
	netRun(t, "no network rules", base(), cases)
}

func TestNetPortOnlyRules(t *testing.T) {
	t.Parallel()
	netFastOpenClient(t)
	a := newNetGroup(t, "127.0.0.1", "127.0.0.2", "::1")
	b := newNetGroup(t, "127.0.0.1", "::1")
	P := netP(a.port)
	for _, rule := range []string{":" + P, "*:" + P, "tcp://*:" + P, "tcp://:" + P} {
		withUDP := !strings.HasPrefix(rule, "tcp://")
		udpOK, udpNo := "OK", "ERR ECONNREFUSED"
		if !withUDP {
			udpOK, udpNo = "ERR EPERM", "ERR EPERM"
		}
		cases := []netCase{
			// The allowed port on every address (Landlock judges TCP).
			netAt("tcp", 4, a.tcp["127.0.0.1"], "OK"),
			netAt("tcp", 4, a.tcp["127.0.0.2"], "OK"),
			netAt("tcp", 6, a.tcp["::1"], "OK"),
			netOn("tcp", 6, "::ffff:127.0.0.2", a.tcp["127.0.0.2"], "OK"),
			netAt("tcp_nb", 4, a.tcp["127.0.0.1"], "OK"),
			netAt("tfo", 4, a.tcp["127.0.0.2"], "OK"),
			// Another port.
			netAt("tcp", 4, b.tcp["127.0.0.1"], "ERR EACCES"),
			netAt("tcp", 6, b.tcp["::1"], "ERR EACCES"),
			netAt("tcp_nb", 4, b.tcp["127.0.0.1"], "ERR EACCES"),
			netAt("tfo", 4, b.tcp["127.0.0.1"], "ERR ECONNREFUSED"),
			netAt("tfo_msg", 6, b.tcp["::1"], "ERR ECONNREFUSED"),
			// UDP: allowed to the port by a rule without scheme.
			netAt("udp", 4, a.udp["127.0.0.2"], udpOK),
			netAt("udp_msg", 6, a.udp["::1"], udpOK),
			netAt("udp", 4, b.udp["127.0.0.1"], udpNo),
			netAt("udp_conn", 6, b.udp["::1"], udpNo),
			netExpr("bind tcp 0", "bind(4, socket.SOCK_STREAM, '127.0.0.1', 0, p)", "ERR EACCES"),
		}
		netRun(t, "NetAllow "+rule, netSb([]string{rule}, nil, nil, nil), cases)
	}
}

func TestNetAllowIPRules(t *testing.T) {
	t.Parallel()
	netFastOpenClient(t)
	a := newNetGroup(t, "127.0.0.1", "127.0.0.2", "::1")
	b := newNetGroup(t, "127.0.0.1", "::1")
	P, Q := netP(a.port), netP(b.port)
	rules := []string{"127.0.0.1:" + P, "tcp://[::1]:" + Q, "udp://::1"}
	ok, refused := "OK", "ERR ECONNREFUSED"
	// 127.0.0.1:P, TCP and UDP, every syscall; the other address, same
	// port, refused on every one.
	cases := append(netEverySyscall(4, a.tcp["127.0.0.1"], a.udp["127.0.0.1"], ok),
		netEverySyscall(4, a.tcp["127.0.0.2"], a.udp["127.0.0.2"], refused)...)
	cases = append(cases,
		netAt("udp_conn_msg", 4, a.udp["127.0.0.1"], ok),
		netMmsg(4, "OK 2", 2, a.udp["127.0.0.1"], a.udp["127.0.0.1"]),
		netMmsg(4, refused, 0, a.udp["127.0.0.2"]),
		// sendmmsg stops at the first refused message, as the kernel
		// stops at the first failing one.
		netMmsg(4, "OK 1", 1, a.udp["127.0.0.1"], a.udp["127.0.0.2"], a.udp["127.0.0.1"]),
		netMmsg(4, refused, 0, a.udp["127.0.0.2"], a.udp["127.0.0.1"]),
		// A socket connected to an allowed peer, sending elsewhere.
		netCase{desc: "udp connected to 127.0.0.1:P, sendto 127.0.0.2:P",
			call: fmt.Sprintf("udp_redirect(4, '127.0.0.1', %s, '127.0.0.2', %s, p)", P, P), want: refused, dst: a.udp["127.0.0.2"]},
		netCase{desc: "udp connected to 127.0.0.1:P, sendmsg to 127.0.0.2:P",
			call: fmt.Sprintf("udp_redirect_msg(4, '127.0.0.1', %s, '127.0.0.2', %s, p)", P, P), want: refused, dst: a.udp["127.0.0.2"]},
		// Other port, same address.
		netAt("tcp", 4, b.tcp["127.0.0.1"], refused),
		netAt("udp", 4, b.udp["127.0.0.1"], refused),
		netAt("udp_conn", 4, b.udp["127.0.0.1"], refused),
		// [::1]:Q for TCP only; ::1 on every port for UDP.
		netAt("tcp", 6, b.tcp["::1"], ok),
		netAt("tfo", 6, b.tcp["::1"], ok),
		netAt("tcp", 6, a.tcp["::1"], refused),
		netAt("tfo", 6, a.tcp["::1"], refused),
		netAt("udp", 6, a.udp["::1"], ok),
		netAt("udp_msg", 6, b.udp["::1"], ok),
		netAt("udp_conn", 6, a.udp["::1"], ok),
		netMmsg(6, "OK 2", 2, a.udp["::1"], b.udp["::1"]),
		// The IPv4 rule seen through an IPv6 socket.
		netOn("tcp", 6, "::ffff:127.0.0.1", a.tcp["127.0.0.1"], ok),
		netOn("udp", 6, "::ffff:127.0.0.1", a.udp["127.0.0.1"], ok),
		netOn("tcp", 6, "::ffff:127.0.0.2", a.tcp["127.0.0.2"], refused),
		netOn("udp", 6, "::ffff:127.0.0.2", a.udp["127.0.0.2"], refused),
		// Still no raw, MPTCP or ping sockets, nor binding.
		netExpr("raw socket", "mk(4, socket.SOCK_RAW, socket.IPPROTO_UDP, p)", "ERR EPERM"),
		netExpr("mptcp socket", "mk(4, socket.SOCK_STREAM, 262, p)", "ERR EPROTONOSUPPORT"),
		netExpr("ping socket", "mk(4, socket.SOCK_DGRAM, socket.IPPROTO_ICMP, p)", "ERR EPERM"),
		netExpr("bind tcp 0", "bind(4, socket.SOCK_STREAM, '127.0.0.1', 0, p)", "ERR EACCES"),
	)
	netRun(t, fmt.Sprintf("NetAllow %q", rules), netSb(rules, nil, nil, nil), cases)
}

func TestNetAllowCIDRRules(t *testing.T) {
	t.Parallel()
	a := newNetGroup(t, "127.0.0.1", "127.0.0.2", "::1")
	b := newNetGroup(t, "127.0.0.1", "::1")
	P, Q := netP(a.port), netP(b.port)
	rules := []string{"tcp://127.0.0.0/31", "udp://127.0.0.0/31:" + P + "," + netP(b.port+1), "tcp://[::1/128]:" + Q, "udp://[::/0]:" + Q}
	ok, refused := "OK", "ERR ECONNREFUSED"
	cases := []netCase{
		netAt("tcp", 4, a.tcp["127.0.0.1"], ok),
		netAt("tcp", 4, b.tcp["127.0.0.1"], ok),
		netAt("tcp", 4, a.tcp["127.0.0.2"], refused),
		netAt("tfo", 4, a.tcp["127.0.0.2"], refused),
		netAt("udp", 4, a.udp["127.0.0.1"], ok),
		netAt("udp", 4, b.udp["127.0.0.1"], refused),
		netAt("udp", 4, a.udp["127.0.0.2"], refused),
		netAt("tcp", 6, b.tcp["::1"], ok),
		netAt("tcp", 6, a.tcp["::1"], refused),
		netAt("udp", 6, b.udp["::1"], ok),
		netAt("udp", 6, a.udp["::1"], refused),
		// ::/0 is every IPv6 address, not every address.
		netOn("udp", 6, "::ffff:127.0.0.1", b.udp["127.0.0.1"], refused),
		netOn("tcp", 6, "::ffff:127.0.0.1", b.tcp["127.0.0.1"], ok),
	}
	netRun(t, fmt.Sprintf("NetAllow %q", rules), netSb(rules, nil, nil, nil), cases)
}

func TestNetMappedIPv6(t *testing.T) {
	t.Parallel()
	a := newNetGroup(t, "127.0.0.1", "127.0.0.2")
	P := netP(a.port)
	ok, refused := "OK", "ERR ECONNREFUSED"
	// An allow rule written as a mapped address matches the IPv4 one.
	rules := []string{"[::ffff:127.0.0.2]:" + P}
	netRun(t, "NetAllow mapped", netSb(rules, nil, nil, nil), []netCase{
		netAt("tcp", 4, a.tcp["127.0.0.2"], ok),
		netAt("udp", 4, a.udp["127.0.0.2"], ok),
		netOn("tcp", 6, "::ffff:127.0.0.2", a.tcp["127.0.0.2"], ok),
		netAt("tcp", 4, a.tcp["127.0.0.1"], refused),
		netOn("udp", 6, "::ffff:127.0.0.1", a.udp["127.0.0.1"], refused),
	})
	// A deny of an IPv4 address holds through IPv6 sockets.
	netRun(t, "NetDeny 127.0.0.1", netSb(nil, []string{"127.0.0.1"}, nil, nil), []netCase{
		netOn("tcp", 6, "::ffff:127.0.0.1", a.tcp["127.0.0.1"], refused),
		netOn("tcp_nb", 6, "::ffff:127.0.0.1", a.tcp["127.0.0.1"], refused),
		netOn("tfo", 6, "::ffff:127.0.0.1", a.tcp["127.0.0.1"], refused),
		netOn("udp", 6, "::ffff:127.0.0.1", a.udp["127.0.0.1"], refused),
		netOn("udp_msg", 6, "::ffff:127.0.0.1", a.udp["127.0.0.1"], refused),
		netOn("udp_conn", 6, "::ffff:127.0.0.1", a.udp["127.0.0.1"], refused),
		netAt("tcp", 4, a.tcp["127.0.0.1"], refused),
		netOn("tcp", 6, "::ffff:127.0.0.2", a.tcp["127.0.0.2"], ok),
		netOn("udp", 6, "::ffff:127.0.0.2", a.udp["127.0.0.2"], ok),
		netAt("tcp", 4, a.tcp["127.0.0.2"], ok),
	})
	// A deny written as a mapped address holds for IPv4.
	netRun(t, "NetDeny mapped", netSb(nil, []string{"::ffff:127.0.0.2"}, nil, nil), []netCase{
		netAt("tcp", 4, a.tcp["127.0.0.2"], refused),
		netAt("udp", 4, a.udp["127.0.0.2"], refused),
		netAt("tcp", 4, a.tcp["127.0.0.1"], ok),
	})
}

func TestNetOtherProtocol(t *testing.T) {
	t.Parallel()
	netFastOpenClient(t)
	a := newNetGroup(t, "127.0.0.1")
	b := newNetGroup(t, "127.0.0.1")
	P, Q := netP(a.port), netP(b.port)
	ok, refused := "OK", "ERR ECONNREFUSED"
	tcpA, udpA, tcpB, udpB := a.tcp["127.0.0.1"], a.udp["127.0.0.1"], b.tcp["127.0.0.1"], b.udp["127.0.0.1"]
	// TCP only: no UDP socket at all.
	netRun(t, "tcp rule", netSb([]string{"tcp://127.0.0.1:" + P}, nil, nil, nil), []netCase{
		netAt("tcp", 4, tcpA, ok),
		netAt("udp", 4, udpA, "ERR EPERM"),
		netAt("udp_conn", 6, udpA, "ERR EPERM"),
		netExpr("ping socket", "mk(4, socket.SOCK_DGRAM, socket.IPPROTO_ICMP, p)", "ERR EPERM"),
	})
	// UDP only: TCP stays with Landlock, which denies it; a fast open is
	// refused by the rules.
	netRun(t, "udp rule", netSb([]string{"udp://127.0.0.1:" + P}, nil, nil, nil), []netCase{
		netAt("udp", 4, udpA, ok),
		netAt("tcp", 4, tcpA, "ERR EACCES"),
		netAt("tfo", 4, tcpA, refused),
		netAt("tfo_msg", 4, tcpA, refused),
		netAt("udp", 4, udpB, refused),
	})
	// One port per protocol: each protocol's port is a near miss for the
	// other.
	rules := []string{"tcp://127.0.0.1:" + P, "udp://127.0.0.1:" + Q}
	netRun(t, fmt.Sprintf("%q", rules), netSb(rules, nil, nil, nil), []netCase{
		netAt("tcp", 4, tcpA, ok),
		netAt("udp", 4, udpB, ok),
		netAt("udp", 4, udpA, refused),
		netAt("udp_msg", 4, udpA, refused),
		netAt("udp_conn", 4, udpA, refused),
		netAt("tcp", 4, tcpB, refused),
		netAt("tfo", 4, tcpB, refused),
		netExpr("ping socket", "mk(4, socket.SOCK_DGRAM, socket.IPPROTO_ICMP, p)", "ERR EPERM"),
	})
}

func TestNetFastOpen(t *testing.T) {
	t.Parallel()
	netFastOpenClient(t)
	a := newNetGroup(t, "127.0.0.1", "::1")
	b := newNetGroup(t, "127.0.0.1", "::1")
	ok, refused := "OK", "ERR ECONNREFUSED"
	// Port-only rules leave connects to Landlock, but Landlock does not see
	// fast-open sends: the supervisor must judge them.
	for _, rule := range []string{"tcp://*:" + netP(a.port), ":" + netP(a.port)} {
		netRun(t, rule, netSb([]string{rule}, nil, nil, nil), []netCase{
			netAt("tfo", 4, a.tcp["127.0.0.1"], ok),
			netAt("tfo_msg", 4, a.tcp["127.0.0.1"], ok),
			netAt("tfo", 6, a.tcp["::1"], ok),
			netOn("tfo", 6, "::ffff:127.0.0.1", a.tcp["127.0.0.1"], ok),
			netAt("tfo_connect", 4, a.tcp["127.0.0.1"], ok),
			netAt("tfo", 4, b.tcp["127.0.0.1"], refused),
			netAt("tfo_msg", 4, b.tcp["127.0.0.1"], refused),
			netAt("tfo", 6, b.tcp["::1"], refused),
			netOn("tfo_msg", 6, "::ffff:127.0.0.1", b.tcp["127.0.0.1"], refused),
			netAt("tfo_connect", 4, b.tcp["127.0.0.1"], "ERR EACCES"),
		})
	}
}

func TestNetWidePortRange(t *testing.T) {
	t.Parallel()
	a := newNetGroup(t, "127.0.0.1")
	b := newNetGroup(t, "127.0.0.1")
	lo, hi := a, b
	if lo.port > hi.port {
		lo, hi = hi, lo
	}
	// More ports than Landlock is given rules for: the supervisor judges.
	rule := fmt.Sprintf("tcp://*:%d-%d", lo.port-1500, hi.port-1)
	netRun(t, rule, netSb([]string{rule}, nil, nil, nil), []netCase{
		netAt("tcp", 4, lo.tcp["127.0.0.1"], "OK"),
		netAt("tcp", 4, hi.tcp["127.0.0.1"], "ERR ECONNREFUSED"),
		netAt("tfo", 4, hi.tcp["127.0.0.1"], "ERR ECONNREFUSED"),
		netAt("udp", 4, lo.udp["127.0.0.1"], "ERR EPERM"),
	})
}

func TestNetDenyList(t *testing.T) {
	t.Parallel()
	netFastOpenClient(t)
	a := newNetGroup(t, "127.0.0.1", "127.0.0.2", "::1")
	b := newNetGroup(t, "127.0.0.1", "::1")
	P, Q := netP(a.port), netP(b.port)
	ok, refused := "OK", "ERR ECONNREFUSED"
	deny := []string{"127.0.0.2", "tcp://127.0.0.1:" + Q, "udp://[::1]:" + P}
	// 127.0.0.2: every protocol, port and syscall.
	cases := netEverySyscall(4, a.tcp["127.0.0.2"], a.udp["127.0.0.2"], refused)
	netRun(t, fmt.Sprintf("NetDeny %q", deny), netSb(nil, deny, nil, nil), append(cases,
		// Allowed: everything else.
		netAt("tcp", 4, a.tcp["127.0.0.1"], ok),
		netAt("tcp_nb", 4, a.tcp["127.0.0.1"], ok),
		netAt("tfo", 4, a.tcp["127.0.0.1"], ok),
		netAt("udp", 4, a.udp["127.0.0.1"], ok),
		netAt("udp_msg", 4, a.udp["127.0.0.1"], ok),
		netAt("tcp", 6, a.tcp["::1"], ok),
		netAt("udp", 6, b.udp["::1"], ok),
		netAt("tcp", 6, b.tcp["::1"], ok),
		netMmsg(4, "OK 1", 1, a.udp["127.0.0.1"], a.udp["127.0.0.2"]),
		netMmsg(4, refused, 0, a.udp["127.0.0.2"], a.udp["127.0.0.1"]),
		netCase{desc: "udp connected to 127.0.0.1:P, sendto 127.0.0.2:P",
			call: fmt.Sprintf("udp_redirect(4, '127.0.0.1', %s, '127.0.0.2', %s, p)", P, P), want: refused, dst: a.udp["127.0.0.2"]},
		netOn("tcp", 6, "::ffff:127.0.0.2", a.tcp["127.0.0.2"], refused),
		netOn("udp", 6, "::ffff:127.0.0.2", a.udp["127.0.0.2"], refused),
		// tcp://127.0.0.1:Q: not UDP, not another port.
		netAt("tcp", 4, b.tcp["127.0.0.1"], refused),
		netAt("tfo", 4, b.tcp["127.0.0.1"], refused),
		netOn("tcp", 6, "::ffff:127.0.0.1", b.tcp["127.0.0.1"], refused),
		netAt("udp", 4, b.udp["127.0.0.1"], ok),
		// udp://[::1]:P: not TCP.
		netAt("udp", 6, a.udp["::1"], refused),
		netAt("udp_conn", 6, a.udp["::1"], refused),
		// Sockets: UDP may be created; raw and MPTCP still not; binding is
		// still Landlock's (no bind rules: denied).
		netExpr("udp socket", "mk(4, socket.SOCK_DGRAM, 0, p)", ok),
		netExpr("udp6 socket", "mk(6, socket.SOCK_DGRAM, 0, p)", ok),
		netExpr("raw socket", "mk(4, socket.SOCK_RAW, socket.IPPROTO_ICMP, p)", "ERR EPERM"),
		netExpr("mptcp socket", "mk(4, socket.SOCK_STREAM, 262, p)", "ERR EPROTONOSUPPORT"),
		netExpr("bind tcp 0", "bind(4, socket.SOCK_STREAM, '127.0.0.1', 0, p)", "ERR EACCES"),
	))
	// A CIDR.
	cidr := []string{"127.0.0.0/31"}
	netRun(t, fmt.Sprintf("NetDeny %q", cidr), netSb(nil, cidr, nil, nil), []netCase{
		netAt("tcp", 4, a.tcp["127.0.0.1"], refused),
		netAt("udp", 4, a.udp["127.0.0.1"], refused),
		netAt("tcp", 4, a.tcp["127.0.0.2"], ok),
		netAt("udp", 4, a.udp["127.0.0.2"], ok),
		netAt("tcp", 6, a.tcp["::1"], ok),
	})
}

func TestNetHostname(t *testing.T) {
	t.Parallel()
	a := newNetGroup(t, "127.0.0.1", "127.0.0.2", "::1")
	b := newNetGroup(t, "127.0.0.1")
	P := netP(a.port)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	resolved := map[netip.Addr]bool{}
	for _, a := range addrs {
		resolved[a.Unmap()] = true
	}
	if !resolved[netip.MustParseAddr("127.0.0.1")] {
		t.Fatalf("localhost resolves to %v here, without 127.0.0.1", addrs)
	}
	// The synthetic hosts file: loopback, then the resolved names.
	wantHosts := "127.0.0.1 localhost\n::1 localhost\n"
	var extra []string
	for a := range resolved {
		if l := a.String() + " localhost"; l != "127.0.0.1 localhost" && l != "::1 localhost" {
			extra = append(extra, l)
		}
	}
	slices.Sort(extra)
	for _, l := range extra {
		wantHosts += l + "\n"
	}
	v6 := "ERR ECONNREFUSED"
	if resolved[netip.MustParseAddr("::1")] {
		v6 = "OK"
	}
	ok, refused := "OK", "ERR ECONNREFUSED"
	netRun(t, "NetAllow localhost:P", netSb([]string{"localhost:" + P}, nil, nil, nil), []netCase{
		netAt("tcp", 4, a.tcp["127.0.0.1"], ok),
		netOn("tcp", 4, "localhost", a.tcp["127.0.0.1"], ok),
		netAt("udp", 4, a.udp["127.0.0.1"], ok),
		netOn("udp", 4, "localhost", a.udp["127.0.0.1"], ok),
		netAt("tcp", 6, a.tcp["::1"], v6),
		netAt("udp", 6, a.udp["::1"], v6),
		netAt("tcp", 4, a.tcp["127.0.0.2"], refused),
		netAt("udp", 4, a.udp["127.0.0.2"], refused),
		netAt("tcp", 4, b.tcp["127.0.0.1"], refused),
		netAt("udp", 4, b.udp["127.0.0.1"], refused),
		netExpr("/etc/hosts", "hosts(p)", "OK "+hex.EncodeToString([]byte(wantHosts))),
	})
	// Without a host rule, /etc/hosts is the real one.
	real, err := os.ReadFile("/etc/hosts")
	if err != nil {
		t.Fatal(err)
	}
	realHosts := netExpr("/etc/hosts", "hosts(p)", "OK "+hex.EncodeToString(real))
	netRun(t, "IP rule", netSb([]string{"tcp://127.0.0.1:" + P}, nil, nil, nil), []netCase{
		realHosts, netAt("tcp", 4, a.tcp["127.0.0.1"], ok)})
	netRun(t, "deny rule", netSb(nil, []string{"127.0.0.2"}, nil, nil), []netCase{realHosts})
	netRun(t, "no rule", base(), []netCase{realHosts})
}

func TestNetBind(t *testing.T) {
	t.Parallel()
	b := netFreePorts(t, 4)
	B := func(i int) string { return netP(b + i) }
	type bc struct {
		f     int
		udp   bool
		host  string
		port  int
		wantE string // "" = OK
	}
	cases := func(list ...bc) []netCase {
		var out []netCase
		for _, c := range list {
			typ, name := "socket.SOCK_STREAM", "tcp"
			if c.udp {
				typ, name = "socket.SOCK_DGRAM", "udp"
			}
			want := "OK"
			if c.wantE != "" {
				want = "ERR " + c.wantE
			}
			out = append(out, netExpr(fmt.Sprintf("bind %s %s:%d", name, c.host, c.port),
				fmt.Sprintf("bind(%d, %s, %q, %d, p)", c.f, typ, c.host, c.port), want))
		}
		return out
	}
	// UDP sockets exist only with a UDP rule; the rule is about sending.
	udpRule := []string{"udp://127.0.0.1:9"}
	for _, tc := range []struct {
		allowBind, denyBind []string
		cases               []netCase
	}{
		{nil, nil, cases(
			bc{4, false, "127.0.0.1", b, "EACCES"},
			bc{4, false, "127.0.0.1", 0, "EACCES"},
			bc{6, false, "::1", b, "EACCES"},
			bc{6, false, "::1", 0, "EACCES"},
			bc{4, true, "127.0.0.1", b, ""},
			bc{4, true, "127.0.0.1", 0, ""},
		)},
		{[]string{B(0)}, nil, cases(
			bc{4, false, "127.0.0.1", b, ""},
			bc{6, false, "::1", b, ""},
			bc{6, false, "::ffff:127.0.0.1", b, ""},
			bc{4, false, "127.0.0.1", b + 1, "EACCES"},
			bc{6, false, "::1", b + 1, "EACCES"},
			bc{4, false, "127.0.0.1", 0, "EACCES"},
			bc{4, true, "127.0.0.1", b + 1, ""},
		)},
		{[]string{B(0) + "-" + B(1)}, nil, cases(
			bc{4, false, "127.0.0.1", b, ""},
			bc{4, false, "127.0.0.1", b + 1, ""},
			bc{4, false, "127.0.0.1", b + 2, "EACCES"},
			bc{4, false, "127.0.0.1", b - 1, "EACCES"},
		)},
		{[]string{B(0) + "," + B(2), B(3)}, nil, cases(
			bc{4, false, "127.0.0.1", b, ""},
			bc{4, false, "127.0.0.1", b + 1, "EACCES"},
			bc{4, false, "127.0.0.1", b + 2, ""},
			bc{6, false, "::1", b + 3, ""},
		)},
		{[]string{"*"}, nil, cases(
			bc{4, false, "127.0.0.1", b, ""},
			bc{4, false, "127.0.0.1", b + 3, ""},
			bc{4, false, "127.0.0.1", 0, ""},
			bc{6, false, "::1", 0, ""},
		)},
		{nil, []string{B(0)}, cases(
			bc{4, false, "127.0.0.1", b, "EACCES"},
			bc{6, false, "::1", b, "EACCES"},
			bc{6, false, "::ffff:127.0.0.1", b, "EACCES"},
			bc{4, false, "127.0.0.1", b + 1, ""},
			bc{6, false, "::1", b + 1, ""},
			bc{4, false, "127.0.0.1", 0, ""},
			bc{6, false, "::1", 0, ""},
			bc{4, true, "127.0.0.1", b, ""},
			bc{6, true, "::1", b, ""},
		)},
		{nil, []string{B(0) + "-" + B(1), B(3)}, cases(
			bc{4, false, "127.0.0.1", b, "EACCES"},
			bc{4, false, "127.0.0.1", b + 1, "EACCES"},
			bc{4, false, "127.0.0.1", b + 2, ""},
			bc{4, false, "127.0.0.1", b + 3, "EACCES"},
		)},
	} {
		what := fmt.Sprintf("NetAllowBind %q NetDenyBind %q", tc.allowBind, tc.denyBind)
		netRun(t, what, netSb(udpRule, nil, tc.allowBind, tc.denyBind), tc.cases)
	}
}

func TestNetUnixSockets(t *testing.T) {
	t.Parallel()
	root := tempDir(t)
	w, r, o := filepath.Join(root, "w"), filepath.Join(root, "r"), filepath.Join(root, "o")
	for _, d := range []string{w, r, o} {
		must(t, os.Mkdir(d, 0o777))
	}
	listen := func(proto, path string) *netSrv {
		s, err := netListen(proto, path, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.close)
		return s
	}
	ws, rs, os_ := listen("unix", filepath.Join(w, "s.sock")), listen("unix", filepath.Join(r, "s.sock")), listen("unix", filepath.Join(o, "s.sock"))
	wd, rd := listen("unixgram", filepath.Join(w, "d.sock")), listen("unixgram", filepath.Join(r, "d.sock"))
	must(t, os.Symlink(filepath.Join(r, "s.sock"), filepath.Join(w, "out.sock")))
	must(t, os.Symlink(filepath.Join(w, "s.sock"), filepath.Join(r, "in.sock")))
	must(t, os.Symlink(r, filepath.Join(w, "rdir")))
	must(t, os.Symlink(filepath.Join(r, "d.sock"), filepath.Join(w, "outd.sock")))
	must(t, os.WriteFile(filepath.Join(w, "file"), []byte("x"), 0o666))
	must(t, os.WriteFile(filepath.Join(w, "secret"), []byte("secret"), 0o666))

	sb := base()
	sb.FSWritable = []string{w}
	sb.FSReadable = append(sb.FSReadable, r)
	on := func(fn, path string, srv *netSrv, want string, payload string) netCase {
		c := netCase{desc: fmt.Sprintf("%s(%s)", fn, path), call: fmt.Sprintf("%s(%q, p)", fn, path), want: want, dst: srv}
		if want == "OK" && srv != nil {
			c.hits = []netHit{{srv: srv, payload: payload}}
		}
		return c
	}
	cases := []netCase{
		// Stream sockets.
		on("ux", filepath.Join(w, "s.sock"), ws, "OK", ""),
		on("ux", filepath.Join(r, "s.sock"), rs, "ERR EACCES", ""),
		on("ux", filepath.Join(o, "s.sock"), os_, "ERR EACCES", ""),
		on("ux", filepath.Join(w, "out.sock"), rs, "ERR EACCES", ""),
		on("ux", filepath.Join(w, "rdir", "s.sock"), rs, "ERR EACCES", ""),
		on("ux", filepath.Join(r, "in.sock"), ws, "OK", ""),
		on("ux", filepath.Join(w, "missing.sock"), nil, "ERR ENOENT", ""),
		on("ux", filepath.Join(w, "file"), nil, "ERR ECONNREFUSED", ""),
		// Datagram sockets.
		on("uxd", filepath.Join(w, "d.sock"), wd, "OK", ""),
		on("uxd_msg", filepath.Join(w, "d.sock"), wd, "OK", ""),
		on("uxd_conn", filepath.Join(w, "d.sock"), wd, "OK", ""),
		on("uxd", filepath.Join(r, "d.sock"), rd, "ERR EACCES", ""),
		on("uxd_msg", filepath.Join(r, "d.sock"), rd, "ERR EACCES", ""),
		on("uxd_conn", filepath.Join(r, "d.sock"), rd, "ERR EACCES", ""),
		on("uxd", filepath.Join(w, "outd.sock"), rd, "ERR EACCES", ""),
		on("uxd_msg", filepath.Join(w, "outd.sock"), rd, "ERR EACCES", ""),
		// An fd passed to a socket under the writable grant arrives.
		{desc: "SCM_RIGHTS to w/d.sock", call: fmt.Sprintf("uxd_rights(%q, %q, p)", filepath.Join(w, "d.sock"), filepath.Join(w, "secret")),
			want: "OK", dst: wd, hits: []netHit{{srv: wd, payload: "|secret"}}},
		{desc: "SCM_RIGHTS to r/d.sock", call: fmt.Sprintf("uxd_rights(%q, %q, p)", filepath.Join(r, "d.sock"), filepath.Join(w, "secret")),
			want: "ERR EACCES", dst: rd},
		// Abstract and unnamed sockets are not this rule's business.
		netExpr("abstract sockets inside", "ux_abstract(p)", "OK"),
		netExpr("socketpair", "ux_pair(p)", "OK"),
	}
	netRun(t, "unix sockets", sb, cases)
	// Abstract sockets outside the sandbox are Landlock's scope's business,
	// not the named-socket rule's: refused with the scope (EPERM), reached
	// without it though nothing is writable.
	abs := listen("unix", fmt.Sprintf("@sandlock-net-test-%d-%d", os.Getpid(), rand.Int64()))
	absCase := func(want string) netCase {
		c := on("ux", "\x00"+abs.host[1:], abs, want, "")
		c.call = fmt.Sprintf("ux('\\0%s', p)", abs.host[1:])
		return c
	}
	netRun(t, "abstract socket outside, scoped", base(), []netCase{absCase("ERR EPERM")})
	unscoped := base()
	unscoped.Disable = []sandlock.Protection{sandlock.ProtectionAbstractUnixSocketScope}
	netRun(t, "abstract socket outside, unscoped", unscoped, []netCase{absCase("OK")})
	// Without any writable grant, no named socket can be reached.
	netRun(t, "unix sockets, nothing writable", func() *sandlock.Sandbox {
		sb := base()
		sb.FSReadable = append(sb.FSReadable, w, r)
		return sb
	}(), []netCase{
		on("ux", filepath.Join(w, "s.sock"), ws, "ERR EACCES", ""),
		on("uxd", filepath.Join(w, "d.sock"), wd, "ERR EACCES", ""),
		netExpr("socketpair", "ux_pair(p)", "OK"),
	})
}

// TestNetUnixSocketRelativePath: a relative socket path is resolved from
// the program's working directory, then judged like an absolute one.
func TestNetUnixSocketRelativePath(t *testing.T) {
	t.Parallel()
	root := tempDir(t)
	w, r := filepath.Join(root, "w"), filepath.Join(root, "r")
	for _, d := range []string{w, r} {
		must(t, os.Mkdir(d, 0o777))
	}
	listen := func(proto, path string) *netSrv {
		s, err := netListen(proto, path, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.close)
		return s
	}
	ws, rs := listen("unix", filepath.Join(w, "s.sock")), listen("unix", filepath.Join(r, "s.sock"))
	wd := listen("unixgram", filepath.Join(w, "d.sock"))
	must(t, os.Symlink(filepath.Join(r, "s.sock"), filepath.Join(w, "out.sock")))
	sb := base()
	sb.FSWritable = []string{w}
	sb.FSReadable = append(sb.FSReadable, r)
	sb.Cwd = w
	netRun(t, "relative unix socket paths", sb, []netCase{
		{desc: "s.sock from w", call: "ux('s.sock', p)", want: "OK", dst: ws, hits: []netHit{{srv: ws}}},
		{desc: "./s.sock from w", call: "ux('./s.sock', p)", want: "OK", dst: ws, hits: []netHit{{srv: ws}}},
		{desc: "d.sock (datagram) from w", call: "uxd('d.sock', p)", want: "OK", dst: wd, hits: []netHit{{srv: wd}}},
		{desc: "../w/s.sock from r", call: fmt.Sprintf("ux_rel(%q, '../w/s.sock', p)", r), want: "OK", dst: ws, hits: []netHit{{srv: ws}}},
		{desc: "out.sock (to r) from w", call: "ux('out.sock', p)", want: "ERR EACCES", dst: rs},
		{desc: "s.sock from r", call: fmt.Sprintf("ux_rel(%q, 's.sock', p)", r), want: "ERR EACCES", dst: rs},
		{desc: "missing.sock from w", call: "ux('missing.sock', p)", want: "ERR ENOENT"},
	})
}

// netFullListener listens on 127.0.0.1 with a backlog of 0 and fills the
// queue with one connection, so that further SYNs are dropped: a connect
// to it blocks until it gives up.
func netFullListener(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := sa.(*unix.SockaddrInet4).Port
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+netP(port), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// Wait until that connection is in the accept queue (a listener's
	// tcpi_unacked is its queue length): the queue is then full.
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			t.Fatal(err)
		}
		if info.Unacked >= 1 {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the connection never reached the accept queue")
		}
	}
	// A second connect from here must now hang: check with a non-blocking
	// one that is still in progress after a poll.
	probe, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(probe)
	if err := unix.Connect(probe, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}); err != unix.EINPROGRESS {
		t.Fatalf("connect to the full listener: %v, want EINPROGRESS", err)
	}
	pfd := []unix.PollFd{{Fd: int32(probe), Events: unix.POLLOUT}}
	if n, _ := unix.Poll(pfd, 200); n != 0 {
		t.Fatalf("the listener's queue is not full: a connect completed (revents %#x)", pfd[0].Revents)
	}
	return port
}

func TestNetBlockingConnectOffDispatch(t *testing.T) {
	t.Parallel()
	full := netFullListener(t)
	a := newNetGroup(t, "127.0.0.1")
	sb := netSb([]string{"tcp://127.0.0.1:" + netP(full), "127.0.0.1:" + netP(a.port)}, nil, nil, nil)
	sb.FSReadable = append(sb.FSReadable, "/proc")
	// A thread blocks in a connect made on its behalf; meanwhile the main
	// thread's network syscalls, which also go through the supervisor,
	// are answered.
	cases := []netCase{
		netAt("tcp", 4, a.tcp["127.0.0.1"], "OK"),
		netAt("udp", 4, a.udp["127.0.0.1"], "OK"),
		netAt("udp_msg", 4, a.udp["127.0.0.1"], "OK"),
		netAt("tcp", 4, a.tcp["127.0.0.1"], "OK"),
	}
	code := netPrelude + fmt.Sprintf(`
import threading, time
tid = []
def stuck():
    tid.append(threading.get_native_id())
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", %d)); print("stuck connect returned", flush=True)
    except OSError as e:
        print("stuck connect failed", e, flush=True)
threading.Thread(target=stuck, daemon=True).start()
# Wait until the thread is blocked in connect.
while True:
    if tid:
        try:
            if open("/proc/self/task/%%d/syscall" %% tid[0]).read().split()[0] == "%d":
                break
        except OSError:
            pass
    time.sleep(0.01)
`, full, mustNr(t, "connect"))
	for i, c := range cases {
		code += fmt.Sprintf("case(%q, lambda p: %s)\n", netLabel(i), c.call)
	}
	code += "os._exit(0)\n"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := sb.Run(ctx, python, "-c", code)
	if err != nil {
		t.Fatal(err)
	}
	if res.Reason != sandlock.ReasonExited || res.ExitCode != 0 {
		t.Fatalf("want exit 0 (the blocked connect must neither stall the other syscalls nor the end), got %v exit %d\nstdout: %s\nstderr: %s",
			res.Reason, res.ExitCode, res.Stdout, res.Stderr)
	}
	netCheck(t, "while a connect blocks", string(res.Stdout), cases)
}

func TestNetBlockingConnectTimeout(t *testing.T) {
	t.Parallel()
	full := netFullListener(t)
	sb := netSb([]string{"tcp://127.0.0.1:" + netP(full)}, nil, nil, nil)
	connectNr := strconv.Itoa(mustNr(t, "connect"))
	// The deadline must find the program blocked in the connect: if it
	// came before (a very slow start), try again with a later one.
	for _, timeout := range []time.Duration{3 * time.Second, 15 * time.Second} {
		m := fmt.Sprintf("sandlock-net-blocked-%d-%d", os.Getpid(), time.Now().UnixNano())
		code := fmt.Sprintf(`
# %s
import socket
print("connecting", flush=True)
s = socket.socket()
s.connect(("127.0.0.1", %d))
print("connected", flush=True)
`, m, full)
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		type result struct {
			res *sandlock.Result
			err error
		}
		done := make(chan result, 1)
		go func() {
			res, err := sb.Run(ctx, python, "-c", code)
			done <- result{res, err}
		}()
		blocked := false
		var got result
		guard := time.After(timeout + 20*time.Second)
	watch:
		for {
			select {
			case got = <-done:
				break watch
			case <-guard:
				t.Fatalf("Run did not return within 20 s of its %v deadline", timeout)
			case <-time.After(10 * time.Millisecond):
			}
			if blocked {
				continue
			}
			for _, p := range alive(m) {
				pid, _, _ := strings.Cut(p, " ")
				if b, err := os.ReadFile("/proc/" + pid + "/syscall"); err == nil && strings.HasPrefix(string(b), connectNr+" ") {
					blocked = true
				}
			}
		}
		cancel()
		if got.err != nil {
			t.Fatal(got.err)
		}
		if !blocked {
			t.Logf("with a %v deadline, the program was never seen blocked in connect (stdout %q)", timeout, got.res.Stdout)
			continue
		}
		if got.res.Reason != sandlock.ReasonTimeout || string(got.res.Stdout) != "connecting\n" {
			t.Fatalf("want a timeout while connecting, got %v stdout %q stderr %q", got.res.Reason, got.res.Stdout, got.res.Stderr)
		}
		if left := alive(m); len(left) != 0 {
			t.Fatalf("processes left after Run returned: %v", left)
		}
		return
	}
	t.Fatal("the program was never seen blocked in connect before the deadline")
}

func TestNetNoSupervisor(t *testing.T) {
	t.Parallel()
	netFastOpenClient(t)
	a := newNetGroup(t, "127.0.0.1", "::1")
	b := newNetGroup(t, "127.0.0.1")
	P := netP(a.port)
	free := netFreePorts(t, 2)
	noSup := func(allow, allowBind []string) *sandlock.Sandbox {
		sb := netSb(allow, nil, allowBind, nil)
		sb.NoSupervisor = true
		return sb
	}
	// Port-only TCP rules are Landlock's alone.
	for _, rule := range []string{"tcp://*:" + P, "tcp://:" + P} {
		netRun(t, "NoSupervisor "+rule, noSup([]string{rule}, []string{netP(free)}), []netCase{
			netAt("tcp", 4, a.tcp["127.0.0.1"], "OK"),
			netAt("tcp", 6, a.tcp["::1"], "OK"),
			netAt("tcp", 4, b.tcp["127.0.0.1"], "ERR EACCES"),
			netAt("tfo_connect", 4, b.tcp["127.0.0.1"], "ERR EACCES"),
			netAt("udp", 4, a.udp["127.0.0.1"], "ERR EPERM"),
			netExpr("bind allowed port", fmt.Sprintf("bind(4, socket.SOCK_STREAM, '127.0.0.1', %d, p)", free), "OK"),
			netExpr("bind other port", fmt.Sprintf("bind(4, socket.SOCK_STREAM, '127.0.0.1', %d, p)", free+1), "ERR EACCES"),
		})
	}
	// A fast-open send connects without Landlock's connect check, and
	// without the supervisor nothing can judge its address: the filter
	// fails every fast-open send as the kernel does with fast open off
	// (EOPNOTSUPP, which Python names ENOTSUP).
	netRun(t, "NoSupervisor fast open, tcp://*:"+P, noSup([]string{"tcp://*:" + P}, nil), []netCase{
		netAt("tfo", 4, a.tcp["127.0.0.1"], "ERR ENOTSUP"),
		netAt("tfo", 4, b.tcp["127.0.0.1"], "ERR ENOTSUP"),
		netAt("tfo_msg", 4, b.tcp["127.0.0.1"], "ERR ENOTSUP"),
		netAt("tcp", 4, a.tcp["127.0.0.1"], "OK"),
	})
	netRun(t, "NoSupervisor fast open, no rules", noSup(nil, nil), []netCase{
		netAt("tcp", 4, a.tcp["127.0.0.1"], "ERR EACCES"),
		netAt("tfo", 4, a.tcp["127.0.0.1"], "ERR ENOTSUP"),
		netAt("tfo_msg", 6, a.tcp["::1"], "ERR ENOTSUP"),
	})
	// Rules that need the supervisor are errors. A rule without a scheme
	// covers UDP too, which Landlock cannot judge.
	const needs = ": these rules need the supervisor, which NoSupervisor turns off (only port-only TCP rules are enforced by Landlock alone)"
	for _, tc := range []struct {
		allow, deny, denyBind []string
		field                 string
	}{
		{allow: []string{":" + P}, field: "NetAllow"},
		{allow: []string{"*:" + P}, field: "NetAllow"},
		{allow: []string{"tcp://127.0.0.1:" + P}, field: "NetAllow"},
		{allow: []string{"tcp://127.0.0.0/8:" + P}, field: "NetAllow"},
		{allow: []string{"tcp://localhost:" + P}, field: "NetAllow"},
		{allow: []string{"tcp://*"}, field: "NetAllow"},
		{allow: []string{"udp://*:53"}, field: "NetAllow"},
		{allow: []string{"icmp://*"}, field: "NetAllow"},
		{allow: []string{"tcp://*:" + P, "udp://127.0.0.1:53"}, field: "NetAllow"},
		{deny: []string{"10.0.0.0/8"}, field: "NetDeny"},
		{denyBind: []string{"8080"}, field: "NetDenyBind"},
	} {
		sb := netSb(tc.allow, tc.deny, nil, tc.denyBind)
		sb.NoSupervisor = true
		_, err := sb.Run(ctxT(t), "true")
		if want := "sandlock: " + tc.field + needs; err == nil || err.Error() != want {
			t.Errorf("NoSupervisor with allow %q deny %q deny-bind %q: got %v, want %q", tc.allow, tc.deny, tc.denyBind, err, want)
		}
	}
}
