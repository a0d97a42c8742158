//go:build linux

package sysfilter

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/sysnum"
)

// BenchmarkDefaultFilter evaluates the filter of a default sandbox (the
// default blocklist, the socket gate, and the syscalls a process limit
// notifies) on a mix of common syscalls, in x/net/bpf's interpreter: the
// relative cost of the decision tree. The kernel runs the same program
// JIT-compiled, and caches the verdict of syscalls whose answer does not
// depend on their arguments.
func BenchmarkDefaultFilter(b *testing.B) {
	arch := sysnum.Native()
	prog := buildDefaultFilter(b, arch)
	raw := make([]bpf.RawInstruction, len(prog))
	for i, f := range prog {
		raw[i] = bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		b.Fatal("the program does not disassemble")
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		b.Fatal(err)
	}
	var calls [][]byte
	for _, name := range []string{"read", "write", "openat", "close", "mmap", "futex", "getppid", "newfstatat", "clone", "socket"} {
		data := make([]byte, 64) // struct seccomp_data
		// Each 32-bit word holds the value the kernel's native load would
		// read (args are u64: low word first on little-endian).
		put32(data[0:], uint32(arch.MustNr(name)))
		put32(data[4:], arch.AuditArch)
		if name == "socket" {
			put32(data[16:], unix.AF_INET)
			put32(data[24:], unix.SOCK_STREAM)
		}
		calls = append(calls, data)
	}
	i := 0
	for b.Loop() {
		if _, err := vm.Run(calls[i%len(calls)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(len(prog)), "insns")
}

// put32 stores a word of seccomp_data for x/net/bpf, whose loads read
// big-endian.
func put32(b []byte, v uint32) { binary.BigEndian.PutUint32(b, v) }

// BenchmarkBuildDefaultFilter builds a default sandbox's filter from the
// tables, as every start does: the deny list, the policy, the program.
func BenchmarkBuildDefaultFilter(b *testing.B) {
	arch := sysnum.Native()
	b.ReportAllocs()
	for b.Loop() {
		buildDefaultFilter(b, arch)
	}
}

// buildDefaultFilter builds the filter of a default sandbox: the default
// blocklist, the socket gate, and the syscalls a process limit notifies.
func buildDefaultFilter(b *testing.B, arch *sysnum.Table) []unix.SockFilter {
	deny, err := DenyList(arch, DefaultBlocklist, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	spec := &FilterSpec{Arch: arch, Deny: deny, Notify: []int{arch.MustNr("clone"), arch.MustNr("fork"), arch.MustNr("vfork")}}
	pol, err := spec.Filter()
	if err != nil {
		b.Fatal(err)
	}
	prog, err := pol.Compile()
	if err != nil {
		b.Fatal(err)
	}
	return prog
}
