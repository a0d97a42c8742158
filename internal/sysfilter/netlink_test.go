//go:build linux

package sysfilter

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/filter"
)

// TestNotifyNetlinkRoute: with the interface view, only a netlink-route
// socket goes to the supervisor; every other family keeps its verdict, and
// other netlink protocols stay refused.
func TestNotifyNetlinkRoute(t *testing.T) {
	for _, tab := range tables {
		nr := tab.MustNr("socket")
		deny, err := DenyList(tab, DefaultBlocklist, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, view := range []bool{false, true} {
			p := compile(t, &FilterSpec{Arch: tab, Deny: deny, NotifyNetlinkRoute: view})
			route := filter.Action(filter.Allow)
			if view {
				route = filter.Notify
			}
			for _, c := range []struct {
				domain, typ, proto uint64
				want               filter.Action
			}{
				{unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE, route},
				{unix.AF_NETLINK, unix.SOCK_DGRAM | unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE, route},
				{unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_AUDIT, filter.Errno(unix.EAFNOSUPPORT)},
				{unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_KOBJECT_UEVENT, filter.Errno(unix.EAFNOSUPPORT)},
				{unix.AF_UNIX, unix.SOCK_STREAM, 0, filter.Allow},
				{unix.AF_INET, unix.SOCK_STREAM, 0, filter.Allow},
				{unix.AF_PACKET, unix.SOCK_RAW, 0, filter.Errno(unix.EAFNOSUPPORT)},
			} {
				if got := p.eval(t, nr, c.domain, c.typ, c.proto); got != c.want {
					t.Errorf("%s: view %v: socket(%d, %#x, %d) = %v, want %v", tab.Arch, view, c.domain, c.typ, c.proto, got, c.want)
				}
			}
		}
	}
}
