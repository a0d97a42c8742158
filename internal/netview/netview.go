//go:build linux

// Package netview shows a sandboxed program the loopback interface only.
//
// A netlink-route socket (what if_nameindex, getifaddrs, getaddrinfo's
// AI_ADDRCONFIG, Go's net.Interfaces and ip(8) list interfaces with) is
// answered with one end of a unix seqpacket socket pair: the supervisor
// serves the other end, answering link and address dumps with lo and its
// addresses, other queries with nothing, and changes with EPERM. The
// decision is on the socket call's registers alone. The bind and
// getsockname that netlink users make on such a socket, which a unix socket
// would refuse or answer in its own family, are answered from the
// supervisor's duplicate of the program's descriptor (pidfd_getfd): the
// object behind the fd number, not the number, is what is recognised, and
// a socket that is not one of the view's goes to the kernel unchanged.
// Other netlink protocols are refused by the filter, and the interface
// ioctls fail with EPERM there too: every socket ioctl that names an
// interface (SIOCGIFCONF, SIOCGIFADDR, SIOCGIFMTU, …, sysfilter's
// deniedIoctlBlocks), so that none tells a name the host has from one it
// lacks.
package netview

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/plan"
	"github.com/sandlock-go/sandlock/internal/taskpath"
)

// maxSockets bounds the view's sockets open at once in one sandbox: each
// holds a goroutine and two descriptors in the supervisor. libc opens one
// per query and closes it.
const maxSockets = 256

// sockaddrNL is sizeof(struct sockaddr_nl).
const sockaddrNL = 12

type sockID struct{ dev, ino uint64 }

// socket is one of the view's sockets.
type socket struct {
	id   sockID
	peer *os.File // the supervisor's end
	mu   sync.Mutex
	port uint32 // the netlink port id it reports and answers to
}

func (s *socket) portID() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.port
}

// View serves the handlers of one sandbox.
type View struct {
	tgid func(tid int) int

	mu      sync.Mutex
	sockets map[sockID]*socket
	closed  bool
	seq     uint32
}

// New returns a view. tgid returns a task's thread group.
func New(tgid func(tid int) int) *View {
	return &View{tgid: tgid, sockets: map[sockID]*socket{}}
}

// Feature is the interface view as a builtin feature, in every supervised
// sandbox.
type Feature struct{}

// Plan adds the handlers in the virtualize phase: socket, bind and
// getsockname. At finish, when nothing else watches socket, the filter is
// told to notify only netlink-route sockets (sysfilter's
// NotifyNetlinkRoute), so that no other socket call pays a round trip.
func (Feature) Plan(b *plan.Builder) error {
	if !b.Supervised {
		return nil
	}
	v := New(b.Run().TGID)
	for _, h := range []struct {
		name string
		fn   notify.HandlerFunc
	}{{"socket", v.socket}, {"bind", v.bind}, {"getsockname", v.getsockname}} {
		b.HandleNamed(h.name, plan.Virtualize, "interface view: "+h.name, true, h.fn)
	}
	socket := b.Arch.MustNr("socket")
	b.AtFinish(func() error {
		if b.Table().Len(socket) == 1 {
			b.Filter.NotifyNetlinkRoute = true
		}
		return nil
	})
	b.Close(v.Close)
	return nil
}

// Close closes the supervisor's ends, which ends their goroutines; a
// socket made afterwards is refused.
func (v *View) Close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.closed = true
	for _, s := range v.sockets {
		s.peer.Close()
	}
}

// socket answers socket(AF_NETLINK, SOCK_RAW or SOCK_DGRAM, NETLINK_ROUTE)
// with a socket of the view; any other socket goes on.
func (v *View) socket(_ context.Context, hc *notify.HandlerCtx) notify.Action {
	args := hc.Notif.Data.Args
	if int32(args[0]) != unix.AF_NETLINK || int32(args[2]) != unix.NETLINK_ROUTE {
		return notify.Continue()
	}
	typ := int(int32(args[1]))
	kind := typ &^ (unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC)
	if kind != unix.SOCK_RAW && kind != unix.SOCK_DGRAM {
		return notify.Continue() // the kernel refuses it
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return notify.Errno(unix.ENOBUFS)
	}
	mine, peer := fds[0], fds[1]
	if err := bindSender(peer); err != nil {
		unix.Close(mine)
		unix.Close(peer)
		return notify.Errno(unix.ENOBUFS)
	}
	var st unix.Stat_t
	if err := unix.Fstat(mine, &st); err != nil {
		unix.Close(mine)
		unix.Close(peer)
		return notify.Errno(unix.ENOBUFS)
	}
	if typ&unix.SOCK_NONBLOCK != 0 {
		unix.SetNonblock(mine, true)
	}
	// The peer is read through the runtime's poller, so that Close
	// unblocks it.
	unix.SetNonblock(peer, true)
	s := &socket{id: sockID{st.Dev, st.Ino}, peer: os.NewFile(uintptr(peer), "sandlock-netlink")}
	if !v.add(s, v.tgid(int(hc.Notif.PID))) {
		unix.Close(mine)
		s.peer.Close()
		return notify.Errno(unix.ENOBUFS)
	}
	go v.serve(s)
	var flags uint32
	if typ&unix.SOCK_CLOEXEC != 0 {
		flags = unix.O_CLOEXEC
	}
	return notify.InjectFDSend(os.NewFile(uintptr(mine), "sandlock-netlink"), flags)
}

