package sandlock_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandlock-go/sandlock"
)

// Escape tests of the network gate (issue 12: items 1, 2 and 7, and item
// 5's bound on what the supervisor copies). A C program races a socket
// syscall's memory arguments (address family, port, path) and the socket
// behind its fd number against flipper threads, thousands of times; servers
// the test starts count what reaches them. Whatever the policy forbids must
// count zero, and what it allows must be reached at least once.

// escRacerSrc is the racing program (see its header).
const escRacerSrc = `// racer: races the memory arguments of a socket syscall (and, with -swap,
// the socket its fd number names) against flipper threads, to check that
// the supervisor acts on what it judged and never on what the program
// changed afterwards.
//
// usage: racer [-swap KIND] [-peer ADDR] [-own NAME] OP TRIES KIND ADDR...
//   OP     connect | sendto | sendmsg | sendmmsg | bind
//   KIND   tcp4 | tcp6 | udp4 | udp6 | unix | unixd   (the socket used)
//   ADDR   in:IPv4:PORT | in6:IPv6:PORT | unspec:IPv4:PORT | unix:PATH |
//          abs:NAME (padded with NULs to the full sun_path) | null (sendmsg:
//          no msg_name)
// Each try makes a fresh socket (with -peer, connected to ADDR first) and
// makes one syscall with an address buffer that a flipper thread rewrites
// through the ADDRs in a loop; with -swap, a second thread keeps dup2-ing
// a socket of the other KIND and the first one over the fd number used.
// After a connect, one byte is sent on every socket of the try (a send
// without an address: to the peer connected). With -own, the program
// serves an abstract stream socket NAME itself and counts what it accepts.
// Prints "ok N" (syscalls that succeeded), "port P N" for each port bound
// (bind), and "own N" with -own.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define SALEN ((socklen_t)sizeof(struct sockaddr_un)) // every address's length
#define TARGET 200                                   // the fd number with -swap

struct entry { int null; unsigned char b[128]; };

static struct entry entries[16];
static int nentries;
static unsigned char addrbuf[128] __attribute__((aligned(16)));
static struct iovec iov = {"x", 1};
static struct msghdr msg;
static struct mmsghdr mmsg[2];
static atomic_int stop, swapA = -1, swapB = -1, owned;

static void die(const char *what) { perror(what); exit(2); }

// is reports whether the kind of spec (its first kl bytes) is word.
static int is(const char *spec, size_t kl, const char *word) { return kl == strlen(word) && !strncmp(spec, word, kl); }

static void parse(const char *spec, struct entry *e) {
	memset(e, 0, sizeof *e);
	if (!strcmp(spec, "null")) { e->null = 1; return; }
	const char *colon = strchr(spec, ':');
	if (!colon) die(spec);
	size_t kl = colon - spec;
	const char *rest = colon + 1;
	if (is(spec, kl, "unix") || is(spec, kl, "abs")) {
		struct sockaddr_un *u = (void *)e->b;
		u->sun_family = AF_UNIX;
		if (spec[0] == 'a')
			strncpy(u->sun_path + 1, rest, sizeof u->sun_path - 1);
		else
			strncpy(u->sun_path, rest, sizeof u->sun_path - 1);
		return;
	}
	const char *pc = strrchr(rest, ':');
	char host[64];
	snprintf(host, sizeof host, "%.*s", (int)(pc - rest), rest);
	int port = atoi(pc + 1);
	if (is(spec, kl, "in6")) {
		struct sockaddr_in6 *a = (void *)e->b;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) die(host);
		return;
	}
	struct sockaddr_in *a = (void *)e->b;
	if (!is(spec, kl, "in") && !is(spec, kl, "unspec")) die(spec);
	a->sin_family = is(spec, kl, "unspec") ? AF_UNSPEC : AF_INET;
	a->sin_port = htons(port);
	if (inet_pton(AF_INET, host, &a->sin_addr) != 1) die(host);
}

static int mksock(const char *kind) {
	int fd = -1;
	if (!strcmp(kind, "tcp4")) fd = socket(AF_INET, SOCK_STREAM, 0);
	else if (!strcmp(kind, "tcp6")) fd = socket(AF_INET6, SOCK_STREAM, 0);
	else if (!strcmp(kind, "udp4")) fd = socket(AF_INET, SOCK_DGRAM, 0);
	else if (!strcmp(kind, "udp6")) fd = socket(AF_INET6, SOCK_DGRAM, 0);
	else if (!strcmp(kind, "unix")) fd = socket(AF_UNIX, SOCK_STREAM, 0);
	else if (!strcmp(kind, "unixd")) fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (fd < 0) die(kind);
	return fd;
}

static void *flipper(void *arg) {
	(void)arg;
	for (int i = 0; !atomic_load_explicit(&stop, memory_order_relaxed); i = (i + 1) % nentries) {
		memcpy(addrbuf, entries[i].b, sizeof addrbuf);
		void *name = entries[i].null ? NULL : addrbuf;
		msg.msg_name = name;
		mmsg[0].msg_hdr.msg_name = name;
		mmsg[1].msg_hdr.msg_name = name;
	}
	return NULL;
}

static void *swapper(void *arg) {
	(void)arg;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		int a = atomic_load(&swapA), b = atomic_load(&swapB);
		if (a >= 0) dup2(a, TARGET);
		if (b >= 0) dup2(b, TARGET);
	}
	return NULL;
}

static void *server(void *arg) {
	int ls = (int)(long)arg;
	for (;;) {
		int c = accept(ls, NULL, NULL);
		if (c < 0) return NULL;
		atomic_fetch_add(&owned, 1);
		close(c);
	}
}

int main(int argc, char **argv) {
	const char *swap = NULL, *peer = NULL, *own = NULL;
	int i = 1;
	for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
		if (!strcmp(argv[i], "-swap")) swap = argv[i + 1];
		else if (!strcmp(argv[i], "-peer")) peer = argv[i + 1];
		else if (!strcmp(argv[i], "-own")) own = argv[i + 1];
		else die(argv[i]);
	}
	if (argc - i < 4) { fprintf(stderr, "usage\n"); return 2; }
	const char *op = argv[i], *kind = argv[i + 2];
	int tries = atoi(argv[i + 1]);
	for (int j = i + 3; j < argc && nentries < 16; j++) parse(argv[j], &entries[nentries++]);
	struct entry peerAddr;
	if (peer) parse(peer, &peerAddr);
	if (own) {
		struct entry e;
		char spec[128];
		snprintf(spec, sizeof spec, "abs:%s", own);
		parse(spec, &e);
		int ls = mksock("unix");
		if (bind(ls, (void *)e.b, SALEN) || listen(ls, 4096)) die("own server");
		pthread_t t;
		pthread_create(&t, NULL, server, (void *)(long)ls);
	}
	memcpy(addrbuf, entries[0].b, sizeof addrbuf);
	msg.msg_name = entries[0].null ? NULL : addrbuf;
	msg.msg_namelen = SALEN;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	mmsg[0].msg_hdr = msg;
	mmsg[1].msg_hdr = msg;

	pthread_t ft, st;
	pthread_create(&ft, NULL, flipper, NULL);
	if (swap) pthread_create(&st, NULL, swapper, NULL);
	int ok = 0;
	int ports[16] = {0}, counts[16] = {0}, nports = 0;
	for (int t = 0; t < tries; t++) {
		int a = mksock(kind), b = -1, fd = a;
		if (peer && connect(a, (void *)peerAddr.b, SALEN)) die("connecting to the peer");
		if (swap) {
			b = mksock(swap);
			dup2(a, TARGET);
			atomic_store(&swapA, a);
			atomic_store(&swapB, b);
			fd = TARGET;
		}
		int r = -1;
		if (!strcmp(op, "connect")) r = connect(fd, (void *)addrbuf, SALEN);
		else if (!strcmp(op, "sendto")) r = sendto(fd, "x", 1, MSG_NOSIGNAL, (void *)addrbuf, SALEN);
		else if (!strcmp(op, "sendmsg")) r = sendmsg(fd, &msg, MSG_NOSIGNAL);
		else if (!strcmp(op, "sendmmsg")) r = sendmmsg(fd, mmsg, 2, MSG_NOSIGNAL);
		else if (!strcmp(op, "bind")) r = bind(fd, (void *)addrbuf, SALEN);
		else die(op);
		if (r >= 0) ok++;
		if (swap) {
			atomic_store(&swapA, -1);
			atomic_store(&swapB, -1);
		}
		if (!strcmp(op, "connect")) {
			send(a, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (b >= 0) send(b, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		}
		if (!strcmp(op, "bind")) {
			for (int s = 0; s < 2; s++) {
				int f = s == 0 ? a : b;
				struct sockaddr_storage ss;
				socklen_t sl = sizeof ss;
				if (f < 0 || getsockname(f, (void *)&ss, &sl) || (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
					continue;
				int port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
				if (!port) continue;
				int k = 0;
				while (k < nports && ports[k] != port) k++;
				if (k == nports && nports < 16) ports[nports++] = port;
				if (k < 16) counts[k]++;
			}
		}
		close(a);
		if (b >= 0) close(b);
	}
	atomic_store(&stop, 1);
	pthread_join(ft, NULL);
	if (swap) pthread_join(st, NULL);
	printf("ok %d\n", ok);
	for (int k = 0; k < nports; k++) printf("port %d %d\n", ports[k], counts[k]);
	if (own) printf("own %d\n", atomic_load(&owned));
	return 0;
}
`

