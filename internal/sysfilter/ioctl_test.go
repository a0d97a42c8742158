//go:build linux

package sysfilter

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/filter"
)

// TestNotifyIoctls: the listed ioctl commands go to the supervisor, by the
// command's low half as the kernel reads it; others keep their verdict;
// when ioctl is notified whole, the list changes nothing.
func TestNotifyIoctls(t *testing.T) {
	const setflags, fssetxattr = 0x40086602, 0x401c5820
	for _, tab := range tables {
		nr := tab.MustNr("ioctl")
		deny, err := DenyList(tab, DefaultBlocklist, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		p := compile(t, &FilterSpec{Arch: tab, Deny: deny, NotifyIoctls: []uint32{setflags, fssetxattr}})
		for _, c := range []struct {
			cmd  uint64
			want filter.Action
		}{
			{setflags, filter.Notify},
			{1<<32 | setflags, filter.Notify},
			{fssetxattr, filter.Notify},
			{unix.TCGETS, filter.Allow},
			{setflags + 1, filter.Allow},
			{unix.TIOCSTI, filter.Errno(unix.EPERM)},
		} {
			if got := p.eval(t, nr, 3, c.cmd); got != c.want {
				t.Errorf("%s: ioctl %#x: %v, want %v", tab.Arch, c.cmd, got, c.want)
			}
		}
		p = compile(t, &FilterSpec{Arch: tab, Deny: deny, Notify: []int{nr}, NotifyIoctls: []uint32{setflags}})
		if got := p.eval(t, nr, 3, unix.TCGETS); got != filter.Notify {
			t.Errorf("%s: ioctl notified whole: TCGETS %v", tab.Arch, got)
		}
	}
}
