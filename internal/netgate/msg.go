package netgate

import (
	"context"
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/notify"
)

// iovec is one buffer of the program's.
type iovec struct{ base, len uint64 }

// maxSendBytes bounds what one send copies out of the program's memory; a
// stream send of more returns a short count, as the kernel may.
const maxSendBytes = 1 << 20

// readData copies the program's buffers.
func readData(hc *notify.HandlerCtx, iov []iovec) ([]byte, unix.Errno) {
	var out []byte
	for _, v := range iov {
		n := min(v.len, uint64(maxSendBytes-len(out)))
		if n == 0 {
			continue
		}
		b, err := hc.ReadMem(v.base, int(n))
		if err != nil {
			return nil, unix.EFAULT
		}
		out = append(out, b...)
		if len(out) >= maxSendBytes {
			break
		}
	}
	return out, 0
}

// msghdr is struct msghdr on 64-bit Linux.
type msghdr struct {
	name       uint64
	namelen    uint32
	_          uint32
	iov        uint64
	iovlen     uint64
	control    uint64
	controllen uint64
	flags      int32
	_          int32
}

const sizeofMsghdr = 56

var _ [sizeofMsghdr - unsafe.Sizeof(msghdr{})]byte

// message is a sendmsg read out of the program's memory.
type message struct {
	dest    *dest // nil: no address
	data    []byte
	control []byte // with SCM_RIGHTS fds translated to the supervisor's
	fds     []int  // the supervisor's copies, to close after sending
}

func (m *message) close() {
	for _, fd := range m.fds {
		unix.Close(fd)
	}
}

// readMessage reads a struct msghdr and what it points to; a message
// without an address is read further only if full.
func (g *Gate) readMessage(hc *notify.HandlerCtx, addr uint64, full bool) (*message, unix.Errno) {
	b, err := hc.ReadMem(addr, sizeofMsghdr)
	if err != nil {
		return nil, unix.EFAULT
	}
	h := *(*msghdr)(unsafe.Pointer(&b[0]))
	m := &message{}
	var errno unix.Errno
	if h.name != 0 && h.namelen != 0 {
		if m.dest, errno = readSockaddr(hc, h.name, uint64(h.namelen)); errno != 0 {
			return nil, errno
		}
	} else if !full {
		return m, 0
	}
	if h.iovlen > 1024 { // UIO_MAXIOV
		return nil, unix.EMSGSIZE
	}
	var iov []iovec
	if h.iovlen > 0 {
		raw, err := hc.ReadMem(h.iov, int(16*h.iovlen))
		if err != nil {
			return nil, unix.EFAULT
		}
		for i := 0; i < int(h.iovlen); i++ {
			iov = append(iov, iovec{binary.NativeEndian.Uint64(raw[16*i:]), binary.NativeEndian.Uint64(raw[16*i+8:])})
		}
	}
	if m.data, errno = readData(hc, iov); errno != 0 {
		return nil, errno
	}
	if h.control != 0 && h.controllen > 0 {
		if h.controllen > 64<<10 {
			return nil, unix.ENOBUFS
		}
		c, err := hc.ReadMem(h.control, int(h.controllen))
		if err != nil {
			return nil, unix.EFAULT
		}
		if m.control, errno = g.translateRights(hc, c, m); errno != 0 {
			m.close()
			return nil, errno
		}
	}
	return m, 0
}

// translateRights rewrites the fds of SCM_RIGHTS messages, which are the
// program's numbers, into copies in the supervisor.
func (g *Gate) translateRights(hc *notify.HandlerCtx, control []byte, m *message) ([]byte, unix.Errno) {
	msgs, err := unix.ParseSocketControlMessage(control)
	if err != nil {
		return nil, unix.EINVAL
	}
	var out []byte
	for _, cm := range msgs {
		if cm.Header.Level != unix.SOL_SOCKET || cm.Header.Type != unix.SCM_RIGHTS {
			out = append(out, rebuild(cm)...)
			continue
		}
		theirs, err := unix.ParseUnixRights(&cm)
		if err != nil {
			return nil, unix.EINVAL
		}
		pidfd, err := unix.PidfdOpen(g.cfg.TGID(int(hc.Notif.PID)), 0)
		if err != nil {
			return nil, unix.ESRCH
		}
		ours := make([]int, 0, len(theirs))
		for _, fd := range theirs {
			dup, err := unix.PidfdGetfd(pidfd, fd, 0)
			if err != nil {
				unix.Close(pidfd)
				return nil, unix.EBADF
			}
			ours = append(ours, dup)
			m.fds = append(m.fds, dup)
		}
		unix.Close(pidfd)
		out = append(out, unix.UnixRights(ours...)...)
	}
	return out, 0
}

