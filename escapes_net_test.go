//go:build linux

package sandlock_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandlock-go/sandlock"
	"github.com/sandlock-go/sandlock/internal/netgate"
	"github.com/sandlock-go/sandlock/internal/notify"
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
	bound         string // addr as bound (an abstract name padded)
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
	c := &escCounter{network: network, addr: addr, bound: addr, syncs: map[string]chan struct{}{}}
	if strings.HasPrefix(addr, "@") {
		c.bound = addr + strings.Repeat("\x00", 108-len(addr))
	}
	bindAddr := c.bound
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
	if strings.HasPrefix(addr, "/") {
		os.Chmod(addr, 0o777) // reachable by nobody too, but for the sandbox
	}
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
		if conn, err = net.DialUnix("unix", &net.UnixAddr{Name: m, Net: "unix"}, &net.UnixAddr{Name: c.bound, Net: "unix"}); err != nil {
			t.Fatalf("flushing %v: %v", c, err)
		}
		defer conn.Close()
		c.wait(t, ch)
	case "udp", "unixgram":
		ch := c.await(m)
		if conn, err = net.Dial(c.network, c.bound); err != nil {
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

// escRace runs one race and checks both sides (see escCheck).
func escRace(t *testing.T, what string, sb *sandlock.Sandbox, forbidden, allowed []*escCounter, args ...string) escResult {
	t.Helper()
	return escCheck(t, what, escRun(t, sb, args...), forbidden, allowed)
}

// escCheck checks both sides of a race: nothing reached a server in
// forbidden, and the servers in allowed were reached at least once and
// the syscall succeeded at least once.
func escCheck(t *testing.T, what string, res escResult, forbidden, allowed []*escCounter) escResult {
	t.Helper()
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
	for _, d := range []string{u.w, u.o} {
		must(t, os.Mkdir(d, 0o777))
		must(t, os.Chmod(d, 0o777))
	}
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
	escRace(t, "port rule, name flipped", u.sandbox([]string{":" + netP(P)}, nil),
		[]*escCounter{badUDP, u.badD}, []*escCounter{okUDP},
		op, n, "udp4", escIn("127.0.0.1", P), "null", escIn("127.0.0.1", Q), "unspec:127.0.0.1:"+netP(Q), abs, "unix:"+u.badD.addr)
	escRace(t, "host rule, connected TCP socket swapped for UDP", u.sandbox([]string{"127.0.0.1:" + netP(P)}, nil),
		[]*escCounter{badUDP}, nil,
		"-peer", escIn("127.0.0.1", P), "-swap", "udp4", op, n, "tcp4", "null", escIn("127.0.0.1", Q))
	// The peer keeps each connection open until it has read from it.
	peer, err := netListen("unix", filepath.Join(u.w, "peer.sock"), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(peer.close)
	escRace(t, "no rules, connected unix stream socket swapped for a datagram one", u.sandbox(nil, nil),
		[]*escCounter{u.badD}, nil,
		"-peer", "unix:"+peer.host, "-swap", "unixd", op, n, "unix", "null", "unix:"+u.badD.addr, abs)
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

// escPrelude adds probes to netPrelude (see there for case and the
// probes' shape).
const escPrelude = `
def udp_from(f, src, h, port, p):
    # From a socket bound to src (a free port): 0.0.0.0 then means src.
    s = timeo(socket.socket(F[f], socket.SOCK_DGRAM))
    s.bind((src, 0)); s.sendto(p, (h, port)); reply(s, p); s.close()
def listen_unbound(f, p):
    s = socket.socket(F[f], socket.SOCK_STREAM)
    s.listen(1)
    return "port" if s.getsockname()[1] else "no port"
def port_after_listen(f, p):
    # The port a refused listen left the socket with, and whether anything
    # accepts a connection to it.
    s = socket.socket(F[f], socket.SOCK_STREAM)
    try:
        s.listen(1)
    except OSError:
        pass
    port = s.getsockname()[1]
    if port == 0:
        return 0
    c = socket.socket(F[f], socket.SOCK_STREAM)
    c.connect((s.getsockname()[0] if f == 6 else "127.0.0.1", port))
    return "accepted"
def listen_accept(f, host, port, p):
    # Listen (bound to host:port first, unless port is None), then connect
    # to it from here and accept.
    s = timeo(socket.socket(F[f], socket.SOCK_STREAM))
    if port is not None:
        s.bind((host, port))
    s.listen(1)
    c = socket.socket(F[f], socket.SOCK_STREAM)
    c.connect((host, s.getsockname()[1])); c.sendall(p)
    a, _ = s.accept()
    if a.recv(100) != p:
        raise RuntimeError("accepted")
    return "accepted"
def ux_bind(path, p):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path); s.listen(1)
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); c.connect(path)
    s.accept()
    return s.getsockname()
def ux_bind_rel(d, name, mask, p):
    os.chdir(d); os.umask(mask)
    return ux_bind(name, p)
def uxd_bind(path, p):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
def ux_abstract_fork(p):
    # The server is another process of the sandbox.
    name = b"\0sandlock-esc-fork-%d" % os.getpid()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); srv.bind(name); srv.listen(1)
        d = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); d.bind(name + b"-d")
        os.write(w, b"x")
        a, _ = srv.accept(); a.sendall(a.recv(100))
        os.write(w, d.recv(100))
        os._exit(0)
    os.read(r, 1)
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); c.connect(name); c.sendall(p)
    if c.recv(100) != p:
        raise RuntimeError("stream")
    socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(p, name + b"-d")
    if os.read(r, 100) != p:
        raise RuntimeError("datagram")
    os.waitpid(pid, 0)
def sendto_len0(s, h, port, p):
    # sendto with an address pointer but a zero length: the kernel reads
    # no address (UDP then refuses a non-NULL name: EINVAL).
    raw = sa(4, h, port)
    buf = ctypes.create_string_buffer(raw, len(raw))
    libc.sendto.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint]
    if libc.sendto(s.fileno(), p, len(p), 0, ctypes.cast(buf, ctypes.c_void_p), 0) < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
def udp_len0(cport, h, port, p):
    s = timeo(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    s.connect(("127.0.0.1", cport)); sendto_len0(s, h, port, p)
def uxd_len0(peer, h, port, p):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.connect(peer); sendto_len0(s, h, port, p)
def ux_abstract_missing(p):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(b"\0sandlock-esc-nobody-%d" % os.getpid())
`

// escScript is the Python program running cases with escPrelude.
func escScript(cases []netCase) string {
	var b strings.Builder
	b.WriteString(netPrelude + escPrelude)
	for i, c := range cases {
		fmt.Fprintf(&b, "case(%q, lambda p: %s)\n", netLabel(i), c.call)
	}
	return b.String()
}

// escNetRun runs cases with escPrelude in sb and checks them.
func escNetRun(t *testing.T, what string, sb *sandlock.Sandbox, cases []netCase) {
	t.Helper()
	res := run(t, sb, python, "-c", escScript(cases))
	if res.ExitCode != 0 {
		t.Fatalf("%s: python exited %d (reason %v)\nstdout: %s\nstderr: %s", what, res.ExitCode, res.Reason, res.Stdout, res.Stderr)
	}
	netCheck(t, what, string(res.Stdout), cases)
}

// escNetCLI runs cases with escPrelude under `sandlock run flags`, behind
// prefix (e.g. setpriv as nobody), and checks them.
func escNetCLI(t *testing.T, prefix, flags []string, cases []netCase) {
	t.Helper()
	what := fmt.Sprintf("%q sandlock run %q", prefix, flags)
	code, stdout, stderr := cliAs(t, prefix, cliRunArgs(cliGrants(flags...), python, "-c", escScript(cases))...)
	if code != 0 || stderr != "" {
		t.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", what, code, stdout, stderr)
	}
	netCheck(t, what, stdout, cases)
}

// TestEscapeNetUnspecifiedAddress: 0.0.0.0, ::ffff:0.0.0.0 and :: reach
// the local host, so every rule judges them as the address they reach:
// 127.0.0.1 (or the socket's own bound address), ::1.
func TestEscapeNetUnspecifiedAddress(t *testing.T) {
	t.Parallel()
	netFastOpenClient(t)
	a := newNetGroup(t, "127.0.0.1", "127.0.0.2", "::1")
	P := netP(a.port)
	ok, refused := "OK", "ERR ECONNREFUSED"
	v4, v4s, v6 := a.tcp["127.0.0.1"], a.udp["127.0.0.1"], a.tcp["::1"]
	unspecified := func(want, want6 string) []netCase {
		return []netCase{
			netOn("tcp", 4, "0.0.0.0", v4, want),
			netOn("tcp_nb", 4, "0.0.0.0", v4, want),
			netOn("tfo", 4, "0.0.0.0", v4, want),
			netOn("udp", 4, "0.0.0.0", v4s, want),
			netOn("udp_msg", 4, "0.0.0.0", v4s, want),
			netOn("udp_conn", 4, "0.0.0.0", v4s, want),
			netOn("tcp", 6, "::ffff:0.0.0.0", v4, want),
			netOn("udp", 6, "::ffff:0.0.0.0", v4s, want),
			netOn("tcp", 6, "::", v6, want6),
			netOn("udp", 6, "::", a.udp["::1"], want6),
		}
	}
	escNetRun(t, "NetDeny 127.0.0.1", netSb(nil, []string{"127.0.0.1"}, nil, nil), append(unspecified(refused, ok),
		netAt("tcp", 4, a.tcp["127.0.0.2"], ok)))
	escNetRun(t, "NetDeny 127.0.0.1, ::1", netSb(nil, []string{"127.0.0.1", "::1"}, nil, nil), append(unspecified(refused, refused),
		netAt("tcp", 4, a.tcp["127.0.0.2"], ok)))
	escNetRun(t, "NetDeny 127.0.0.0/8", netSb(nil, []string{"127.0.0.0/8"}, nil, nil), append(unspecified(refused, ok),
		netAt("tcp", 4, a.tcp["127.0.0.2"], refused)))
	escNetRun(t, "NetAllow 127.0.0.1:P", netSb([]string{"127.0.0.1:" + P}, nil, nil, nil), append(unspecified(ok, refused),
		netAt("tcp", 4, a.tcp["127.0.0.2"], refused)))
	escNetRun(t, "NetAllow [::1]:P", netSb([]string{"[::1]:" + P}, nil, nil, nil), append(unspecified(refused, ok),
		netAt("tcp", 6, a.tcp["::1"], ok)))
	escNetRun(t, "NetAllow localhost:P", netSb([]string{"localhost:" + P}, nil, nil, nil), []netCase{
		netOn("tcp", 4, "0.0.0.0", v4, ok),
		netOn("udp", 4, "0.0.0.0", v4s, ok),
		netAt("tcp", 4, a.tcp["127.0.0.2"], refused),
	})
	// From a socket bound to an address, 0.0.0.0 reaches that address.
	from := func(src string, srv *netSrv, want string) netCase {
		c := netOn("udp_from", 4, "0.0.0.0", srv, want)
		c.desc = fmt.Sprintf("udp from %s to 0.0.0.0:%d", src, srv.port)
		c.call = fmt.Sprintf("udp_from(4, %q, '0.0.0.0', %d, p)", src, srv.port)
		return c
	}
	escNetRun(t, "NetDeny 127.0.0.2, bound sockets", netSb(nil, []string{"127.0.0.2"}, nil, nil), []netCase{
		from("127.0.0.2", a.udp["127.0.0.2"], refused),
		from("127.0.0.1", a.udp["127.0.0.1"], ok),
		netOn("udp", 4, "0.0.0.0", v4s, ok),
	})
	escNetRun(t, "NetAllow 127.0.0.1:P, bound sockets", netSb([]string{"udp://127.0.0.1:" + P}, nil, nil, nil), []netCase{
		from("127.0.0.2", a.udp["127.0.0.2"], refused),
		from("127.0.0.1", a.udp["127.0.0.1"], ok),
	})
}

// TestEscapeNetListen: listen on a socket that was never bound binds it
// itself, which the bind rules must see: refused where binding port 0
// would be, and under NetDenyBind where the port it gets is denied.
func TestEscapeNetListen(t *testing.T) {
	t.Parallel()
	F := netFreePorts(t, 2)
	connects := []string{"10.255.0.0/16"} // a deny list: loopback connects allowed
	listenC := func(f int, want string) netCase {
		return netExpr(fmt.Sprintf("listen unbound (%d)", f), fmt.Sprintf("listen_unbound(%d, p)", f), want)
	}
	after := func(f int, want string) netCase {
		return netExpr(fmt.Sprintf("port after listen (%d)", f), fmt.Sprintf("port_after_listen(%d, p)", f), want)
	}
	accept := func(f int, host string, port int, want string) netCase {
		p := "None"
		if port >= 0 {
			p = strconv.Itoa(port)
		}
		return netExpr(fmt.Sprintf("listen on %s:%s and accept (%d)", host, p, f), fmt.Sprintf("listen_accept(%d, %q, %s, p)", f, host, p), want)
	}
	bindC := func(host string, port int, want string) netCase {
		return netExpr(fmt.Sprintf("bind %s:%d + listen", host, port), fmt.Sprintf("bind(4, socket.SOCK_STREAM, %q, %d, p)", host, port), want)
	}
	// No bind rules: binding is denied, so is listening unbound, and
	// nothing is left listening.
	escNetRun(t, "default", netSb(nil, connects, nil, nil), []netCase{
		listenC(4, "ERR EACCES"), listenC(6, "ERR EACCES"),
		after(4, "OK 0"), after(6, "OK 0"),
		accept(4, "127.0.0.1", -1, "ERR EACCES"),
		bindC("127.0.0.1", 0, "ERR EACCES"),
		netExpr("udp bind", "bind(4, socket.SOCK_DGRAM, '127.0.0.1', 0, p)", "OK"),
	})
	escNetRun(t, "NetAllowBind F", netSb(nil, connects, []string{netP(F)}, nil), []netCase{
		listenC(4, "ERR EACCES"), listenC(6, "ERR EACCES"),
		after(4, "OK 0"),
		accept(4, "127.0.0.1", F, "OK accepted"),
		accept(6, "::1", F, "OK accepted"),
		bindC("127.0.0.1", F+1, "ERR EACCES"),
	})
	escNetRun(t, "NetAllowBind *", netSb(nil, connects, []string{"*"}, nil), []netCase{
		listenC(4, "OK port"), listenC(6, "OK port"),
		accept(4, "127.0.0.1", -1, "OK accepted"),
	})
	escNetRun(t, "NetDenyBind F", netSb(nil, connects, nil, []string{netP(F)}), []netCase{
		listenC(4, "OK port"), listenC(6, "OK port"),
		accept(4, "127.0.0.1", -1, "OK accepted"),
		accept(6, "::1", -1, "OK accepted"),
		accept(4, "127.0.0.1", F+1, "OK accepted"),
		bindC("127.0.0.1", F, "ERR EACCES"),
	})
	// Every port a listen could pick is denied.
	escNetRun(t, "NetDenyBind 1024-65535", netSb(nil, connects, nil, []string{"1024-65535"}), []netCase{
		listenC(4, "ERR EACCES"), listenC(6, "ERR EACCES"),
		after(4, "ERR ECONNREFUSED"), // bound by the refused listen, but not listening
		bindC("127.0.0.1", 0, "ERR EACCES"),
		bindC("127.0.0.1", F, "ERR EACCES"),
		netExpr("udp bind", fmt.Sprintf("bind(4, socket.SOCK_DGRAM, '127.0.0.1', %d, p)", F), "OK"),
	})
}

// TestEscapeNetAbstractUnix: the helper threads are not in the program's
// Landlock domain, so the scope on abstract sockets is emulated: the
// sandbox's own abstract servers are reached (in the same process or
// another one), one outside is refused with Landlock's EPERM and receives
// nothing, and a name nobody holds is ECONNREFUSED, as for the program.
func TestEscapeNetAbstractUnix(t *testing.T) {
	t.Parallel()
	outside := escAbstract("outside")
	stream, dgram := escCount(t, "unix", "@"+outside), escCount(t, "unixgram", "@"+outside+"-d")
	pad := func(name string) string { return fmt.Sprintf("b'\\0%s'.ljust(108, b'\\0')", name) }
	cases := []netCase{
		netExpr("own abstract servers", "ux_abstract(p)", "OK"),
		netExpr("abstract servers of another process of the sandbox", "ux_abstract_fork(p)", "OK"),
		netExpr("an abstract name nobody holds", "ux_abstract_missing(p)", "ERR ECONNREFUSED"),
		netExpr("stream server outside", "ux("+pad(outside)+", p)", "ERR EPERM"),
		netExpr("datagram server outside", "uxd("+pad(outside+"-d")+", p)", "ERR EPERM"),
		netExpr("datagram server outside, sendmsg", "uxd_msg("+pad(outside+"-d")+", p)", "ERR EPERM"),
		netExpr("datagram server outside, connect", "uxd_conn("+pad(outside+"-d")+", p)", "ERR EPERM"),
	}
	for _, deny := range [][]string{nil, {"10.255.0.0/16"}} {
		what := fmt.Sprintf("NetDeny %q", deny)
		escNetRun(t, what, netSb(nil, deny, nil, nil), cases)
		for _, c := range []*escCounter{stream, dgram} {
			if n := c.count(t); n != 0 {
				t.Errorf("%s: %v was reached %d times", what, c, n)
			}
		}
	}
	// Without the scope, the kernel judges nothing and neither does the
	// gate.
	unscoped := base()
	unscoped.Disable = []sandlock.Protection{sandlock.ProtectionAbstractUnixSocketScope}
	escNetRun(t, "scope disabled", unscoped, []netCase{
		netExpr("own abstract servers", "ux_abstract(p)", "OK"),
		netExpr("datagram server outside", "uxd("+pad(outside+"-d")+", p)", "OK"),
	})
	if n := dgram.count(t); n != 1 {
		t.Errorf("scope disabled: %v received %d datagrams, want 1", dgram, n)
	}
}

// TestEscapeNetUnixFSDeny: named unix sockets meet the fs-deny check, for
// connect, send and bind: --fs-deny W/docker.sock -w W keeps the program
// away from the socket, and no socket is created in a denied directory.
func TestEscapeNetUnixFSDeny(t *testing.T) {
	t.Parallel()
	w := tempDir(t)
	must(t, os.Mkdir(filepath.Join(w, "denied"), 0o777))
	listen := func(proto, path string) *netSrv {
		s, err := netListen(proto, path, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.close)
		return s
	}
	okS, docker, inDenied := listen("unix", filepath.Join(w, "ok.sock")), listen("unix", filepath.Join(w, "docker.sock")), listen("unix", filepath.Join(w, "denied", "in.sock"))
	okD, deniedD := listen("unixgram", filepath.Join(w, "ok.dsock")), listen("unixgram", filepath.Join(w, "dd.sock"))
	must(t, os.Symlink("docker.sock", filepath.Join(w, "link.sock")))
	must(t, os.Link(filepath.Join(w, "docker.sock"), filepath.Join(w, "hard.sock")))
	sb := base()
	sb.FSWritable = []string{w}
	sb.FSDenied = []string{filepath.Join(w, "docker.sock"), filepath.Join(w, "denied"), filepath.Join(w, "dd.sock"), filepath.Join(w, "later.sock")}
	at := func(fn, path string, srv *netSrv, want string) netCase {
		c := netCase{desc: fmt.Sprintf("%s(%s)", fn, path), call: fmt.Sprintf("%s(%q, p)", fn, path), want: want, dst: srv}
		if want == "OK" && srv != nil {
			c.hits = []netHit{{srv: srv}}
		}
		return c
	}
	P := func(name string) string { return filepath.Join(w, name) }
	escNetRun(t, "fs-deny", sb, []netCase{
		at("ux", P("ok.sock"), okS, "OK"),
		at("ux", P("docker.sock"), docker, "ERR EACCES"),
		at("ux", P("link.sock"), docker, "ERR EACCES"),
		at("ux", P("hard.sock"), docker, "ERR EACCES"),
		at("ux", P("denied/in.sock"), inDenied, "ERR EACCES"),
		{desc: "docker.sock relative", call: fmt.Sprintf("ux_rel(%q, 'docker.sock', p)", w), want: "ERR EACCES", dst: docker},
		at("uxd", P("ok.dsock"), okD, "OK"),
		at("uxd", P("dd.sock"), deniedD, "ERR EACCES"),
		at("uxd_msg", P("dd.sock"), deniedD, "ERR EACCES"),
		at("uxd_conn", P("dd.sock"), deniedD, "ERR EACCES"),
		// Binding: in the denied directory, on a denied name, and (allowed)
		// beside them; the socket is bound in the checked directory by its
		// name.
		at("ux_bind", P("denied/new.sock"), nil, "ERR EACCES"),
		at("uxd_bind", P("denied/new.dsock"), nil, "ERR EACCES"),
		at("ux_bind", P("later.sock"), nil, "ERR EACCES"),
		at("ux_bind", P("new.sock"), nil, "OK new.sock"),
		{desc: "relative bind, umask 077", call: fmt.Sprintf("ux_bind_rel(%q, 'rel.sock', 0o077, p)", w), want: "OK rel.sock"},
	})
	for _, gone := range []string{"denied/new.sock", "denied/new.dsock", "later.sock"} {
		if _, err := os.Lstat(P(gone)); err == nil {
			t.Errorf("%s was created", gone)
		}
	}
	for name, perm := range map[string]os.FileMode{"new.sock": 0o755, "rel.sock": 0o700} {
		st, err := os.Lstat(P(name))
		if err != nil || st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != perm {
			t.Errorf("%s: %v, mode %v, want a socket with mode %v", name, err, st.Mode(), perm)
		}
	}
	// Without denied paths the socket is bound at the path the program
	// gave, which is then its address.
	sb = base()
	sb.FSWritable = []string{w}
	sb.NetDenyBind = []string{"1"}
	escNetRun(t, "bind without fs-deny", sb, []netCase{
		at("ux_bind", P("abs.sock"), nil, "OK "+P("abs.sock")),
		{desc: "relative bind", call: fmt.Sprintf("ux_bind_rel(%q, 'rel2.sock', 0o022, p)", w), want: "OK rel2.sock"},
		at("ux_bind", P("denied/x.sock"), nil, "OK "+P("denied/x.sock")),
	})
}

// TestEscapeNetUnixFSDenyRace: a thread flips a path between an allowed
// socket and a denied one while the program connects and sends.
func TestEscapeNetUnixFSDenyRace(t *testing.T) {
	t.Parallel()
	w := tempDir(t)
	good, denied := escCount(t, "unix", filepath.Join(w, "ok.sock")), escCount(t, "unix", filepath.Join(w, "docker.sock"))
	goodD, deniedD := escCount(t, "unixgram", filepath.Join(w, "ok.dsock")), escCount(t, "unixgram", filepath.Join(w, "docker.dsock"))
	must(t, os.Symlink("docker.sock", filepath.Join(w, "link.sock")))
	must(t, os.Mkdir(filepath.Join(w, "denied"), 0o777))
	later, inDenied := filepath.Join(w, "later.sock"), filepath.Join(w, "denied", "x.sock")
	sb := func() *sandlock.Sandbox {
		sb := base()
		sb.FSWritable = []string{w}
		sb.FSDenied = []string{denied.addr, deniedD.addr, later, filepath.Dir(inDenied)}
		return sb
	}
	n := escTriesArg()
	escRace(t, "fs-deny, connect", sb(), []*escCounter{denied}, []*escCounter{good},
		"connect", n, "unix", "unix:"+good.addr, "unix:"+denied.addr, "unix:"+filepath.Join(w, "link.sock"))
	escRace(t, "fs-deny, sendto", sb(), []*escCounter{deniedD}, []*escCounter{goodD},
		"sendto", n, "unixd", "unix:"+goodD.addr, "unix:"+deniedD.addr)
	escRace(t, "fs-deny, sendmsg", sb(), []*escCounter{deniedD}, []*escCounter{goodD},
		"sendmsg", n, "unixd", "unix:"+goodD.addr, "null", "unix:"+deniedD.addr)
	// bind: the parent is pinned and checked, then bound by name; no
	// denied name is ever created, and the allowed one is. (A bind may
	// also succeed on a name torn by the flipper mid-write, a name the
	// program itself made up in the writable directory: it counts too.)
	res := escRun(t, sb(), "bind", n, "unix", "unix:"+filepath.Join(w, "b.sock"), "unix:"+later, "unix:"+inDenied)
	for _, p := range []string{later, inDenied} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("fs-deny, bind: a socket was created at %s", p)
		}
	}
	if st, err := os.Lstat(filepath.Join(w, "b.sock")); err != nil || st.Mode()&os.ModeSocket == 0 || res.ok < 1 {
		t.Errorf("fs-deny, bind: b.sock: %v (%d binds succeeded), want the allowed socket bound", err, res.ok)
	}
	t.Logf("fs-deny, bind: %d tries, %d succeeded", escTries, res.ok)
}

// escFloodSrc hammers sendmmsg with big messages: each of THREADS threads
// makes CALLS sendmmsg calls of 1024 messages of 640 KiB (all from one
// buffer), either with an address to a UDP server (udp HOST PORT: too big
// for UDP, EMSGSIZE) or on a unix stream socket whose other end a thread
// drains (stream). Prints the messages and bytes sent, the largest msg_len
// and the errors.
const escFloodSrc = `
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NMSG 1024
#define MSGSIZE (640 << 10)

static char buf[MSGSIZE];
static const char *mode, *host;
static int port, calls;
static atomic_long msgs, bytes, maxlen, errors;

static void *drain(void *arg) {
	static char sink[1 << 20];
	int fd = (int)(long)arg;
	while (read(fd, sink, sizeof sink) > 0) {}
	return NULL;
}

static void *sender(void *arg) {
	(void)arg;
	int fd, pair[2];
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	if (!strcmp(mode, "udp")) {
		fd = socket(AF_INET, SOCK_DGRAM, 0);
		inet_pton(AF_INET, host, &sa.sin_addr);
	} else {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair)) { perror("socketpair"); exit(2); }
		fd = pair[0];
		pthread_t t;
		pthread_create(&t, NULL, drain, (void *)(long)pair[1]);
	}
	static struct iovec iov = {buf, MSGSIZE};
	struct mmsghdr *m = calloc(NMSG, sizeof *m);
	for (int i = 0; i < NMSG; i++) {
		m[i].msg_hdr.msg_iov = &iov;
		m[i].msg_hdr.msg_iovlen = 1;
		if (!strcmp(mode, "udp")) {
			m[i].msg_hdr.msg_name = &sa;
			m[i].msg_hdr.msg_namelen = sizeof sa;
		}
	}
	for (int c = 0; c < calls; c++) {
		int r = sendmmsg(fd, m, NMSG, 0);
		if (r < 0) { atomic_fetch_add(&errors, 1); continue; }
		atomic_fetch_add(&msgs, r);
		for (int i = 0; i < r; i++) {
			atomic_fetch_add(&bytes, m[i].msg_len);
			long cur = atomic_load(&maxlen);
			while ((long)m[i].msg_len > cur && !atomic_compare_exchange_weak(&maxlen, &cur, m[i].msg_len)) {}
		}
	}
	return NULL;
}

int main(int argc, char **argv) {
	if (argc < 4) return 2;
	mode = argv[1];
	int threads = atoi(argv[2]);
	calls = atoi(argv[3]);
	if (argc > 5) { host = argv[4]; port = atoi(argv[5]); }
	pthread_t t[64];
	for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, sender, NULL);
	for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
	printf("msgs %ld bytes %ld maxlen %ld errors %ld\n", atomic_load(&msgs), atomic_load(&bytes), atomic_load(&maxlen), atomic_load(&errors));
	return 0;
}
`

// escStatusKB reads a field of /proc/self/status, in KiB.
func escStatusKB(t *testing.T, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// TestEscapeNetSupervisorMemoryBound: what a send makes the supervisor copy
// is bounded (netgate.CopyBound per notification), so a program sending
// 1024 messages of 640 KiB per sendmmsg (640 MiB) cannot make it hold more
// than the bound times the sends in flight. Not parallel: it measures the
// test process's peak RSS (VmHWM, reset first), which other tests running
// at the same time would raise.
func TestEscapeNetSupervisorMemoryBound(t *testing.T) {
	flood := cProgram(t, "flood", escFloodSrc)
	P := netFreePorts(t, 1)
	udp := escCount(t, "udp", "127.0.0.1:"+netP(P))
	sb := func() *sandlock.Sandbox {
		sb := netSb([]string{"127.0.0.1:" + netP(P)}, nil, nil, nil)
		sb.FSReadable = append(sb.FSReadable, filepath.Dir(flood))
		return sb
	}
	const threads, calls = 4, 100
	runtime.GC()
	before := escStatusKB(t, "VmRSS")
	must(t, os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)) // resets VmHWM to VmRSS
	type out struct{ msgs, bytes, maxlen, errors int64 }
	flooded := func(mode string, extra ...string) out {
		res := run(t, sb(), append([]string{flood, mode, strconv.Itoa(threads), strconv.Itoa(calls)}, extra...)...)
		var o out
		if _, err := fmt.Sscanf(string(res.Stdout), "msgs %d bytes %d maxlen %d errors %d", &o.msgs, &o.bytes, &o.maxlen, &o.errors); err != nil || res.ExitCode != 0 {
			t.Fatalf("flood %s: exit %d, %q: %v\nstderr: %s", mode, res.ExitCode, res.Stdout, err, res.Stderr)
		}
		return o
	}
	// Datagrams bigger than the bound fail (as they would for UDP)
	// without being copied.
	u := flooded("udp", "127.0.0.1", netP(P))
	// A stream send is cut to the bound: every call sends one message,
	// short.
	s := flooded("stream")
	peak := escStatusKB(t, "VmHWM")
	growth := (peak - before) << 10
	limit := int64(4 * notify.MaxDeferred * netgate.CopyBound)
	t.Logf("udp: %+v; stream: %+v; test process RSS %d KiB before, peak %d KiB after: grew %d KiB (limit %d KiB; one sendmmsg asks to copy %d KiB)",
		u, s, before, peak, growth>>10, limit>>10, 1024*640)
	if u.errors != threads*calls || u.msgs != 0 || udp.count(t) != 0 {
		t.Errorf("udp: %+v, want every call to fail (EMSGSIZE) and nothing sent", u)
	}
	if s.errors != 0 || s.msgs != threads*calls || s.maxlen > netgate.CopyBound || s.bytes != s.msgs*s.maxlen {
		t.Errorf("stream: %+v, want %d calls each sending one message of at most %d bytes", s, threads*calls, netgate.CopyBound)
	}
	if growth > limit {
		t.Errorf("the test process's peak RSS grew by %d MiB while the sandbox flooded sendmmsg; the bound allows at most %d MiB", growth>>20, limit>>20)
	}
}

// escCLIRace runs the racer under `sandlock run flags` as nobody and
// checks both sides.
func escCLIRace(t *testing.T, what string, flags []string, forbidden, allowed []*escCounter, args ...string) escResult {
	t.Helper()
	racer := escRacer(t)
	flags = append([]string{"-r", filepath.Dir(racer)}, flags...)
	code, stdout, stderr := cliAs(t, cliNobody, cliRunArgs(cliGrants(flags...), append([]string{racer}, args...)...)...)
	if code != 0 || stderr != "" {
		t.Fatalf("%s: sandlock run %q as nobody: exit %d\nstdout: %s\nstderr: %s", what, flags, code, stdout, stderr)
	}
	return escCheck(t, what+" (CLI, as nobody)", escParse(t, stdout), forbidden, allowed)
}

// TestEscapeNetCLIUnprivileged runs one of each kind of escape test
// through the CLI as an unprivileged user. Not parallel (see
// cli_network_test.go).
func TestEscapeNetCLIUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root to switch to cliNobody (run the tests as root, as CI does)")
	}
	P := netFreePorts(t, 3)
	Q, D := P+1, P+2
	okTCP := escCount(t, "tcp", "127.0.0.1:"+netP(P))
	badUDP := escCount(t, "udp", "127.0.0.1:"+netP(Q))
	ok2UDP := escCount(t, "udp", "127.0.0.2:"+netP(Q))
	u := newEscUnix(t)
	n := escTriesArg()

	escCLIRace(t, "connect, no rules, unix socket flipped to inet", []string{"-w", u.w},
		[]*escCounter{u.bad}, []*escCounter{u.good},
		"connect", n, "unix", "unix:"+u.good.addr, escIn("127.0.0.1", P), "unix:"+u.bad.addr, "abs:"+escAbstract("cli"))
	escCLIRace(t, "sendto, deny list, family and address flipped", []string{"--net-deny", "127.0.0.1"},
		[]*escCounter{badUDP}, []*escCounter{ok2UDP},
		"sendto", n, "udp4", escIn("127.0.0.2", Q), "abs:"+escAbstract("cli"), escIn("127.0.0.1", Q), "unspec:127.0.0.1:"+netP(Q), escIn("0.0.0.0", Q))
	escCLIRace(t, "sendmsg, host rule, connected TCP socket swapped for UDP", []string{"--net-allow", "127.0.0.1:" + netP(P)},
		[]*escCounter{badUDP}, nil,
		"-peer", escIn("127.0.0.1", P), "-swap", "udp4", "sendmsg", n, "tcp4", "null", escIn("127.0.0.1", Q))
	okTCP.count(t)
	res := escCLIRace(t, "bind, --net-deny-bind, family flipped", []string{"--net-deny-bind", netP(D), "-w", u.w},
		nil, nil, "bind", n, "tcp4", "abs:"+escAbstract("cli"), escIn("127.0.0.1", D), "unspec:0.0.0.0:"+netP(D), escIn("127.0.0.1", Q))
	if res.ports[D] != 0 || res.ports[Q] == 0 {
		t.Errorf("bind as nobody: ports bound %v: want %d never, %d at least once", res.ports, D, Q)
	}

	// Probes: the unspecified address, listen, abstract sockets, fs-deny.
	a := newNetGroup(t, "127.0.0.1", "127.0.0.2")
	outside := escAbstract("cli-outside")
	abs := escCount(t, "unix", "@"+outside)
	escNetCLI(t, cliNobody, []string{"--net-deny", "127.0.0.1"}, []netCase{
		netOn("tcp", 4, "0.0.0.0", a.tcp["127.0.0.1"], "ERR ECONNREFUSED"),
		netOn("udp", 6, "::ffff:0.0.0.0", a.udp["127.0.0.1"], "ERR ECONNREFUSED"),
		netAt("tcp", 4, a.tcp["127.0.0.2"], "OK"),
		netExpr("listen unbound", "listen_unbound(4, p)", "ERR EACCES"),
		netExpr("own abstract servers", "ux_abstract(p)", "OK"),
		netExpr("abstract servers of another process", "ux_abstract_fork(p)", "OK"),
		netExpr("abstract server outside", fmt.Sprintf("ux(b'\\0%s'.ljust(108, b'\\0'), p)", outside), "ERR EPERM"),
	})
	if n := abs.count(t); n != 0 {
		t.Errorf("the abstract server outside was reached %d times", n)
	}
	escNetCLI(t, cliNobody, []string{"--net-deny", "10.255.0.0/16", "--net-allow-bind", netP(D)}, []netCase{
		netExpr("listen unbound", "listen_unbound(4, p)", "ERR EACCES"),
		netExpr("bind, listen, accept", fmt.Sprintf("listen_accept(4, '127.0.0.1', %d, p)", D), "OK accepted"),
	})
	// fs-deny: servers that answer (netSrv), reachable by nobody but for
	// the sandbox.
	listen := func(path string) *netSrv {
		srv, err := netListen("unix", path, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.close)
		must(t, os.Chmod(path, 0o777))
		return srv
	}
	okSrv, docker := listen(filepath.Join(u.w, "ok.sock")), listen(filepath.Join(u.w, "docker.sock"))
	denied := filepath.Join(u.w, "denied")
	must(t, os.Mkdir(denied, 0o777))
	must(t, os.Chmod(denied, 0o777))
	escNetCLI(t, cliNobody, []string{"-w", u.w, "--fs-deny", docker.host, "--fs-deny", denied}, []netCase{
		{desc: "connect beside the denied socket", call: fmt.Sprintf("ux(%q, p)", okSrv.host), want: "OK", dst: okSrv, hits: []netHit{{srv: okSrv}}},
		{desc: "connect to the denied socket", call: fmt.Sprintf("ux(%q, p)", docker.host), want: "ERR EACCES", dst: docker},
		netExpr("bind in the denied directory", fmt.Sprintf("ux_bind(%q, p)", filepath.Join(denied, "x.sock")), "ERR EACCES"),
		netExpr("bind beside", fmt.Sprintf("ux_bind(%q, p)", filepath.Join(u.w, "x.sock")), "OK x.sock"),
	})
}

