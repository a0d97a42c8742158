package sandlock

import "github.com/sandlock-go/sandlock/internal/landlock"

// KernelFeatures is what the running kernel offers sandlock, as data:
// `sandlock check` prints it, and `sandlock check --json` emits it
// marshalled.
type KernelFeatures struct {
	// LandlockABI is the kernel's Landlock ABI version, or -1 without
	// Landlock (LandlockError then says why).
	LandlockABI   int    `json:"landlock_abi"`
	LandlockError string `json:"landlock_error,omitempty"`
	// LandlockErrata are the Landlock errata the kernel has fixed: a
	// protection whose erratum is not fixed counts as missing.
	LandlockErrata []int `json:"landlock_errata"`
	// MinLandlockABI is the ABI a sandbox with every protection strict
	// needs.
	MinLandlockABI int `json:"min_landlock_abi"`
	// Protections are the Landlock protections AllowDegraded and Disable
	// name, with whether this kernel enforces each.
	Protections []ProtectionSupport `json:"protections"`
	// SeccompUserNotif is seccomp user notification with a listener, which
	// the supervisor needs; SeccompError says why it is missing.
	SeccompUserNotif bool   `json:"seccomp_user_notif"`
	SeccompError     string `json:"seccomp_error,omitempty"`
	// SyncWakeUp is SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (Linux 6.6), which
	// makes each notification several times cheaper.
	SyncWakeUp bool `json:"sync_wake_up"`
	// Arch is the architecture sandlock was built for (GOARCH).
	Arch string `json:"arch"`
}

// ProtectionSupport is one protection and whether the kernel has it.
type ProtectionSupport struct {
	Protection Protection `json:"-"`
	Name       string     `json:"name"`
	MinABI     int        `json:"min_abi"`
	Erratum    int        `json:"erratum,omitempty"` // an erratum it needs fixed
	Available  bool       `json:"available"`
}

// MinLandlockABI returns the Landlock ABI a sandbox needs when no protection
// is degraded or disabled.
func MinLandlockABI() int { return landlock.MinABI }

// ProtectionMinABI returns the Landlock ABI that introduced p, or 0 for an
// unknown protection.
func ProtectionMinABI(p Protection) int { return p.MinABI() }