// escRacer builds the racing program.
func escRacer(t *testing.T) string {
	t.Helper()
	return cProgram(t, "racer", escRacerSrc)
}

// escTries is how many syscalls each race makes.
const escTries = 3000

// escCounter is a loopback server that counts what reaches it: accepted
// connections (tcp, unix) or datagrams (udp, unixgram). flush waits until
// everything sent to it before the call has been counted.
type escCounter struct {
	network, addr string
	ln            net.Listener
	pc            net.PacketConn
	n             atomic.Int64
	mu            sync.Mutex
	syncs         map[string]chan struct{} // flush markers awaited
}

// escCount starts a counter; addr "@name" is an abstract unix socket (Go's
// notation), padded with NULs to the full sun_path as the racer pads it.
func escCount(t *testing.T, network, addr string) *escCounter {
	t.Helper()
	c := &escCounter{network: network, addr: addr, syncs: map[string]chan struct{}{}}
	bindAddr := addr
	if strings.HasPrefix(addr, "@") {
		bindAddr = addr + strings.Repeat("\x00", 108-len(addr))
	}
	var err error
	switch network {
	case "tcp", "unix":
		c.ln, err = net.Listen(network, bindAddr)
		if err == nil {
			go c.acceptLoop()
		}
	case "udp", "unixgram":
		c.pc, err = net.ListenPacket(network, bindAddr)
		if err == nil {
			if s, ok := c.pc.(interface{ SetReadBuffer(int) error }); ok {
				s.SetReadBuffer(8 << 20)
			}
			go c.readLoop()
		}
	}
	if err != nil {
		t.Fatalf("listening on %s %q: %v", network, addr, err)
	}
	t.Cleanup(c.close)
	return c
}

