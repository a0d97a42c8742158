//go:build linux

// Package filter compiles a seccomp policy, written as data, into a classic
// BPF program for seccomp(SECCOMP_SET_MODE_FILTER).
//
// A Policy lists syscalls by number, each with an action and optional
// argument conditions; Compile lays the program out and resolves every jump
// itself, so no offset is ever counted by hand. The layout is chosen so that
// the kernel's seccomp action cache can prove "allow" for every syscall whose
// verdict does not depend on its arguments: the program reads only the
// architecture and the syscall number on the path to such a verdict.
//
//	LD arch; JEQ AUDIT_ARCH else KILL_PROCESS
//	LD nr;   [x86_64] JGE 0x40000000 → x32 action
//	JGE nr_mid → upper half, else lower half   (a binary tree on nr)
//	  … leaves: JEQ nr₁ else next₁ ; nr₁'s conditions … RET
//	            JEQ nr₂ else next₂ ; … RET default
package filter

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/sysnum"
)

// Action is a seccomp filter return value (SECCOMP_RET_*).
type Action uint32

// Actions a filter can return.
const (
	Allow       Action = unix.SECCOMP_RET_ALLOW
	Notify      Action = unix.SECCOMP_RET_USER_NOTIF
	KillProcess Action = unix.SECCOMP_RET_KILL_PROCESS
)

// Trace returns the action that stops the calling task for its ptrace
// tracer (PTRACE_EVENT_SECCOMP), with data for the tracer; without a
// tracer the syscall fails with ENOSYS.
func Trace(data uint16) Action { return Action(unix.SECCOMP_RET_TRACE | uint32(data)) }

// Errno returns the action that fails a syscall with errno e.
func Errno(e unix.Errno) Action {
	return Action(unix.SECCOMP_RET_ERRNO | (uint32(e) & unix.SECCOMP_RET_DATA))
}

func (a Action) String() string {
	switch {
	case a == Allow:
		return "ALLOW"
	case a == Notify:
		return "USER_NOTIF"
	case a == KillProcess:
		return "KILL_PROCESS"
	case uint32(a)&unix.SECCOMP_RET_ACTION_FULL == unix.SECCOMP_RET_TRACE:
		return fmt.Sprintf("TRACE(%d)", uint32(a)&unix.SECCOMP_RET_DATA)
	case uint32(a)&unix.SECCOMP_RET_ACTION_FULL == unix.SECCOMP_RET_ERRNO:
		return fmt.Sprintf("ERRNO(%s)", unix.ErrnoName(unix.Errno(uint32(a)&unix.SECCOMP_RET_DATA)))
	}
	return fmt.Sprintf("action(%#x)", uint32(a))
}

// Op is how an argument test compares.
type Op uint8

const (
	// Equal holds when (arg & Mask) == Value; a zero Mask means all 32 bits.
	Equal Op = iota
	// AnyBit holds when arg & Value != 0.
	AnyBit
)

// Test is a test on 32 bits of one syscall argument: the low half unless
// High. Ints and flag words have all their meaningful bits in the low half
// (and the kernel truncates int arguments), so a caller cannot dodge a
// low-half test by setting the high half; pointers need both halves.
type Test struct {
	Arg   int // 0..5
	High  bool
	Op    Op
	Mask  uint32
	Value uint32
}

// Cond is a conjunction of tests and the action taken when all hold.
type Cond struct {
	Tests  []Test
	Action Action
}

// Rule decides one syscall: the first Cond whose tests all hold gives the
// action; if none holds, Action does.
type Rule struct {
	Nr     int
	Conds  []Cond
	Action Action
}

// Policy is a whole filter.
type Policy struct {
	Arch *sysnum.Table
	// Rules, at most one per syscall number.
	Rules []Rule
	// Default is the action for syscalls without a rule.
	Default Action
	// X32 is the action for x32 syscall numbers on architectures that have
	// them (x86_64); zero means Errno(EPERM).
	X32 Action
}

