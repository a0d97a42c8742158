//go:build linux

package sandlock

import (
	"context"
	"testing"

	"github.com/sandlock-go/sandlock/internal/sysnum"
)

// TestViewsTrapOnlyWhenInUse: the open family and getdents are sent to the
// supervisor only when a view is in use — a grant covering /proc in the
// served tier, or a synthetic file (a name, a hostname rule); without
// them, nothing of the views is trapped but uname and netlink-route
// sockets (with their bind and getsockname), which programs make rarely.
func TestViewsTrapOnlyWhenInUse(t *testing.T) {
	arch := sysnum.Native()
	openat, getdents := arch.MustNr("openat"), arch.MustNr("getdents64")
	base := []string{"/usr", "/lib", "/lib64", "/bin", "/etc"}
	for _, c := range []struct {
		name           string
		sb             Sandbox
		opens, listing bool
	}{
		{"no grant on /proc", Sandbox{FSReadable: base}, false, false},
		{"grant on /proc", Sandbox{FSReadable: append(base, "/proc")}, true, true},
		{"grant on /", Sandbox{FSReadable: []string{"/"}}, true, true},
		{"grant on /proc/self", Sandbox{FSReadable: append(base, "/proc/self")}, true, false},
		{"none", Sandbox{FSReadable: []string{"/"}, ProcView: ProcViewNone}, false, false},
		{"host", Sandbox{FSReadable: []string{"/"}, ProcView: ProcViewHost}, false, false},
		{"named", Sandbox{FSReadable: base, Name: "trap-test", NoRegistry: true}, true, false},
		{"hostname rule", Sandbox{FSReadable: base, NetAllow: []string{"localhost:80"}}, true, false},
		{"limits alone", Sandbox{FSReadable: base, NumCPUs: 1, MaxMemory: "64M"}, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.sb.NoRegistry = true
			p, err := c.sb.prepare(context.Background(), []string{"/bin/true"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.abandon()
			tab := p.session.Table
			if got := tab.Has(openat); got != c.opens {
				t.Errorf("openat notified: %v, want %v", got, c.opens)
			}
			if got := tab.Has(getdents); got != c.listing {
				t.Errorf("getdents64 notified: %v, want %v", got, c.listing)
			}
			for _, name := range []string{"uname", "bind", "getsockname"} {
				if !tab.Has(arch.MustNr(name)) {
					t.Errorf("%s not notified", name)
				}
			}
		})
	}
}
