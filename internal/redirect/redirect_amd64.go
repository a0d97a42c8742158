//go:build linux

package redirect

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

const supported = true

func getSiginfo(tid int, si *siginfo) error {
	_, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_GETSIGINFO, uintptr(tid), 0, uintptr(unsafe.Pointer(si)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// rewrite replaces the restarting syscall of the stopped task tid, if it
// is the one answered with ERESTARTNOINTR: the kernel restarts it with
// the number in orig_rax and the argument registers.
func rewrite(tid, expect int, c Call) {
	var regs unix.PtraceRegs
	if unix.PtraceGetRegs(tid, &regs) != nil {
		return
	}
	if int64(regs.Rax) != -errRestartNoIntr || int(regs.Orig_rax) != expect {
		return
	}
	regs.Orig_rax = uint64(c.Nr)
	regs.Rdi, regs.Rsi, regs.Rdx, regs.R10, regs.R8, regs.R9 = c.Args[0], c.Args[1], c.Args[2], c.Args[3], c.Args[4], c.Args[5]
	unix.PtraceSetRegs(tid, &regs)
}