// seccomp_data offsets.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// x32SyscallBit is __X32_SYSCALL_BIT.
const x32SyscallBit = 0x40000000

// span is a run of consecutive syscall numbers that one rule decides, or
// that several argument-free rules with the same action decide alike.
type span struct {
	lo, hi int
	rule   *Rule
}

// spans groups sorted rules into spans: consecutive syscalls decided alike
// (the same action and the same conditions, often none) share one range
// test and one body.
func spans(rules []Rule) []span {
	out := make([]span, 0, len(rules))
	for i := range rules {
		r := &rules[i]
		if n := len(out); n > 0 {
			last := &out[n-1]
			if last.hi+1 == r.Nr && last.rule.Action == r.Action && sameConds(last.rule.Conds, r.Conds) {
				last.hi = r.Nr
				continue
			}
		}
		out = append(out, span{lo: r.Nr, hi: r.Nr, rule: r})
	}
	return out
}

// sameConds reports whether two rules' conditions decide alike, test by
// test.
func sameConds(a, b []Cond) bool {
	return slices.EqualFunc(a, b, func(x, y Cond) bool {
		return x.Action == y.Action && slices.Equal(x.Tests, y.Tests)
	})
}

// leafSpans is how many spans a leaf of the decision tree tests one after
// the other; above that, the tree splits on the syscall number.
const leafSpans = 4

// tree emits a binary decision tree over spans (sorted by number): each
// syscall is found in about log2(len(spans)) comparisons, both when the
// program runs and when the kernel emulates it to build its action cache.
// A syscall outside every span gets def.
func (a *asm) tree(spans []span, def Action) {
	if len(spans) <= leafSpans {
		a.leafDef, a.leafDefAct = a.newLabel(), def
		for _, s := range spans {
			if s.lo == s.hi {
				a.rule(s.rule)
			} else {
				a.span(s)
			}
		}
		a.bind(a.leafDef)
		a.ret(def)
		return
	}
	mid := len(spans) / 2
	low, high := a.newLabel(), a.newLabel()
	a.jump(jumpGreaterOrEqual, uint32(spans[mid].lo), high, low)
	a.bind(low)
	a.tree(spans[:mid], def)
	a.bind(high)
	a.tree(spans[mid:], def)
}

// span emits "if lo <= nr <= hi, decide the span's rule", falling through
// otherwise with the syscall number still in the accumulator.
func (a *asm) span(s span) {
	in, body, next, none := a.newLabel(), a.newLabel(), a.newLabel(), a.newLabel()
	a.jump(jumpGreaterOrEqual, uint32(s.lo), in, next)
	a.bind(in)
	a.jump(jumpGreaterOrEqual, uint32(s.hi)+1, next, body)
	a.bind(body)
	a.conds(s.rule.Conds, 0, none)
	a.bind(none)
	a.ret(s.rule.Action)
	a.bind(next)
}

// rule emits "if nr == r.Nr, decide r", falling through otherwise. The
// accumulator holds the syscall number on entry and, when falling through,
// on exit; the conditions' argument loads all end in a return.
func (a *asm) rule(r *Rule) {
	body, next, none := a.newLabel(), a.newLabel(), a.newLabel()
	a.jump(jumpEqual, uint32(r.Nr), body, next)
	a.bind(body)
	a.conds(r.Conds, 0, none)
	a.bind(none)
	a.ret(r.Action)
	a.bind(next)
}

