//go:build linux

package confine

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// Unprivileged runs fn on the calling OS thread with an empty effective
// capability set, restored afterwards: what fn does, the kernel checks as
// for a process of the same user without capabilities — the permission
// and ownership checks of a sandboxed program. The goroutine stays on its
// thread meanwhile (capabilities belong to a thread), and no hand-off to
// another thread is paid. fn must not start goroutines that rely on it.
//
// The thread keeps its Landlock domain (none, for the supervisor's own
// threads): use it for operations Landlock does not judge, or a Pool.
func Unprivileged(fn func()) error {
	runtime.LockOSThread()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var caps [2]unix.CapUserData
	if err := unix.Capget(&hdr, &caps[0]); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("reading capabilities: %w", err)
	}
	if caps[0].Effective == 0 && caps[1].Effective == 0 {
		defer runtime.UnlockOSThread()
		fn()
		return nil
	}
	none := caps
	none[0].Effective, none[1].Effective = 0, 0
	if err := unix.Capset(&hdr, &none[0]); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("clearing effective capabilities: %w", err)
	}
	defer func() {
		// Raising the effective set back within the permitted one cannot
		// fail; if it did, the goroutine keeps its thread, which has lost
		// capabilities: whatever runs there later fails rather than gains.
		if unix.Capset(&hdr, &caps[0]) == nil {
			runtime.UnlockOSThread()
		}
	}()
	fn()
	return nil
}
