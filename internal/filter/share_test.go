//go:build linux

package filter

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/sysnum"
)

// TestSharedBodies checks the two savings for rules with conditions:
// consecutive syscalls decided alike share one range test and one body,
// and a condition whose action is the default jumps to the leaf's return
// of it instead of returning on its own.
func TestSharedBodies(t *testing.T) {
	self := []Cond{{Tests: []Test{{Arg: 0, Value: 0}}, Action: Allow}}
	deny := Errno(unix.EPERM)
	p := &Policy{Arch: sysnum.AMD64, Default: Allow, Rules: []Rule{
		{Nr: 10, Conds: self, Action: Notify},
		{Nr: 11, Conds: self, Action: Notify},
		{Nr: 12, Conds: self, Action: Notify},
		{Nr: 13, Conds: self, Action: deny}, // another action: a rule of its own
		{Nr: 20, Conds: self, Action: Notify},
	}}
	m := compile(t, p)
	want := map[uint32]Action{10: Notify, 11: Notify, 12: Notify, 13: deny, 20: Notify}
	for nr := uint32(8); nr < 22; nr++ {
		w, ok := want[nr]
		if !ok {
			w = Allow
		}
		for _, a := range []uint64{1, 1<<32 | 1, 0xffffffff} {
			if got := m.eval(t, call{nr: nr, arch: unix.AUDIT_ARCH_X86_64, args: args(a)}); got != w {
				t.Errorf("nr %d arg %#x: %v, want %v", nr, a, got, w)
			}
		}
		for _, a := range []uint64{0, 1 << 32} {
			if got := m.eval(t, call{nr: nr, arch: unix.AUDIT_ARCH_X86_64, args: args(a)}); got != Allow {
				t.Errorf("nr %d arg %#x: %v, want ALLOW", nr, a, got)
			}
		}
	}
	// Header 6 (arch, nr, x32); 10..12: two range tests, load, test, RET
	// (5); 13 and 20: number test, load, test, RET (4 each); the leaf's
	// default return, which the three conditions share.
	if want := 6 + 5 + 4 + 4 + 1; len(m.prog) != want {
		t.Errorf("%d instructions, want %d", len(m.prog), want)
	}
}
