//go:build linux

package netgate

import (
	"context"
	"encoding/binary"
	"math"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/notify"
)

// CopyBound bounds what one notification makes the supervisor copy out of
// the program's memory to send it on the program's behalf: the data and
// control messages of a sendto or sendmsg, or of all the messages of one
// sendmmsg together. A stream send of more returns a short count, as the
// kernel may; a sendmmsg sends the messages that fit (at least one); a
// datagram (or seqpacket message) larger than the bound fails with
// EMSGSIZE. What all sends in flight can hold is then bounded too: one
// per receiver thread plus notify.MaxDeferred deferred ones, 64 × 256 KiB
// = 16 MiB, however much the program asks to send.
const CopyBound = 256 << 10

// maxControl is the largest control buffer copied (the kernel's own limit,
// optmem_max, is smaller by default).
const maxControl = 64 << 10

// copyBufs recycles the buffers sends are copied into, so that a program
// sending at full speed makes the supervisor hold CopyBound per send in
// flight, not a heap of garbage between collections.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, CopyBound); return &b }}

// budget is what one notification may still copy, and the buffer its data
// is copied into.
type budget struct {
	buf   *[]byte
	used  int // bytes of buf handed out
	spent int // bytes copied: data and control
}

func newBudget() *budget { return &budget{buf: copyBufs.Get().(*[]byte)} }

// left is how much more may be copied.
func (b *budget) left() int { return CopyBound - b.spent }

// take hands out n bytes of the buffer (n ≤ left()).
func (b *budget) take(n int) []byte {
	p := (*b.buf)[b.used : b.used+n : b.used+n]
	b.used += n
	b.spent += n
	return p
}

// release returns the buffer; nothing taken from it may be used afterwards.
func (b *budget) release() {
	if b.buf != nil {
		copyBufs.Put(b.buf)
		b.buf = nil
	}
}

// iovec is one buffer of the program's.
type iovec struct{ base, len uint64 }

// readIovecs copies the program's buffers: all of them, or for a stream
// socket (stream) the first b.left() bytes of them (cut reports it).
// Datagrams and other messages are copied whole or not at all: EMSGSIZE.
// One process_vm_readv reads every buffer.
func readIovecs(hc *notify.HandlerCtx, iov []iovec, b *budget, stream bool) (data []byte, cut bool, errno unix.Errno) {
	remote, total, cut, errno := gather(iov, b.left(), stream)
	if errno != 0 || total == 0 {
		return nil, cut, errno
	}
	dst := b.take(int(total))
	if notify.TaskAlive(hc) != nil {
		return nil, false, unix.ESRCH
	}
	local := []unix.Iovec{{Base: &dst[0], Len: total}}
	n, err := unix.ProcessVMReadv(int(hc.Notif.PID), local, remote, 0)
	if notify.TaskAlive(hc) != nil {
		return nil, false, unix.ESRCH
	}
	if err != nil || uint64(n) < total {
		return nil, false, unix.EFAULT
	}
	return dst, cut, 0
}

// gather plans the read of iov: the remote buffers to copy, how many bytes
// in all (at most left), and whether that cut a stream send short. A
// datagram or other message that does not fit is EMSGSIZE; a total the
// kernel could not count is EINVAL.
func gather(iov []iovec, left int, stream bool) (remote []unix.RemoteIovec, total uint64, cut bool, errno unix.Errno) {
	for _, v := range iov {
		if v.len > math.MaxInt64 || total+v.len > math.MaxInt64 {
			return nil, 0, false, unix.EINVAL
		}
		total += v.len
	}
	if total > uint64(left) {
		if !stream {
			return nil, 0, false, unix.EMSGSIZE
		}
		total, cut = uint64(left), true
	}
	remote = make([]unix.RemoteIovec, 0, len(iov))
	want := total
	for _, v := range iov {
		if want == 0 {
			break
		}
		if n := min(v.len, want); n > 0 {
			remote = append(remote, unix.RemoteIovec{Base: uintptr(v.base), Len: int(n)})
			want -= n
		}
	}
	return remote, total, cut, 0
}

