//go:build linux

// Package bench holds the benchmark script; its test runs the script in
// quick mode so that the script cannot rot. It asserts that every row was
// measured, never how fast anything was.
package bench

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// rows are the workloads bench/run.sh must report, each with a time for
// the bare command and a time and ratio for sandlock and bubblewrap.
var rows = []string{
	"start: /bin/true",
	"start: python3 -c pass",
	"find /usr -maxdepth 3",
	"100k os.stat (in-process)",
	"20k open+close (in-process)",
	"served /proc: python3 -c pass",
	"served /proc: find -maxdepth 3",
	"served /proc: 20k open+close",
	"200 × /bin/true from sh",
	"2k connects, host rule",
	"2k connects, port rule",
	"5k HTTP GETs, port rule",
}

func TestRunQuick(t *testing.T) {
	cmd := exec.Command("bash", "run.sh", "--quick")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bench/run.sh --quick: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	table := string(out)
	t.Logf("bench/run.sh --quick (timings from a quick, concurrent run mean nothing):\n%s", table)

	ms := `\d+\.\d+ ms`
	ratio := ms + ` +\d+\.\d+x`
	for _, name := range rows {
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` +` + ms + ` +` + ratio + ` +` + ratio)
		if !re.MatchString(table) {
			t.Errorf("no complete row for %q (bare, sandlock and bwrap figures)", name)
		}
	}
	// The rows measured with their floor (the table's last column).
	for _, name := range []string{"20k open+close (in-process)", "200 × /bin/true from sh"} {
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` .*` + ratio + ` *$`)
		if !re.MatchString(table) {
			t.Errorf("no floor figure ending the row %q", name)
		}
	}
	// The copy-on-write rows: bare and sandlock --workdir.
	for _, name := range []string{"cow: python3 -c pass", "cow: git status, 1000 files", "cow: write 1000 files, commit"} {
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` +` + ms + ` +` + ratio)
		if !re.MatchString(table) {
			t.Errorf("no complete row for %q (bare and sandlock figures)", name)
		}
	}
	for _, line := range []string{
		`notified getppid from Python +\d+\.\d+ µs/call \(C floor: one thread, blocking RECV/SEND\)`,
		`notified getppid from Python +\d+\.\d+ µs/call +\d+\.\d+x the C floor \(user Handler, Continue\)`,
		`notified syscall \(Continue\) +\d+(\.\d+)? µs/call \(SYNC_WAKE_UP on\)`,
		`notified syscall \(Continue\) +\d+(\.\d+)? µs/call \(SYNC_WAKE_UP off\)`,
		`getppid in a sandbox +\d+(\.\d+)? ns/call \(not notified\)`,
		`cow: commit of 1000 files +-?\d+(\.\d+)? ms \(write 1000 files: --workdir minus --on-exit abort\)`,
	} {
		if !regexp.MustCompile(`(?m)^` + line + `$`).MatchString(table) {
			t.Errorf("no line matching %q", line)
		}
	}
}
