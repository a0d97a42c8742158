//go:build linux

package filter

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/sysnum"
)

// tag returns a distinct action per i, so a test can tell every verdict of a
// program apart.
func tag(i int) Action { return Action(unix.SECCOMP_RET_TRACE | uint32(i)&unix.SECCOMP_RET_DATA) }

func compile(t testing.TB, p *Policy) *machine {
	t.Helper()
	prog, err := p.Compile()
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return newMachine(t, prog)
}

func args(v ...uint64) [6]uint64 {
	var a [6]uint64
	copy(a[:], v)
	return a
}

// countJA counts the unconditional jumps in prog: the compiler emits them
// only to widen a conditional jump whose target is too far away.
func countJA(prog []unix.SockFilter) int {
	n := 0
	for _, in := range prog {
		if in.Code == opJA {
			n++
		}
	}
	return n
}

func TestActionString(t *testing.T) {
	for _, tc := range []struct {
		a    Action
		want string
	}{
		{Allow, "ALLOW"},
		{Notify, "USER_NOTIF"},
		{KillProcess, "KILL_PROCESS"},
		{Errno(unix.EPERM), "ERRNO(EPERM)"},
		{Errno(unix.ENOSYS), "ERRNO(ENOSYS)"},
		{Trace(1), "TRACE(1)"},
		{Action(unix.SECCOMP_RET_LOG), "action(0x7ffc0000)"},
		{Action(unix.SECCOMP_RET_KILL_THREAD), "action(0x0)"},
	} {
		if got := tc.a.String(); got != tc.want {
			t.Errorf("Action(%#x).String() = %q, want %q", uint32(tc.a), got, tc.want)
		}
	}
}

func TestErrno(t *testing.T) {
	if got, want := uint32(Errno(unix.EPERM)), uint32(unix.SECCOMP_RET_ERRNO|1); got != want {
		t.Errorf("Errno(EPERM) = %#x, want %#x", got, want)
	}
	if got, want := uint32(Errno(unix.ENOSYS)), uint32(unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS)); got != want {
		t.Errorf("Errno(ENOSYS) = %#x, want %#x", got, want)
	}
	// Only SECCOMP_RET_DATA carries the errno: larger values cannot spill
	// into the action bits.
	if got, want := uint32(Errno(unix.Errno(0x10000|uint32(unix.EACCES)))), uint32(unix.SECCOMP_RET_ERRNO|uint32(unix.EACCES)); got != want {
		t.Errorf("Errno(0x1000d) = %#x, want %#x", got, want)
	}
}

func TestWrongArchKills(t *testing.T) {
	for _, tab := range []*sysnum.Table{sysnum.AMD64, sysnum.ARM64} {
		t.Run(tab.Arch, func(t *testing.T) {
			p := &Policy{Arch: tab, Default: Allow, Rules: []Rule{
				{Nr: 0, Action: Allow},
				{Nr: 1, Action: Errno(unix.EPERM)},
				{Nr: 2, Action: Allow, Conds: []Cond{{Tests: []Test{{Arg: 0, Value: 1}}, Action: Errno(unix.EACCES)}}},
			}}
			m := compile(t, p)
			other := uint32(unix.AUDIT_ARCH_AARCH64)
			if tab == sysnum.ARM64 {
				other = unix.AUDIT_ARCH_X86_64
			}
			wrong := []uint32{other, unix.AUDIT_ARCH_I386, unix.AUDIT_ARCH_ARM, 0, ^uint32(0), tab.AuditArch ^ 1, tab.AuditArch &^ 0x80000000}
			for _, arch := range wrong {
				for _, nr := range []uint32{0, 1, 2, 3, 0x40000000, ^uint32(0)} {
					for _, a := range [][6]uint64{args(), args(1), args(^uint64(0), ^uint64(0))} {
						if got := m.eval(t, call{nr: nr, arch: arch, args: a}); got != KillProcess {
							t.Errorf("arch %#x nr %#x args %#x: %v, want KILL_PROCESS", arch, nr, a, got)
						}
					}
				}
				// The kernel's action cache can decide a foreign arch from
				// the arch word alone.
				if act, ok := constVerdict(t, m.prog, 2, arch); !ok || act != KillProcess {
					t.Errorf("arch %#x: constant verdict %v/%v, want KILL_PROCESS/true", arch, act, ok)
				}
			}
			// The other side: the right arch is not killed.
			for nr, want := range map[uint32]Action{0: Allow, 1: Errno(unix.EPERM), 3: Allow} {
				if got := m.eval(t, call{nr: nr, arch: tab.AuditArch}); got != want {
					t.Errorf("own arch nr %d: %v, want %v", nr, got, want)
				}
			}
			if got := m.eval(t, call{nr: 2, arch: tab.AuditArch, args: args(1)}); got != Errno(unix.EACCES) {
				t.Errorf("own arch nr 2 arg 1: %v, want ERRNO(EACCES)", got)
			}
		})
	}
}

