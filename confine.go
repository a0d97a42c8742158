//go:build linux

package sandlock

import (
	"errors"
	"fmt"

	"github.com/sandlock-go/sandlock/internal/fielderr"
	"github.com/sandlock-go/sandlock/internal/landlock"
	"github.com/sandlock-go/sandlock/internal/procview"
)

// Confine applies the sandbox's Landlock filesystem rules (FSReadable,
// FSWritable, with AllowDegraded and Disable, and the default device
// grants; ProcView none or host, the default here) to every thread of the
// calling process, irreversibly. Every other
// field needs a supervisor or a new process: a Sandbox that sets one is
// rejected before anything is applied, since a limit or rule silently
// dropped is the one thing a sandbox must never do. It needs a binary built
// without cgo.
func Confine(s *Sandbox) error {
	if err := s.checkStrings(nil); err != nil {
		return err
	}
	for _, f := range s.unconfinable() {
		if f.set {
			return &fielderr.FieldError{Field: f.name, Err: errors.New("cannot be applied by Confine (it needs a supervisor or a new process)")}
		}
	}
	kernel, err := landlock.Probe()
	if err != nil {
		return fmt.Errorf("sandlock: %w", err)
	}
	cfg, err := s.landlockConfig(kernel)
	if err != nil {
		return err
	}
	// Confine restricts the filesystem only: the caller keeps its network
	// and IPC.
	cfg.HandledNet, cfg.Scoped = 0, 0
	switch s.ProcView {
	case ProcViewDefault, ProcViewHost:
		// Nothing serves /proc: it is the host's, as granted.
	case ProcViewNone:
		cfg.Paths = procview.Carve(cfg.Paths, procview.RefusedTrees(), procview.ReadOnly).Rules
	default:
		return &fielderr.FieldError{Field: "ProcView", Value: string(s.ProcView), Err: errors.New("want none or host: Confine has no supervisor to serve /proc")}
	}
	rs, err := cfg.Build()
	if err != nil {
		return s.rulesetError(err)
	}
	defer rs.Close()
	if err := rs.RestrictProcess(); err != nil {
		return fmt.Errorf("sandlock: %w", err)
	}
	return nil
}

// unconfinable lists the fields Confine cannot apply, and whether each is
// set.
func (s *Sandbox) unconfinable() []struct {
	name string
	set  bool
} {
	return []struct {
		name string
		set  bool
	}{
		{"FSDenied", len(s.FSDenied) > 0}, {"Workdir", s.Workdir != ""}, {"Cwd", s.Cwd != ""},
		{"Chroot", s.Chroot != ""}, {"FSMount", len(s.FSMount) > 0},
		{"NetAllow", len(s.NetAllow) > 0}, {"NetDeny", len(s.NetDeny) > 0},
		{"NetAllowBind", len(s.NetAllowBind) > 0}, {"NetDenyBind", len(s.NetDenyBind) > 0}, {"PortRemap", s.PortRemap},
		{"HTTPAllow", len(s.HTTPAllow) > 0}, {"HTTPDeny", len(s.HTTPDeny) > 0}, {"HTTPPorts", len(s.HTTPPorts) > 0},
		{"HTTPCAFile", s.HTTPCAFile != ""}, {"HTTPKeyFile", s.HTTPKeyFile != ""},
		{"MaxMemory", s.MaxMemory != ""}, {"MaxDisk", s.MaxDisk != ""}, {"MaxProcesses", s.MaxProcesses != 0},
		{"MaxCPU", s.MaxCPU != 0}, {"MaxOpenFiles", s.MaxOpenFiles != 0}, {"CPUCores", len(s.CPUCores) > 0},
		{"NumCPUs", s.NumCPUs != 0}, {"GPUDevices", s.GPUDevices != nil},
		{"ExtraAllowSyscalls", len(s.ExtraAllowSyscalls) > 0}, {"ExtraDenySyscalls", len(s.ExtraDenySyscalls) > 0},
		{"RandomSeed", s.RandomSeed != nil}, {"TimeStart", s.TimeStart != ""},
		{"NoRandomizeMemory", s.NoRandomizeMemory}, {"NoHugePages", s.NoHugePages}, {"DeterministicDirs", s.DeterministicDirs},
		{"CleanEnv", s.CleanEnv}, {"Env", len(s.Env) > 0}, {"UID", s.UID != nil}, {"GID", s.GID != nil},
		{"NoCoredump", s.NoCoredump}, {"FSStorage", s.FSStorage != ""},
		{"OnExit", s.OnExit != BranchActionDefault}, {"OnError", s.OnError != BranchActionDefault},
		{"Name", s.Name != ""}, {"PolicyFn", s.PolicyFn != nil}, {"KeepCaps", s.KeepCaps}, {"NoSupervisor", s.NoSupervisor}, {"Handlers", len(s.Handlers) > 0},
	}
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
