//go:build linux

package seccomp

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/confine"
)

// Support is what the kernel offers of seccomp user notification.
type Support struct {
	UserNotif  bool  // SECCOMP_RET_USER_NOTIF with a listener
	SyncWakeUp bool  // SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (Linux 6.6)
	Err        error // why UserNotif is false
}

// Probe finds out what the kernel offers: it installs a filter that allows
// everything on a throwaway thread.
func Probe() Support {
	b, err := os.ReadFile("/proc/sys/kernel/seccomp/actions_avail")
	if err != nil || !strings.Contains(string(b), "user_notif") {
		return Support{Err: errors.New("the kernel does not list user_notif in /proc/sys/kernel/seccomp/actions_avail")}
	}
	res := make(chan Support, 1)
	confine.OnFreshThread(func() {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			res <- Support{Err: fmt.Errorf("probe failed: %w", err)}
			return
		}
		prog := []unix.SockFilter{{Code: 0x06, K: unix.SECCOMP_RET_ALLOW}} // RET ALLOW
		fd, err := Install(prog, true)
		if err != nil {
			res <- Support{Err: fmt.Errorf("probe failed: %w", err)}
			return
		}
		defer unix.Close(fd)
		res <- Support{UserNotif: true, SyncWakeUp: SetSyncWakeUp(fd)}
	})
	return <-res
}
