// Package netgate is the builtin handler family that enforces a sandbox's
// network policy where Landlock cannot: destination rules on hosts, IPs and
// CIDRs, UDP and ICMP, TCP bind denylists, and connections to named unix
// sockets.
//
// Every decision is made on a private copy of the address, read once from
// the program's memory, and the operation is then done on the program's
// behalf: the supervisor takes a duplicate of the program's socket
// (pidfd_getfd) and connects, sends or binds it itself, on a thread confined
// like the program (same Landlock ruleset, so TCP port rules still hold), so
// the kernel never reads an address the program could change after the
// check. The protocol comes from the socket (SO_PROTOCOL), not from the
// syscall.
package netgate

import (
	"context"
	"encoding/binary"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/confine"
	"github.com/sandlock-go/sandlock/internal/netpolicy"
	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/sysnum"
)

// Mode is how destinations are judged.
type Mode uint8

const (
	// Closed: no rules. TCP is left to Landlock (which denies it), UDP and
	// ICMP sockets cannot be created; only named unix sockets are judged.
	Closed Mode = iota
	// AllowList: a destination must match a rule of its protocol.
	AllowList
	// DenyList: a destination must match no rule of its protocol.
	DenyList
)

// Config is a sandbox's network policy, resolved.
type Config struct {
	Mode  Mode
	Rules []netpolicy.Resolved
	// TCPByLandlock leaves TCP connects to the kernel: Landlock enforces
	// every TCP rule (port-only rules, or none).
	TCPByLandlock bool
	// OnlyTCP says the filter lets no inet socket but TCP be created (no
	// UDP or ICMP rule): a connect to an inet address is then a TCP one.
	OnlyTCP bool
	// DenyBind lists TCP ports that may not be bound (NetDenyBind).
	DenyBind []netpolicy.PortRange
	// Writable are the canonical paths of the writable grants: the only
	// places a named unix socket may be reached.
	Writable []string
	// TGID maps a task to its process (for pidfd_getfd).
	TGID func(tid int) int
	// Pool runs operations on the program's behalf, confined like it.
	Pool *confine.Pool
}

// Gate serves the handlers.
type Gate struct{ cfg Config }

// New returns a gate.
func New(cfg Config) *Gate { return &Gate{cfg: cfg} }

// Register adds the handlers. bind is registered only for a deny list of
// bind ports (otherwise Landlock judges binds).
func (g *Gate) Register(t *notify.Table) {
	arch := sysnum.Native()
	add := func(name string, h notify.HandlerFunc) {
		t.AddBuiltin(arch.MustNr(name), "network: "+name, false, h)
	}
	add("connect", g.connect)
	add("sendto", g.sendto)
	add("sendmsg", g.sendmsg)
	add("sendmmsg", g.sendmmsg)
	if len(g.cfg.DenyBind) > 0 {
		add("bind", g.bind)
	}
}

// maxSockaddr is sizeof(struct sockaddr_storage).
const maxSockaddr = 128

// dest is a destination read from the program.
type dest struct {
	family uint16
	raw    []byte // the sockaddr as the program gave it
	addr   netip.Addr
	port   uint16
	unix   string // a named unix socket's path
}

// readSockaddr copies a sockaddr out of the program's memory.
func readSockaddr(hc *notify.HandlerCtx, addr, length uint64) (*dest, unix.Errno) {
	if length < 2 || length > maxSockaddr {
		return nil, unix.EINVAL
	}
	b, err := hc.ReadMem(addr, int(length))
	if err != nil {
		return nil, unix.EFAULT
	}
	d := &dest{family: binary.NativeEndian.Uint16(b), raw: b}
	switch d.family {
	case unix.AF_INET:
		if len(b) < 16 {
			return nil, unix.EINVAL
		}
		d.port = binary.BigEndian.Uint16(b[2:])
		d.addr = netip.AddrFrom4([4]byte(b[4:8]))
	case unix.AF_INET6:
		if len(b) < 24 {
			return nil, unix.EINVAL
		}
		d.port = binary.BigEndian.Uint16(b[2:])
		d.addr = netip.AddrFrom16([16]byte(b[8:24])).Unmap()
	case unix.AF_UNIX:
		path := b[2:]
		if len(path) > 0 && path[0] != 0 {
			if i := strings.IndexByte(string(path), 0); i >= 0 {
				path = path[:i]
			}
			d.unix = string(path)
		}
	}
	return d, 0
}

