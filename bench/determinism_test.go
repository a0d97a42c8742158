//go:build linux

package bench

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestDeterminismQuick runs bench/determinism.sh in quick mode so that the
// script cannot rot. It asserts that every row was measured, never how
// fast anything was.
func TestDeterminismQuick(t *testing.T) {
	cmd := exec.Command("bash", "determinism.sh", "--quick")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bench/determinism.sh --quick: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	table := string(out)
	t.Logf("bench/determinism.sh --quick (timings from a quick, concurrent run mean nothing):\n%s", table)
	ns := `\d+\.\d+ ns`
	ms := `\d+\.\d+ ms`
	rows := []string{
		`clock_gettime\(REALTIME\) +` + ns + ` +` + ns + ` +` + ns + ` +\d+\.\d+x`,
		`clock_gettime\(MONOTONIC\) +` + ns + ` +` + ns + ` +` + ns + ` +\d+\.\d+x`,
	}
	for _, v := range []string{`\+time`, `\+seed`, `\+time\+seed`} {
		rows = append(rows,
			`200 × /bin/true from sh, `+v+` +`+ms+` +`+ms+` +[-+]\d+\.\d µs/exec +\d+\.\d+x`,
			`start: python3 -c pass, `+v+` +`+ms+` +`+ms+` +[-+]\d+\.\d µs +\d+\.\d+x`)
	}
	for _, re := range rows {
		if !regexp.MustCompile(`(?m)^` + re + `$`).MatchString(table) {
			t.Errorf("no row matching %q", re)
		}
	}
}
