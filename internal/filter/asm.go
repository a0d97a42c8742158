//go:build linux

package filter

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// label names a position in the program, bound once.
type label int32

type insnKind uint8

const (
	kLoad insnKind = iota
	kAnd
	kJumpIf
	kRet
)

// insn is an instruction whose jump targets are still labels.
type insn struct {
	k      uint32
	jt, jf label
	kind   insnKind
	cond   jumpTest
	// far is set when a conditional jump's targets do not fit its 8-bit
	// offsets; it is then emitted as JEQ 0,1; JA jt; JA jf.
	far bool
}

// accum is what the accumulator is known to hold: a word of seccomp_data,
// possibly masked.
type accum struct {
	known bool
	off   uint32 // the word's offset
	mask  uint32 // the AND applied to it; 0 for none
}

// labelInfo is a label's position and what the accumulator holds on every
// path that reaches it.
type labelInfo struct {
	at      int // index of the instruction it precedes; -1 while unbound
	reached bool
	acc     accum
}

// asm collects instructions and resolves labels to offsets. It follows the
// accumulator along every path, so that loadWord can leave out a load whose
// word is already there: all jumps go forward, so by the time a label is
// bound every path into it is known.
type asm struct {
	insns  []insn
	labels []labelInfo
	acc    accum // at the end of the program so far
	dead   bool  // the end so far cannot be reached by falling through

	// leafDef is the return of the default action that ends the leaf of
	// the decision tree being emitted: a condition whose action is the
	// default jumps there instead of returning on its own.
	leafDef    label
	leafDefAct Action
}

func (a *asm) newLabel() label {
	a.labels = append(a.labels, labelInfo{at: -1})
	return label(len(a.labels) - 1)
}

// reach records a path into l along which the accumulator holds acc.
func (a *asm) reach(l label, acc accum) {
	li := &a.labels[l]
	if !li.reached {
		li.reached, li.acc = true, acc
	} else if li.acc != acc {
		li.acc = accum{}
	}
}

func (a *asm) bind(l label) {
	if a.labels[l].at != -1 {
		panic("filter: label bound twice")
	}
	if !a.dead {
		a.reach(l, a.acc)
	}
	a.labels[l].at = len(a.insns)
	a.acc, a.dead = a.labels[l].acc, false
}

func (a *asm) load(off uint32) {
	a.insns = append(a.insns, insn{kind: kLoad, k: off})
	a.acc = accum{known: true, off: off}
}

func (a *asm) and(mask uint32) {
	a.insns = append(a.insns, insn{kind: kAnd, k: mask})
	if a.acc.known && a.acc.mask == 0 {
		a.acc.mask = mask
	} else {
		a.acc = accum{}
	}
}

// loadWord puts the word at off, ANDed with mask (0: all bits), into the
// accumulator, emitting only what it does not hold already.
func (a *asm) loadWord(off, mask uint32) {
	want := accum{known: true, off: off, mask: mask}
	switch {
	case a.acc == want:
	case mask != 0 && a.acc == accum{known: true, off: off}:
		a.and(mask)
	default:
		a.load(off)
		if mask != 0 {
			a.and(mask)
		}
	}
}

func (a *asm) ret(act Action) {
	a.insns = append(a.insns, insn{kind: kRet, k: uint32(act)})
	a.dead = true
}

// jump emits a conditional jump; both outcomes go to labels.
func (a *asm) jump(c jumpTest, k uint32, jt, jf label) {
	a.insns = append(a.insns, insn{kind: kJumpIf, cond: c, k: k, jt: jt, jf: jf})
	a.reach(jt, a.acc)
	a.reach(jf, a.acc)
	a.dead = true
}

func (in insn) size() int {
	if in.kind == kJumpIf && in.far {
		return 3
	}
	return 1
}

// assemble resolves labels and encodes the program. Conditional jumps whose
// targets lie beyond 255 instructions are widened through unconditional
// jumps until every offset fits.
func (a *asm) assemble() ([]unix.SockFilter, error) {
	for l, li := range a.labels {
		if li.at == -1 {
			return nil, fmt.Errorf("filter: label %d never bound", l)
		}
	}
	for {
		pos := a.positions()
		widened := false
		for i, in := range a.insns {
			if in.kind != kJumpIf || in.far {
				continue
			}
			from := pos[i] + 1
			if pos[a.labels[in.jt].at]-from > 255 || pos[a.labels[in.jf].at]-from > 255 {
				a.insns[i].far = true
				widened = true
			}
		}
		if !widened {
			return a.encode(pos)
		}
	}
}

// positions returns each instruction's index in the encoded program, with
// one extra entry for the end.
func (a *asm) positions() []int {
	pos := make([]int, len(a.insns)+1)
	n := 0
	for i, in := range a.insns {
		pos[i] = n
		n += in.size()
	}
	pos[len(a.insns)] = n
	return pos
}

func (a *asm) encode(pos []int) ([]unix.SockFilter, error) {
	prog := make([]unix.SockFilter, 0, pos[len(a.insns)])
	for i, in := range a.insns {
		from := pos[i] + 1
		target := func(l label) (int, error) {
			off := pos[a.labels[l].at] - from
			if off < 0 {
				return 0, fmt.Errorf("filter: backward jump at %d", i)
			}
			return off, nil
		}
		switch in.kind {
		case kLoad:
			prog = append(prog, unix.SockFilter{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: in.k})
		case kAnd:
			prog = append(prog, unix.SockFilter{Code: unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, K: in.k})
		case kRet:
			prog = append(prog, unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: in.k})
		case kJumpIf:
			op, err := jumpOp(in.cond)
			if err != nil {
				return nil, err
			}
			t, err := target(in.jt)
			if err != nil {
				return nil, err
			}
			f, err := target(in.jf)
			if err != nil {
				return nil, err
			}
			if in.far {
				// Jcc k ? next : next+1 ; JA jt ; JA jf — the two JAs sit
				// one and two instructions further on than the conditional.
				prog = append(prog,
					unix.SockFilter{Code: op, Jt: 0, Jf: 1, K: in.k},
					unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JA, K: uint32(t - 1)},
					unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JA, K: uint32(f - 2)})
				continue
			}
			prog = append(prog, unix.SockFilter{Code: op, Jt: uint8(t), Jf: uint8(f), K: in.k})
		}
	}
	return prog, nil
}

// jumpTest is a conditional jump's test; cBPF has these three natively.
type jumpTest uint8

const (
	jumpEqual jumpTest = iota
	jumpGreaterOrEqual
	jumpBitsSet
)

// jumpOp encodes a conditional jump.
func jumpOp(c jumpTest) (uint16, error) {
	switch c {
	case jumpEqual:
		return unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, nil
	case jumpGreaterOrEqual:
		return unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, nil
	case jumpBitsSet:
		return unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K, nil
	}
	return 0, fmt.Errorf("filter: unsupported jump test %v", c)
}