// bindSender gives the supervisor's end the address the program reads
// as the sender of each answer. A netlink user checks that the answers
// come from the kernel, port 0 — glibc reads the port from a sockaddr_nl
// it never initialised, so an unnamed sender, which leaves it as it was,
// would make it wait forever — and some check that the address is as
// long as a sockaddr_nl. An abstract unix address of 10 bytes is 12 bytes
// long, and its bytes 4 to 7 (the port of a sockaddr_nl) are zero: a NUL
// (abstract), five NULs, and four bytes that make it unique on the host.
func bindSender(fd int) error {
	var err error
	for range 16 {
		var tag [4]byte
		if _, err = rand.Read(tag[:]); err != nil {
			return err
		}
		err = unix.Bind(fd, &unix.SockaddrUnix{Name: "\x00\x00\x00\x00\x00\x00" + string(tag[:])})
		if err != unix.EADDRINUSE {
			return err
		}
	}
	return err
}

// add records a new socket and gives it a port id as the kernel would: the
// process's id for its first, then negative numbers.
func (v *View) add(s *socket, tgid int) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed || len(v.sockets) >= maxSockets {
		return false
	}
	s.port = uint32(tgid)
	for _, o := range v.sockets {
		if o.port == s.port {
			v.seq++
			s.port = uint32(-4096 - int32(v.seq))
			break
		}
	}
	v.sockets[s.id] = s
	return true
}

// serve answers the requests on one socket until the program has closed
// its end, or the sandbox has ended.
func (v *View) serve(s *socket) {
	defer func() {
		v.mu.Lock()
		delete(v.sockets, s.id)
		v.mu.Unlock()
		s.peer.Close()
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := s.peer.Read(buf)
		if err != nil || n == 0 {
			return
		}
		if out := Respond(buf[:n], s.portID()); len(out) > 0 {
			if _, err := s.peer.Write(out); err != nil {
				return
			}
		}
	}
}

// lookup returns the view's socket behind the task's fd, or nil: the
// object behind the duplicate, not the fd number, is recognised.
func (v *View) lookup(hc *notify.HandlerCtx, fd uint64) *socket {
	dup, err := taskpath.DupFD(hc, fd, v.tgid, true)
	if err != nil {
		return nil
	}
	defer unix.Close(dup)
	var st unix.Stat_t
	if unix.Fstat(dup, &st) != nil {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.sockets[sockID{st.Dev, st.Ino}]
}

// bind binds a socket of the view as netlink would: the address must be
// a netlink one; a port id in it becomes the socket's. Any other socket
// goes on to the kernel.
func (v *View) bind(_ context.Context, hc *notify.HandlerCtx) notify.Action {
	args := hc.Notif.Data.Args
	s := v.lookup(hc, args[0])
	if s == nil {
		return notify.Continue()
	}
	n := int32(uint32(args[2]))
	if n < sockaddrNL || n > 128 {
		return notify.Errno(unix.EINVAL)
	}
	b, err := hc.ReadMem(args[1], sockaddrNL)
	if err != nil {
		return notify.Errno(unix.EFAULT)
	}
	if binary.NativeEndian.Uint16(b) != unix.AF_NETLINK {
		return notify.Errno(unix.EINVAL)
	}
	if port := binary.NativeEndian.Uint32(b[4:]); port != 0 {
		s.mu.Lock()
		s.port = port
		s.mu.Unlock()
	}
	return notify.ReturnValue(0)
}

// getsockname reports a socket of the view as a netlink socket with its
// port id. Any other socket goes on to the kernel.
func (v *View) getsockname(_ context.Context, hc *notify.HandlerCtx) notify.Action {
	args := hc.Notif.Data.Args
	s := v.lookup(hc, args[0])
	if s == nil {
		return notify.Continue()
	}
	lb, err := hc.ReadMem(args[2], 4)
	if err != nil {
		return notify.Errno(unix.EFAULT)
	}
	n := int32(binary.NativeEndian.Uint32(lb))
	if n < 0 {
		return notify.Errno(unix.EINVAL)
	}
	sa := make([]byte, sockaddrNL)
	binary.NativeEndian.PutUint16(sa, unix.AF_NETLINK)
	binary.NativeEndian.PutUint32(sa[4:], s.portID())
	if n > 0 {
		if err := hc.WriteMem(args[1], sa[:min(int(n), sockaddrNL)]); err != nil {
			return notify.Errno(unix.EFAULT)
		}
	}
	binary.NativeEndian.PutUint32(lb, sockaddrNL)
	if err := hc.WriteMem(args[2], lb); err != nil {
		return notify.Errno(unix.EFAULT)
	}
	return notify.ReturnValue(0)
}
