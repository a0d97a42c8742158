// Package sysnum maps Linux syscall names to numbers and back, for every
// architecture sandlock supports. The tables are generated from
// golang.org/x/sys/unix (see gen/), never typed by hand.
package sysnum

//go:generate go run ./gen

import (
	"sort"

	"golang.org/x/sys/unix"
)

type entry struct {
	name string
	nr   int
}

// Table is one architecture's syscall table.
type Table struct {
	// Arch is the GOARCH name ("amd64", "arm64").
	Arch string
	// AuditArch is the AUDIT_ARCH_* value the kernel puts in seccomp_data.arch.
	AuditArch uint32
	// X32 reports whether the architecture has an x32 sub-ABI whose syscall
	// numbers carry bit 30 (__X32_SYSCALL_BIT) and must be refused.
	X32 bool

	byName map[string]int
	byNr   map[int]string
}

func newTable(arch string, audit uint32, x32 bool, entries []entry) *Table {
	t := &Table{Arch: arch, AuditArch: audit, X32: x32,
		byName: make(map[string]int, len(entries)), byNr: make(map[int]string, len(entries))}
	for _, e := range entries {
		t.byName[e.name] = e.nr
		t.byNr[e.nr] = e.name
	}
	return t
}

// The tables of the supported architectures.
var (
	AMD64 = newTable("amd64", unix.AUDIT_ARCH_X86_64, true, amd64Entries)
	ARM64 = newTable("arm64", unix.AUDIT_ARCH_AARCH64, false, arm64Entries)
)

// Nr returns the number of the named syscall.
func (t *Table) Nr(name string) (int, bool) {
	nr, ok := t.byName[name]
	return nr, ok
}

// Name returns the name of syscall nr.
func (t *Table) Name(nr int) (string, bool) {
	name, ok := t.byNr[nr]
	return name, ok
}

// Names returns every syscall name of the table, sorted.
func (t *Table) Names() []string {
	names := make([]string, 0, len(t.byName))
	for n := range t.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// MustNr is Nr for names the caller knows exist on this architecture.
func (t *Table) MustNr(name string) int {
	nr, ok := t.byName[name]
	if !ok {
		panic("sysnum: no syscall " + name + " on " + t.Arch)
	}
	return nr
}
