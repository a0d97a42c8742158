//go:build linux

package netview

import (
	"slices"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// request builds one netlink request.
func request(typ, flags uint16, seq uint32, body []byte) []byte {
	b := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+len(body))
	ne.PutUint32(b, uint32(unix.NLMSG_HDRLEN+len(body)))
	ne.PutUint16(b[4:], typ)
	ne.PutUint16(b[6:], flags)
	ne.PutUint32(b[8:], seq)
	return pad(append(b, body...))
}

// answer is one parsed answer.
type answer struct {
	typ, flags uint16
	seq, port  uint32
	body       []byte
}

func parse(t *testing.T, b []byte) []answer {
	t.Helper()
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		t.Fatalf("answer does not parse: %v", err)
	}
	var out []answer
	for _, m := range msgs {
		out = append(out, answer{m.Header.Type, m.Header.Flags, m.Header.Seq, m.Header.Pid, m.Data})
	}
	return out
}

func errnoOf(t *testing.T, a answer) unix.Errno {
	t.Helper()
	if a.typ != unix.NLMSG_ERROR || len(a.body) < 4+unix.NLMSG_HDRLEN {
		t.Fatalf("not an error message: %+v", a)
	}
	return unix.Errno(-int32(ne.Uint32(a.body)))
}

// TestRespondLinkDump: a link dump is lo and the end of the dump, with the
// request's sequence number and the socket's port; lo parses as the
// kernel's would (index 1, name lo, loopback, up).
func TestRespondLinkDump(t *testing.T) {
	for _, body := range [][]byte{make([]byte, unix.SizeofIfInfomsg), {unix.AF_PACKET}} {
		got := parse(t, Respond(request(unix.RTM_GETLINK, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, 7, body), 4242))
		if len(got) != 2 || got[0].typ != unix.RTM_NEWLINK || got[1].typ != unix.NLMSG_DONE {
			t.Fatalf("answers %+v", got)
		}
		for _, a := range got {
			if a.seq != 7 || a.port != 4242 || a.flags&unix.NLM_F_MULTI == 0 {
				t.Errorf("answer %+v: want seq 7, port 4242, multi", a)
			}
		}
		link := got[0].body
		if idx := int32(ne.Uint32(link[4:])); idx != 1 {
			t.Errorf("index %d", idx)
		}
		if fl := ne.Uint32(link[8:]); fl&unix.IFF_LOOPBACK == 0 || fl&unix.IFF_UP == 0 {
			t.Errorf("flags %#x", fl)
		}
		attrs, err := syscall.ParseNetlinkRouteAttr(&syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: unix.RTM_NEWLINK}, Data: link})
		if err != nil {
			t.Fatal(err)
		}
		var name string
		for _, a := range attrs {
			if a.Attr.Type == unix.IFLA_IFNAME {
				name = string(a.Value[:len(a.Value)-1])
			}
		}
		if name != "lo" {
			t.Errorf("name %q", name)
		}
	}
}

// TestRespondAddrDump: 127.0.0.1/8 and ::1/128, each only for its family.
func TestRespondAddrDump(t *testing.T) {
	for _, c := range []struct {
		family byte
		want   []byte // families answered
	}{
		{unix.AF_UNSPEC, []byte{unix.AF_INET, unix.AF_INET6}},
		{unix.AF_INET, []byte{unix.AF_INET}},
		{unix.AF_INET6, []byte{unix.AF_INET6}},
		{unix.AF_PACKET, nil},
	} {
		got := parse(t, Respond(request(unix.RTM_GETADDR, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, 1, []byte{c.family, 0, 0, 0}), 9))
		if len(got) != len(c.want)+1 || got[len(got)-1].typ != unix.NLMSG_DONE {
			t.Fatalf("family %d: answers %+v", c.family, got)
		}
		for i, f := range c.want {
			a := got[i]
			if a.typ != unix.RTM_NEWADDR || a.body[0] != f || ne.Uint32(a.body[4:]) != 1 {
				t.Errorf("family %d: address %d: %+v", c.family, i, a)
			}
			attrs, err := syscall.ParseNetlinkRouteAttr(&syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: unix.RTM_NEWADDR}, Data: a.body})
			if err != nil {
				t.Fatal(err)
			}
			for _, at := range attrs {
				if at.Attr.Type == unix.IFA_ADDRESS {
					want := []byte{127, 0, 0, 1}
					if f == unix.AF_INET6 {
						want = []byte{15: 1}
					}
					if string(at.Value) != string(want) {
						t.Errorf("family %d: address %v", f, at.Value)
					}
				}
			}
		}
	}
}

