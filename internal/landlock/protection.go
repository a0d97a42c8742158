package landlock

import (
	"fmt"
	"strings"
)

// Protection is one Landlock protection whose enforcement can be relaxed
// per sandbox. The values are upstream sandlock's.
type Protection uint32

// The protections, each with the ABI that introduced it.
const (
	ProtectionFSRefer                 Protection = 0 // file reparenting (ABI 2)
	ProtectionFSTruncate              Protection = 1 // truncate(2) (ABI 3)
	ProtectionNetTCP                  Protection = 2 // TCP bind/connect (ABI 4)
	ProtectionFSIoctlDev              Protection = 3 // device ioctl(2) (ABI 5)
	ProtectionSignalScope             Protection = 4 // signal scoping (ABI 6)
	ProtectionAbstractUnixSocketScope Protection = 5 // abstract unix socket scoping (ABI 6)
)

// Protections lists every protection in value order.
var Protections = [...]Protection{
	ProtectionFSRefer, ProtectionFSTruncate, ProtectionNetTCP,
	ProtectionFSIoctlDev, ProtectionSignalScope, ProtectionAbstractUnixSocketScope,
}

var protectionNames = [...]string{"fs-refer", "fs-truncate", "net-tcp", "fs-ioctl-dev", "signal-scope", "abstract-unix-socket-scope"}
var protectionABI = [...]int{2, 3, 4, 5, 6, 6}

// MinABI is the lowest Landlock ABI that has every protection: the ABI a
// sandbox needs when nothing is degraded or disabled.
const MinABI = 6

func (p Protection) valid() bool { return int(p) < len(protectionNames) }

// String returns the CLI name ("fs-refer", …).
func (p Protection) String() string {
	if !p.valid() {
		return fmt.Sprintf("protection(%d)", uint32(p))
	}
	return protectionNames[p]
}

// MinABI returns the ABI that introduced p, or 0 for an unknown value.
func (p Protection) MinABI() int {
	if !p.valid() {
		return 0
	}
	return protectionABI[p]
}

// ParseProtection parses a CLI name, case-insensitively.
func ParseProtection(s string) (Protection, error) {
	for i, n := range protectionNames {
		if strings.EqualFold(s, n) {
			return Protection(i), nil
		}
	}
	return 0, fmt.Errorf("unknown protection %q (known: %s)", s, strings.Join(protectionNames[:], ", "))
}

// Posture is how one protection is enforced.
type Posture uint8

const (
	// Strict enforces the protection and fails when the kernel lacks it.
	Strict Posture = iota
	// Degradable enforces it where the kernel has it and skips it silently
	// otherwise.
	Degradable
	// Disabled never enforces it.
	Disabled
)

// Status is how a protection ends up on this kernel.
type Status uint8

const (
	Active Status = iota
	Degraded
	Off
)

// Postures gives each protection's posture; the zero value is all strict.
type Postures [len(protectionNames)]Posture

// Set records a posture, rejecting unknown protections and disabling
// fs-refer: the kernel denies cross-directory renames and links whenever
// refer is not handled, so "disabling" it could only tighten, and upstream
// refuses it for that reason.
func (ps *Postures) Set(p Protection, posture Posture) error {
	if !p.valid() {
		return fmt.Errorf("unknown protection %d", uint32(p))
	}
	if p == ProtectionFSRefer && posture == Disabled {
		return fmt.Errorf("protection fs-refer cannot be disabled (without it the kernel denies every cross-directory rename and link)")
	}
	// Disable wins over degrade whatever the order.
	if ps[p] == Disabled {
		return nil
	}
	ps[p] = posture
	return nil
}

// UnavailableError is returned when a strict protection needs a newer ABI.
type UnavailableError struct {
	Protection Protection
	Need, Have int
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("landlock protection %s needs Landlock ABI %d, this kernel has %d (use --allow-degraded %s or --disable %s to run without it)",
		e.Protection, e.Need, e.Have, e.Protection, e.Protection)
}

// Resolve decides every protection's status on a kernel with the given ABI.
func (ps *Postures) Resolve(abi int) ([len(protectionNames)]Status, error) {
	var out [len(protectionNames)]Status
	for i, posture := range ps {
		p := Protection(i)
		switch {
		case posture == Disabled:
			out[i] = Off
		case abi >= p.MinABI():
			out[i] = Active
		case posture == Degradable:
			out[i] = Degraded
		default:
			return out, &UnavailableError{Protection: p, Need: p.MinABI(), Have: abi}
		}
	}
	return out, nil
}

// Masks turns statuses into handled rights and scopes: every right the ABI
// knows, minus those of protections that are not active.
func Masks(abi int, st [len(protectionNames)]Status) (handledFS, handledNet, scoped uint64) {
	handledFS = HandledFS(abi)
	drop := func(p Protection, bits uint64) {
		if st[p] != Active {
			handledFS &^= bits
		}
	}
	drop(ProtectionFSRefer, FSRefer)
	drop(ProtectionFSTruncate, FSTruncate)
	drop(ProtectionFSIoctlDev, FSIoctlDev)
	if st[ProtectionNetTCP] == Active {
		handledNet = NetBindTCP | NetConnectTCP
	}
	if st[ProtectionSignalScope] == Active {
		scoped |= ScopeSignal
	}
	if st[ProtectionAbstractUnixSocketScope] == Active {
		scoped |= ScopeAbstractUnixSocket
	}
	return handledFS, handledNet, scoped
}
