//go:build linux

// Package sysfiltertest runs a sandbox's compiled seccomp filter in
// golang.org/x/net/bpf's VM, for tests of the features that shape it. Only
// tests import it.
package sysfiltertest

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/sandlock-go/sandlock/internal/filter"
	"github.com/sandlock-go/sandlock/internal/sysfilter"
)

// Prog is a compiled filter, ready to evaluate.
type Prog struct {
	vm   *bpf.VM
	arch uint32
}

// Compile builds and compiles s's filter.
func Compile(t testing.TB, s *sysfilter.FilterSpec) *Prog {
	t.Helper()
	p, err := s.Filter()
	if err != nil {
		t.Fatalf("Filter: %v", err)
	}
	raw, err := p.Compile()
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	ri := make([]bpf.RawInstruction, len(raw))
	for i, f := range raw {
		ri[i] = bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}
	}
	insns, ok := bpf.Disassemble(ri)
	if !ok {
		t.Fatal("program does not disassemble")
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatalf("NewVM: %v", err)
	}
	return &Prog{vm: vm, arch: s.Arch.AuditArch}
}

// Eval runs the filter on syscall nr with args, on the filter's
// architecture. The VM loads big-endian words, so each 32-bit word of
// struct seccomp_data is stored big-endian with the value the kernel would
// load (low halves of the u64 arguments first).
func (p *Prog) Eval(t testing.TB, nr int, args ...uint64) filter.Action {
	t.Helper()
	b := make([]byte, 64)
	binary.BigEndian.PutUint32(b[0:], uint32(nr))
	binary.BigEndian.PutUint32(b[4:], p.arch)
	for i, a := range args {
		binary.BigEndian.PutUint32(b[16+8*i:], uint32(a))
		binary.BigEndian.PutUint32(b[20+8*i:], uint32(a>>32))
	}
	n, err := p.vm.Run(b)
	if err != nil {
		t.Fatalf("VM: %v", err)
	}
	return filter.Action(uint32(n))
}
