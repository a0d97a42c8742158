//go:build linux

package landlock

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseProtection(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Protection
	}{
		{"fs-refer", ProtectionFSRefer},
		{"fs-truncate", ProtectionFSTruncate},
		{"net-tcp", ProtectionNetTCP},
		{"fs-ioctl-dev", ProtectionFSIoctlDev},
		{"signal-scope", ProtectionSignalScope},
		{"abstract-unix-socket-scope", ProtectionAbstractUnixSocketScope},
		{"FS-REFER", ProtectionFSRefer},
		{"Net-TCP", ProtectionNetTCP},
		{"Abstract-Unix-Socket-Scope", ProtectionAbstractUnixSocketScope},
	} {
		got, err := ParseProtection(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseProtection(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "fs", "refer", "fs_refer", "fs-refer ", "net-udp", "protection(0)", "0"} {
		_, err := ParseProtection(bad)
		if err == nil {
			t.Errorf("ParseProtection(%q) succeeded", bad)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "unknown protection") || !strings.Contains(msg, `"`+bad+`"`) {
			t.Errorf("ParseProtection(%q): %q does not name the input", bad, msg)
		}
		for _, p := range Protections {
			if !strings.Contains(msg, p.String()) {
				t.Errorf("ParseProtection(%q): %q does not list %s", bad, msg, p)
			}
		}
	}
}

func TestProtectionStringRoundTrip(t *testing.T) {
	if len(Protections) != 6 {
		t.Fatalf("%d protections, want 6", len(Protections))
	}
	seen := map[string]bool{}
	for i, p := range Protections {
		if int(p) != i {
			t.Errorf("Protections[%d] = %d: not in value order", i, p)
		}
		s := p.String()
		if seen[s] || strings.HasPrefix(s, "protection(") {
			t.Errorf("bad or duplicate name %q", s)
		}
		seen[s] = true
		back, err := ParseProtection(strings.ToUpper(s))
		if err != nil || back != p {
			t.Errorf("ParseProtection(%q) = %v, %v; want %v", s, back, err, p)
		}
	}
	if got := Protection(6).String(); got != "protection(6)" {
		t.Errorf("Protection(6).String() = %q", got)
	}
	if got := Protection(1 << 31).String(); got != "protection(2147483648)" {
		t.Errorf("Protection(1<<31).String() = %q", got)
	}
}

func TestProtectionMinABI(t *testing.T) {
	want := map[Protection]int{
		ProtectionFSRefer: 2, ProtectionFSTruncate: 3, ProtectionNetTCP: 4, ProtectionFSIoctlDev: 5,
		ProtectionSignalScope: 6, ProtectionAbstractUnixSocketScope: 6,
		Protection(6): 0, Protection(99): 0,
	}
	highest := 0
	for p, abi := range want {
		if got := p.MinABI(); got != abi {
			t.Errorf("%v.MinABI() = %d, want %d", p, got, abi)
		}
		highest = max(highest, abi)
	}
	if MinABI != highest {
		t.Errorf("MinABI = %d, but the newest protection needs %d", MinABI, highest)
	}
	// The upstream values the CLI and API expose.
	if ProtectionFSRefer != 0 || ProtectionFSTruncate != 1 || ProtectionNetTCP != 2 ||
		ProtectionFSIoctlDev != 3 || ProtectionSignalScope != 4 || ProtectionAbstractUnixSocketScope != 5 {
		t.Error("protection values changed")
	}
}

func TestPosturesSet(t *testing.T) {
	var ps Postures
	for _, p := range Protections {
		if ps[p] != Strict {
			t.Errorf("zero Postures: %v is %d, want Strict", p, ps[p])
		}
	}

	// fs-refer can be degraded but never disabled.
	if err := ps.Set(ProtectionFSRefer, Disabled); err == nil || !strings.Contains(err.Error(), "fs-refer cannot be disabled") {
		t.Errorf("Set(fs-refer, Disabled) = %v", err)
	}
	if ps[ProtectionFSRefer] != Strict {
		t.Errorf("a refused Set changed fs-refer to %d", ps[ProtectionFSRefer])
	}
	if err := ps.Set(ProtectionFSRefer, Degradable); err != nil || ps[ProtectionFSRefer] != Degradable {
		t.Errorf("Set(fs-refer, Degradable) = %v, posture %d", err, ps[ProtectionFSRefer])
	}

	// Disabled wins over Degradable in either order.
	var a, b Postures
	if err := a.Set(ProtectionNetTCP, Degradable); err != nil {
		t.Fatal(err)
	}
	if err := a.Set(ProtectionNetTCP, Disabled); err != nil {
		t.Fatal(err)
	}
	if err := b.Set(ProtectionNetTCP, Disabled); err != nil {
		t.Fatal(err)
	}
	if err := b.Set(ProtectionNetTCP, Degradable); err != nil {
		t.Fatal(err)
	}
	if a[ProtectionNetTCP] != Disabled || b[ProtectionNetTCP] != Disabled {
		t.Errorf("degrade then disable: %d; disable then degrade: %d; want Disabled both", a[ProtectionNetTCP], b[ProtectionNetTCP])
	}
	// Setting one protection leaves the others alone.
	for _, p := range Protections {
		if p != ProtectionNetTCP && (a[p] != Strict || b[p] != Strict) {
			t.Errorf("%v changed to %d/%d", p, a[p], b[p])
		}
	}
	// Degradable replaces Strict.
	if err := a.Set(ProtectionSignalScope, Degradable); err != nil || a[ProtectionSignalScope] != Degradable {
		t.Errorf("Set(signal-scope, Degradable) = %v, posture %d", err, a[ProtectionSignalScope])
	}

	for _, p := range []Protection{6, 7, 1 << 20} {
		before := ps
		if err := ps.Set(p, Degradable); err == nil || !strings.Contains(err.Error(), "unknown protection") {
			t.Errorf("Set(%d) = %v, want an unknown-protection error", p, err)
		}
		if ps != before {
			t.Errorf("Set(%d) changed the postures", p)
		}
	}
}

// TestResolve is the full truth table: every protection, every posture,
// every ABI from 1 to 7.
func TestResolve(t *testing.T) {
	for abi := 1; abi <= 7; abi++ {
		for _, p := range Protections {
			for _, posture := range []Posture{Strict, Degradable, Disabled} {
				if p == ProtectionFSRefer && posture == Disabled {
					continue // refused by Set; covered in TestPosturesSet
				}
				// p gets the posture; every other protection is disabled
				// (or, for fs-refer, degradable) so only p decides.
				var ps Postures
				for _, q := range Protections {
					if q == p {
						continue
					}
					off := Disabled
					if q == ProtectionFSRefer {
						off = Degradable
					}
					if err := ps.Set(q, off); err != nil {
						t.Fatal(err)
					}
				}
				if err := ps.Set(p, posture); err != nil {
					t.Fatal(err)
				}
				st, err := ps.Resolve(Kernel{ABI: abi, Errata: allFixed})
				supported := abi >= p.MinABI()
				switch {
				case posture == Disabled:
					if err != nil || st[p] != Off {
						t.Errorf("ABI %d %v disabled: %d, %v; want Off", abi, p, st[p], err)
					}
				case supported:
					if err != nil || st[p] != Active {
						t.Errorf("ABI %d %v posture %d: %d, %v; want Active", abi, p, posture, st[p], err)
					}
				case posture == Degradable:
					if err != nil || st[p] != Degraded {
						t.Errorf("ABI %d %v degradable: %d, %v; want Degraded", abi, p, st[p], err)
					}
				default:
					var ue *UnavailableError
					if !errors.As(err, &ue) {
						t.Errorf("ABI %d %v strict: %v, want *UnavailableError", abi, p, err)
						continue
					}
					if ue.Protection != p || ue.Need != p.MinABI() || ue.Have != abi {
						t.Errorf("ABI %d %v strict: %+v", abi, p, ue)
					}
					msg := ue.Error()
					for _, w := range []string{p.String(), fmt.Sprintf("ABI %d,", p.MinABI()), fmt.Sprintf("has %d", abi), "--allow-degraded " + p.String(), "--disable " + p.String()} {
						if !strings.Contains(msg, w) {
							t.Errorf("%q does not contain %q", msg, w)
						}
					}
				}
			}
		}
	}
}

func TestResolveAllStrict(t *testing.T) {
	var ps Postures
	for abi := 0; abi <= 8; abi++ {
		st, err := ps.Resolve(Kernel{ABI: abi, Errata: allFixed})
		if abi >= MinABI {
			if err != nil {
				t.Errorf("ABI %d: %v", abi, err)
			}
			for _, p := range Protections {
				if st[p] != Active {
					t.Errorf("ABI %d: %v is %d, want Active", abi, p, st[p])
				}
			}
			continue
		}
		var ue *UnavailableError
		if !errors.As(err, &ue) {
			t.Errorf("ABI %d: %v, want *UnavailableError", abi, err)
			continue
		}
		// The first missing protection, in value order, is reported.
		for _, p := range Protections {
			if abi < p.MinABI() {
				if ue.Protection != p {
					t.Errorf("ABI %d: reported %v, want %v", abi, ue.Protection, p)
				}
				break
			}
		}
	}
}

func TestResolveAllDegradable(t *testing.T) {
	var ps Postures
	for _, p := range Protections {
		if err := ps.Set(p, Degradable); err != nil {
			t.Fatal(err)
		}
	}
	for abi := 1; abi <= 7; abi++ {
		st, err := ps.Resolve(Kernel{ABI: abi, Errata: allFixed})
		if err != nil {
			t.Fatalf("ABI %d: %v", abi, err)
		}
		for _, p := range Protections {
			want := Degraded
			if abi >= p.MinABI() {
				want = Active
			}
			if st[p] != want {
				t.Errorf("ABI %d: %v is %d, want %d", abi, p, st[p], want)
			}
		}
	}
}

func TestHandledFS(t *testing.T) {
	v1 := uint64(FSExecute | FSWriteFile | FSReadFile | FSReadDir | FSRemoveDir | FSRemoveFile |
		FSMakeChar | FSMakeDir | FSMakeReg | FSMakeSock | FSMakeFifo | FSMakeBlock | FSMakeSym)
	if v1 != 1<<13-1 {
		t.Fatalf("ABI 1 rights = %#x, want the 13 low bits", v1)
	}
	want := map[int]uint64{
		0: 0,
		1: v1,
		2: v1 | FSRefer,
		3: v1 | FSRefer | FSTruncate,
		4: v1 | FSRefer | FSTruncate,
		5: v1 | FSRefer | FSTruncate | FSIoctlDev,
		6: v1 | FSRefer | FSTruncate | FSIoctlDev,
		7: v1 | FSRefer | FSTruncate | FSIoctlDev,
		8: v1 | FSRefer | FSTruncate | FSIoctlDev,
	}
	for abi, w := range want {
		if got := HandledFS(abi); got != w {
			t.Errorf("HandledFS(%d) = %#x, want %#x", abi, got, w)
		}
	}
	if FSRefer != 1<<13 || FSTruncate != 1<<14 || FSIoctlDev != 1<<15 {
		t.Errorf("FS right bits: refer %#x truncate %#x ioctl-dev %#x", FSRefer, FSTruncate, FSIoctlDev)
	}
}

func TestMasks(t *testing.T) {
	all := [len(protectionNames)]Status{}
	for abi := 1; abi <= 7; abi++ {
		// Everything the ABI has, active; the rest degraded.
		var ps Postures
		for _, p := range Protections {
			_ = ps.Set(p, Degradable)
		}
		st, err := ps.Resolve(Kernel{ABI: abi, Errata: allFixed})
		if err != nil {
			t.Fatal(err)
		}
		fs, net, scoped := Masks(abi, st)
		if fs != HandledFS(abi) {
			t.Errorf("ABI %d: handled FS %#x, want every right %#x", abi, fs, HandledFS(abi))
		}
		wantNet, wantScoped := uint64(0), uint64(0)
		if abi >= 4 {
			wantNet = NetBindTCP | NetConnectTCP
		}
		if abi >= 6 {
			wantScoped = ScopeSignal | ScopeAbstractUnixSocket
		}
		if net != wantNet || scoped != wantScoped {
			t.Errorf("ABI %d: net %#x scoped %#x, want %#x %#x", abi, net, scoped, wantNet, wantScoped)
		}
	}

	// Each inactive protection removes exactly its own bits.
	full := HandledFS(7)
	for _, tc := range []struct {
		p               Protection
		fs, net, scoped uint64
		description     string
	}{
		{ProtectionFSRefer, full &^ FSRefer, NetBindTCP | NetConnectTCP, ScopeSignal | ScopeAbstractUnixSocket, "refer"},
		{ProtectionFSTruncate, full &^ FSTruncate, NetBindTCP | NetConnectTCP, ScopeSignal | ScopeAbstractUnixSocket, "truncate"},
		{ProtectionFSIoctlDev, full &^ FSIoctlDev, NetBindTCP | NetConnectTCP, ScopeSignal | ScopeAbstractUnixSocket, "ioctl-dev"},
		{ProtectionNetTCP, full, 0, ScopeSignal | ScopeAbstractUnixSocket, "net"},
		{ProtectionSignalScope, full, NetBindTCP | NetConnectTCP, ScopeAbstractUnixSocket, "signal"},
		{ProtectionAbstractUnixSocketScope, full, NetBindTCP | NetConnectTCP, ScopeSignal, "abstract unix"},
	} {
		for _, status := range []Status{Degraded, Off} {
			st := all
			st[tc.p] = status
			fs, net, scoped := Masks(7, st)
			if fs != tc.fs || net != tc.net || scoped != tc.scoped {
				t.Errorf("%s status %d: %#x %#x %#x, want %#x %#x %#x", tc.description, status, fs, net, scoped, tc.fs, tc.net, tc.scoped)
			}
		}
	}

	// Nothing active: only the ABI 1 rights remain handled.
	var none [len(protectionNames)]Status
	for i := range none {
		none[i] = Off
	}
	fs, net, scoped := Masks(7, none)
	if fs != HandledFS(1) || net != 0 || scoped != 0 {
		t.Errorf("all off: %#x %#x %#x, want %#x 0 0", fs, net, scoped, HandledFS(1))
	}
	// Masks never hands the kernel a right its ABI lacks.
	for abi := 1; abi <= 7; abi++ {
		if fs, _, _ := Masks(abi, all); fs&^HandledFS(abi) != 0 {
			t.Errorf("ABI %d: handled %#x beyond the ABI's %#x", abi, fs, HandledFS(abi))
		}
	}
}

// allFixed is a kernel that has fixed every erratum.
const allFixed = ^uint64(0)

// TestErrata: a protection whose erratum the kernel has not fixed counts as
// missing (strict: an error naming the erratum; degradable: degraded), and
// the others are unaffected.
func TestErrata(t *testing.T) {
	fixed := Kernel{ABI: 6, Errata: 1 << (ProtectionSignalScope.Erratum() - 1)}
	unfixed := Kernel{ABI: 6}
	if ProtectionSignalScope.Erratum() == 0 || !fixed.Has(ProtectionSignalScope) || unfixed.Has(ProtectionSignalScope) {
		t.Fatalf("signal-scope and erratum %d: fixed %v unfixed %v", ProtectionSignalScope.Erratum(), fixed.Has(ProtectionSignalScope), unfixed.Has(ProtectionSignalScope))
	}
	if !unfixed.Has(ProtectionAbstractUnixSocketScope) || !unfixed.Has(ProtectionNetTCP) {
		t.Error("a protection without an erratum depends on the errata")
	}
	var ps Postures
	_, err := ps.Resolve(unfixed)
	var ue *UnavailableError
	if !errors.As(err, &ue) || ue.Protection != ProtectionSignalScope || ue.Erratum != 2 ||
		!strings.Contains(err.Error(), "erratum 2") || !strings.Contains(err.Error(), "--allow-degraded signal-scope") {
		t.Errorf("strict, erratum unfixed: %v", err)
	}
	if err := ps.Set(ProtectionSignalScope, Degradable); err != nil {
		t.Fatal(err)
	}
	st, err := ps.Resolve(unfixed)
	if err != nil || st[ProtectionSignalScope] != Degraded || st[ProtectionAbstractUnixSocketScope] != Active {
		t.Errorf("degradable, erratum unfixed: %v %v", st, err)
	}
	if _, _, scoped := Masks(6, st); scoped != ScopeAbstractUnixSocket {
		t.Errorf("scopes without signal-scope: %#x", scoped)
	}
	if st, err := ps.Resolve(fixed); err != nil || st[ProtectionSignalScope] != Active {
		t.Errorf("erratum fixed: %v %v", st, err)
	}
}

// TestProbeErrata: this machine's kernel (6.18) has fixed the errata the
// facts name.
func TestProbeErrata(t *testing.T) {
	k, err := Probe()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range Protections {
		if !k.Has(p) {
			t.Errorf("kernel ABI %d errata %#x: %v missing", k.ABI, k.Errata, p)
		}
	}
}