// decodeIovecs decodes an array of struct iovec.
func decodeIovecs(raw []byte) []iovec {
	iov := make([]iovec, len(raw)/16)
	for i := range iov {
		iov[i] = iovec{binary.NativeEndian.Uint64(raw[16*i:]), binary.NativeEndian.Uint64(raw[16*i+8:])}
	}
	return iov
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
	dest    *target // nil: no address
	data    []byte
	control []byte // with SCM_RIGHTS fds translated to the supervisor's
	fds     []int  // the supervisor's copies, to close after sending
	cut     bool   // data cut short by the bound (stream sockets)
}

func (m *message) close() {
	for _, fd := range m.fds {
		unix.Close(fd)
	}
}

// readMessage reads a struct msghdr and everything it points to, as the
// kernel's copy_msghdr_from_user does: no name when msg_name is NULL or
// msg_namelen 0, a negative msg_namelen is EINVAL and a longer one than a
// sockaddr_storage is cut to it. The address is read as the kernel will
// read it for s (flags are the send's).
func (g *Gate) readMessage(hc *notify.HandlerCtx, s *socket, addr uint64, flags int, b *budget) (*message, unix.Errno) {
	raw, err := hc.ReadMem(addr, sizeofMsghdr)
	if err != nil {
		return nil, unix.EFAULT
	}
	h := *(*msghdr)(unsafe.Pointer(&raw[0]))
	m := &message{}
	if namelen := int32(h.namelen); h.name != 0 && namelen != 0 {
		if namelen < 0 {
			return nil, unix.EINVAL
		}
		sa, errno := readSockaddr(hc, h.name, uint64(min(namelen, maxSockaddr)))
		if errno != 0 {
			return nil, errno
		}
		t := s.target(sa, opSend, flags)
		m.dest = &t
	}
	if h.iovlen > 1024 { // UIO_MAXIOV
		return nil, unix.EMSGSIZE
	}
	var iov []iovec
	if h.iovlen > 0 {
		rawIov, err := hc.ReadMem(h.iov, int(16*h.iovlen))
		if err != nil {
			return nil, unix.EFAULT
		}
		iov = decodeIovecs(rawIov)
	}
	if h.control != 0 && h.controllen > 0 {
		if h.controllen > maxControl {
			return nil, unix.ENOBUFS
		}
		if int(h.controllen) > b.left() {
			return nil, unix.EMSGSIZE
		}
		c, err := hc.ReadMem(h.control, int(h.controllen))
		if err != nil {
			return nil, unix.EFAULT
		}
		b.spent += len(c)
		var errno unix.Errno
		if m.control, errno = g.translateRights(hc, c, m); errno != 0 {
			m.close()
			return nil, errno
		}
	}
	var errno unix.Errno
	if m.data, m.cut, errno = readIovecs(hc, iov, b, s.sockType == unix.SOCK_STREAM); errno != 0 {
		m.close()
		return nil, errno
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

// sendto with an address (the filter lets sends without one through:
// their peer, if any, was judged at connect).
func (g *Gate) sendto(_ context.Context, hc *notify.HandlerCtx) notify.Action {
	args := hc.Notif.Data.Args
	if args[4] == 0 || uint32(args[5]) == 0 {
		// No address for the kernel (a NULL pointer or a zero length, both
		// registers): only a user handler on sendto gets these here.
		return notify.Continue()
	}
	s, errno := g.takeSocket(hc, args[0])
	if errno != 0 {
		return notify.Errno(errno)
	}
	raw, errno := readSockaddr(hc, args[4], args[5])
	if errno != 0 {
		s.close()
		return notify.Errno(errno)
	}
	flags := int(args[3])
	t := s.target(raw, opSend, flags)
	if errno := g.judge(s, &t, opSend); errno != 0 {
		s.close()
		return notify.Errno(errno)
	}
	b := newBudget()
	data, _, errno := readIovecs(hc, []iovec{{args[1], args[2]}}, b, s.sockType == unix.SOCK_STREAM)
	if errno != 0 {
		b.release()
		s.close()
		return notify.Errno(errno)
	}
	return g.perform(s, flags, b.release, func(ctx context.Context) notify.Action {
		return answer(g.reach(ctx, hc, s, &t, func(sa []byte) (int, error) { return rawSendto(s.fd, data, flags, sa) }))
	})
}

func (g *Gate) sendmsg(_ context.Context, hc *notify.HandlerCtx) notify.Action {
	args := hc.Notif.Data.Args
	s, errno := g.takeSocket(hc, args[0])
	if errno != 0 {
		return notify.Errno(errno)
	}
	flags := int(args[2])
	b := newBudget()
	m, errno := g.readMessage(hc, s, args[1], flags, b)
	if errno == 0 && m.dest != nil {
		errno = g.judge(s, m.dest, opSend)
		if errno != 0 {
			m.close()
		}
	}
	if errno != 0 {
		b.release()
		s.close()
		return notify.Errno(errno)
	}
	return g.perform(s, flags, func() { m.close(); b.release() }, func(ctx context.Context) notify.Action {
		return answer(g.sendMessage(ctx, hc, s, m, flags))
	})
}

// sendMessage sends a message read from the program on its behalf.
func (g *Gate) sendMessage(ctx context.Context, hc *notify.HandlerCtx, s *socket, m *message, flags int) (int, unix.Errno) {
	op := func(sa []byte) (int, error) { return rawSendmsg(s.fd, m.data, m.control, flags, sa) }
	if m.dest == nil {
		return g.do(ctx, s, func() (int, error) { return op(nil) })
	}
	return g.reach(ctx, hc, s, m.dest, op)
}

// maxMmsg is the most messages one sendmmsg sends (UIO_MAXIOV, as the
// kernel).
const maxMmsg = 1024

// sizeofMmsghdr is struct mmsghdr: a msghdr, msg_len, padding.
const sizeofMmsghdr = sizeofMsghdr + 8

func (g *Gate) sendmmsg(_ context.Context, hc *notify.HandlerCtx) notify.Action {
	args := hc.Notif.Data.Args
	s, errno := g.takeSocket(hc, args[0])
	if errno != 0 {
		return notify.Errno(errno)
	}
	flags := int(args[3])
	vlen := min(uint64(uint32(args[2])), maxMmsg)
	// The messages are read in order while they fit in the bound; a
	// message that cannot be read ends the list, as the kernel stops at
	// the first message that fails (and reports the error only if no
	// message was sent).
	b := newBudget()
	var msgs []*message
	closeAll := func() {
		for _, m := range msgs {
			m.close()
		}
		b.release()
	}
	var readErr unix.Errno
	for i := uint64(0); i < vlen && (i == 0 || b.left() > 0); i++ {
		m, errno := g.readMessage(hc, s, args[1]+i*sizeofMmsghdr, flags, b)
		if errno == unix.EMSGSIZE && i > 0 {
			break // it does not fit: the next call sends it
		}
		if errno != 0 {
			readErr = errno
			break
		}
		if m.cut && i > 0 {
			m.close() // a later message is sent whole by the next call
			break
		}
		msgs = append(msgs, m)
	}
	if len(msgs) == 0 {
		closeAll()
		s.close()
		if readErr != 0 {
			return notify.Errno(readErr)
		}
		return notify.ReturnValue(0)
	}
	return g.perform(s, flags, closeAll, func(ctx context.Context) notify.Action {
		sent := 0
		for i, m := range msgs {
			n, errno := 0, unix.Errno(0)
			if m.dest != nil {
				errno = g.judge(s, m.dest, opSend)
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
			if n < len(m.data) {
				break // a short stream send: the rest waits for the next call
			}
		}
		return notify.ReturnValue(int64(sent))
	})
}
