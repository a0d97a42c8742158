//go:build linux

package confine

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

func effective(t *testing.T) uint64 {
	t.Helper()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var caps [2]unix.CapUserData
	if err := unix.Capget(&hdr, &caps[0]); err != nil {
		t.Fatal(err)
	}
	return uint64(caps[1].Effective)<<32 | uint64(caps[0].Effective)
}

// TestUnprivileged: inside, the thread has no effective capability and the
// kernel checks ownership as for any user (root cannot chown a file it
// does not own); afterwards the thread has its capabilities back.
func TestUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (run the tests as root, as CI does)")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := effective(t)
	if before == 0 {
		t.Fatal("root without capabilities: nothing to clear")
	}
	f := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(f, 1234, 1234); err != nil {
		t.Fatal(err)
	}
	var inside uint64
	var chmodErr error
	if err := Unprivileged(func() {
		inside = effective(t)
		chmodErr = unix.Chmod(f, 0o600)
	}); err != nil {
		t.Fatal(err)
	}
	if inside != 0 {
		t.Errorf("effective capabilities inside: %#x", inside)
	}
	if chmodErr != unix.EPERM {
		t.Errorf("chmod of another user's file inside: %v, want EPERM", chmodErr)
	}
	if after := effective(t); after != before {
		t.Errorf("effective capabilities after: %#x, want %#x", after, before)
	}
	if err := unix.Chmod(f, 0o600); err != nil {
		t.Errorf("chmod after: %v", err)
	}
}
