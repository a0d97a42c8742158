//go:build linux

package confine

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// CapSetPCap is CAP_SETPCAP, needed to shrink the bounding set.
const CapSetPCap = 8

// DropCapabilities empties every capability set of the calling thread:
// ambient, bounding (when it can), inheritable, permitted and effective. A
// program it execs then runs with none, even as uid 0, because file
// capabilities and root's implicit ones are both masked by the bounding set
// and NO_NEW_PRIVS.
func DropCapabilities() error {
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && err != unix.EINVAL {
		return fmt.Errorf("clearing ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("reading capabilities: %w", err)
	}
	if data[0].Effective&(1<<CapSetPCap) != 0 {
		for c := 0; c <= LastCap(); c++ {
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
				return fmt.Errorf("dropping capability %d from the bounding set: %w", c, err)
			}
		}
	}
	data = [2]unix.CapUserData{}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("clearing capabilities: %w", err)
	}
	return nil
}

// LastCap returns the highest capability the kernel knows.
func LastCap() int {
	last := 40 // CAP_CHECKPOINT_RESTORE, Linux 5.9
	for c := last + 1; c < 64; c++ {
		if _, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0); err != nil {
			break
		}
		last = c
	}
	return last
}