func TestX32(t *testing.T) {
	rules := []Rule{{Nr: 0, Action: tag(1)}, {Nr: 0x40000000, Action: tag(2)}, {Nr: 0x40000001, Action: tag(3)}}
	x32Nrs := []uint32{0x40000000, 0x40000001, 0x40000000 | 257, 0x7fffffff, 0x80000000, ^uint32(0)}

	t.Run("amd64 default EPERM", func(t *testing.T) {
		m := compile(t, &Policy{Arch: sysnum.AMD64, Rules: rules, Default: Allow})
		for _, nr := range x32Nrs {
			if got := m.eval(t, call{nr: nr, arch: unix.AUDIT_ARCH_X86_64}); got != Errno(unix.EPERM) {
				t.Errorf("nr %#x: %v, want ERRNO(EPERM)", nr, got)
			}
		}
		if got := m.eval(t, call{nr: 0x3fffffff, arch: unix.AUDIT_ARCH_X86_64}); got != Allow {
			t.Errorf("nr 0x3fffffff: %v, want ALLOW (the default)", got)
		}
		if got := m.eval(t, call{nr: 0, arch: unix.AUDIT_ARCH_X86_64}); got != tag(1) {
			t.Errorf("nr 0: %v, want its rule's action", got)
		}
	})
	t.Run("amd64 explicit", func(t *testing.T) {
		m := compile(t, &Policy{Arch: sysnum.AMD64, Rules: rules, Default: Allow, X32: Errno(unix.ENOSYS)})
		for _, nr := range x32Nrs {
			if got := m.eval(t, call{nr: nr, arch: unix.AUDIT_ARCH_X86_64}); got != Errno(unix.ENOSYS) {
				t.Errorf("nr %#x: %v, want ERRNO(ENOSYS)", nr, got)
			}
			if act, ok := constVerdict(t, m.prog, nr, unix.AUDIT_ARCH_X86_64); !ok || act != Errno(unix.ENOSYS) {
				t.Errorf("nr %#x: constant verdict %v/%v", nr, act, ok)
			}
		}
	})
	t.Run("arm64 has no x32", func(t *testing.T) {
		m := compile(t, &Policy{Arch: sysnum.ARM64, Rules: rules, Default: Allow, X32: Errno(unix.ENOSYS)})
		for nr, want := range map[uint32]Action{0: tag(1), 0x40000000: tag(2), 0x40000001: tag(3), 0x40000002: Allow, ^uint32(0): Allow} {
			if got := m.eval(t, call{nr: nr, arch: unix.AUDIT_ARCH_AARCH64}); got != want {
				t.Errorf("nr %#x: %v, want %v", nr, got, want)
			}
		}
	})
}

func TestRulesAndDefault(t *testing.T) {
	for _, tab := range []*sysnum.Table{sysnum.AMD64, sysnum.ARM64} {
		for _, def := range []Action{Allow, Errno(unix.EPERM), tag(999)} {
			// Out of order on purpose: Compile sorts.
			p := &Policy{Arch: tab, Default: def, Rules: []Rule{
				{Nr: 257, Action: tag(1)},
				{Nr: 0, Action: tag(2)},
				{Nr: 59, Action: KillProcess},
				{Nr: 435, Action: Errno(unix.ENOSYS)},
				{Nr: 1, Action: Notify},
			}}
			want := map[uint32]Action{}
			for _, r := range p.Rules {
				want[uint32(r.Nr)] = r.Action
			}
			m := compile(t, p)
			for nr := uint32(0); nr < 600; nr++ {
				w, ok := want[nr]
				if !ok {
					w = def
				}
				if got := m.eval(t, call{nr: nr, arch: tab.AuditArch, args: args(uint64(nr), 1, 2)}); got != w {
					t.Errorf("%s default %v nr %d: %v, want %v", tab.Arch, def, nr, got, w)
				}
			}
		}
	}
}

func TestCompileLeavesPolicyAlone(t *testing.T) {
	p := &Policy{Arch: sysnum.AMD64, Rules: []Rule{{Nr: 9}, {Nr: 3}, {Nr: 5}}}
	if _, err := p.Compile(); err != nil {
		t.Fatal(err)
	}
	if got := []int{p.Rules[0].Nr, p.Rules[1].Nr, p.Rules[2].Nr}; !slices.Equal(got, []int{9, 3, 5}) {
		t.Errorf("Compile reordered the caller's rules: %v", got)
	}
}

func TestEmptyPolicy(t *testing.T) {
	for _, tab := range []*sysnum.Table{sysnum.AMD64, sysnum.ARM64} {
		m := compile(t, &Policy{Arch: tab, Default: Errno(unix.EACCES)})
		for _, nr := range []uint32{0, 1, 100, 0x3fffffff} {
			if got := m.eval(t, call{nr: nr, arch: tab.AuditArch}); got != Errno(unix.EACCES) {
				t.Errorf("%s nr %d: %v, want the default", tab.Arch, nr, got)
			}
		}
	}
}