// TestEscapeNetSendtoNoAddress: a sendto whose address pointer is set but
// whose length is 0 gives the kernel no address (a register fact): the
// filter lets it through (or, with a user handler on sendto, the gate
// answers Continue) and the kernel does what it does natively: EINVAL on
// UDP, the connected peer on a unix datagram socket. The address in memory
// is never used.
func TestEscapeNetSendtoNoAddress(t *testing.T) {
	t.Parallel()
	a := newNetGroup(t, "127.0.0.1")
	b := newNetGroup(t, "127.0.0.1")
	w := tempDir(t)
	peer, err := netListen("unixgram", filepath.Join(w, "peer.dsock"), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(peer.close)
	cases := []netCase{
		{desc: "udp connected to P, sendto Q with length 0", call: fmt.Sprintf("udp_len0(%d, '127.0.0.1', %d, p)", a.port, b.port),
			want: "ERR EINVAL", dst: b.udp["127.0.0.1"]},
		{desc: "unix datagram connected, sendto Q with length 0", call: fmt.Sprintf("uxd_len0(%q, '127.0.0.1', %d, p)", peer.host, b.port),
			want: "OK", dst: b.udp["127.0.0.1"], hits: []netHit{{srv: peer}}},
		netAt("udp", 4, a.udp["127.0.0.1"], "OK"),
	}
	sb := func() *sandlock.Sandbox {
		sb := netSb([]string{"127.0.0.1:" + netP(a.port)}, nil, nil, nil)
		sb.FSWritable = []string{w}
		return sb
	}
	escNetRun(t, "unnotified", sb(), cases)
	var seen atomic.Int64
	h := hdl(t, "sendto", func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
		seen.Add(1)
		return sandlock.Continue()
	})
	res := hdlRun(t, sb(), escScript(cases), h)
	if res.ExitCode != 0 {
		t.Fatalf("with a user handler on sendto: python exited %d\nstdout: %s\nstderr: %s", res.ExitCode, res.Stdout, res.Stderr)
	}
	netCheck(t, "with a user handler on sendto", string(res.Stdout), cases)
	if seen.Load() == 0 {
		t.Error("the user handler saw no sendto")
	}
}
