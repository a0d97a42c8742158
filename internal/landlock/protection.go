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

// facts is what sandlock knows of Landlock, one line per protection, in
// value order: its name, the ABI that introduced it, an erratum the
// running kernel must have fixed for it to be used (0: none), and the
// rights and scopes it makes the ruleset handle. Every other function of
// this package derives from it.
var facts = [...]struct {
	name    string
	abi     int
	erratum int
	fs      uint64
	net     uint64
	scope   uint64
}{
	{"fs-refer", 2, 0, FSRefer, 0, 0},
	{"fs-truncate", 3, 0, FSTruncate, 0, 0},
	{"net-tcp", 4, 0, 0, NetBindTCP | NetConnectTCP, 0},
	{"fs-ioctl-dev", 5, 0, FSIoctlDev, 0, 0},
	// Erratum 2: before its fix, signal scoping refused signals between
	// threads of one process in different domains (a program nesting a
	// domain on one thread could no longer signal its others: a Go
	// program's preemption signals among them).
	{"signal-scope", 6, 2, 0, 0, ScopeSignal},
	{"abstract-unix-socket-scope", 6, 0, 0, 0, ScopeAbstractUnixSocket},
}

var protectionNames = func() (out [len(facts)]string) {
	for i, f := range facts {
		out[i] = f.name
	}
	return
}()

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
	return facts[p].abi
}

// Erratum returns the Landlock erratum the kernel must have fixed for p to
// be used, or 0.
func (p Protection) Erratum() int {
	if !p.valid() {
		return 0
	}
	return facts[p].erratum
}

// Kernel is what the running kernel's Landlock offers: its ABI and the
// errata it has fixed (bit N-1 set: erratum N fixed).
type Kernel struct {
	ABI    int
	Errata uint64
}

// Has reports whether the kernel offers p, fixed.
func (k Kernel) Has(p Protection) bool {
	return p.valid() && k.ABI >= p.MinABI() && (p.Erratum() == 0 || k.Errata&(1<<(p.Erratum()-1)) != 0)
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
type Postures [len(facts)]Posture

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

// UnavailableError is returned when a strict protection is missing from
// the kernel: it needs a newer ABI, or the fix of an erratum.
type UnavailableError struct {
	Protection Protection
	Need, Have int // ABIs
	Erratum    int // the ABI suffices, but this erratum is not fixed
}

func (e *UnavailableError) Error() string {
	hint := fmt.Sprintf("(use --allow-degraded %s or --disable %s to run without it)", e.Protection, e.Protection)
	if e.Erratum != 0 {
		return fmt.Sprintf("landlock protection %s needs the fix of Landlock erratum %d, which this kernel (ABI %d) lacks %s",
			e.Protection, e.Erratum, e.Have, hint)
	}
	return fmt.Sprintf("landlock protection %s needs Landlock ABI %d, this kernel has %d %s",
		e.Protection, e.Need, e.Have, hint)
}

// Resolve decides every protection's status on kernel k.
func (ps *Postures) Resolve(k Kernel) ([len(facts)]Status, error) {
	var out [len(facts)]Status
	for i, posture := range ps {
		p := Protection(i)
		switch {
		case posture == Disabled:
			out[i] = Off
		case k.Has(p):
			out[i] = Active
		case posture == Degradable:
			out[i] = Degraded
		case k.ABI >= p.MinABI():
			return out, &UnavailableError{Protection: p, Need: p.MinABI(), Have: k.ABI, Erratum: p.Erratum()}
		default:
			return out, &UnavailableError{Protection: p, Need: p.MinABI(), Have: k.ABI}
		}
	}
	return out, nil
}

// HandledFS returns every filesystem right the given ABI knows: ABI 1's,
// and those of the protections it has (facts).
func HandledFS(abi int) uint64 {
	if abi < 1 {
		return 0
	}
	r := uint64(fsV1)
	for _, f := range facts {
		if abi >= f.abi {
			r |= f.fs
		}
	}
	return r
}

// Masks turns statuses into handled rights and scopes: every right the ABI
// knows, minus those of protections that are not active.
func Masks(abi int, st [len(facts)]Status) (handledFS, handledNet, scoped uint64) {
	handledFS = HandledFS(abi)
	for i, f := range facts {
		if st[i] != Active {
			handledFS &^= f.fs
			continue
		}
		handledNet |= f.net
		scoped |= f.scope
	}
	return handledFS, handledNet, scoped
}