// conds emits conditions whose first depth tests are known to hold: the
// first condition whose remaining tests all hold returns its action; if none
// does, control goes to fail. Neighbouring conditions that begin with the
// same test share it, so a run of conditions on one socket domain, say,
// tests the domain once.
func (a *asm) conds(cs []Cond, depth int, fail label) {
	for i := 0; i < len(cs); {
		if len(cs[i].Tests) == depth {
			// Every test holds: the conditions after it are never reached.
			a.ret(cs[i].Action)
			return
		}
		t := cs[i].Tests[depth]
		j := i + 1
		for j < len(cs) && len(cs[j].Tests) > depth && cs[j].Tests[depth] == t {
			j++
		}
		next := fail
		if j < len(cs) {
			next = a.newLabel()
		}
		if len(cs[i].Tests) == depth+1 && cs[i].Action == a.leafDefAct {
			// The condition holds with this test, and its action is the
			// default: jump to the leaf's return of it. (The conditions
			// after it that share the test are never reached.)
			a.test(t, a.leafDef, next)
		} else {
			pass := a.newLabel()
			a.test(t, pass, next)
			a.bind(pass)
			a.conds(cs[i:j], depth+1, next)
		}
		if j < len(cs) {
			a.bind(next)
		}
		i = j
	}
}

// test emits one argument test.
func (a *asm) test(t Test, pass, fail label) {
	off := offArgs + 8*uint32(t.Arg)
	if t.High {
		off += 4
	}
	if t.Op == AnyBit {
		a.loadWord(off, 0)
		a.jump(jumpBitsSet, t.Value, pass, fail)
		return
	}
	mask := t.Mask
	if mask == ^uint32(0) {
		mask = 0
	}
	a.loadWord(off, mask)
	a.jump(jumpEqual, t.Value, pass, fail)
}

// maxInsns is BPF_MAXINSNS.
const maxInsns = 4096

// Compile lays out and assembles the policy.
func (p *Policy) Compile() ([]unix.SockFilter, error) {
	if p.Arch == nil {
		return nil, fmt.Errorf("filter: no architecture")
	}
	rules := slices.Clone(p.Rules)
	slices.SortStableFunc(rules, func(a, b Rule) int { return cmp.Compare(a.Nr, b.Nr) })
	for i := range rules {
		if rules[i].Nr < 0 || rules[i].Nr > math.MaxUint32 {
			return nil, fmt.Errorf("filter: syscall number %d out of range", rules[i].Nr)
		}
		if i > 0 && rules[i].Nr == rules[i-1].Nr {
			return nil, fmt.Errorf("filter: syscall %d has two rules", rules[i].Nr)
		}
		for _, c := range rules[i].Conds {
			if len(c.Tests) == 0 {
				return nil, fmt.Errorf("filter: syscall %d has a condition without tests", rules[i].Nr)
			}
			for _, t := range c.Tests {
				if t.Arg < 0 || t.Arg > 5 {
					return nil, fmt.Errorf("filter: syscall %d tests argument %d", rules[i].Nr, t.Arg)
				}
			}
		}
	}

	// About three instructions and labels per rule and test.
	size := 8 + 3*len(rules)
	for _, r := range rules {
		for _, c := range r.Conds {
			size += 1 + 3*len(c.Tests)
		}
	}
	a := asm{insns: make([]insn, 0, size), labels: make([]labelInfo, 0, size)}
	a.load(offArch)
	kill := a.newLabel()
	afterArch := a.newLabel()
	a.jump(jumpEqual, p.Arch.AuditArch, afterArch, kill)
	a.bind(kill)
	a.ret(KillProcess)
	a.bind(afterArch)
	a.load(offNr)
	if p.Arch.X32 {
		x32 := p.X32
		if x32 == 0 {
			x32 = Errno(unix.EPERM)
		}
		deny, next := a.newLabel(), a.newLabel()
		a.jump(jumpGreaterOrEqual, x32SyscallBit, deny, next)
		a.bind(deny)
		a.ret(x32)
		a.bind(next)
	}
	a.tree(spans(rules), p.Default)

	prog, err := a.assemble()
	if err != nil {
		return nil, err
	}
	if len(prog) > maxInsns {
		return nil, fmt.Errorf("filter: program has %d instructions, over the kernel's %d", len(prog), maxInsns)
	}
	return prog, nil
}
