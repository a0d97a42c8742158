// Package sysnum maps Linux syscall names to numbers and back, for every
// architecture sandlock supports. The tables are generated from
// golang.org/x/sys/unix (see gen/), never typed by hand.
package sysnum

//go:generate go run ./gen

import (
	"sort"
)

type entry struct {
	name string
	nr   int
}

// Table is one architecture's syscall table. The tables are static data:
// looking a syscall up costs no start-up work.
type Table struct {
	// Arch is the GOARCH name ("amd64", "arm64").
	Arch string
	// AuditArch is the AUDIT_ARCH_* value the kernel puts in seccomp_data.arch.
	AuditArch uint32
	// X32 reports whether the architecture has an x32 sub-ABI whose syscall
	// numbers carry bit 30 (__X32_SYSCALL_BIT) and must be refused.
	X32 bool

	byNr   []string // indexed by number; "" where there is none
	byName []entry  // sorted by name
}

// The AUDIT_ARCH_* values of linux/audit.h (EM_* | 64BIT | LE), spelled out
// so that the tables are data on every system the module is built for.
const (
	auditArchX86_64  = 0xc000003e
	auditArchAARCH64 = 0xc00000b7
)

// The tables of the supported architectures.
var (
	AMD64 = &Table{Arch: "amd64", AuditArch: auditArchX86_64, X32: true, byNr: amd64ByNr, byName: amd64ByName}
	ARM64 = &Table{Arch: "arm64", AuditArch: auditArchAARCH64, byNr: arm64ByNr, byName: arm64ByName}
)

// Nr returns the number of the named syscall.
func (t *Table) Nr(name string) (int, bool) {
	i := sort.Search(len(t.byName), func(i int) bool { return t.byName[i].name >= name })
	if i < len(t.byName) && t.byName[i].name == name {
		return t.byName[i].nr, true
	}
	return 0, false
}

// Name returns the name of syscall nr.
func (t *Table) Name(nr int) (string, bool) {
	if nr < 0 || nr >= len(t.byNr) || t.byNr[nr] == "" {
		return "", false
	}
	return t.byNr[nr], true
}

// Size is one more than the highest syscall number of the table.
func (t *Table) Size() int { return len(t.byNr) }

// Names returns every syscall name of the table, sorted.
func (t *Table) Names() []string {
	names := make([]string, len(t.byName))
	for i, e := range t.byName {
		names[i] = e.name
	}
	return names
}

// MustNr is Nr for names the caller knows exist on this architecture.
func (t *Table) MustNr(name string) int {
	nr, ok := t.Nr(name)
	if !ok {
		panic("sysnum: no syscall " + name + " on " + t.Arch)
	}
	return nr
}
