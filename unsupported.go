//go:build !linux

package sandlock

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"syscall"

	"github.com/sandlock-go/sandlock/internal/landlock"
)

// Sandlock is built on Linux's Landlock and seccomp. On every other system
// the package compiles, so that a program that uses it builds everywhere,
// and every entry point returns errNeedsLinux.

// errNeedsLinux wraps ErrUnsupported: errors.Is(err, ErrUnsupported) holds.
var errNeedsLinux = fmt.Errorf("sandlock needs Linux (this is %s): %w", runtime.GOOS, ErrUnsupported)

// Process is a sandboxed program; on this system none can be started.
type Process struct {
	Stdin  *os.File
	Stdout *os.File
	Stderr *os.File
}

// Run returns an error: sandlock needs Linux.
func (s *Sandbox) Run(ctx context.Context, cmd ...string) (*Result, error) {
	return nil, errNeedsLinux
}

// RunWithHandlers returns an error: sandlock needs Linux.
func (s *Sandbox) RunWithHandlers(ctx context.Context, cmd []string, handlers ...SyscallHandler) (*Result, error) {
	return nil, errNeedsLinux
}

// RunInteractive returns an error: sandlock needs Linux.
func (s *Sandbox) RunInteractive(ctx context.Context, cmd ...string) (int, error) {
	return 1, errNeedsLinux
}

// RunInteractiveWithHandlers returns an error: sandlock needs Linux.
func (s *Sandbox) RunInteractiveWithHandlers(ctx context.Context, cmd []string, handlers ...SyscallHandler) (int, error) {
	return 1, errNeedsLinux
}

// DryRun returns an error: sandlock needs Linux.
func (s *Sandbox) DryRun(ctx context.Context, cmd ...string) (*DryRunResult, error) {
	return nil, errNeedsLinux
}

// Spawn returns an error: sandlock needs Linux.
func (s *Sandbox) Spawn(cmd ...string) (*Process, error) { return nil, errNeedsLinux }

// Popen returns an error: sandlock needs Linux.
func (s *Sandbox) Popen(stdio Stdio, cmd ...string) (*Process, error) { return nil, errNeedsLinux }

// Confine returns an error: sandlock needs Linux.
func Confine(s *Sandbox) error { return errNeedsLinux }

// LandlockABIVersion returns -1: there is no Landlock.
func LandlockABIVersion() int { return -1 }

// Features reports that nothing sandlock needs is there.
func Features() KernelFeatures {
	f := KernelFeatures{LandlockABI: -1, LandlockError: errNeedsLinux.Error(), MinLandlockABI: MinLandlockABI(),
		SeccompError: errNeedsLinux.Error(), Arch: runtime.GOARCH}
	for _, p := range landlock.Protections {
		f.Protections = append(f.Protections, ProtectionSupport{Protection: p, Name: p.String(), MinABI: p.MinABI()})
	}
	return f
}

// Instances returns an error: sandlock needs Linux.
func Instances() ([]Instance, error) { return nil, errNeedsLinux }

// Inspect returns an error: sandlock needs Linux.
func Inspect(name string) (*Profile, error) { return nil, errNeedsLinux }

// Kill returns an error: sandlock needs Linux.
func Kill(name string) (Instance, error) { return Instance{}, errNeedsLinux }

// Pid returns 0.
func (p *Process) Pid() int { return 0 }

// Name returns "".
func (p *Process) Name() string { return "" }

// Wait returns an error: sandlock needs Linux.
func (p *Process) Wait() (*Result, error) { return nil, errNeedsLinux }

// Pause returns an error: sandlock needs Linux.
func (p *Process) Pause() error { return errNeedsLinux }

// Resume returns an error: sandlock needs Linux.
func (p *Process) Resume() error { return errNeedsLinux }

// Signal returns an error: sandlock needs Linux.
func (p *Process) Signal(sig syscall.Signal) error { return errNeedsLinux }

// Kill returns an error: sandlock needs Linux.
func (p *Process) Kill() error { return errNeedsLinux }

// Ports returns an error: sandlock needs Linux.
func (p *Process) Ports() (map[int]int, error) { return nil, errNeedsLinux }

// Close returns an error: sandlock needs Linux.
func (p *Process) Close() error { return errNeedsLinux }

// RecoverWorkdir returns an error: sandlock needs Linux.
func RecoverWorkdir(workdir, fsStorage string, abort bool) ([]BranchReport, error) {
	return nil, errNeedsLinux
}

// Changes returns nil: no run happened.
func (p *Process) Changes() []Change { return nil }