// socket is a duplicate of one of the program's sockets.
type socket struct {
	fd       int
	family   int
	proto    int
	sockType int
}

func (s *socket) close() { unix.Close(s.fd) }

// addressMatters reports whether the kernel would use an address given
// with a send on this socket (with these flags): on datagram sockets it
// picks the destination, even when connected; on a TCP socket only a fast
// open uses it; stream and seqpacket unix sockets, and other families'
// sockets, ignore it or are not the network policy's concern. A send
// without an address on such a socket must be made from a copy of the
// message, since the program could add an address after it was read.
func (s *socket) addressMatters(flags int) bool {
	switch {
	case s.family != unix.AF_INET && s.family != unix.AF_INET6 && s.family != unix.AF_UNIX:
		return false
	case s.sockType == unix.SOCK_DGRAM:
		return true
	case s.proto == unix.IPPROTO_TCP:
		return flags&unix.MSG_FASTOPEN != 0
	}
	return false
}

// nonblocking reports whether the program's socket is in non-blocking mode
// (a flag of the open file, which the duplicate shares).
func (s *socket) nonblocking() bool {
	fl, err := unix.FcntlInt(uintptr(s.fd), unix.F_GETFL, 0)
	return err == nil && fl&unix.O_NONBLOCK != 0
}

// interrupt wakes an operation blocked on the socket: a connect in progress
// is aborted (connect to AF_UNSPEC) and a send waiting for buffer space
// fails (shutdown).
func (s *socket) interrupt() {
	unspec := make([]byte, 16)
	binary.NativeEndian.PutUint16(unspec, unix.AF_UNSPEC)
	rawConnect(s.fd, unspec)
	unix.Shutdown(s.fd, unix.SHUT_RDWR)
}