// rebuild re-encodes a control message as it came.
func rebuild(cm unix.SocketControlMessage) []byte {
	b := make([]byte, unix.CmsgSpace(len(cm.Data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = cm.Header.Level, cm.Header.Type
	h.SetLen(unix.CmsgLen(len(cm.Data)))
	copy(b[unix.CmsgLen(0):], cm.Data)
	return b
}

func (g *Gate) sendmsg(_ context.Context, hc *notify.HandlerCtx) notify.Action {
	args := hc.Notif.Data.Args
	m, errno := g.readMessage(hc, args[1], false)
	if errno != 0 {
		return notify.Errno(errno)
	}
	s, errno := g.takeSocket(hc, args[0])
	if errno != 0 {
		m.close()
		return notify.Errno(errno)
	}
	flags := int(args[2])
	if m.dest == nil {
		if !s.addressMatters(flags) {
			s.close()
			return notify.Continue() // its peer, if any, was judged at connect
		}
		// Read again, in full: the address may have appeared meanwhile.
		if m, errno = g.readMessage(hc, args[1], true); errno != 0 {
			s.close()
			return notify.Errno(errno)
		}
	}
	if m.dest != nil {
		if errno := g.judge(s, m.dest); errno != 0 {
			s.close()
			m.close()
			return notify.Errno(errno)
		}
	}
	return g.perform(s, flags, func(ctx context.Context) notify.Action {
		defer m.close()
		return answer(g.sendMessage(ctx, hc, s, m, flags))
	})
}

// judge decides an explicit destination: inet ones by the rules; named
// unix sockets are judged where they are reached (viaUnixPin); other
// families have nothing to judge, but are still sent from the copy read,
// so that the program cannot swap in a judged address after the check.
func (g *Gate) judge(s *socket, d *dest) unix.Errno {
	if d.family == unix.AF_INET || d.family == unix.AF_INET6 {
		return g.judgeInet(s, d)
	}
	return 0
}

// sendMessage sends a message read from the program on its behalf.
func (g *Gate) sendMessage(ctx context.Context, hc *notify.HandlerCtx, s *socket, m *message, flags int) (int, unix.Errno) {
	op := func(raw []byte) (int, error) { return rawSendmsg(s.fd, m.data, m.control, flags, raw) }
	if m.dest == nil {
		return g.do(ctx, s, func() (int, error) { return op(nil) })
	}
	return g.send(ctx, hc, s, m.dest, op)
}

// maxMmsg is the most messages one sendmmsg sends (UIO_MAXIOV, as the
// kernel).
const maxMmsg = 1024

func (g *Gate) sendmmsg(_ context.Context, hc *notify.HandlerCtx) notify.Action {
	args := hc.Notif.Data.Args
	const sizeofMmsghdr = sizeofMsghdr + 8 // struct mmsghdr: msghdr, msg_len, padding
	// Every message is read first: if none has an address and none could
	// matter, the kernel sends them as they are.
	var msgs []*message
	closeAll := func() {
		for _, m := range msgs {
			m.close()
		}
	}
	addressed := false
	var readErr unix.Errno
	for i := uint64(0); i < min(args[2], maxMmsg); i++ {
		m, errno := g.readMessage(hc, args[1]+i*sizeofMmsghdr, true)
		if errno != 0 {
			readErr = errno // the messages before it are sent, as the kernel would
			break
		}
		msgs = append(msgs, m)
		addressed = addressed || m.dest != nil
	}
	if readErr != 0 && len(msgs) == 0 {
		return notify.Errno(readErr)
	}
	s, errno := g.takeSocket(hc, args[0])
	if errno != 0 {
		closeAll()
		return notify.Errno(errno)
	}
	flags := int(args[3])
	if !addressed && !s.addressMatters(flags) {
		closeAll()
		s.close()
		return notify.Continue() // its peer, if any, was judged at connect
	}
	return g.perform(s, flags, func(ctx context.Context) notify.Action {
		defer closeAll()
		sent := 0
		for i, m := range msgs {
			n, errno := 0, unix.Errno(0)
			if m.dest != nil {
				errno = g.judge(s, m.dest)
			}
			if errno == 0 {
				n, errno = g.sendMessage(ctx, hc, s, m, flags)
			}
			if errno != 0 {
				if sent == 0 {
					return notify.Errno(errno)
				}
				break
			}
			var lenb [4]byte
			binary.NativeEndian.PutUint32(lenb[:], uint32(n))
			if err := hc.WriteMem(args[1]+uint64(i)*sizeofMmsghdr+sizeofMsghdr, lenb[:]); err != nil {
				break
			}
			sent++
		}
		return notify.ReturnValue(int64(sent))
	})
}

func errnoOf(err error) unix.Errno {
	if err == nil {
		return 0
	}
	if e, ok := err.(unix.Errno); ok {
		return e
	}
	return unix.EIO
}
