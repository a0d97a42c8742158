//go:build linux

package netview

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// The loopback interface as the view shows it.
const (
	loIndex = 1
	loMTU   = 65536
	loFlags = unix.IFF_UP | unix.IFF_LOOPBACK | unix.IFF_RUNNING | unix.IFF_LOWER_UP
)

var ne = binary.NativeEndian

// Respond answers the netlink requests in one datagram from the program,
// as the kernel's rtnetlink would answer them on a machine whose only
// interface is lo: the answers to one datagram, in one datagram.
//
//   - RTM_GETLINK: lo (a dump, or a request for index 1 or the name "lo");
//     another interface is ENODEV.
//   - RTM_GETADDR dump: 127.0.0.1/8 and ::1/128, of the family asked for.
//   - Dumps of anything else (routes, neighbours, rules…): empty.
//   - Other queries: EOPNOTSUPP. Changes (new, delete, set): EPERM.
//
// Answers carry the request's sequence number and port, the socket's port
// id; requests with NLM_F_ACK get their acknowledgement.
func Respond(req []byte, port uint32) []byte {
	var out []byte
	for len(req) >= unix.NLMSG_HDRLEN {
		n := int(ne.Uint32(req))
		if n < unix.NLMSG_HDRLEN || n > len(req) {
			break
		}
		msg := req[:n]
		req = req[min(align4(n), len(req)):]
		typ, flags, seq := ne.Uint16(msg[4:]), ne.Uint16(msg[6:]), ne.Uint32(msg[8:])
		body := msg[unix.NLMSG_HDRLEN:]
		if typ < unix.NLMSG_MIN_TYPE {
			continue // control messages ask for nothing
		}
		h := header{seq: seq, port: port}
		dump := flags&unix.NLM_F_DUMP == unix.NLM_F_DUMP
		switch {
		case typ == unix.RTM_GETLINK && dump:
			out = h.append(out, unix.RTM_NEWLINK, unix.NLM_F_MULTI, linkBody())
			out = h.done(out)
		case typ == unix.RTM_GETLINK:
			if !askedForLo(body) {
				out = h.error(out, msg, unix.ENODEV)
				continue
			}
			out = h.append(out, unix.RTM_NEWLINK, 0, linkBody())
			if flags&unix.NLM_F_ACK != 0 {
				out = h.error(out, msg, 0)
			}
		case typ == unix.RTM_GETADDR && dump:
			family := uint8(unix.AF_UNSPEC)
			if len(body) > 0 {
				family = body[0]
			}
			if family == unix.AF_UNSPEC || family == unix.AF_INET {
				out = h.append(out, unix.RTM_NEWADDR, unix.NLM_F_MULTI, addr4Body())
			}
			if family == unix.AF_UNSPEC || family == unix.AF_INET6 {
				out = h.append(out, unix.RTM_NEWADDR, unix.NLM_F_MULTI, addr6Body())
			}
			out = h.done(out)
		case (typ-unix.RTM_BASE)%4 == 2 && dump:
			// A dump of another kind of object: there is none.
			out = h.done(out)
		case (typ-unix.RTM_BASE)%4 == 2:
			out = h.error(out, msg, unix.EOPNOTSUPP)
		default:
			out = h.error(out, msg, unix.EPERM)
		}
	}
	return out
}

// header is what every answer to one request carries.
type header struct {
	seq, port uint32
}

// append adds one message.
func (h header) append(out []byte, typ, flags uint16, body []byte) []byte {
	var hdr [unix.NLMSG_HDRLEN]byte
	ne.PutUint32(hdr[0:], uint32(unix.NLMSG_HDRLEN+len(body)))
	ne.PutUint16(hdr[4:], typ)
	ne.PutUint16(hdr[6:], flags)
	ne.PutUint32(hdr[8:], h.seq)
	ne.PutUint32(hdr[12:], h.port)
	out = append(out, hdr[:]...)
	out = append(out, body...)
	return pad(out)
}

// done ends a dump.
func (h header) done(out []byte) []byte {
	return h.append(out, unix.NLMSG_DONE, unix.NLM_F_MULTI, make([]byte, 4))
}

