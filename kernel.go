//go:build linux

package sandlock

import (
	"runtime"

	"github.com/sandlock-go/sandlock/internal/landlock"
	"github.com/sandlock-go/sandlock/internal/seccomp"
)

// Features probes what the running kernel offers. It has no side effect on
// the calling thread (the seccomp probe runs on a throwaway one).
func Features() KernelFeatures {
	f := KernelFeatures{LandlockABI: -1, MinLandlockABI: landlock.MinABI, Arch: runtime.GOARCH}
	k, err := landlock.Probe()
	if err != nil {
		f.LandlockError = err.Error()
	} else {
		f.LandlockABI = k.ABI
		for n := 1; n <= 64; n++ {
			if k.Errata&(1<<(n-1)) != 0 {
				f.LandlockErrata = append(f.LandlockErrata, n)
			}
		}
	}
	for _, p := range landlock.Protections {
		f.Protections = append(f.Protections, ProtectionSupport{Protection: p, Name: p.String(), MinABI: p.MinABI(),
			Erratum: p.Erratum(), Available: err == nil && k.Has(p)})
	}
	s := seccomp.Probe()
	f.SeccompUserNotif, f.SyncWakeUp = s.UserNotif, s.SyncWakeUp
	if s.Err != nil {
		f.SeccompError = s.Err.Error()
	}
	return f
}
