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
	"fmt"
	"math"
	"sort"

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

// leafRules is how many rules a leaf of the decision tree tests one after
// the other; above that, the tree splits on the syscall number.
const leafRules = 4

// tree emits a binary decision tree over rules (sorted by number): each
// syscall is found in about log2(len(rules)) comparisons, both when the
// program runs and when the kernel emulates it to build its action cache.
// A syscall without a rule gets def.
func (a *asm) tree(rules []Rule, def Action) {
	if len(rules) <= leafRules {
		for _, r := range rules {
			a.rule(r)
		}
		a.ret(def)
		return
	}
	mid := len(rules) / 2
	low, high := a.newLabel(), a.newLabel()
	a.jump(jumpGreaterOrEqual, uint32(rules[mid].Nr), high, low)
	a.bind(low)
	a.tree(rules[:mid], def)
	a.bind(high)
	a.tree(rules[mid:], def)
}

// rule emits "if nr == r.Nr, decide r", falling through otherwise. The
// accumulator holds the syscall number on entry and, when falling through,
// on exit; the conditions' argument loads all end in a return.
func (a *asm) rule(r Rule) {
	body, next := a.newLabel(), a.newLabel()
	a.jump(jumpEqual, uint32(r.Nr), body, next)
	a.bind(body)
	for _, c := range r.Conds {
		nextCond := a.newLabel()
		for _, t := range c.Tests {
			off := offArgs + 8*uint32(t.Arg)
			if t.High {
				off += 4
			}
			a.load(off)
			pass := a.newLabel()
			switch t.Op {
			case AnyBit:
				a.jump(jumpBitsSet, t.Value, pass, nextCond)
			default:
				if t.Mask != 0 && t.Mask != ^uint32(0) {
					a.and(t.Mask)
				}
				a.jump(jumpEqual, t.Value, pass, nextCond)
			}
			a.bind(pass)
		}
		a.ret(c.Action)
		a.bind(nextCond)
	}
	a.ret(r.Action)
	a.bind(next)
}

// maxInsns is BPF_MAXINSNS.
const maxInsns = 4096

// Compile lays out and assembles the policy.
func (p *Policy) Compile() ([]unix.SockFilter, error) {
	if p.Arch == nil {
		return nil, fmt.Errorf("filter: no architecture")
	}
	rules := append([]Rule(nil), p.Rules...)
	sort.SliceStable(rules, func(i, j int) bool { return rules[i].Nr < rules[j].Nr })
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

	var a asm
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
	a.tree(rules, p.Default)

	prog, err := a.assemble()
	if err != nil {
		return nil, err
	}
	if len(prog) > maxInsns {
		return nil, fmt.Errorf("filter: program has %d instructions, over the kernel's %d", len(prog), maxInsns)
	}
	return prog, nil
}
