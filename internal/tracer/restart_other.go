//go:build linux && !amd64

package tracer

// interruptedSyscall does nothing where the kernel decides on the restart
// before the signal-delivery-stop (arm64's do_signal keeps the return
// value in a local), so that a tracer can neither see the code nor turn an
// EINTR into a restart.
func interruptedSyscall(tid int, onSignal func(nr, code int) bool) {}
