//go:build linux

package sandlock_test

import (
	"testing"

	"github.com/sandlock-go/sandlock"
)

// Deterministic runs (issue 15) cost nothing unless asked for: without
// TimeStart and RandomSeed no exec takes a stop (DeterministicDirs needs
// none either); with either, each exec takes exactly one, where the vDSO
// is patched and AT_RANDOM rewritten.
func TestDeterminismExecStops(t *testing.T) {
	for _, c := range []struct {
		name  string
		set   func(sb *sandlock.Sandbox)
		stops uint64
	}{
		{"none", func(*sandlock.Sandbox) {}, 0},
		{"DeterministicDirs", func(sb *sandlock.Sandbox) { sb.DeterministicDirs = true }, 0},
		{"TimeStart", func(sb *sandlock.Sandbox) { sb.TimeStart = timeStarts[0].spec }, 3},
		{"RandomSeed", func(sb *sandlock.Sandbox) { sb.RandomSeed = seed(1) }, 3},
		{"both", func(sb *sandlock.Sandbox) { sb.TimeStart = timeStarts[0].spec; sb.RandomSeed = seed(1) }, 3},
	} {
		sb := base()
		c.set(sb)
		ses := execHook(t, sb, nil)
		if res := sh(t, sb, `/bin/true; exec /bin/true`); res.ExitCode != 0 {
			t.Fatalf("%s: exit %d: %s", c.name, res.ExitCode, res.Stderr)
		}
		if n := ses().ExecStops(); n != c.stops {
			t.Errorf("%s: %d exec stops, want %d (sh and two trues, or none)", c.name, n, c.stops)
		}
	}
}
