//go:build linux

package netgate

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/sandlock-go/sandlock/internal/fielderr"
)

// TestPlanningTable checks who enforces what, for every kind of rule,
// without a kernel: Landlock takes what its port rules can say, the filter
// which datagram sockets exist, the supervisor the rest.
func TestPlanningTable(t *testing.T) {
	lookup := func(ctx context.Context, host string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("192.0.2.7")}, nil
	}
	wide := "tcp://*:1000-3000" // more ports than Landlock takes
	for _, c := range []struct {
		name              string
		s                 Settings
		mode              Mode
		connectByLandlock bool
		ports             int
		udp, icmp, hosts  bool
		bindByLandlock    bool
		supervisor        string
	}{
		{"no rules", Settings{}, Closed, true, 0, false, false, false, true, ""},
		{"port-only", Settings{NetAllow: []string{"tcp://*:443", ":80,8080"}}, AllowList, true, 3, true, false, false, true, "NetAllow"},
		{"port-only TCP", Settings{NetAllow: []string{"tcp://*:443", "tcp://:80"}}, AllowList, true, 2, false, false, false, true, ""},
		{"host rule", Settings{NetAllow: []string{"tcp://example.com:443"}}, AllowList, false, 0, false, false, true, true, "NetAllow"},
		{"IP rule", Settings{NetAllow: []string{"tcp://10.0.0.1:443"}}, AllowList, false, 0, false, false, false, true, "NetAllow"},
		{"any port", Settings{NetAllow: []string{"tcp://*"}}, AllowList, false, 0, false, false, false, true, "NetAllow"},
		{"too many ports", Settings{NetAllow: []string{wide}}, AllowList, false, 0, false, false, false, true, "NetAllow"},
		{"UDP", Settings{NetAllow: []string{"udp://*:53"}}, AllowList, true, 0, true, false, false, true, "NetAllow"},
		{"ICMP", Settings{NetAllow: []string{"icmp://*"}}, AllowList, true, 0, false, true, false, true, "NetAllow"},
		{"deny list", Settings{NetDeny: []string{"10.0.0.0/8"}}, DenyList, false, 0, true, true, false, true, "NetDeny"},
		{"bind allow list", Settings{NetAllowBind: []string{"8080"}}, Closed, true, 0, false, false, false, true, ""},
		{"bind anything", Settings{NetAllowBind: []string{"*"}}, Closed, true, 0, false, false, false, false, ""},
		{"bind deny list", Settings{NetDenyBind: []string{"22"}}, Closed, true, 0, false, false, false, false, "NetDenyBind"},
	} {
		c.s.Lookup = lookup
		f, err := New(context.Background(), c.s)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if f.Mode != c.mode || f.ConnectByLandlock != c.connectByLandlock || len(f.ConnectPorts) != c.ports ||
			f.UDP != c.udp || f.ICMP != c.icmp || f.Hosts != c.hosts || f.BindByLandlock != c.bindByLandlock ||
			f.NeedsSupervisor != c.supervisor {
			t.Errorf("%s: mode %v landlock %v ports %v udp %v icmp %v hosts %v bind-landlock %v supervisor %q",
				c.name, f.Mode, f.ConnectByLandlock, f.ConnectPorts, f.UDP, f.ICMP, f.Hosts, f.BindByLandlock, f.NeedsSupervisor)
		}
		if c.name == "bind allow list" && !slices.Equal(f.BindPorts, []uint16{8080}) {
			t.Errorf("%s: bind ports %v", c.name, f.BindPorts)
		}
		// Without a supervisor only what Landlock enforces alone is
		// possible: the rest is an error naming the field.
		_, err = New(context.Background(), Settings{NetAllow: c.s.NetAllow, NetDeny: c.s.NetDeny, NetAllowBind: c.s.NetAllowBind,
			NetDenyBind: c.s.NetDenyBind, Lookup: lookup, NoSupervisor: true})
		var fe *fielderr.FieldError
		if c.supervisor == "" && err != nil {
			t.Errorf("%s without a supervisor: %v", c.name, err)
		}
		if c.supervisor != "" && (!errors.As(err, &fe) || fe.Field != c.supervisor) {
			t.Errorf("%s without a supervisor: %v, want an error on %s", c.name, err, c.supervisor)
		}
	}
}

func TestPlanningErrors(t *testing.T) {
	lookup := func(ctx context.Context, host string) ([]netip.Addr, error) { return nil, errors.New("no such host") }
	for _, c := range []struct {
		s            Settings
		field, value string
	}{
		{Settings{NetAllow: []string{"a:1"}, NetDeny: []string{"b"}}, "NetAllow", ""},
		{Settings{NetAllowBind: []string{"1"}, NetDenyBind: []string{"2"}}, "NetAllowBind", ""},
		{Settings{NetAllow: []string{"foo:99999"}}, "NetAllow", "foo:99999"},
		{Settings{NetDeny: []string{"example.com"}}, "NetDeny", "example.com"},
		{Settings{NetAllow: []string{"unresolvable.invalid:80"}}, "NetAllow", "unresolvable.invalid:80"},
		{Settings{NetAllowBind: []string{"70000"}}, "NetAllowBind", "70000"},
		{Settings{NetDenyBind: []string{"*"}}, "NetDenyBind", "*"},
	} {
		c.s.Lookup = lookup
		_, err := New(context.Background(), c.s)
		var fe *fielderr.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || fe.Value != c.value {
			t.Errorf("%+v: %v, want an error on %s %q", c.s, err, c.field, c.value)
		}
	}
	// A cancelled context stops a lookup.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := New(ctx, Settings{NetAllow: []string{"example.com:80"}, Lookup: func(ctx context.Context, host string) ([]netip.Addr, error) {
		return nil, ctx.Err()
	}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled lookup: %v", err)
	}
}
