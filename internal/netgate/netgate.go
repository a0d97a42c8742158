//go:build linux

// Package netgate is the builtin handler family that enforces a sandbox's
// network policy where Landlock cannot: destination rules on hosts, IPs and
// CIDRs, UDP and ICMP, TCP bind denylists, listen's implicit bind, and
// unix sockets (named ones under the writable grants and outside the denied
// paths, abstract ones within the sandbox).
//
// No handler here ever answers Continue after looking at memory or at the
// socket behind an fd number: a sibling thread of the program can rewrite
// an address between the supervisor's read and the kernel's own, and swap
// the socket an fd number names (dup2) between the supervisor's copy of it
// and the kernel's lookup. Every connect, send with an address, sendmsg,
// sendmmsg, bind and listen is therefore done on the program's behalf: the
// supervisor takes a duplicate of the program's socket (pidfd_getfd), reads
// its domain, type and protocol from the kernel (SO_DOMAIN, SO_TYPE,
// SO_PROTOCOL), reads the address once into a private copy, judges that
// copy as the kernel will read it for that socket, and performs the
// operation itself with the duplicate and the copy, on a thread confined
// like the program (same Landlock ruleset, so TCP port rules still hold).
// The only Continue left is sendto with no address, which is decided on
// registers alone.
package netgate

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/netip"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/confine"
	"github.com/sandlock-go/sandlock/internal/netpolicy"
	"github.com/sandlock-go/sandlock/internal/notify"
)

// Mode is how destinations are judged.
type Mode uint8

const (
	// Closed: no rules. TCP is left to Landlock (which denies it), UDP and
	// ICMP sockets cannot be created; only unix sockets are judged.
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
	// TCPByLandlock says that Landlock enforces every TCP rule (port-only
	// rules, or none) in the program's domain. The gate judges a connect
	// it performs by the same rules, and refuses with Landlock's EACCES.
	TCPByLandlock bool
	// DenyBind lists TCP ports that may not be bound (NetDenyBind).
	DenyBind []netpolicy.PortRange
	// Writable are the canonical paths of the writable grants: the only
	// places a named unix socket may be reached.
	Writable []string
	// Denied, if set, refuses a named unix socket that is or is inside a
	// denied path (FSDenied); pinned is an O_PATH descriptor of the socket
	// file.
	Denied func(pinned int) error
	// DeniedEntry, if set, refuses creating name in the directory parent
	// (an O_PATH descriptor): a unix socket bind under FSDenied. Binds are
	// then notified.
	DeniedEntry func(parent int, name string) error
	// AbstractScoped says the program's Landlock domain scopes abstract
	// unix sockets (abstract-unix-socket-scope active): see abstract.go.
	AbstractScoped bool
	// ProcessIDs lists the sandbox's live processes and Traced reports
	// whether a task is one of them (for the abstract socket scope).
	ProcessIDs func() []int
	Traced     func(pid int) bool
	// TGID maps a task to its process (for pidfd_getfd).
	TGID func(tid int) int
	// Pool runs operations on the program's behalf, confined like it.
	Pool *confine.Pool
	// Unscoped runs abstract unix socket operations that the supervisor
	// judged within the sandbox's scope: threads without a Landlock domain
	// (NO_NEW_PRIVS, no capabilities).
	Unscoped *confine.Pool
}

// Gate serves the handlers.
type Gate struct {
	cfg Config

	hintsMu sync.Mutex
	hints   map[string]ownerHint // abstract name → where its owner was found
}

// newGate returns a gate.
func newGate(cfg Config) *Gate { return &Gate{cfg: cfg} }

// maxSockaddr is sizeof(struct sockaddr_storage): the longest address the
// kernel copies.
const maxSockaddr = 128

// sizeofSockaddrUnix is sizeof(struct sockaddr_un): a longer unix address
// is invalid.
const sizeofSockaddrUnix = 110

