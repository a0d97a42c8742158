//go:build linux

package filter

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/sysnum"
)

// refEval is the Policy's meaning, written as plainly as possible.
func refEval(p *Policy, c call) Action {
	if c.arch != p.Arch.AuditArch {
		return KillProcess
	}
	if p.Arch.X32 && c.nr >= 0x40000000 {
		if p.X32 == 0 {
			return Errno(unix.EPERM)
		}
		return p.X32
	}
	for _, r := range p.Rules {
		if uint32(r.Nr) != c.nr {
			continue
		}
	conds:
		for _, cd := range r.Conds {
			for _, ts := range cd.Tests {
				v := uint32(c.args[ts.Arg])
				switch ts.Op {
				case AnyBit:
					if v&ts.Value == 0 {
						continue conds
					}
				default:
					m := ts.Mask
					if m == 0 {
						m = ^uint32(0)
					}
					if v&m != ts.Value {
						continue conds
					}
				}
			}
			return cd.Action
		}
		return r.Action
	}
	return p.Default
}

// refValid reports whether Compile must accept p (size aside).
func refValid(p *Policy) bool {
	if p.Arch == nil {
		return false
	}
	seen := map[int]bool{}
	for _, r := range p.Rules {
		if r.Nr < 0 || seen[r.Nr] {
			return false
		}
		seen[r.Nr] = true
		for _, c := range r.Conds {
			if len(c.Tests) == 0 {
				return false
			}
			for _, ts := range c.Tests {
				if ts.Arg < 0 || ts.Arg > 5 {
					return false
				}
			}
		}
	}
	return true
}

// sizeBounds returns the least and the most instructions p can compile to.
// The most is the layout without its savings (one span per rule, every
// argument word loaded afresh, no test shared) with every conditional jump
// widened (two extra instructions each); the least is the header and a
// return, plus the number test and the return of each rule with conditions
// (conditions can share tests, and one that always holds hides the rest;
// consecutive syscalls with the same conditions and action share them).
func sizeBounds(p *Policy) (lo, hi int) {
	head, jumps := 4, 1 // LD arch; JEQ; RET kill; LD nr
	if p.Arch.X32 {
		head, jumps = head+2, jumps+1
	}
	lo, hi = head+1, head
	sorted := slices.SortedFunc(slices.Values(p.Rules), func(a, b Rule) int { return cmp.Compare(a.Nr, b.Nr) })
	for i, r := range sorted {
		hi += 2 // JEQ nr … RET
		jumps++
		if len(r.Conds) > 0 && (i == 0 || sorted[i-1].Nr+1 != r.Nr || !sameRule(sorted[i-1], r)) {
			lo += 2
		}
		for _, c := range r.Conds {
			hi++ // RET
			for _, ts := range c.Tests {
				hi += 2 // LD; Jxx
				jumps++
				if ts.Op != AnyBit && ts.Mask != 0 && ts.Mask != ^uint32(0) {
					hi++ // AND
				}
			}
		}
	}
	nodes, leaves := treeShape(len(p.Rules))
	hi += nodes + leaves // JGE nodes; RET default at each leaf
	jumps += nodes
	return lo, hi + 2*jumps
}

// sameRule reports whether two rules decide alike.
func sameRule(a, b Rule) bool {
	return a.Action == b.Action && slices.EqualFunc(a.Conds, b.Conds, func(x, y Cond) bool {
		return x.Action == y.Action && slices.Equal(x.Tests, y.Tests)
	})
}

// treeShape counts the JGE nodes and the leaves of the compiler's decision
// tree over n spans.
func treeShape(n int) (nodes, leaves int) {
	if n <= leafSpans {
		return 0, 1
	}
	a, b := treeShape(n / 2)
	c, d := treeShape(n - n/2)
	return a + c + 1, b + d
}

// bytesIn hands out fuzz bytes, then zeros.
type bytesIn struct{ b []byte }

func (s *bytesIn) byte() byte {
	if len(s.b) == 0 {
		return 0
	}
	c := s.b[0]
	s.b = s.b[1:]
	return c
}

func (s *bytesIn) u16() uint16 { return uint16(s.byte()) | uint16(s.byte())<<8 }
func (s *bytesIn) u32() uint32 { return uint32(s.u16()) | uint32(s.u16())<<16 }

