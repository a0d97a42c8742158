//go:build linux

package tracer

import "golang.org/x/sys/unix"

// interruptedSyscall runs at tid's signal-delivery-stop. If tid was in a
// syscall that is about to end with one of the kernel's restart codes
// (-ERESTARTSYS … -ERESTART_RESTARTBLOCK), it asks onSignal, and when that
// answers restart for an -ERESTARTSYS, turns the code into
// -ERESTARTNOINTR, which the kernel restarts after the signal handler
// whatever its SA_RESTART: x86's handle_signal reads the return register
// after this stop.
func interruptedSyscall(tid int, onSignal func(nr, code int) bool) {
	var regs unix.PtraceRegs
	if unix.PtraceGetRegs(tid, &regs) != nil {
		return
	}
	code := -int64(regs.Rax)
	if code < ErrRestartSys || code > errRestartLast || int64(regs.Orig_rax) < 0 {
		return
	}
	if onSignal(int(regs.Orig_rax), int(code)) && code == ErrRestartSys {
		noIntr := -int64(ErrRestartNoIntr)
		regs.Rax = uint64(noIntr)
		unix.PtraceSetRegs(tid, &regs)
	}
}