// readSockaddr copies an address argument out of the program's memory, as
// the kernel's move_addr_to_kernel does: the length is an int; negative or
// longer than a sockaddr_storage is EINVAL, zero copies nothing.
func readSockaddr(hc *notify.HandlerCtx, addr, length uint64) ([]byte, unix.Errno) {
	n := int32(uint32(length))
	if n < 0 || n > maxSockaddr {
		return nil, unix.EINVAL
	}
	if n == 0 {
		return []byte{}, 0
	}
	b, err := hc.ReadMem(addr, int(n))
	if err != nil {
		return nil, unix.EFAULT
	}
	return b, 0
}

// socket is a duplicate of one of the program's sockets.
type socket struct {
	fd       int
	family   int
	proto    int
	sockType int
}

func (s *socket) close() { unix.Close(s.fd) }

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

// inet reports whether the socket is an IPv4 or IPv6 one.
func (s *socket) inet() bool { return s.family == unix.AF_INET || s.family == unix.AF_INET6 }

// takeSocket duplicates the program's fd into the supervisor. The
// duplicate is the socket the operation is judged on and done with: what
// the fd number names afterwards does not matter.
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

// op is what is done with an address.
type op uint8

const (
	opConnect op = iota
	opSend
	opBind
)

// targetKind is what the kernel will make of an address on a socket.
type targetKind uint8

const (
	// asIs: the kernel reads no destination the policy governs from it (it
	// rejects the address, disconnects, or ignores it): it is passed on as
	// copied, and the kernel answers as it would answer the program.
	asIs targetKind = iota
	// inetTarget: an IPv4 or IPv6 address and port.
	inetTarget
	// pathTarget: a named unix socket.
	pathTarget
	// abstractTarget: an abstract unix socket.
	abstractTarget
)

// target is an address copied from the program, read as the kernel will
// read it for one socket and one operation.
type target struct {
	kind targetKind
	raw  []byte     // the copy, as the kernel gets it
	addr netip.Addr // inetTarget: IPv4-mapped addresses unmapped
	port uint16
	v6   bool   // inetTarget read as a sockaddr_in6 (else a sockaddr_in)
	path string // pathTarget
}