func (c *escCounter) close() {
	if c.ln != nil {
		c.ln.Close()
	}
	if c.pc != nil {
		c.pc.Close()
	}
}

func (c *escCounter) String() string { return c.network + " " + strings.TrimRight(c.addr, "\x00") }

// marked reports and clears a flush marker.
func (c *escCounter) marked(m string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.syncs[m]; ok {
		close(ch)
		delete(c.syncs, m)
		return true
	}
	return false
}

func (c *escCounter) acceptLoop() {
	for {
		conn, err := c.ln.Accept()
		if err != nil {
			return
		}
		if !c.marked(conn.RemoteAddr().String()) {
			c.n.Add(1)
		}
		conn.Close()
	}
}

func (c *escCounter) readLoop() {
	buf := make([]byte, 1<<16)
	for {
		n, _, err := c.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if !c.marked(string(buf[:n])) {
			c.n.Add(1)
		}
	}
}

var escSyncSeq atomic.Int64

// count returns what reached the server since the last count, after
// flushing it: a connection or datagram of the test's own, sent last, has
// been seen.
func (c *escCounter) count(t *testing.T) int {
	t.Helper()
	m := fmt.Sprintf("sync-%d-%d", os.Getpid(), escSyncSeq.Add(1))
	var conn net.Conn
	var err error
	switch c.network {
	case "tcp":
		// The marker is the client's address: a port reserved here.
		host, _, _ := net.SplitHostPort(c.ln.Addr().String())
		l, lerr := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if lerr != nil {
			t.Fatal(lerr)
		}
		m = l.Addr().String()
		l.Close()
		ch := c.await(m)
		d := net.Dialer{LocalAddr: l.Addr()}
		if conn, err = d.Dial("tcp", c.ln.Addr().String()); err != nil {
			t.Fatalf("flushing %v: %v", c, err)
		}
		defer conn.Close()
		c.wait(t, ch)
	case "unix":
		m = "@" + m
		ch := c.await(m)
		if conn, err = net.DialUnix("unix", &net.UnixAddr{Name: m, Net: "unix"}, &net.UnixAddr{Name: c.ln.Addr().String(), Net: "unix"}); err != nil {
			t.Fatalf("flushing %v: %v", c, err)
		}
		defer conn.Close()
		c.wait(t, ch)
	case "udp", "unixgram":
		ch := c.await(m)
		if conn, err = net.Dial(c.network, c.pc.LocalAddr().String()); err != nil {
			t.Fatalf("flushing %v: %v", c, err)
		}
		defer conn.Close()
		conn.Write([]byte(m))
		c.wait(t, ch)
	}
	return int(c.n.Swap(0))
}