// TestRespondOthers: lo by index or name; other interfaces ENODEV;
// acknowledgements when asked; other dumps empty; other queries
// EOPNOTSUPP; changes EPERM; several requests in one datagram all
// answered; control messages and garbage ignored.
func TestRespondOthers(t *testing.T) {
	byIndex := make([]byte, unix.SizeofIfInfomsg)
	ne.PutUint32(byIndex[4:], 1)
	got := parse(t, Respond(request(unix.RTM_GETLINK, unix.NLM_F_REQUEST|unix.NLM_F_ACK, 3, byIndex), 1))
	if len(got) != 2 || got[0].typ != unix.RTM_NEWLINK || got[0].flags&unix.NLM_F_MULTI != 0 || errnoOf(t, got[1]) != 0 {
		t.Errorf("lo by index, with ack: %+v", got)
	}
	byName := attr(make([]byte, unix.SizeofIfInfomsg), unix.IFLA_IFNAME, []byte("lo\x00"))
	if got := parse(t, Respond(request(unix.RTM_GETLINK, unix.NLM_F_REQUEST, 3, byName), 1)); len(got) != 1 || got[0].typ != unix.RTM_NEWLINK {
		t.Errorf("lo by name: %+v", got)
	}
	eth := attr(make([]byte, unix.SizeofIfInfomsg), unix.IFLA_IFNAME, []byte("eth0\x00"))
	if got := parse(t, Respond(request(unix.RTM_GETLINK, unix.NLM_F_REQUEST, 3, eth), 1)); len(got) != 1 || errnoOf(t, got[0]) != unix.ENODEV {
		t.Errorf("eth0: %+v", got)
	}
	ne.PutUint32(byIndex[4:], 2)
	if got := parse(t, Respond(request(unix.RTM_GETLINK, unix.NLM_F_REQUEST, 3, byIndex), 1)); len(got) != 1 || errnoOf(t, got[0]) != unix.ENODEV {
		t.Errorf("index 2: %+v", got)
	}
	if got := parse(t, Respond(request(unix.RTM_GETROUTE, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, 4, []byte{0, 0, 0, 0}), 1)); len(got) != 1 || got[0].typ != unix.NLMSG_DONE {
		t.Errorf("route dump: %+v", got)
	}
	if got := parse(t, Respond(request(unix.RTM_GETROUTE, unix.NLM_F_REQUEST, 4, make([]byte, 12)), 1)); len(got) != 1 || errnoOf(t, got[0]) != unix.EOPNOTSUPP {
		t.Errorf("route get: %+v", got)
	}
	for _, typ := range []uint16{unix.RTM_NEWLINK, unix.RTM_DELADDR, unix.RTM_NEWROUTE, unix.RTM_SETLINK} {
		if got := parse(t, Respond(request(typ, unix.NLM_F_REQUEST|unix.NLM_F_ACK, 5, make([]byte, 16)), 1)); len(got) != 1 || errnoOf(t, got[0]) != unix.EPERM {
			t.Errorf("change %d: %+v", typ, got)
		}
	}
	two := slices.Concat(request(unix.NLMSG_NOOP, 0, 1, nil), request(unix.RTM_GETLINK, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, 2, []byte{0}),
		request(unix.RTM_GETADDR, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, 3, []byte{unix.AF_INET}))
	if got := parse(t, Respond(two, 1)); len(got) != 4 || got[1].seq != 2 || got[3].seq != 3 {
		t.Errorf("two requests: %+v", got)
	}
	for _, junk := range [][]byte{nil, {1, 2, 3}, {0xff, 0xff, 0, 0, 18, 0, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0}} {
		if got := Respond(junk, 1); len(got) != 0 {
			t.Errorf("junk %v answered %v", junk, got)
		}
	}
}

// FuzzRespond: never a panic, and whatever is answered parses.
func FuzzRespond(f *testing.F) {
	f.Add(request(unix.RTM_GETLINK, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, 1, []byte{0}))
	f.Add(request(unix.RTM_GETLINK, unix.NLM_F_REQUEST, 1, attr(make([]byte, unix.SizeofIfInfomsg), unix.IFLA_IFNAME, []byte("lo\x00"))))
	f.Add(request(unix.RTM_NEWADDR, unix.NLM_F_REQUEST|unix.NLM_F_ACK, 1, make([]byte, 8)))
	f.Fuzz(func(t *testing.T, b []byte) {
		out := Respond(b, 1)
		if len(out) == 0 {
			return
		}
		if _, err := syscall.ParseNetlinkMessage(out); err != nil {
			t.Fatalf("answer to %x does not parse: %v", b, err)
		}
	})
}