// target reads raw as the kernel will for op on s (with the send flags).
// It follows the kernel's own reading, so that no address the kernel uses
// escapes the judgement, and keeps to its strict side where protocols
// differ (an AF_UNSPEC send on an IPv4 socket is judged as the IPv4
// address UDP takes it for, whatever the protocol):
//
//   - IPv4 sockets read AF_INET; UDP also sends to an AF_UNSPEC address
//     (and bind takes AF_UNSPEC with INADDR_ANY), while connect with
//     AF_UNSPEC disconnects.
//   - IPv6 sockets read AF_INET6; UDP ones also connect and send to AF_INET
//     addresses.
//   - A TCP send reads its address only for a fast open; unix stream and
//     seqpacket sends never do.
//   - Unix sockets read AF_UNIX of 3 to 110 bytes: abstract if sun_path
//     starts with a NUL, else a path up to the first NUL.
func (s *socket) target(raw []byte, o op, flags int) target {
	t := target{raw: raw}
	if len(raw) < 2 {
		return t
	}
	family := binary.NativeEndian.Uint16(raw)
	switch s.family {
	case unix.AF_INET, unix.AF_INET6:
		if o == opSend && s.proto == unix.IPPROTO_TCP && flags&unix.MSG_FASTOPEN == 0 {
			return t
		}
		udp := s.proto == unix.IPPROTO_UDP || s.proto == unix.IPPROTO_UDPLITE
		switch {
		case family == unix.AF_INET6 && s.family == unix.AF_INET6 && len(raw) >= 24:
			t.kind, t.v6 = inetTarget, true
			t.addr = netip.AddrFrom16([16]byte(raw[8:24])).Unmap()
		case len(raw) < 16:
			return t
		case family == unix.AF_INET && (s.family == unix.AF_INET || (udp && o != opBind)),
			family == unix.AF_UNSPEC && s.family == unix.AF_INET && o != opConnect:
			t.kind = inetTarget
			t.addr = netip.AddrFrom4([4]byte(raw[4:8]))
		default:
			return t
		}
		t.port = binary.BigEndian.Uint16(raw[2:])
	case unix.AF_UNIX:
		if family != unix.AF_UNIX || len(raw) <= 2 || len(raw) > sizeofSockaddrUnix {
			return t
		}
		if o == opSend && s.sockType != unix.SOCK_DGRAM {
			return t
		}
		if raw[2] == 0 {
			t.kind = abstractTarget
			return t
		}
		path := raw[2:]
		if i := bytes.IndexByte(path, 0); i >= 0 {
			path = path[:i]
		}
		t.kind, t.path = pathTarget, string(path)
	}
	return t
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

// judge decides a connect or send to t. Inet destinations meet the rules
// (after the unspecified address is made explicit, see localize); a TCP
// connect refused under Landlock's port rules fails as Landlock fails it.
// Unix sockets are judged where they are reached (viaUnixPin,
// viaAbstract).
func (g *Gate) judge(s *socket, t *target, o op) unix.Errno {
	if t.kind != inetTarget {
		return 0
	}
	p, ok := protoOf(s)
	if !ok {
		return unix.EAFNOSUPPORT
	}
	s.localize(t, o)
	if !g.allowed(p, t) {
		if o == opConnect && p == netpolicy.TCP && g.cfg.TCPByLandlock {
			return unix.EACCES
		}
		return unix.ECONNREFUSED
	}
	return 0
}

// allowed judges an inet destination.
func (g *Gate) allowed(p netpolicy.Proto, t *target) bool {
	port := t.port
	if p == netpolicy.ICMP {
		port = 0
	}
	match := netpolicy.Match(g.cfg.Rules, p, t.addr, port)
	switch g.cfg.Mode {
	case AllowList:
		return match
	case DenyList:
		return !match
	}
	return false
}

var (
	loopback4 = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	loopback6 = netip.IPv6Loopback()
)

// localize replaces an unspecified destination with the address the
// kernel would reach for it, in the copy that is judged and sent: 0.0.0.0
// (also as ::ffff:0.0.0.0) is routed to the socket's own bound address, or
// to 127.0.0.1 for a socket bound to none; :: is ::1 (for a connect from a
// socket bound to an IPv4-mapped address, ::ffff:127.0.0.1). The rules
// then judge the local host by its name, and a socket the program binds
// meanwhile cannot change where the copy goes.
func (s *socket) localize(t *target, o op) {
	if !t.addr.IsUnspecified() {
		return
	}
	bound, mapped := s.boundAddr()
	eff := loopback6
	switch {
	case t.addr.Is4():
		eff = loopback4
		if bound.Is4() && !bound.IsUnspecified() {
			eff = bound
		}
	case o == opConnect && mapped:
		eff = loopback4 // written as ::ffff:127.0.0.1
	}
	raw := bytes.Clone(t.raw)
	if t.v6 {
		a := eff.As16() // IPv4 as IPv4-mapped
		copy(raw[8:24], a[:])
	} else {
		a := eff.As4()
		copy(raw[4:8], a[:])
	}
	t.raw, t.addr = raw, eff
}

// boundAddr returns the socket's bound address (unmapped) and whether it
// is an IPv4-mapped IPv6 address; the zero Addr if it has none.
func (s *socket) boundAddr() (netip.Addr, bool) {
	sa, err := unix.Getsockname(s.fd)
	if err != nil {
		return netip.Addr{}, false
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(sa.Addr), false
	case *unix.SockaddrInet6:
		a := netip.AddrFrom16(sa.Addr)
		return a.Unmap(), a.Is4In6()
	}
	return netip.Addr{}, false
}

func (g *Gate) connect(_ context.Context, hc *notify.HandlerCtx) notify.Action {
	args := hc.Notif.Data.Args
	s, errno := g.takeSocket(hc, args[0])
	if errno != 0 {
		return notify.Errno(errno)
	}
	raw, errno := readSockaddr(hc, args[1], args[2])
	if errno != 0 {
		s.close()
		return notify.Errno(errno)
	}
	t := s.target(raw, opConnect, 0)
	if errno := g.judge(s, &t, opConnect); errno != 0 {
		s.close()
		return notify.Errno(errno)
	}
	return g.perform(s, 0, nil, func(ctx context.Context) notify.Action {
		return answer(g.reach(ctx, hc, s, &t, func(sa []byte) (int, error) { return 0, rawConnect(s.fd, sa) }))
	})
}

// answer turns a count or an errno into the syscall's answer.
func answer(n int, errno unix.Errno) notify.Action {
	if errno != 0 {
		return notify.Errno(errno)
	}
	return notify.ReturnValue(int64(n))
}

// perform runs work, which operates on s on the program's behalf, and then
// closes s and calls done (if set) to release what work uses. On a
// blocking socket the operation can wait as long as the peer decides (a
// connect for its handshake, a send for buffer space), so it runs
// deferred: bounded in number, interrupted when the sandbox ends, and
// with another receiver taking over the rest of the sandbox's syscalls if
// it blocks for long.
func (g *Gate) perform(s *socket, flags int, done func(), work func(ctx context.Context) notify.Action) notify.Action {
	finish := func() {
		s.close()
		if done != nil {
			done()
		}
	}
	if flags&unix.MSG_DONTWAIT != 0 || s.nonblocking() {
		defer finish()
		return work(context.Background())
	}
	// A deferred answer the supervisor refuses (too many in flight: the
	// syscall fails with EAGAIN) never runs: the garbage collector then
	// releases what it held, instead of leaking the duplicates.
	guard := new(byte)
	cleanup := runtime.AddCleanup(guard, func(finish func()) { finish() }, finish)
	return notify.Defer(func(ctx context.Context) notify.Action {
		cleanup.Stop()
		runtime.KeepAlive(guard)
		defer finish()
		return work(ctx)
	})
}

// do runs an operation on s on a confined helper thread.
func (g *Gate) do(ctx context.Context, s *socket, op func() (int, error)) (int, unix.Errno) {
	return doOn(ctx, g.cfg.Pool, s, op)
}

// doOn runs an operation on s on a thread of pool. If ctx ends first (the
// sandbox is ending), the socket is disconnected and shut down, which wakes
// an operation waiting on it.
func doOn(ctx context.Context, pool *confine.Pool, s *socket, op func() (int, error)) (int, unix.Errno) {
	var n int
	var err error
	run := func() { n, err = op() }
	var derr error
	if ctx.Done() == nil {
		derr = pool.Do(run) // an operation that cannot block: nothing to watch
	} else {
		derr = pool.DoContext(ctx, run, s.interrupt)
	}
	if derr != nil {
		return 0, unix.EIO
	}
	return n, errnoOf(err)
}

// reach does op (a connect or a send, given the address to use) towards t
// on the program's behalf: a named unix socket through its pinned inode,
// an abstract one within the emulated scope, anything else with the copy
// as judged.
func (g *Gate) reach(ctx context.Context, hc *notify.HandlerCtx, s *socket, t *target, op func(sa []byte) (int, error)) (int, unix.Errno) {
	switch t.kind {
	case pathTarget:
		return g.viaUnixPin(ctx, hc, s, t.path, op)
	case abstractTarget:
		return g.viaAbstract(ctx, s, t.raw, op)
	}
	if t.kind == inetTarget {
		// The gate's judgment of its private copy is the whole verdict
		// (under port rules the same as Landlock's): the operation runs
		// here, not on a helper thread in the program's Landlock domain,
		// which would add two thread hand-offs to every connect.
		return doHere(ctx, s, func() (int, error) { return op(t.raw) })
	}
	return g.do(ctx, s, func() (int, error) { return op(t.raw) })
}

// doHere runs an operation on s on the calling thread (the receiver, also
// for a blocking socket: see notify.Defer). If ctx ends first (the sandbox
// is ending), the socket is disconnected and shut down, as doOn does, and
// doHere returns only once that is over: the duplicate is closed after it
// returns, and its fd number must not be interrupted once it may name
// another file.
func doHere(ctx context.Context, s *socket, op func() (int, error)) (int, unix.Errno) {
	var n int
	var err error
	confine.Interruptible(ctx, func() { n, err = op() }, s.interrupt)
	return n, errnoOf(err)
}

func (g *Gate) bind(_ context.Context, hc *notify.HandlerCtx) notify.Action {
	args := hc.Notif.Data.Args
	s, errno := g.takeSocket(hc, args[0])
	if errno != 0 {
		return notify.Errno(errno)
	}
	defer s.close()
	raw, errno := readSockaddr(hc, args[1], args[2])
	if errno != 0 {
		return notify.Errno(errno)
	}
	t := s.target(raw, opBind, 0)
	switch t.kind {
	case inetTarget:
		if s.proto == unix.IPPROTO_TCP && g.deniedBind(t.port) {
			return notify.Errno(unix.EACCES)
		}
	case pathTarget:
		return answer(0, g.bindPath(hc, s, &t))
	}
	// A bind never waits.
	return answer(g.do(context.Background(), s, func() (int, error) { return 0, rawBind(s.fd, t.raw) }))
}

// deniedBind reports whether a TCP port may not be bound (port 0 asks for
// any free port: what it gets is judged at listen).
func (g *Gate) deniedBind(port uint16) bool {
	if port == 0 {
		return false
	}
	for _, r := range g.cfg.DenyBind {
		if port >= r.Lo && port <= r.Hi {
			return true
		}
	}
	return false
}

// listen: a TCP socket that was never bound gets a free port from listen
// itself, which neither Landlock's bind check nor the bind handler sees,
// and then accepts connections on it. The supervisor listens on the
// program's behalf instead, on a helper thread: an unbound socket is first
// bound to port 0 of the wildcard address, which Landlock judges as it
// judges such a bind (refused unless any port may be bound); under
// NetDenyBind, a socket whose port is denied is refused.
func (g *Gate) listen(_ context.Context, hc *notify.HandlerCtx) notify.Action {
	args := hc.Notif.Data.Args
	s, errno := g.takeSocket(hc, args[0])
	if errno != 0 {
		return notify.Errno(errno)
	}
	defer s.close()
	backlog := int(int32(args[1]))
	if derr := g.cfg.Pool.Do(func() { errno = g.listenOn(s, backlog) }); derr != nil {
		return notify.Errno(unix.EIO)
	}
	return answer(0, errno)
}

// listenOn runs on a helper thread.
func (g *Gate) listenOn(s *socket, backlog int) unix.Errno {
	if !s.inet() || s.proto != unix.IPPROTO_TCP {
		return errnoOf(unix.Listen(s.fd, backlog))
	}
	port, errno := boundPort(s.fd)
	if errno != 0 {
		return errno
	}
	if port == 0 {
		wildcard := make([]byte, 16)
		if s.family == unix.AF_INET6 {
			wildcard = make([]byte, 28)
		}
		binary.NativeEndian.PutUint16(wildcard, uint16(s.family))
		// EINVAL: the program bound it meanwhile; its port is read below.
		if err := rawBind(s.fd, wildcard); err != nil && err != unix.EINVAL {
			return errnoOf(err)
		}
		if port, errno = boundPort(s.fd); errno != 0 {
			return errno
		}
	}
	if g.deniedBind(port) {
		return unix.EACCES
	}
	if err := unix.Listen(s.fd, backlog); err != nil {
		return errnoOf(err)
	}
	if port == 0 {
		// Bound to an address without a port (IP_BIND_ADDRESS_NO_PORT,
		// possible only where binds are not Landlock's): listen picked
		// one, which is judged now; a denied one stops the listening.
		if port, errno = boundPort(s.fd); errno != 0 || g.deniedBind(port) {
			unix.Shutdown(s.fd, unix.SHUT_RDWR)
			return unix.EACCES
		}
	}
	return 0
}

// boundPort returns an inet socket's local port (0: none yet).
func boundPort(fd int) (uint16, unix.Errno) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return 0, errnoOf(err)
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return uint16(sa.Port), 0
	case *unix.SockaddrInet6:
		return uint16(sa.Port), 0
	}
	return 0, unix.EAFNOSUPPORT
}

func errnoOf(err error) unix.Errno { return notify.ErrnoFor(err, unix.EIO) }