func (c *escCounter) await(m string) chan struct{} {
	ch := make(chan struct{})
	c.mu.Lock()
	c.syncs[m] = ch
	c.mu.Unlock()
	return ch
}

func (c *escCounter) wait(t *testing.T, ch chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("flushing %v: the marker never arrived", c)
	}
}

// escResult is what the racer printed.
type escResult struct {
	ok    int         // syscalls that succeeded
	ports map[int]int // bind: port → times bound
	own   int         // -own: connections its own server accepted
}

// escRun runs the racer in sb with args and parses its output.
func escRun(t *testing.T, sb *sandlock.Sandbox, args ...string) escResult {
	t.Helper()
	racer := escRacer(t)
	sb.FSReadable = append(sb.FSReadable, filepath.Dir(racer))
	res := run(t, sb, append([]string{racer}, args...)...)
	if res.ExitCode != 0 {
		t.Fatalf("racer %q exited %d (reason %v)\nstdout: %s\nstderr: %s", args, res.ExitCode, res.Reason, res.Stdout, res.Stderr)
	}
	return escParse(t, string(res.Stdout))
}

func escParse(t *testing.T, out string) escResult {
	t.Helper()
	r := escResult{ports: map[int]int{}}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "ok":
			r.ok, _ = strconv.Atoi(f[1])
		case len(f) == 2 && f[0] == "own":
			r.own, _ = strconv.Atoi(f[1])
		case len(f) == 3 && f[0] == "port":
			p, _ := strconv.Atoi(f[1])
			r.ports[p], _ = strconv.Atoi(f[2])
		default:
			t.Fatalf("racer output %q", out)
		}
	}
	return r
}

