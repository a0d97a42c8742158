//go:build linux

package confine

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// OnFreshThread runs fn in a new goroutine locked to an OS thread that is
// not the process's main thread, and that is destroyed when fn returns: fn
// may confine its thread (Landlock, seccomp, capabilities), and the Go
// runtime wedges a locked main thread forever instead of ending it, which
// would keep the confinement, and with it the seccomp listener, alive.
func OnFreshThread(fn func()) {
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() != unix.Getpid() {
			fn()
			return // still locked: the thread exits with the goroutine
		}
		// Keep the main thread busy so the new goroutine cannot land on it.
		done := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			defer close(done)
			fn()
		}()
		<-done
		runtime.UnlockOSThread()
	}()
}
