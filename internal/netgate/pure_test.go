//go:build linux

package netgate

import (
	"encoding/binary"
	"math"
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/netpolicy"
)

func TestGather(t *testing.T) {
	iov := []iovec{{0x1000, 10}, {0x2000, 0}, {0x3000, 30}}
	remote, total, cut, errno := gather(iov, 100, false)
	if errno != 0 || total != 40 || cut || len(remote) != 2 || remote[0].Len != 10 || remote[1].Base != 0x3000 || remote[1].Len != 30 {
		t.Errorf("whole: %v %d %v %v", remote, total, cut, errno)
	}
	// A stream send over the budget is cut short; a datagram is refused.
	remote, total, cut, errno = gather(iov, 15, true)
	if errno != 0 || total != 15 || !cut || len(remote) != 2 || remote[1].Len != 5 {
		t.Errorf("stream cut: %v %d %v %v", remote, total, cut, errno)
	}
	if _, _, _, errno := gather(iov, 15, false); errno != unix.EMSGSIZE {
		t.Errorf("datagram over the budget: %v", errno)
	}
	// A total the kernel could not count.
	if _, _, _, errno := gather([]iovec{{1, math.MaxInt64}, {2, 1}}, 15, true); errno != unix.EINVAL {
		t.Errorf("overflowing lengths: %v", errno)
	}
	if _, total, _, errno := gather(nil, 15, true); total != 0 || errno != 0 {
		t.Errorf("no buffers: %d %v", total, errno)
	}
}

func TestDecodeMsghdrAndIovecs(t *testing.T) {
	raw := make([]byte, 3*16)
	for i, v := range []iovec{{0xaa, 1}, {0xbb, 2}, {0xcc, 3}} {
		binary.NativeEndian.PutUint64(raw[16*i:], v.base)
		binary.NativeEndian.PutUint64(raw[16*i+8:], v.len)
	}
	if got := decodeIovecs(raw); len(got) != 3 || got[1] != (iovec{0xbb, 2}) {
		t.Errorf("iovecs: %v", got)
	}
	// struct msghdr's layout is the kernel's: the fields at its offsets.
	h := msghdr{name: 1, namelen: 2, iov: 3, iovlen: 4, control: 5, controllen: 6, flags: 7}
	b := unsafe.Slice((*byte)(unsafe.Pointer(&h)), sizeofMsghdr)
	for off, want := range map[int]uint64{0: 1, 16: 3, 24: 4, 32: 5, 40: 6} {
		if got := binary.NativeEndian.Uint64(b[off:]); got != want {
			t.Errorf("offset %d: %d, want %d", off, got, want)
		}
	}
	if binary.NativeEndian.Uint32(b[8:]) != 2 || binary.NativeEndian.Uint32(b[48:]) != 7 {
		t.Error("namelen or flags at the wrong offset")
	}
}

func TestHostsFile(t *testing.T) {
	a := netip.MustParseAddr
	rules := []netpolicy.Resolved{
		{Rule: netpolicy.Rule{Host: "b.example"}, Addrs: []netip.Addr{a("192.0.2.2"), a("2001:db8::2")}},
		{Rule: netpolicy.Rule{Host: "a.example"}, Addrs: []netip.Addr{a("192.0.2.1")}},
		{Rule: netpolicy.Rule{Host: "a.example"}, Addrs: []netip.Addr{a("192.0.2.1")}}, // twice: once in the file
		{Rule: netpolicy.Rule{}, Addrs: []netip.Addr{a("10.0.0.1")}},                   // an IP rule: no name
	}
	want := "127.0.0.1 localhost\n::1 localhost\n" +
		"192.0.2.1 a.example\n192.0.2.2 b.example\n2001:db8::2 b.example\n"
	if got := string(HostsFile(rules)); got != want {
		t.Errorf("hosts file:\n%s\nwant:\n%s", got, want)
	}
	if got := string(HostsFile(nil)); got != "127.0.0.1 localhost\n::1 localhost\n" {
		t.Errorf("no rules: %q", got)
	}
}