// escRace runs one race and checks both sides: nothing reached a server in
// forbidden, and the servers in allowed (or, when allowed is empty, the
// syscall itself) succeeded at least once.
func escRace(t *testing.T, what string, sb *sandlock.Sandbox, forbidden, allowed []*escCounter, args ...string) escResult {
	t.Helper()
	res := escRun(t, sb, args...)
	for _, c := range forbidden {
		if n := c.count(t); n != 0 {
			t.Errorf("%s: %v was reached %d times in %d tries (racer said ok %d)", what, c, n, escTries, res.ok)
		}
	}
	reached := 0
	var counts []string
	for _, c := range allowed {
		n := c.count(t)
		reached += n
		counts = append(counts, fmt.Sprintf("%v: %d", c, n))
	}
	if len(allowed) > 0 && reached == 0 {
		t.Errorf("%s: the allowed target was never reached in %d tries", what, escTries)
	}
	if res.ok == 0 {
		t.Errorf("%s: no syscall succeeded in %d tries", what, escTries)
	}
	t.Logf("%s: %d tries, %d succeeded; allowed reached %s", what, escTries, res.ok, strings.Join(counts, ", "))
	return res
}

// escAbstract returns a fresh abstract socket name.
func escAbstract(what string) string {
	return fmt.Sprintf("sandlock-esc-%s-%d-%d", what, os.Getpid(), rand.Int64())
}

func escTriesArg() string { return strconv.Itoa(escTries) }

// escUnix is the unix socket layout of the races: servers under a writable
// grant (w) and outside every grant (o).
type escUnix struct {
	w, o                   string
	good, goodD, bad, badD *escCounter
}

func newEscUnix(t *testing.T) escUnix {
	t.Helper()
	root := tempDir(t)
	u := escUnix{w: filepath.Join(root, "w"), o: filepath.Join(root, "o")}
	must(t, os.Mkdir(u.w, 0o777))
	must(t, os.Mkdir(u.o, 0o777))
	u.good = escCount(t, "unix", filepath.Join(u.w, "good.sock"))
	u.goodD = escCount(t, "unixgram", filepath.Join(u.w, "good.dsock"))
	u.bad = escCount(t, "unix", filepath.Join(u.o, "bad.sock"))
	u.badD = escCount(t, "unixgram", filepath.Join(u.o, "bad.dsock"))
	return u
}

func (u escUnix) sandbox(allow, deny []string) *sandlock.Sandbox {
	sb := netSb(allow, deny, nil, nil)
	sb.FSWritable = []string{u.w}
	return sb
}

func escIn(host string, port int) string { return "in:" + net.JoinHostPort(host, strconv.Itoa(port)) }

func TestEscapeNetConnectRace(t *testing.T) {
	t.Parallel()
	P := netFreePorts(t, 2)
	Q := P + 1
	okTCP, badTCP := escCount(t, "tcp", "127.0.0.1:"+netP(P)), escCount(t, "tcp", "127.0.0.1:"+netP(Q))
	okUDP, badUDP := escCount(t, "udp", "127.0.0.1:"+netP(P)), escCount(t, "udp", "127.0.0.1:"+netP(Q))
	ok2TCP := escCount(t, "tcp", "127.0.0.2:"+netP(Q))
	u := newEscUnix(t)
	abs := "abs:" + escAbstract("connect")
	n := escTriesArg()

	escRace(t, "host rule, family and port flipped", u.sandbox([]string{"127.0.0.1:" + netP(P)}, nil),
		[]*escCounter{badTCP, u.bad}, []*escCounter{okTCP},
		"connect", n, "tcp4", escIn("127.0.0.1", P), abs, escIn("127.0.0.1", Q), "unix:"+u.bad.addr)
	escRace(t, "deny list, family and address flipped", u.sandbox(nil, []string{"127.0.0.1"}),
		[]*escCounter{badTCP}, []*escCounter{ok2TCP},
		"connect", n, "tcp4", escIn("127.0.0.2", Q), abs, escIn("127.0.0.1", Q), escIn("0.0.0.0", Q), "unspec:127.0.0.1:"+netP(Q))
	escRace(t, "port rule (Landlock judges TCP), unix socket flipped to inet", u.sandbox([]string{"tcp://:" + netP(P)}, nil),
		[]*escCounter{u.bad}, []*escCounter{u.good},
		"connect", n, "unix", "unix:"+u.good.addr, escIn("127.0.0.1", P), "unix:"+u.bad.addr, abs)
	escRace(t, "no rules, unix socket flipped to inet", u.sandbox(nil, nil),
		[]*escCounter{u.bad}, []*escCounter{u.good},
		"connect", n, "unix", "unix:"+u.good.addr, escIn("127.0.0.1", P), "unix:"+u.bad.addr)
	escRace(t, "port rule, TCP socket swapped for UDP", u.sandbox([]string{":" + netP(P)}, nil),
		[]*escCounter{badTCP, badUDP}, []*escCounter{okTCP, okUDP},
		"-swap", "udp4", "connect", n, "tcp4", escIn("127.0.0.1", P), escIn("127.0.0.1", Q))
	own := escAbstract("own")
	res := escRace(t, "abstract name flipped to a path", u.sandbox(nil, nil),
		[]*escCounter{u.bad}, nil,
		"-own", own, "connect", n, "unix", "abs:"+own, "unix:"+u.bad.addr)
	if res.own == 0 {
		t.Errorf("abstract name flipped to a path: the program's own abstract server accepted nothing (ok %d)", res.ok)
	}
}