// takeSocket duplicates the program's fd into the supervisor.
func (g *Gate) takeSocket(hc *notify.HandlerCtx, fd uint64) (*socket, unix.Errno) {
	pidfd, err := unix.PidfdOpen(g.cfg.TGID(int(hc.Notif.PID)), 0)
	if err != nil {
		return nil, unix.ESRCH
	}
	defer unix.Close(pidfd)
	dup, err := unix.PidfdGetfd(pidfd, int(int32(fd)), 0)
	if err != nil {
		return nil, unix.EBADF
	}
	s := &socket{fd: dup}
	if s.proto, err = unix.GetsockoptInt(dup, unix.SOL_SOCKET, unix.SO_PROTOCOL); err != nil {
		unix.Close(dup)
		return nil, unix.ENOTSOCK
	}
	s.sockType, _ = unix.GetsockoptInt(dup, unix.SOL_SOCKET, unix.SO_TYPE)
	s.family, _ = unix.GetsockoptInt(dup, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if notify.TaskAlive(hc) != nil {
		unix.Close(dup)
		return nil, unix.ESRCH
	}
	return s, 0
}

// protoOf names the rule protocol of an inet socket.
func protoOf(s *socket) (netpolicy.Proto, bool) {
	switch s.proto {
	case unix.IPPROTO_TCP:
		return netpolicy.TCP, true
	case unix.IPPROTO_UDP:
		return netpolicy.UDP, true
	case unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6:
		return netpolicy.ICMP, true
	}
	return 0, false
}

// allowed judges an inet destination.
func (g *Gate) allowed(p netpolicy.Proto, d *dest) bool {
	port := d.port
	if p == netpolicy.ICMP {
		port = 0
	}
	match := netpolicy.Match(g.cfg.Rules, p, d.addr, port)
	switch g.cfg.Mode {
	case AllowList:
		return match
	case DenyList:
		return !match
	}
	return false
}

func (g *Gate) connect(_ context.Context, hc *notify.HandlerCtx) notify.Action {
	args := hc.Notif.Data.Args
	d, errno := readSockaddr(hc, args[1], args[2])
	if errno != 0 {
		return notify.Errno(errno)
	}
	switch d.family {
	case unix.AF_INET, unix.AF_INET6:
		if g.cfg.Mode == Closed || (g.cfg.TCPByLandlock && g.cfg.OnlyTCP) {
			return notify.Continue() // Landlock judges TCP; UDP and ICMP sockets do not exist
		}
		s, errno := g.takeSocket(hc, args[0])
		if errno != 0 {
			return notify.Errno(errno)
		}
		p, ok := protoOf(s)
		if !ok {
			s.close()
			return notify.Errno(unix.EAFNOSUPPORT)
		}
		if p == netpolicy.TCP && g.cfg.TCPByLandlock {
			s.close()
			return notify.Continue()
		}
		if !g.allowed(p, d) {
			s.close()
			return notify.Errno(unix.ECONNREFUSED)
		}
		return g.perform(s, 0, func(ctx context.Context) notify.Action {
			return answer(g.do(ctx, s, func() (int, error) { return 0, rawConnect(s.fd, d.raw) }))
		})
	case unix.AF_UNIX:
		if d.unix == "" {
			return notify.Continue() // abstract or unnamed: Landlock scopes abstract sockets
		}
		s, errno := g.takeSocket(hc, args[0])
		if errno != 0 {
			return notify.Errno(errno)
		}
		return g.perform(s, 0, func(ctx context.Context) notify.Action {
			return answer(g.viaUnixPin(ctx, hc, s, d, func(raw []byte) (int, error) { return 0, rawConnect(s.fd, raw) }))
		})
	}
	return notify.Continue()
}

// answer turns a count or an errno into the syscall's answer.
func answer(n int, errno unix.Errno) notify.Action {
	if errno != 0 {
		return notify.Errno(errno)
	}
	return notify.ReturnValue(int64(n))
}

func (g *Gate) sendto(_ context.Context, hc *notify.HandlerCtx) notify.Action {
	args := hc.Notif.Data.Args
	if args[4] == 0 {
		return notify.Continue() // a connected socket: its peer was judged at connect
	}
	d, errno := readSockaddr(hc, args[4], args[5])
	if errno != 0 {
		return notify.Errno(errno)
	}
	if !judged(d) {
		return notify.Continue()
	}
	data, errno := readData(hc, []iovec{{args[1], args[2]}})
	if errno != 0 {
		return notify.Errno(errno)
	}
	s, errno := g.takeSocket(hc, args[0])
	if errno != 0 {
		return notify.Errno(errno)
	}
	flags := int(args[3])
	if d.family != unix.AF_UNIX {
		if errno := g.judgeInet(s, d); errno != 0 {
			s.close()
			return notify.Errno(errno)
		}
	}
	return g.perform(s, flags, func(ctx context.Context) notify.Action {
		return answer(g.send(ctx, hc, s, d, func(raw []byte) (int, error) { return rawSendto(s.fd, data, flags, raw) }))
	})
}

// judged reports whether a destination is one the gate judges: inet, or a
// named unix socket.
func judged(d *dest) bool {
	return d.family == unix.AF_INET || d.family == unix.AF_INET6 || (d.family == unix.AF_UNIX && d.unix != "")
}

// judgeInet decides a send with an explicit destination (UDP, ICMP, or a
// TCP fast open, which connects). It always applies the rules itself, TCP
// included: a fast-open send connects without passing Landlock's connect
// check.
func (g *Gate) judgeInet(s *socket, d *dest) unix.Errno {
	p, ok := protoOf(s)
	if !ok {
		return unix.EAFNOSUPPORT
	}
	if !g.allowed(p, d) {
		return unix.ECONNREFUSED
	}
	return 0
}

// perform runs work, which operates on s on the program's behalf, and then
// closes s. On a blocking socket the operation can wait as long as the peer
// decides (a connect for its handshake, a send for buffer space), so it
// runs deferred, off the dispatch path, where the rest of the sandbox's
// syscalls would otherwise queue behind it.
func (g *Gate) perform(s *socket, flags int, work func(ctx context.Context) notify.Action) notify.Action {
	if flags&unix.MSG_DONTWAIT != 0 || s.nonblocking() {
		defer s.close()
		return work(context.Background())
	}
	return notify.Defer(func(ctx context.Context) notify.Action {
		defer s.close()
		return work(ctx)
	})
}

// do runs an operation on s on a confined helper thread. If ctx ends
// first (the sandbox is ending), the socket is disconnected and shut down,
// which wakes an operation waiting on it.
func (g *Gate) do(ctx context.Context, s *socket, op func() (int, error)) (int, unix.Errno) {
	var n int
	var err error
	if derr := g.cfg.Pool.DoContext(ctx, func() { n, err = op() }, s.interrupt); derr != nil {
		return 0, unix.EIO
	}
	return n, errnoOf(err)
}

// send sends to d through op: an inet destination directly, a named unix
// socket through its pinned inode.
func (g *Gate) send(ctx context.Context, hc *notify.HandlerCtx, s *socket, d *dest, op func(raw []byte) (int, error)) (int, unix.Errno) {
	if d.family == unix.AF_UNIX && d.unix != "" {
		return g.viaUnixPin(ctx, hc, s, d, op)
	}
	return g.do(ctx, s, func() (int, error) { return op(d.raw) })
}

// viaUnixPin reaches a named unix socket: its path, resolved as the program
// would resolve it, must be a socket under a writable grant; the operation
// then addresses the pinned inode (/proc/self/fd/N), never the path again.
func (g *Gate) viaUnixPin(ctx context.Context, hc *notify.HandlerCtx, s *socket, d *dest, op func(raw []byte) (int, error)) (int, unix.Errno) {
	dirfd := unix.AT_FDCWD
	if !strings.HasPrefix(d.unix, "/") {
		// The program's cwd is opened here, by the supervisor: the helper
		// thread's Landlock domain may neither read /proc nor look into
		// a task of another domain.
		cwd, err := unix.Open("/proc/"+strconv.FormatUint(uint64(hc.Notif.PID), 10)+"/cwd", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return 0, unix.ESRCH
		}
		defer unix.Close(cwd)
		if notify.TaskAlive(hc) != nil {
			return 0, unix.ESRCH
		}
		dirfd = cwd
	}
	var n int
	var errno unix.Errno
	if derr := g.cfg.Pool.DoContext(ctx, func() { n, errno = g.pinned(dirfd, d.unix, op) }, s.interrupt); derr != nil {
		return 0, unix.EIO
	}
	if notify.TaskAlive(hc) != nil {
		return 0, unix.ESRCH
	}
	return n, errno
}

// pinned runs on a helper thread: open the socket file at path (relative
// to dirfd) with O_PATH, following no magic links, check where it is, and
// address it through the pin.
func (g *Gate) pinned(dirfd int, path string, op func(raw []byte) (int, error)) (int, unix.Errno) {
	pin, err := unix.Openat2(dirfd, path, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return 0, errnoOf(err)
	}
	defer unix.Close(pin)
	var st unix.Stat_t
	if err := unix.Fstat(pin, &st); err != nil {
		return 0, errnoOf(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return 0, unix.ECONNREFUSED
	}
	canon, err := filepath.EvalSymlinks("/proc/self/fd/" + strconv.Itoa(pin))
	if err != nil || !under(canon, g.cfg.Writable) {
		return 0, unix.EACCES
	}
	n, err := op(sockaddrUnix("/proc/self/fd/" + strconv.Itoa(pin)))
	return n, errnoOf(err)
}

// under reports whether p is one of roots or below one.
func under(p string, roots []string) bool {
	for _, r := range roots {
		if r == "/" || p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

func sockaddrUnix(path string) []byte {
	b := make([]byte, 2+len(path)+1)
	binary.NativeEndian.PutUint16(b, unix.AF_UNIX)
	copy(b[2:], path)
	return b
}

func (g *Gate) bind(_ context.Context, hc *notify.HandlerCtx) notify.Action {
	args := hc.Notif.Data.Args
	d, errno := readSockaddr(hc, args[1], args[2])
	if errno != 0 {
		return notify.Errno(errno)
	}
	if d.family != unix.AF_INET && d.family != unix.AF_INET6 {
		return notify.Continue()
	}
	s, errno := g.takeSocket(hc, args[0])
	if errno != 0 {
		return notify.Errno(errno)
	}
	defer s.close()
	if s.proto == unix.IPPROTO_TCP && d.port != 0 {
		for _, r := range g.cfg.DenyBind {
			if d.port >= r.Lo && d.port <= r.Hi {
				return notify.Errno(unix.EACCES)
			}
		}
	}
	// A bind never waits.
	return answer(g.do(context.Background(), s, func() (int, error) { return 0, rawBind(s.fd, d.raw) }))
}
