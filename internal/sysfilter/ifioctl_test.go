//go:build linux

package sysfilter

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/filter"
	"github.com/sandlock-go/sandlock/internal/sysnum"
)

// TestInterfaceIoctls: every socket ioctl that names a network interface
// or reads the host's network tables is refused, whatever the high half
// of the register; the socket's own commands, the terminal's and the
// files' are not.
func TestInterfaceIoctls(t *testing.T) {
	tab := sysnum.Native()
	nr := tab.MustNr("ioctl")
	p := compile(t, &FilterSpec{Arch: tab})
	denied := []uint64{
		unix.SIOCGIFNAME, unix.SIOCGIFCONF, unix.SIOCGIFFLAGS, unix.SIOCSIFFLAGS, unix.SIOCGIFADDR, unix.SIOCGIFDSTADDR,
		unix.SIOCGIFBRDADDR, unix.SIOCGIFNETMASK, unix.SIOCGIFMETRIC, unix.SIOCGIFMEM, unix.SIOCGIFMTU, unix.SIOCSIFMTU,
		unix.SIOCSIFNAME, unix.SIOCGIFHWADDR, unix.SIOCGIFSLAVE, unix.SIOCADDMULTI, unix.SIOCGIFINDEX, unix.SIOCGIFPFLAGS,
		unix.SIOCGIFCOUNT, unix.SIOCGIFBR, unix.SIOCGIFTXQLEN, unix.SIOCETHTOOL, unix.SIOCGMIIPHY, unix.SIOCGMIIREG,
		unix.SIOCSMIIREG, unix.SIOCWANDEV, unix.SIOCDARP, unix.SIOCGARP, unix.SIOCSARP, unix.SIOCGRARP, unix.SIOCGIFMAP,
		unix.SIOCSIFMAP, unix.SIOCADDDLCI, unix.SIOCGIFVLAN, unix.SIOCBONDINFOQUERY, unix.SIOCBRADDBR, unix.SIOCSHWTSTAMP,
		unix.SIOCGHWTSTAMP, unix.SIOCDEVPRIVATE, unix.SIOCDEVPRIVATE + 15, 0x8b01 /* SIOCGIWNAME */, 0x8bff,
	}
	for _, cmd := range denied {
		for _, high := range []uint64{0, 1 << 32} {
			if got := p.eval(t, nr, 3, high|cmd); got != filter.Errno(unix.EPERM) {
				t.Errorf("ioctl %#x: %v, want EPERM", high|cmd, got)
			}
		}
	}
	through := []uint64{
		0x8901 /* FIOSETOWN */, unix.SIOCSPGRP, unix.SIOCGPGRP, unix.SIOCATMARK, unix.SIOCGSTAMP, unix.SIOCGSTAMPNS,
		unix.SIOCOUTQNSD, unix.SIOCGSKNS, unix.SIOCADDRT, unix.SIOCPROTOPRIVATE, unix.SIOCINQ, unix.SIOCOUTQ,
		unix.TCGETS, unix.TIOCGWINSZ, 0x541b /* FIONREAD */, unix.FICLONE, 0x8a00, 0x8c00, 0x18910,
	}
	for _, cmd := range through {
		if got := p.eval(t, nr, 3, cmd); got != filter.Allow {
			t.Errorf("ioctl %#x: %v, want it through", cmd, got)
		}
	}
}