func TestEscapeNetSendtoRace(t *testing.T) {
	t.Parallel()
	P := netFreePorts(t, 2)
	Q := P + 1
	okUDP, badUDP := escCount(t, "udp", "127.0.0.1:"+netP(P)), escCount(t, "udp", "127.0.0.1:"+netP(Q))
	ok2UDP := escCount(t, "udp", "127.0.0.2:"+netP(Q))
	u := newEscUnix(t)
	abs := "abs:" + escAbstract("sendto")
	n := escTriesArg()

	escRace(t, "host rule, family and port flipped", u.sandbox([]string{"127.0.0.1:" + netP(P)}, nil),
		[]*escCounter{badUDP, u.badD}, []*escCounter{okUDP},
		"sendto", n, "udp4", escIn("127.0.0.1", P), abs, escIn("127.0.0.1", Q), "unspec:127.0.0.1:"+netP(Q), escIn("0.0.0.0", Q), "unix:"+u.badD.addr)
	escRace(t, "deny list, family and address flipped", u.sandbox(nil, []string{"127.0.0.1"}),
		[]*escCounter{badUDP}, []*escCounter{ok2UDP},
		"sendto", n, "udp4", escIn("127.0.0.2", Q), abs, escIn("127.0.0.1", Q), "unspec:127.0.0.1:"+netP(Q), escIn("0.0.0.0", Q))
	escRace(t, "port rule, family and port flipped", u.sandbox([]string{":" + netP(P)}, nil),
		[]*escCounter{badUDP}, []*escCounter{okUDP},
		"sendto", n, "udp4", escIn("127.0.0.1", P), abs, escIn("127.0.0.1", Q), "unspec:127.0.0.1:"+netP(Q))
	escRace(t, "no rules, unix datagram socket flipped", u.sandbox(nil, nil),
		[]*escCounter{u.badD}, []*escCounter{u.goodD},
		"sendto", n, "unixd", "unix:"+u.goodD.addr, abs, "unix:"+u.badD.addr, escIn("127.0.0.1", Q))
	escRace(t, "host rule, UDP socket swapped for a unix one", u.sandbox([]string{"127.0.0.1:" + netP(P)}, nil),
		[]*escCounter{badUDP, u.badD}, []*escCounter{okUDP},
		"-swap", "unixd", "sendto", n, "udp4", escIn("127.0.0.1", P), "unix:"+u.badD.addr, abs, escIn("127.0.0.1", Q))
}

