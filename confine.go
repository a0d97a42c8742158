package sandlock

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sandlock-go/sandlock/internal/landlock"
	"github.com/sandlock-go/sandlock/internal/policy"
	"github.com/sandlock-go/sandlock/internal/sysnum"
)

// Confine applies the sandbox's Landlock filesystem rules (FSReadable,
// FSWritable, with AllowDegraded and Disable) to every thread of the calling
// process, irreversibly. Fields that need a supervisor or a new process are
// rejected. It needs a binary built without cgo.
func Confine(s *Sandbox) error {
	if err := s.checkStrings(nil); err != nil {
		return err
	}
	if err := s.unsupported(); err != nil {
		return err
	}
	other := []struct {
		name string
		set  bool
	}{
		{"FSDenied", len(s.FSDenied) > 0}, {"Cwd", s.Cwd != ""},
		{"ExtraAllowSyscalls", len(s.ExtraAllowSyscalls) > 0}, {"ExtraDenySyscalls", len(s.ExtraDenySyscalls) > 0},
		{"CleanEnv", s.CleanEnv}, {"Env", len(s.Env) > 0}, {"KeepCaps", s.KeepCaps}, {"NoSupervisor", s.NoSupervisor},
	}
	for _, o := range other {
		if o.set {
			return &policy.FieldError{Field: o.name, Err: errors.New("cannot be applied by Confine (it needs a supervisor or a new process)")}
		}
	}
	abi, err := landlock.ABI()
	if err != nil {
		return fmt.Errorf("sandlock: %w", err)
	}
	cfg, err := s.landlockConfig(abi)
	if err != nil {
		return err
	}
	// Confine restricts the filesystem only: the caller keeps its network
	// and IPC.
	cfg.HandledNet, cfg.Scoped = 0, 0
	rs, err := s.buildRuleset(cfg)
	if err != nil {
		return err
	}
	defer rs.Close()
	if err := rs.RestrictProcess(); err != nil {
		return fmt.Errorf("sandlock: %w", err)
	}
	return nil
}

// LandlockABIVersion returns the kernel's Landlock ABI version, or -1 when
// Landlock is unavailable.
func LandlockABIVersion() int {
	abi, err := landlock.ABI()
	if err != nil {
		return -1
	}
	return abi
}

// MinLandlockABI returns the Landlock ABI a sandbox needs when no protection
// is degraded or disabled.
func MinLandlockABI() int { return landlock.MinABI }

// ProtectionMinABI returns the Landlock ABI that introduced p, or 0 for an
// unknown protection.
func ProtectionMinABI(p Protection) int { return p.MinABI() }

// SyscallNr returns the number of the named syscall on this architecture.
func SyscallNr(name string) (int, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return -1, ErrInvalidString
	}
	nr, ok := sysnum.Native().Nr(name)
	if !ok {
		return -1, fmt.Errorf("sandlock: unknown syscall %q", name)
	}
	return nr, nil
}