var interesting = []uint32{0, 1, 2, 3, 0xf, 0xff, 0x80000000, 0xffffffff, 0x7fffffff, 0x100}

func (s *bytesIn) value() uint32 {
	b := s.byte()
	if int(b) < len(interesting) {
		return interesting[b]
	}
	if b < 64 {
		return uint32(b)
	}
	return s.u32()
}

// testPool holds the tests flag 64 draws from: two on one word, with and
// without a mask, so that loads and tests can be shared.
var testPool = []Test{{Arg: 1, Value: 3}, {Arg: 1, Mask: 0xf, Value: 3}, {Arg: 2, Op: AnyBit, Value: 4}, {Arg: 0, Value: 0}}

// policyFrom builds a policy from fuzz bytes. Every action is distinct, so a
// wrong branch cannot go unnoticed, unless flag 32 asks for runs: then
// argument-free rules often follow each other by number and share one of
// two actions, so that the compiler merges them into spans. Flag 64 draws
// every test from a pool of four, so that conditions begin alike and share
// their tests.
func policyFrom(data []byte) *Policy {
	s := &bytesIn{b: data}
	flags := s.byte()
	p := &Policy{Arch: sysnum.AMD64, Default: Allow}
	if flags&1 != 0 {
		p.Arch = sysnum.ARM64
	}
	invalid := flags&2 != 0 // let errors through
	if flags&4 != 0 {
		p.X32 = tag(0xfffe)
	}
	if flags&8 != 0 {
		p.Default = tag(0xfffd)
	}
	n := int(s.byte())
	if flags&16 != 0 {
		n *= 3
	}
	runs := flags&32 != 0
	shared := flags&64 != 0
	next := 1
	act := func() Action { next++; return tag(next) }
	seen := map[int]bool{}
	prev := -1
	for i := 0; i < n; i++ {
		var nr int
		switch b := s.byte(); {
		case b == 0:
			nr = 0x40000000 + int(s.byte())
		case b == 1 && invalid:
			nr = -1 - int(s.byte())
		case runs && b >= 128:
			nr = prev + 1
		default:
			nr = int(s.u16() % 1024)
		}
		prev = nr
		if seen[nr] && !invalid {
			continue
		}
		seen[nr] = true
		r := Rule{Nr: nr, Action: act()}
		// Mostly a few conditions, sometimes enough for far jumps.
		nConds := int(s.byte())
		if nConds < 250 {
			nConds %= 6
		} else {
			nConds = 40 * (nConds - 249)
		}
		for j := 0; j < nConds; j++ {
			c := Cond{Action: act()}
			nTests := int(s.byte())
			if nTests < 250 {
				nTests %= 5
			} else {
				nTests = 30 * (nTests - 249)
			}
			if nTests == 0 && !invalid {
				nTests = 1
			}
			for k := 0; k < nTests; k++ {
				b := s.byte()
				ts := Test{Arg: int(b % 6)}
				if invalid && b >= 250 {
					ts.Arg = int(b) - 245 // 5..10
				}
				if b&0x40 != 0 {
					ts.Op = AnyBit
				}
				if b&0x80 != 0 {
					ts.Mask = s.value()
				}
				ts.Value = s.value()
				if shared {
					ts = testPool[b%byte(len(testPool))]
				}
				c.Tests = append(c.Tests, ts)
			}
			r.Conds = append(r.Conds, c)
		}
		if runs && len(r.Conds) == 0 {
			r.Action = tag(1 + nConds%2)
			if s.byte()&1 != 0 {
				r.Action = tag(2)
			}
		}
		p.Rules = append(p.Rules, r)
	}
	return p
}

// satisfy returns arguments meeting every test of c it can (tests can
// contradict each other), with random high halves.
func satisfy(c Cond, rng *rand.Rand) [6]uint64 {
	var a [6]uint64
	for i := range a {
		a[i] = rng.Uint64()
	}
	// Set each tested argument's low word to meet its tests, last test last.
	lo := map[int]uint32{}
	for _, ts := range c.Tests {
		v, ok := lo[ts.Arg]
		if !ok {
			v = rng.Uint32()
		}
		switch ts.Op {
		case AnyBit:
			if v&ts.Value == 0 {
				v |= ts.Value & -ts.Value // lowest set bit
			}
		default:
			m := ts.Mask
			if m == 0 {
				m = ^uint32(0)
			}
			v = v&^m | ts.Value&m
		}
		lo[ts.Arg] = v
	}
	for i, v := range lo {
		a[i] = a[i]&^0xffffffff | uint64(v)
	}
	return a
}

