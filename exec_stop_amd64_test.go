//go:build linux

package sandlock_test

import "github.com/sandlock-go/sandlock/internal/tracer"

// pcSP returns the instruction and stack pointers.
func pcSP(r tracer.Regs) (pc, sp uint64) { return r.Rip, r.Rsp }
