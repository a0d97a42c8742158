package seccomp

import (
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/confine"
)

// Probe reports whether the kernel offers seccomp user notification, with a
// line about SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP. It installs a filter that
// allows everything on a throwaway thread to find out.
func Probe() (available bool, detail string) {
	b, err := os.ReadFile("/proc/sys/kernel/seccomp/actions_avail")
	if err != nil || !strings.Contains(string(b), "user_notif") {
		return false, "the kernel does not list user_notif in /proc/sys/kernel/seccomp/actions_avail"
	}
	res := make(chan string, 1)
	confine.OnFreshThread(func() {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			res <- "probe failed: " + err.Error()
			return
		}
		prog := []unix.SockFilter{{Code: 0x06, K: unix.SECCOMP_RET_ALLOW}} // RET ALLOW
		fd, err := Install(prog, true)
		if err != nil {
			res <- "probe failed: " + err.Error()
			return
		}
		defer unix.Close(fd)
		if SetSyncWakeUp(fd) {
			res <- "sync wake-up (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP): supported"
		} else {
			res <- "sync wake-up (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP): not supported (each notification costs more)"
		}
	})
	d := <-res
	return !strings.HasPrefix(d, "probe failed"), d
}