var tooLong = regexp.MustCompile(`program has (\d+) instructions, over the kernel's 4096`)

// checkPolicy compiles p and compares the program's answers with refEval's
// for calls chosen to reach every branch.
func checkPolicy(t *testing.T, p *Policy, seed uint64) {
	valid := refValid(p)
	prog, err := p.Compile()
	if !valid {
		if err == nil {
			t.Fatalf("Compile accepted an invalid policy: %+v", p.Rules)
		}
		return
	}
	lo, hi := sizeBounds(p)
	if err != nil {
		m := tooLong.FindStringSubmatch(err.Error())
		if m == nil {
			t.Fatalf("Compile rejected a valid policy: %v", err)
		}
		n, _ := strconv.Atoi(m[1])
		if n <= maxInsns || n < lo || n > hi {
			t.Fatalf("Compile: %v; expected a length in [%d, %d] over %d", err, lo, hi, maxInsns)
		}
		return
	}
	if len(prog) < lo || len(prog) > hi || len(prog) > maxInsns {
		t.Fatalf("program has %d instructions, want [%d, %d] and at most %d", len(prog), lo, hi, maxInsns)
	}
	if lo > maxInsns {
		t.Fatalf("a %d-instruction program compiled", len(prog))
	}
	m := newMachine(t, prog)
	rng := rand.New(rand.NewPCG(seed, uint64(len(p.Rules))))
	arch := p.Arch.AuditArch
	randArgs := func() [6]uint64 {
		var a [6]uint64
		for i := range a {
			switch rng.IntN(4) {
			case 0:
				a[i] = uint64(interesting[rng.IntN(len(interesting))])
			case 1:
				a[i] = uint64(interesting[rng.IntN(len(interesting))]) | rng.Uint64()<<32
			default:
				a[i] = rng.Uint64()
			}
		}
		return a
	}
	check := func(c call) {
		t.Helper()
		want := refEval(p, c)
		if got := m.eval(t, c); got != want {
			t.Fatalf("%s %v: program says %v, reference says %v\npolicy: %+v", p.Arch.Arch, c, got, want, p)
		}
	}
	nrs := []uint32{0, 1, 0x3fffffff, 0x40000000, ^uint32(0), rng.Uint32(), uint32(rng.IntN(1100))}
	for _, r := range p.Rules {
		nr := uint32(r.Nr)
		nrs = append(nrs, nr, nr+1, nr-1)
		for _, c := range r.Conds {
			a := satisfy(c, rng)
			check(call{nr: nr, arch: arch, ip: rng.Uint64(), args: a})
			// Break one test at a time.
			for _, ts := range c.Tests {
				b := a
				b[ts.Arg] ^= uint64(1) << rng.IntN(32)
				check(call{nr: nr, arch: arch, args: b})
				b = a
				b[ts.Arg] &^= 0xffffffff
				check(call{nr: nr, arch: arch, args: b})
			}
		}
	}
	for _, nr := range nrs {
		check(call{nr: nr, arch: arch, ip: rng.Uint64(), args: randArgs()})
		check(call{nr: nr, arch: arch})
		// Verdicts that cannot depend on arguments must be provable from nr
		// and arch alone.
		if refEval(p, call{nr: nr, arch: arch, args: randArgs()}) == refEval(p, call{nr: nr, arch: arch}) {
			hasConds := false
			for _, r := range p.Rules {
				if uint32(r.Nr) == nr && len(r.Conds) > 0 && !(p.Arch.X32 && nr >= 0x40000000) {
					hasConds = true
				}
			}
			if !hasConds {
				act, ok := constVerdict(t, prog, nr, arch)
				if want := refEval(p, call{nr: nr, arch: arch}); !ok || act != want {
					t.Fatalf("nr %#x: constant verdict %v/%v, want %v/true", nr, act, ok, want)
				}
			}
		}
	}
	for range 3 {
		check(call{nr: nrs[rng.IntN(len(nrs))], arch: rng.Uint32(), args: randArgs()})
	}
	check(call{nr: nrs[rng.IntN(len(nrs))], arch: unix.AUDIT_ARCH_I386})
}

