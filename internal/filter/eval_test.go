//go:build linux

package filter

import (
	"encoding/binary"
	"fmt"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// This file holds the evaluators the tests run compiled programs with: the
// x/net/bpf VM, and a small interpreter of our own that follows the kernel's
// seccomp semantics exactly and records every offset the program loads.

// call is one syscall as seccomp sees it.
type call struct {
	nr   uint32
	arch uint32
	ip   uint64
	args [6]uint64
}

func (c call) String() string {
	return fmt.Sprintf("nr=%#x arch=%#x args=%#x", c.nr, c.arch, c.args)
}

// word returns the 32-bit word the kernel loads at off from struct
// seccomp_data (native little-endian: the low half of each u64 first).
func (c call) word(off uint32) uint32 {
	switch {
	case off == 0:
		return c.nr
	case off == 4:
		return c.arch
	case off == 8:
		return uint32(c.ip)
	case off == 12:
		return uint32(c.ip >> 32)
	case off >= 16 && off < 64:
		a := c.args[(off-16)/8]
		if (off-16)%8 == 0 {
			return uint32(a)
		}
		return uint32(a >> 32)
	}
	panic(fmt.Sprintf("offset %d outside seccomp_data", off))
}

// packet lays out seccomp_data for the x/net/bpf VM, whose LoadAbsolute
// reads big-endian: each 32-bit word is stored big-endian with the value the
// kernel would load from that offset.
func (c call) packet() []byte {
	b := make([]byte, 64)
	for off := uint32(0); off < 64; off += 4 {
		binary.BigEndian.PutUint32(b[off:], c.word(off))
	}
	return b
}

// machine runs one compiled program in both evaluators.
type machine struct {
	prog []unix.SockFilter
	vm   *bpf.VM
}

func newMachine(t testing.TB, prog []unix.SockFilter) *machine {
	t.Helper()
	if len(prog) == 0 {
		t.Fatal("empty program")
	}
	raw := make([]bpf.RawInstruction, len(prog))
	for i, f := range prog {
		raw[i] = bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatalf("program does not disassemble: %v", insns)
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatalf("x/net/bpf rejects the program: %v", err)
	}
	return &machine{prog: prog, vm: vm}
}

// eval runs the program in the VM and in our interpreter, checks that they
// agree, and returns the action.
func (m *machine) eval(t testing.TB, c call) Action {
	t.Helper()
	n, err := m.vm.Run(c.packet())
	if err != nil {
		t.Fatalf("VM: %v", err)
	}
	got := Action(uint32(n))
	tr, err := run(m.prog, c)
	if err != nil {
		t.Fatalf("interpreter on %v: %v", c, err)
	}
	if tr.action != got {
		t.Fatalf("%v: VM says %v, interpreter says %v", c, got, tr.action)
	}
	return got
}

// trace is the outcome of one run of our interpreter.
type trace struct {
	action Action
	loads  []uint32 // offsets loaded, in order
}

// Classic BPF opcodes the compiler may emit.
const (
	opLdAbsW = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	opAndK   = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
	opJA     = unix.BPF_JMP | unix.BPF_JA
	opJEQ    = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	opJGE    = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	opJGT    = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
	opJSET   = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
	opRetK   = unix.BPF_RET | unix.BPF_K
)

// run interprets prog with the kernel's semantics, refusing anything the
// kernel's seccomp checker would refuse (loads outside seccomp_data or not
// word-aligned, jumps out of the program, falling off its end, unknown
// opcodes, programs over BPF_MAXINSNS).
func run(prog []unix.SockFilter, c call) (trace, error) {
	var tr trace
	if len(prog) == 0 || len(prog) > maxInsns {
		return tr, fmt.Errorf("program length %d", len(prog))
	}
	var a uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		jump := func(cond bool) error {
			off := int(in.Jf)
			if cond {
				off = int(in.Jt)
			}
			if pc+1+off >= len(prog) {
				return fmt.Errorf("pc %d: jump past the end", pc)
			}
			pc += off
			return nil
		}
		var err error
		switch in.Code {
		case opLdAbsW:
			if in.K%4 != 0 || in.K >= 64 {
				return tr, fmt.Errorf("pc %d: load at offset %d", pc, in.K)
			}
			tr.loads = append(tr.loads, in.K)
			a = c.word(in.K)
		case opAndK:
			a &= in.K
		case opJA:
			if uint64(pc)+1+uint64(in.K) >= uint64(len(prog)) {
				return tr, fmt.Errorf("pc %d: JA past the end", pc)
			}
			pc += int(in.K)
		case opJEQ:
			err = jump(a == in.K)
		case opJGE:
			err = jump(a >= in.K)
		case opJGT:
			err = jump(a > in.K)
		case opJSET:
			err = jump(a&in.K != 0)
		case opRetK:
			tr.action = Action(in.K)
			return tr, nil
		default:
			return tr, fmt.Errorf("pc %d: opcode %#x", pc, in.Code)
		}
		if err != nil {
			return tr, err
		}
	}
	return tr, fmt.Errorf("fell off the end of the program")
}

// constVerdict emulates the kernel's seccomp action cache
// (seccomp_is_const_allow): it runs the program knowing only nr and arch and
// gives up as soon as the program loads anything else. ok is true when the
// verdict is independent of the arguments and instruction pointer.
func constVerdict(t testing.TB, prog []unix.SockFilter, nr, arch uint32) (Action, bool) {
	t.Helper()
	tr, err := run(prog, call{nr: nr, arch: arch})
	if err != nil {
		t.Fatalf("nr %#x: %v", nr, err)
	}
	for _, off := range tr.loads {
		if off != 0 && off != 4 {
			return 0, false
		}
	}
	return tr.action, true
}