// escSendmsgRace is the races of sendmsg and sendmmsg (op).
func escSendmsgRace(t *testing.T, op string) {
	P := netFreePorts(t, 2)
	Q := P + 1
	okTCP := escCount(t, "tcp", "127.0.0.1:"+netP(P))
	okUDP, badUDP := escCount(t, "udp", "127.0.0.1:"+netP(P)), escCount(t, "udp", "127.0.0.1:"+netP(Q))
	ok2UDP := escCount(t, "udp", "127.0.0.2:"+netP(Q))
	u := newEscUnix(t)
	abs := "abs:" + escAbstract(op)
	n := escTriesArg()

	escRace(t, "host rule, name flipped", u.sandbox([]string{"127.0.0.1:" + netP(P)}, nil),
		[]*escCounter{badUDP, u.badD}, []*escCounter{okUDP},
		op, n, "udp4", escIn("127.0.0.1", P), "null", escIn("127.0.0.1", Q), "unspec:127.0.0.1:"+netP(Q), abs, "unix:"+u.badD.addr)
	escRace(t, "deny list, name flipped", u.sandbox(nil, []string{"127.0.0.1"}),
		[]*escCounter{badUDP}, []*escCounter{ok2UDP},
		op, n, "udp4", escIn("127.0.0.2", Q), "null", escIn("127.0.0.1", Q), "unspec:127.0.0.1:"+netP(Q), escIn("0.0.0.0", Q))
	escRace(t, "host rule, connected TCP socket swapped for UDP", u.sandbox([]string{"127.0.0.1:" + netP(P)}, nil),
		[]*escCounter{badUDP}, nil,
		"-peer", escIn("127.0.0.1", P), "-swap", "udp4", op, n, "tcp4", "null", escIn("127.0.0.1", Q))
	escRace(t, "no rules, connected unix stream socket swapped for a datagram one", u.sandbox(nil, nil),
		[]*escCounter{u.badD}, nil,
		"-peer", "unix:"+u.good.addr, "-swap", "unixd", op, n, "unix", "null", "unix:"+u.badD.addr, abs)
	_ = okTCP
}

func TestEscapeNetSendmsgRace(t *testing.T) {
	t.Parallel()
	escSendmsgRace(t, "sendmsg")
}

func TestEscapeNetSendmmsgRace(t *testing.T) {
	t.Parallel()
	escSendmsgRace(t, "sendmmsg")
}

func TestEscapeNetBindRace(t *testing.T) {
	t.Parallel()
	D := netFreePorts(t, 2)
	A := D + 1
	u := newEscUnix(t)
	abs := "abs:" + escAbstract("bind")
	n := escTriesArg()
	for _, tc := range []struct {
		what string
		args []string
	}{
		{"family flipped", []string{"bind", n, "tcp4", abs, escIn("127.0.0.1", D), "unspec:0.0.0.0:" + netP(D), escIn("127.0.0.1", A), "unix:" + filepath.Join(u.w, "b.sock")}},
		{"IPv6, family flipped", []string{"bind", n, "tcp6", abs, "in6:::1:" + netP(D), escIn("127.0.0.1", D), "in6:::1:" + netP(A)}},
		{"TCP socket swapped for a unix one", []string{"-swap", "unix", "bind", n, "tcp4", escIn("127.0.0.1", D), abs, escIn("127.0.0.1", A)}},
	} {
		sb := u.sandbox(nil, nil)
		sb.NetDenyBind = []string{netP(D)}
		res := escRun(t, sb, tc.args...)
		if res.ports[D] != 0 {
			t.Errorf("--net-deny-bind %d, %s: the denied port was bound %d times in %d tries", D, tc.what, res.ports[D], escTries)
		}
		if res.ports[A] == 0 {
			t.Errorf("--net-deny-bind %d, %s: the allowed port %d was never bound (%+v)", D, tc.what, A, res)
		}
		t.Logf("--net-deny-bind, %s: %d tries, %d binds succeeded, ports bound %v", tc.what, escTries, res.ok, res.ports)
	}
}