func TestConds(t *testing.T) {
	const nr = 42
	const ruleAct = 100
	type probe struct {
		args [6]uint64
		want int // tag index; ruleAct for the rule's own action
	}
	for _, tc := range []struct {
		name   string
		conds  []Cond
		probes []probe
	}{
		{
			name:  "equal without mask",
			conds: []Cond{{Tests: []Test{{Arg: 0, Value: 5}}, Action: tag(1)}},
			probes: []probe{
				{args(5), 1}, {args(4), ruleAct}, {args(0), ruleAct}, {args(0x105), ruleAct},
				{args(5 | 1<<32), 1}, {args(0xffffffff00000005), 1},
				{args(0, 5), ruleAct}, // another argument
			},
		},
		{
			name:  "equal zero",
			conds: []Cond{{Tests: []Test{{Arg: 3, Value: 0}}, Action: tag(1)}},
			probes: []probe{
				{args(), 1}, {args(0, 0, 0, 1<<32), 1}, {args(0, 0, 0, 1), ruleAct}, {args(0, 0, 0, 0x80000000), ruleAct},
			},
		},
		{
			name:  "equal with mask",
			conds: []Cond{{Tests: []Test{{Arg: 1, Mask: 0xf, Value: 2}}, Action: tag(1)}},
			probes: []probe{
				{args(0, 2), 1}, {args(0, 0x802), 1}, {args(0, 0xfffffff2), 1}, {args(0, 0x12), 1},
				{args(0, 3), ruleAct}, {args(0, 0), ruleAct}, {args(0, 0xf0), ruleAct}, {args(2), ruleAct},
			},
		},
		{
			name:   "mask of all ones is a plain equal",
			conds:  []Cond{{Tests: []Test{{Arg: 0, Mask: 0xffffffff, Value: 7}}, Action: tag(1)}},
			probes: []probe{{args(7), 1}, {args(7 | 5<<32), 1}, {args(0x107), ruleAct}, {args(6), ruleAct}},
		},
		{
			name:   "value outside mask never matches",
			conds:  []Cond{{Tests: []Test{{Arg: 0, Mask: 0xf, Value: 0x12}}, Action: tag(1)}},
			probes: []probe{{args(0x12), ruleAct}, {args(0x2), ruleAct}, {args(0xffffffff), ruleAct}},
		},
		{
			name:  "any bit",
			conds: []Cond{{Tests: []Test{{Arg: 2, Op: AnyBit, Value: 0x10000020}}, Action: tag(1)}},
			probes: []probe{
				{args(0, 0, 0x20), 1}, {args(0, 0, 0x10000000), 1}, {args(0, 0, 0xffffffff), 1}, {args(0, 0, 0x30), 1},
				{args(0, 0, 0x10), ruleAct}, {args(0, 0, 0), ruleAct}, {args(0, 0, 0xefffffdf), ruleAct},
				{args(0, 0, 0x20<<32), ruleAct}, {args(0, 0, 0x10000020<<32), ruleAct}, // high half ignored
				{args(0x20, 0x20, 0, 0x20, 0x20, 0x20), ruleAct},
			},
		},
		{
			name:   "any bit ignores Mask",
			conds:  []Cond{{Tests: []Test{{Arg: 0, Op: AnyBit, Mask: 1, Value: 2}}, Action: tag(1)}},
			probes: []probe{{args(2), 1}, {args(1), ruleAct}},
		},
		{
			name: "all tests of a cond must hold",
			conds: []Cond{{Tests: []Test{
				{Arg: 0, Value: 1},
				{Arg: 1, Mask: 0xf, Value: 3},
				{Arg: 2, Op: AnyBit, Value: 4},
			}, Action: tag(1)}},
			probes: []probe{
				{args(1, 0x13, 4), 1}, {args(1, 3, 0xff), 1},
				{args(2, 3, 4), ruleAct}, {args(1, 4, 4), ruleAct}, {args(1, 3, 3), ruleAct}, {args(0, 0, 0), ruleAct},
			},
		},
		{
			name: "two tests on one argument",
			conds: []Cond{{Tests: []Test{
				{Arg: 0, Mask: 0xff, Value: 0x12},
				{Arg: 0, Op: AnyBit, Value: 0x100},
			}, Action: tag(1)}},
			probes: []probe{{args(0x112), 1}, {args(0xf112), 1}, {args(0x12), ruleAct}, {args(0x113), ruleAct}},
		},
		{
			name: "first matching cond wins",
			conds: []Cond{
				{Tests: []Test{{Arg: 0, Value: 1}}, Action: tag(1)},
				{Tests: []Test{{Arg: 1, Op: AnyBit, Value: 1}}, Action: tag(2)},
				{Tests: []Test{{Arg: 0, Value: 1}, {Arg: 1, Value: 1}}, Action: tag(3)},
				{Tests: []Test{{Arg: 0, Value: 2}, {Arg: 1, Value: 2}}, Action: tag(4)},
			},
			probes: []probe{
				{args(1, 1), 1}, {args(1, 0), 1}, {args(0, 1), 2}, {args(2, 3), 2},
				{args(2, 2), 4}, {args(2, 6), ruleAct}, {args(0, 0), ruleAct}, {args(3, 2), ruleAct},
			},
		},
		{
			name:   "last argument",
			conds:  []Cond{{Tests: []Test{{Arg: 5, Value: 9}}, Action: tag(1)}},
			probes: []probe{{args(0, 0, 0, 0, 0, 9), 1}, {args(0, 0, 0, 0, 9, 0), ruleAct}, {args(9), ruleAct}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, tab := range []*sysnum.Table{sysnum.AMD64, sysnum.ARM64} {
				p := &Policy{Arch: tab, Default: Allow, Rules: []Rule{
					{Nr: nr - 1, Action: tag(200)},
					{Nr: nr, Conds: tc.conds, Action: tag(ruleAct)},
					{Nr: nr + 1, Action: tag(201)},
				}}
				m := compile(t, p)
				rng := rand.New(rand.NewPCG(1, 2))
				for _, pr := range tc.probes {
					want := tag(pr.want)
					if got := m.eval(t, call{nr: nr, arch: tab.AuditArch, args: pr.args}); got != want {
						t.Errorf("%s args %#x: %v, want %v", tab.Arch, pr.args, got, want)
					}
					// Neither the high halves of the arguments nor the
					// instruction pointer matter.
					hi := pr.args
					for i := range hi {
						hi[i] |= rng.Uint64() << 32
					}
					if got := m.eval(t, call{nr: nr, arch: tab.AuditArch, ip: rng.Uint64(), args: hi}); got != want {
						t.Errorf("%s args %#x: %v, want %v (only high halves changed)", tab.Arch, hi, got, want)
					}
					// A rule's conditions do not leak into its neighbours.
					if got := m.eval(t, call{nr: nr + 1, arch: tab.AuditArch, args: pr.args}); got != tag(201) {
						t.Errorf("%s nr %d args %#x: %v, want the neighbour's action", tab.Arch, nr+1, pr.args, got)
					}
					if got := m.eval(t, call{nr: nr + 2, arch: tab.AuditArch, args: pr.args}); got != Allow {
						t.Errorf("%s nr %d args %#x: %v, want the default", tab.Arch, nr+2, pr.args, got)
					}
				}
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	oneTest := []Cond{{Tests: []Test{{Arg: 0, Value: 1}}, Action: Allow}}
	for _, tc := range []struct {
		name string
		p    Policy
		want string // substring of the error
	}{
		{"nil arch", Policy{Rules: []Rule{{Nr: 1}}}, "no architecture"},
		{"duplicate", Policy{Arch: sysnum.AMD64, Rules: []Rule{{Nr: 5}, {Nr: 3}, {Nr: 5, Action: Allow}}}, "syscall 5 has two rules"},
		{"negative", Policy{Arch: sysnum.AMD64, Rules: []Rule{{Nr: 3}, {Nr: -1}}}, "syscall number -1 out of range"},
		{"arg -1", Policy{Arch: sysnum.AMD64, Rules: []Rule{{Nr: 7, Conds: []Cond{{Tests: []Test{{Arg: -1}}}}}}}, "syscall 7 tests argument -1"},
		{"arg 6", Policy{Arch: sysnum.ARM64, Rules: []Rule{{Nr: 7, Conds: []Cond{{Tests: []Test{{Arg: 0}, {Arg: 6}}}}}}}, "syscall 7 tests argument 6"},
		{"empty tests", Policy{Arch: sysnum.AMD64, Rules: []Rule{{Nr: 8, Conds: append([]Cond{{Action: Allow}}, oneTest...)}}}, "syscall 8 has a condition without tests"},
		{"empty tests later", Policy{Arch: sysnum.AMD64, Rules: []Rule{{Nr: 8, Conds: append(oneTest, Cond{Tests: []Test{}})}}}, "without tests"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prog, err := tc.p.Compile()
			if err == nil {
				t.Fatalf("Compile succeeded with %d instructions, want an error containing %q", len(prog), tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if prog != nil {
				t.Errorf("a program came with the error")
			}
		})
	}
	// The valid neighbours of those errors compile.
	for _, p := range []Policy{
		{Arch: sysnum.AMD64},
		{Arch: sysnum.AMD64, Rules: []Rule{{Nr: 0}, {Nr: 1}}},
		{Arch: sysnum.AMD64, Rules: []Rule{{Nr: 7, Conds: []Cond{{Tests: []Test{{Arg: 0}, {Arg: 5}}}}}}},
		{Arch: sysnum.AMD64, Rules: []Rule{{Nr: 8, Conds: nil}}},
	} {
		if _, err := p.Compile(); err != nil {
			t.Errorf("Compile(%+v): %v", p.Rules, err)
		}
	}
}

func TestProgramTooLong(t *testing.T) {
	build := func(n int) *Policy {
		p := &Policy{Arch: sysnum.AMD64, Default: Allow}
		for i := 0; i < n; i++ {
			p.Rules = append(p.Rules, Rule{Nr: i, Action: tag(i)})
		}
		return p
	}
	// Grow the policy until it no longer fits, then check both sides of the
	// limit.
	lastLen, n := 0, 1000
	for ; n < 2200; n++ {
		prog, err := build(n).Compile()
		if err != nil {
			if !strings.Contains(err.Error(), "over the kernel's 4096") {
				t.Fatalf("%d rules: %v", n, err)
			}
			break
		}
		lastLen = len(prog)
		if n == 1400 {
			// A big program still answers right, first rule to last.
			m := newMachine(t, prog)
			for _, nr := range []uint32{0, 1, 699, 1399, 1400} {
				want := tag(int(nr))
				if nr == 1400 {
					want = Allow
				}
				if got := m.eval(t, call{nr: nr, arch: unix.AUDIT_ARCH_X86_64}); got != want {
					t.Errorf("nr %d: %v, want %v", nr, got, want)
				}
			}
		}
	}
	if n == 2200 {
		t.Fatal("2200 rules still compile: no size limit")
	}
	// A rule without conditions costs two instructions, and a few more
	// where the decision tree grows a level.
	if lastLen > maxInsns || lastLen+16 <= maxInsns {
		t.Errorf("largest program that compiled has %d instructions; the limit is %d", lastLen, maxInsns)
	}
}

// bigBodies builds a policy whose rule bodies are long enough that the
// conditional jumps over them need widening.
func bigBodies(tab *sysnum.Table) *Policy {
	p := &Policy{Arch: tab, Default: tag(9000)}
	for nr := 0; nr < 40; nr++ {
		r := Rule{Nr: nr, Action: tag(nr)}
		if nr%10 == 5 {
			// 120 conds of 3 instructions each: the JEQ nr jumps over 361.
			for i := 0; i < 120; i++ {
				r.Conds = append(r.Conds, Cond{Tests: []Test{{Arg: nr % 6, Value: uint32(i)}}, Action: tag(1000*nr + i)})
			}
		}
		if nr == 20 {
			// One cond of 130 masked tests (3 instructions each): a failed
			// first test jumps over 388.
			var tests []Test
			for j := 0; j < 130; j++ {
				bit := uint32(1) << (j / 6)
				tests = append(tests, Test{Arg: j % 6, Mask: bit, Value: bit})
			}
			r.Conds = []Cond{{Tests: tests, Action: tag(20000)}}
		}
		p.Rules = append(p.Rules, r)
	}
	return p
}

func TestFarJumps(t *testing.T) {
	for _, tab := range []*sysnum.Table{sysnum.AMD64, sysnum.ARM64} {
		t.Run(tab.Arch, func(t *testing.T) {
			p := bigBodies(tab)
			m := compile(t, p)
			if countJA(m.prog) == 0 {
				t.Fatalf("no conditional jump was widened in a %d-instruction program; the test does not test far jumps", len(m.prog))
			}
			arch := tab.AuditArch
			for nr := 0; nr < 60; nr++ {
				want := tag(9000)
				if nr < 40 {
					want = tag(nr)
				}
				if got := m.eval(t, call{nr: uint32(nr), arch: arch, args: args(500, 500, 500, 500, 500, 500)}); got != want {
					t.Errorf("nr %d: %v, want %v", nr, got, want)
				}
			}
			for _, nr := range []int{5, 15, 25, 35} {
				for i := 0; i < 120; i++ {
					var a [6]uint64
					a[nr%6] = uint64(i)
					if got := m.eval(t, call{nr: uint32(nr), arch: arch, args: a}); got != tag(1000*nr+i) {
						t.Errorf("nr %d cond %d: %v, want %v", nr, i, got, tag(1000*nr+i))
					}
				}
			}
			all := args(^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0))
			if got := m.eval(t, call{nr: 20, arch: arch, args: all}); got != tag(20000) {
				t.Errorf("nr 20 all bits: %v, want the cond's action", got)
			}
			for j := 0; j < 130; j++ {
				a := all
				a[j%6] &^= 1 << (j / 6)
				if got := m.eval(t, call{nr: 20, arch: arch, args: a}); got != tag(20) {
					t.Errorf("nr 20 with test %d failing: %v, want the rule's action", j, got)
				}
			}
		})
	}
}

// TestFarJumpsEverywhere puts every rule's body past the 8-bit reach.
func TestFarJumpsEverywhere(t *testing.T) {
	p := &Policy{Arch: sysnum.AMD64, Default: Errno(unix.EPERM)}
	for k := 0; k < 10; k++ {
		nr := 3 * k
		r := Rule{Nr: nr, Action: tag(nr)}
		// Alternate arguments, so that every cond loads its word.
		for i := 0; i < 100; i++ {
			r.Conds = append(r.Conds, Cond{Tests: []Test{{Arg: 1 + i%2, Value: uint32(i)}}, Action: tag(100*(k+1) + i)})
		}
		p.Rules = append(p.Rules, r)
	}
	m := compile(t, p)
	if n := countJA(m.prog); n < 2*10 {
		t.Fatalf("%d JA in the program, want at least two per rule", n)
	}
	for nr := 0; nr < 32; nr++ {
		for _, i := range []int{0, 1, 50, 99, 100, 1000} {
			want := Errno(unix.EPERM)
			if nr%3 == 0 && nr < 30 {
				k := nr / 3
				want = tag(nr)
				if i < 100 {
					want = tag(100*(k+1) + i)
				}
			}
			if got := m.eval(t, call{nr: uint32(nr), arch: unix.AUDIT_ARCH_X86_64, args: args(0, uint64(i), uint64(i))}); got != want {
				t.Errorf("nr %d arg1 %d: %v, want %v", nr, i, got, want)
			}
		}
	}
}

// TestArgumentFreeVerdictsAreConstant checks the property the layout is for:
// on the path to the verdict of a syscall without argument conditions the
// program loads only the arch and nr words, so the kernel's action cache can
// prove the verdict; syscalls with conditions load arguments, and only the
// low words of the arguments they test.
func TestArgumentFreeVerdictsAreConstant(t *testing.T) {
	policies := map[string]*Policy{
		"amd64 big":  bigBodies(sysnum.AMD64),
		"arm64 big":  bigBodies(sysnum.ARM64),
		"amd64 x32":  {Arch: sysnum.AMD64, Default: Allow, X32: Errno(unix.ENOSYS), Rules: []Rule{{Nr: 1, Action: Errno(unix.EPERM)}, {Nr: 2, Conds: []Cond{{Tests: []Test{{Arg: 4, Op: AnyBit, Value: 1}}}}, Action: Allow}}},
		"arm64 none": {Arch: sysnum.ARM64, Default: Notify},
	}
	for name, p := range policies {
		t.Run(name, func(t *testing.T) {
			m := compile(t, p)
			arch := p.Arch.AuditArch
			byNr := map[uint32]Rule{}
			for _, r := range p.Rules {
				byNr[uint32(r.Nr)] = r
			}
			nrs := []uint32{0x3fffffff, 0x40000000, 0x40000005, ^uint32(0)}
			for nr := uint32(0); nr < 64; nr++ {
				nrs = append(nrs, nr)
			}
			for _, nr := range nrs {
				r, listed := byNr[nr]
				act, ok := constVerdict(t, m.prog, nr, arch)
				x32 := p.Arch.X32 && nr >= 0x40000000
				if listed && len(r.Conds) > 0 && !x32 {
					if ok {
						t.Errorf("nr %d has conditions but its verdict %v reads no argument", nr, act)
					}
					// Loads are the arch, the nr, and the low words of
					// tested arguments.
					tested := map[uint32]bool{4: true, 0: true}
					for _, c := range r.Conds {
						for _, ts := range c.Tests {
							tested[uint32(16+8*ts.Arg)] = true
						}
					}
					rng := rand.New(rand.NewPCG(uint64(nr), 7))
					for range 50 {
						c := call{nr: nr, arch: arch, ip: rng.Uint64()}
						for i := range c.args {
							c.args[i] = rng.Uint64()
						}
						tr, err := run(m.prog, c)
						if err != nil {
							t.Fatal(err)
						}
						for _, off := range tr.loads {
							if !tested[off] {
								t.Fatalf("nr %d loads offset %d; tested offsets are %v", nr, off, tested)
							}
						}
					}
					continue
				}
				want := p.Default
				switch {
				case x32:
					want = p.X32
					if want == 0 {
						want = Errno(unix.EPERM)
					}
				case listed:
					want = r.Action
				}
				if !ok || act != want {
					t.Errorf("nr %#x: constant verdict %v/%v, want %v/true", nr, act, ok, want)
				}
			}
		})
	}
}

func TestAssembler(t *testing.T) {
	t.Run("unbound label", func(t *testing.T) {
		var a asm
		l := a.newLabel()
		a.load(offNr)
		a.jump(jumpEqual, 1, l, l)
		a.ret(Allow)
		if _, err := a.assemble(); err == nil || !strings.Contains(err.Error(), "never bound") {
			t.Errorf("assemble = %v, want a never-bound error", err)
		}
	})
	t.Run("backward jump", func(t *testing.T) {
		var a asm
		l, end := a.newLabel(), a.newLabel()
		a.bind(l)
		a.load(offNr)
		a.jump(jumpEqual, 1, l, end)
		a.bind(end)
		a.ret(Allow)
		if _, err := a.assemble(); err == nil || !strings.Contains(err.Error(), "backward jump") {
			t.Errorf("assemble = %v, want a backward-jump error", err)
		}
	})
	t.Run("bind twice", func(t *testing.T) {
		var a asm
		l := a.newLabel()
		a.bind(l)
		defer func() {
			if recover() == nil {
				t.Error("binding a label twice did not panic")
			}
		}()
		a.bind(l)
	})
	t.Run("far jump to the next instruction", func(t *testing.T) {
		// A JEQ whose true target follows it directly and whose false
		// target is far away must still reach both.
		var a asm
		a.load(offNr)
		near, far := a.newLabel(), a.newLabel()
		a.jump(jumpEqual, 7, near, far)
		a.bind(near)
		for i := 0; i < 300; i++ {
			a.load(offArch)
		}
		a.ret(tag(1))
		a.bind(far)
		a.ret(tag(2))
		prog, err := a.assemble()
		if err != nil {
			t.Fatal(err)
		}
		if countJA(prog) != 2 {
			t.Fatalf("%d JA, want 2", countJA(prog))
		}
		m := newMachine(t, prog)
		if got := m.eval(t, call{nr: 7}); got != tag(1) {
			t.Errorf("nr 7: %v, want %v", got, tag(1))
		}
		if got := m.eval(t, call{nr: 8}); got != tag(2) {
			t.Errorf("nr 8: %v, want %v", got, tag(2))
		}
	})
}

// TestJumpReachBoundary checks the edge of the 8-bit jump offsets: 255 is
// encoded directly, 256 must be widened.
func TestJumpReachBoundary(t *testing.T) {
	for _, gap := range []int{254, 255, 256, 257} {
		// farTrue puts the far target on the true side of the jump.
		for _, farTrue := range []bool{false, true} {
			var a asm
			a.load(offNr)
			near, far := a.newLabel(), a.newLabel()
			nearNr, farNr := uint32(7), uint32(8)
			if farTrue {
				a.jump(jumpEqual, 8, far, near)
			} else {
				a.jump(jumpEqual, 7, near, far)
			}
			a.bind(near)
			for i := 0; i < gap-1; i++ {
				a.load(offArch)
			}
			a.ret(tag(1))
			a.bind(far)
			a.ret(tag(2))
			prog, err := a.assemble()
			if err != nil {
				t.Fatal(err)
			}
			wantJA := 0
			if gap > 255 {
				wantJA = 2
			}
			if n := countJA(prog); n != wantJA {
				t.Errorf("gap %d far-true %v: %d JA, want %d", gap, farTrue, n, wantJA)
			}
			m := newMachine(t, prog)
			if got := m.eval(t, call{nr: nearNr}); got != tag(1) {
				t.Errorf("gap %d far-true %v nr %d: %v, want %v", gap, farTrue, nearNr, got, tag(1))
			}
			if got := m.eval(t, call{nr: farNr}); got != tag(2) {
				t.Errorf("gap %d far-true %v nr %d: %v, want %v", gap, farTrue, farNr, got, tag(2))
			}
		}
	}

	// The same edge reached through a policy: a rule body of exactly 255
	// instructions (82 plain and 2 masked one-test conds, plus the RET) and
	// one of 256 (85 plain conds). The conds alternate between two
	// arguments, so that each loads its word.
	for _, tc := range []struct {
		plain, masked int
		far           bool
	}{{82, 2, false}, {85, 0, true}} {
		p := &Policy{Arch: sysnum.ARM64, Default: Allow}
		r := Rule{Nr: 10, Action: tag(10)}
		for i := 0; i < tc.plain+tc.masked; i++ {
			ts := Test{Arg: i % 2, Value: uint32(i)}
			if i >= tc.plain {
				ts.Mask = 0xffff
			}
			r.Conds = append(r.Conds, Cond{Tests: []Test{ts}, Action: tag(100 + i)})
		}
		p.Rules = []Rule{r, {Nr: 11, Action: tag(11)}}
		m := compile(t, p)
		if got := countJA(m.prog) > 0; got != tc.far {
			t.Errorf("%d+%d conds: far jumps %v, want %v", tc.plain, tc.masked, got, tc.far)
		}
		for i := 0; i <= tc.plain+tc.masked; i++ {
			want := tag(10)
			if i < tc.plain+tc.masked {
				want = tag(100 + i)
			}
			if got := m.eval(t, call{nr: 10, arch: unix.AUDIT_ARCH_AARCH64, args: args(uint64(i), uint64(i))}); got != want {
				t.Errorf("%d+%d conds, nr 10 arg %d: %v, want %v", tc.plain, tc.masked, i, got, want)
			}
			if got := m.eval(t, call{nr: 11, arch: unix.AUDIT_ARCH_AARCH64, args: args(uint64(i))}); got != tag(11) {
				t.Errorf("%d+%d conds, nr 11 arg %d: %v, want %v", tc.plain, tc.masked, i, got, tag(11))
			}
			if got := m.eval(t, call{nr: 12, arch: unix.AUDIT_ARCH_AARCH64, args: args(uint64(i))}); got != Allow {
				t.Errorf("%d+%d conds, nr 12 arg %d: %v, want ALLOW", tc.plain, tc.masked, i, got)
			}
		}
	}
}

// TestSpans checks that runs of argument-free rules with one action compile
// to a range test each, and still answer right at and around their ends.
func TestSpans(t *testing.T) {
	p := &Policy{Arch: sysnum.AMD64, Default: Allow}
	deny := Errno(unix.EPERM)
	// 10..19 denied, 20 notified, 21..23 denied, 30 with a condition,
	// 31..32 denied, 40 alone.
	for nr := 10; nr <= 19; nr++ {
		p.Rules = append(p.Rules, Rule{Nr: nr, Action: deny})
	}
	p.Rules = append(p.Rules, Rule{Nr: 20, Action: Notify})
	for nr := 21; nr <= 23; nr++ {
		p.Rules = append(p.Rules, Rule{Nr: nr, Action: deny})
	}
	p.Rules = append(p.Rules,
		Rule{Nr: 30, Action: Allow, Conds: []Cond{{Tests: []Test{{Arg: 0, Value: 1}}, Action: deny}}},
		Rule{Nr: 31, Action: deny}, Rule{Nr: 32, Action: deny},
		Rule{Nr: 40, Action: deny})
	m := compile(t, p)
	want := map[uint32]Action{20: Notify, 40: deny}
	for nr := uint32(10); nr <= 19; nr++ {
		want[nr] = deny
	}
	for _, nr := range []uint32{21, 22, 23, 31, 32} {
		want[nr] = deny
	}
	for nr := uint32(0); nr < 50; nr++ {
		w, ok := want[nr]
		if !ok {
			w = Allow
		}
		if got := m.eval(t, call{nr: nr, arch: unix.AUDIT_ARCH_X86_64, args: args(1)}); nr != 30 && got != w {
			t.Errorf("nr %d: %v, want %v", nr, got, w)
		}
		if act, ok := constVerdict(t, m.prog, nr, unix.AUDIT_ARCH_X86_64); nr != 30 && (!ok || act != w) {
			t.Errorf("nr %d: constant verdict %v/%v, want %v", nr, act, ok, w)
		}
	}
	if got := m.eval(t, call{nr: 30, arch: unix.AUDIT_ARCH_X86_64, args: args(1)}); got != deny {
		t.Errorf("nr 30 arg 1: %v, want %v", got, deny)
	}
	if got := m.eval(t, call{nr: 30, arch: unix.AUDIT_ARCH_X86_64, args: args(2)}); got != Allow {
		t.Errorf("nr 30 arg 2: %v, want ALLOW", got)
	}
	// Header 6 (arch, nr, x32), spans of 10, 3 and 2 rules (3 each), 20
	// and 40 (2 each), 30 with its condition (5), one tree node and two
	// default returns.
	if want := 6 + 3*3 + 2*2 + 5 + 1 + 2; len(m.prog) != want {
		t.Errorf("%d instructions, want %d", len(m.prog), want)
	}
}

// TestLoadsElided checks that a word already in the accumulator is not
// loaded again: after a failed one-test condition, the next condition on the
// same word only compares.
func TestLoadsElided(t *testing.T) {
	r := Rule{Nr: 16, Action: Allow}
	for i := 0; i < 12; i++ {
		r.Conds = append(r.Conds, Cond{Tests: []Test{{Arg: 1, Value: uint32(100 + i)}}, Action: tag(i)})
	}
	// A masked test on the same word needs only the AND; a second one with
	// the same mask, nothing.
	r.Conds = append(r.Conds,
		Cond{Tests: []Test{{Arg: 1, Mask: 0xf, Value: 3}}, Action: tag(20)},
		Cond{Tests: []Test{{Arg: 1, Mask: 0xf, Value: 4}}, Action: tag(21)},
		// Two tests: the failure paths hold different words, so the next
		// condition loads again.
		Cond{Tests: []Test{{Arg: 0, Value: 7}, {Arg: 2, Value: 8}}, Action: tag(22)},
		Cond{Tests: []Test{{Arg: 0, Value: 9}}, Action: tag(23)})
	p := &Policy{Arch: sysnum.ARM64, Default: Allow, Rules: []Rule{r}}
	m := compile(t, p)
	loads := 0
	for _, in := range m.prog {
		if in.Code == unix.BPF_LD|unix.BPF_W|unix.BPF_ABS {
			loads++
		}
	}
	// arch, nr, arg1 once, arg0 and arg2 for the two-test cond, arg0 again.
	if loads != 6 {
		t.Errorf("%d loads, want 6", loads)
	}
	eval := func(a [6]uint64) Action {
		return m.eval(t, call{nr: 16, arch: unix.AUDIT_ARCH_AARCH64, args: a})
	}
	for i := 0; i < 12; i++ {
		if got := eval(args(0, uint64(100+i))); got != tag(i) {
			t.Errorf("arg1 %d: %v, want %v", 100+i, got, tag(i))
		}
	}
	for _, tc := range []struct {
		a    [6]uint64
		want Action
	}{
		{args(0, 0x13), tag(20)}, {args(0, 0x24), tag(21)}, {args(0, 0x25), Allow},
		{args(7, 0, 8), tag(22)}, {args(7, 0, 9), Allow}, {args(9, 0, 8), tag(23)},
		{args(9, 0x13), tag(20)},
	} {
		if got := eval(tc.a); got != tc.want {
			t.Errorf("args %v: %v, want %v", tc.a, got, tc.want)
		}
	}
}

// TestSharedTests checks conditions that begin alike: the shared test is
// emitted once, a condition whose tests are all shared hides the ones after
// it, and first-match order holds throughout.
func TestSharedTests(t *testing.T) {
	a := Test{Arg: 0, Value: 2}
	b := Test{Arg: 1, Mask: 0xf, Value: 1}
	c := Test{Arg: 2, Value: 5}
	d := Test{Arg: 1, Op: AnyBit, Value: 0x100}
	r := Rule{Nr: 7, Action: tag(0), Conds: []Cond{
		{Tests: []Test{a, b}, Action: tag(1)},
		{Tests: []Test{a, b, c}, Action: tag(2)}, // hidden by the first
		{Tests: []Test{a, c}, Action: tag(3)},
		{Tests: []Test{a}, Action: tag(4)},
		{Tests: []Test{a, d}, Action: tag(5)}, // hidden by the fourth
		{Tests: []Test{d, c}, Action: tag(6)},
		{Tests: []Test{d}, Action: tag(7)},
	}}
	p := &Policy{Arch: sysnum.AMD64, Default: Allow, Rules: []Rule{r}}
	m := compile(t, p)
	for _, arg0 := range []uint64{2, 3} {
		for _, arg1 := range []uint64{0, 1, 0x11, 0x100, 0x101} {
			for _, arg2 := range []uint64{5, 6} {
				c := call{nr: 7, arch: unix.AUDIT_ARCH_X86_64, args: args(arg0, arg1, arg2)}
				if got, want := m.eval(t, c), refEval(p, c); got != want {
					t.Errorf("args %d %#x %d: %v, want %v", arg0, arg1, arg2, got, want)
				}
			}
		}
	}
	jeqA := 0
	for _, in := range m.prog {
		if in.Code == unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K && in.K == 2 {
			jeqA++
		}
	}
	if jeqA != 1 {
		t.Errorf("the shared test is emitted %d times, want once", jeqA)
	}
}
