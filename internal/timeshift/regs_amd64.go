//go:build linux

package timeshift

import "golang.org/x/sys/unix"

// Supported reports whether this architecture's stubs and register access
// are written: TimeStart is refused elsewhere.
const Supported = true

type regs = unix.PtraceRegs

func getRegs(tid int) (*regs, error) {
	var r regs
	if err := unix.PtraceGetRegs(tid, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func setRegs(tid int, r *regs) error { return unix.PtraceSetRegs(tid, r) }

// syscallNr is the syscall a task stopped in (orig_rax keeps it).
func syscallNr(r *regs) int { return int(r.Orig_rax) }

func stackPointer(r *regs) uint64 { return r.Rsp }

// arg returns syscall argument i (rdi, rsi, rdx, r10, r8, r9).
func arg(r *regs, i int) uint64 {
	switch i {
	case 0:
		return r.Rdi
	case 1:
		return r.Rsi
	case 2:
		return r.Rdx
	case 3:
		return r.R10
	case 4:
		return r.R8
	}
	return r.R9
}

func setArg(r *regs, i int, v uint64) {
	switch i {
	case 0:
		r.Rdi = v
	case 1:
		r.Rsi = v
	case 2:
		r.Rdx = v
	case 3:
		r.R10 = v
	case 4:
		r.R8 = v
	default:
		r.R9 = v
	}
}