func seedOf(data []byte) uint64 {
	h := fnv.New64a()
	h.Write(data)
	return h.Sum64()
}

// fuzzSeeds are inputs for policyFrom: small, with x32 numbers, invalid,
// and big enough to need far jumps.
func fuzzSeeds() [][]byte {
	seeds := [][]byte{
		{},
		{0},
		{1, 3, 2, 0, 1, 1, 5, 2, 0x40, 7, 0x80, 2, 9},
		{4, 4, 0, 1, 1, 0, 2, 3, 0, 2, 2, 1, 1, 0xc5, 3, 0x13, 3, 3, 0x41, 0x80},
		{2, 4, 1, 3, 5, 5, 0, 0, 3, 0, 1, 255, 7, 7},
		{8, 2, 0, 5, 0, 1, 3},
	}
	// Runs of argument-free rules with shared actions, broken now and then
	// by a rule with a condition or a jump in numbers.
	runs := []byte{32, 40}
	for i := 0; i < 40; i++ {
		switch {
		case i%9 == 4:
			runs = append(runs, 200, 1, 1, 3, 7)
		case i%13 == 0:
			runs = append(runs, 2, byte(i*11), 0, 0, byte(i))
		default:
			runs = append(runs, 200, 0, byte(i/5))
		}
	}
	seeds = append(seeds, runs)
	// Conditions drawn from a small pool of tests.
	pool := []byte{64, 12}
	for i := 0; i < 12; i++ {
		pool = append(pool, 2, byte(i*3), 0, byte(2+i%4))
		for j := 0; j < 2+i%4; j++ {
			pool = append(pool, byte(1+(i+j)%3))
			for k := 0; k < 1+(i+j)%3; k++ {
				pool = append(pool, byte(i*j+k), byte(i+k))
			}
		}
	}
	seeds = append(seeds, pool)
	// Far jumps (last): rules with many conditions and conditions with
	// many tests.
	big := []byte{8, 30}
	for i := 0; i < 30; i++ {
		big = append(big, 2, byte(i*7), byte(i*7>>8))
		switch i % 3 {
		case 0: // 80 conditions of one test
			big = append(big, 251)
			for j := 0; j < 80; j++ {
				big = append(big, 1, byte(j%6), byte(j))
			}
		case 1: // one condition of 60 tests
			big = append(big, 1, 251)
			for j := 0; j < 60; j++ {
				big = append(big, 0x80|byte(j%6), 4, byte(j%10))
			}
		default: // two small conditions
			big = append(big, 2, 2, 0x40, 1, 0x81, 5, 3, 1, 3, 12)
		}
	}
	seeds = append(seeds, big)
	return seeds
}

func FuzzCompile(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkPolicy(t, policyFrom(data), seedOf(data))
	})
}

// TestRandomPolicies runs FuzzCompile's check on pseudo-random inputs in
// every ordinary test run.
func TestRandomPolicies(t *testing.T) {
	rng := rand.New(rand.NewPCG(42, 43))
	for i := 0; i < 300; i++ {
		data := make([]byte, rng.IntN(4000))
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		if len(data) > 0 && i%3 == 0 {
			data[0] &^= 2 // mostly valid policies
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			checkPolicy(t, policyFrom(data), seedOf(data))
		})
	}
}

// TestPolicyFromReachesFarJumps makes sure the generator's big seed does
// produce widened jumps, so the fuzz test covers them.
func TestPolicyFromReachesFarJumps(t *testing.T) {
	seeds := fuzzSeeds()
	p := policyFrom(seeds[len(seeds)-1])
	prog, err := p.Compile()
	if err != nil {
		t.Fatal(err)
	}
	if countJA(prog) == 0 {
		t.Fatalf("the big seed compiles to %d instructions without a far jump", len(prog))
	}
	checkPolicy(t, p, 1)
}