// error answers a request with an error (0: an acknowledgement), quoting
// its header.
func (h header) error(out, req []byte, errno unix.Errno) []byte {
	body := make([]byte, 4, 4+unix.NLMSG_HDRLEN)
	ne.PutUint32(body, uint32(-int32(errno)))
	body = append(body, req[:unix.NLMSG_HDRLEN]...)
	return h.append(out, unix.NLMSG_ERROR, unix.NLM_F_CAPPED, body)
}

// askedForLo reports whether an RTM_GETLINK request names lo, by index or
// by name.
func askedForLo(body []byte) bool {
	if len(body) < unix.SizeofIfInfomsg {
		return false
	}
	if idx := int32(ne.Uint32(body[4:])); idx != 0 {
		return idx == loIndex
	}
	attrs := body[unix.SizeofIfInfomsg:]
	for len(attrs) >= unix.SizeofRtAttr {
		n := int(ne.Uint16(attrs))
		if n < unix.SizeofRtAttr || n > len(attrs) {
			break
		}
		if ne.Uint16(attrs[2:]) == unix.IFLA_IFNAME {
			name := attrs[unix.SizeofRtAttr:n]
			for i, c := range name {
				if c == 0 {
					name = name[:i]
					break
				}
			}
			return string(name) == "lo"
		}
		attrs = attrs[min(align4(n), len(attrs)):]
	}
	return false
}

// linkBody is lo's RTM_NEWLINK: struct ifinfomsg and its attributes.
func linkBody() []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	b[0] = unix.AF_UNSPEC
	ne.PutUint16(b[2:], unix.ARPHRD_LOOPBACK)
	ne.PutUint32(b[4:], loIndex)
	ne.PutUint32(b[8:], loFlags)
	b = attr(b, unix.IFLA_IFNAME, []byte("lo\x00"))
	b = attr(b, unix.IFLA_MTU, u32(loMTU))
	b = attr(b, unix.IFLA_TXQLEN, u32(1000))
	b = attr(b, unix.IFLA_OPERSTATE, []byte{0}) // IF_OPER_UNKNOWN, as lo reports
	b = attr(b, unix.IFLA_LINKMODE, []byte{0})
	b = attr(b, unix.IFLA_ADDRESS, make([]byte, 6))
	b = attr(b, unix.IFLA_BROADCAST, make([]byte, 6))
	b = attr(b, unix.IFLA_QDISC, []byte("noqueue\x00"))
	return b
}

// addr4Body is 127.0.0.1/8 on lo: struct ifaddrmsg and its attributes.
func addr4Body() []byte {
	b := []byte{unix.AF_INET, 8, unix.IFA_F_PERMANENT, unix.RT_SCOPE_HOST, 0, 0, 0, 0}
	ne.PutUint32(b[4:], loIndex)
	lo := []byte{127, 0, 0, 1}
	b = attr(b, unix.IFA_ADDRESS, lo)
	b = attr(b, unix.IFA_LOCAL, lo)
	b = attr(b, unix.IFA_LABEL, []byte("lo\x00"))
	b = attr(b, unix.IFA_FLAGS, u32(unix.IFA_F_PERMANENT))
	return b
}

// addr6Body is ::1/128 on lo.
func addr6Body() []byte {
	b := []byte{unix.AF_INET6, 128, unix.IFA_F_PERMANENT, unix.RT_SCOPE_HOST, 0, 0, 0, 0}
	ne.PutUint32(b[4:], loIndex)
	b = attr(b, unix.IFA_ADDRESS, []byte{15: 1})
	b = attr(b, unix.IFA_FLAGS, u32(unix.IFA_F_PERMANENT))
	return b
}

// attr appends a route attribute.
func attr(b []byte, typ uint16, data []byte) []byte {
	var h [unix.SizeofRtAttr]byte
	ne.PutUint16(h[0:], uint16(unix.SizeofRtAttr+len(data)))
	ne.PutUint16(h[2:], typ)
	b = append(b, h[:]...)
	b = append(b, data...)
	return pad(b)
}

func u32(v uint32) []byte { return ne.AppendUint32(nil, v) }

func align4(n int) int { return (n + 3) &^ 3 }

// pad pads b to a multiple of four bytes.
func pad(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
