package sysfilter

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/filter"
)

// Trace sends some calls to the tracer, except where a deny or a
// notification already decides the syscall.
func TestFilterTrace(t *testing.T) {
	for _, tab := range tables {
		futex, nanosleep := tab.MustNr("futex"), tab.MustNr("clock_nanosleep")
		eq := func(arg int, v uint32) filter.Test { return filter.Test{Arg: arg, Value: v} }
		tr := filter.Trace(7)
		trace := map[int][]filter.Cond{
			futex: {
				{Tests: []filter.Test{{Arg: 1, Mask: 0xffffff7f, Value: 0x109}, {Arg: 3, Op: filter.AnyBit, Value: 0xffffffff}}, Action: tr},
				{Tests: []filter.Test{{Arg: 1, Mask: 0xffffff7f, Value: 0x109}, {Arg: 3, High: true, Op: filter.AnyBit, Value: 0xffffffff}}, Action: tr},
			},
			nanosleep: {{Tests: []filter.Test{eq(0, 0), {Arg: 1, Op: filter.AnyBit, Value: 1}}, Action: tr}},
		}
		deny, err := DenyList(tab, DefaultBlocklist, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		p := compile(t, &FilterSpec{Arch: tab, Deny: deny, Trace: trace})
		for _, tc := range []struct {
			what string
			nr   int
			args []uint64
			want filter.Action
		}{
			{"futex WAIT_BITSET|CLOCK_REALTIME|PRIVATE with a timeout", futex, []uint64{0x1000, 0x189, 0, 0x7fff0000}, tr},
			{"futex WAIT_BITSET|CLOCK_REALTIME, timeout above 4 GiB", futex, []uint64{0x1000, 0x109, 0, 1 << 40}, tr},
			{"futex WAIT_BITSET|CLOCK_REALTIME without a timeout", futex, []uint64{0x1000, 0x109, 0, 0}, filter.Allow},
			{"futex WAIT_BITSET (MONOTONIC)", futex, []uint64{0x1000, 0x89, 0, 0x7fff0000}, filter.Allow},
			{"futex WAKE", futex, []uint64{0x1000, 0x81, 1, 0}, filter.Allow},
			{"futex WAIT", futex, []uint64{0x1000, 0x80, 0, 0x7fff0000}, filter.Allow},
			{"clock_nanosleep REALTIME ABSTIME", nanosleep, []uint64{0, 1, 0x1000, 0}, tr},
			{"clock_nanosleep REALTIME relative", nanosleep, []uint64{0, 0, 0x1000, 0}, filter.Allow},
			{"clock_nanosleep MONOTONIC ABSTIME", nanosleep, []uint64{1, 1, 0x1000, 0}, filter.Allow},
		} {
			if got := p.eval(t, tc.nr, tc.args...); got != tc.want {
				t.Errorf("%s: %s: %v, want %v", tab.Arch, tc.what, got, tc.want)
			}
		}

		// Denied stays denied; notified (a user handler) stays notified
		// whole, untraced.
		deny = append(deny, futex)
		p = compile(t, &FilterSpec{Arch: tab, Deny: deny, Notify: []int{nanosleep}, Trace: trace})
		if got := p.eval(t, futex, 0x1000, 0x109, 0, 0x7fff0000); got != filter.Errno(unix.EPERM) {
			t.Errorf("%s: denied futex: %v", tab.Arch, got)
		}
		if got := p.eval(t, nanosleep, 0, 1, 0x1000, 0); got != filter.Notify {
			t.Errorf("%s: notified clock_nanosleep: %v", tab.Arch, got)
		}

		// A trace condition must trace.
		bad := map[int][]filter.Cond{futex: {{Tests: []filter.Test{eq(0, 0)}, Action: filter.Allow}}}
		if _, err := (&FilterSpec{Arch: tab, Trace: bad}).Filter(); err == nil {
			t.Errorf("%s: a trace condition that allows: accepted", tab.Arch)
		}
	}
}
