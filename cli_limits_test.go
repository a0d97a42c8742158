//go:build linux

package sandlock_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// End-to-end tests of the CLI's resource-limit and process-knob flags.

// cliOK runs `sandlock run flags -- cmd` and returns its stdout, failing
// the test unless it exited 0 with nothing on stderr.
func cliOK(t *testing.T, flags []string, cmd ...string) string {
	t.Helper()
	code, stdout, stderr := cli(t, cliRunArgs(cliGrants(flags...), cmd...)...)
	if code != 0 || stderr != "" {
		t.Fatalf("%q %q: exit %d, stderr %q", flags, cmd, code, stderr)
	}
	return stdout
}

func TestCLILimitsMaxProcesses(t *testing.T) {
	script := `i=0; while [ $i -lt 10 ]; do sleep 30 & i=$((i+1)); echo started $i; done; echo all started`
	for _, flag := range []string{"-P", "--max-processes"} {
		code, stdout, stderr := cli(t, cliRunArgs(cliGrants(flag, "5"), "/bin/sh", "-c", script)...)
		if code == 0 || !strings.Contains(stderr, "Cannot fork") {
			t.Errorf("%s 5: exit %d, stderr %q; want the shell's fork failure", flag, code, stderr)
		}
		if n := strings.Count(stdout, "started "); n != 4 {
			t.Errorf("%s 5: %d background sleeps started, want 4\n%s", flag, n, stdout)
		}
	}
	// Under the limit.
	if got := cliOK(t, []string{"-P", "5"}, "/bin/sh", "-c", `for i in 1 2 3 4; do sleep 0.2 & done; wait; echo done`); got != "done\n" {
		t.Errorf("-P 5 with four children: %q", got)
	}
	// The default is 64.
	got := cliOK(t, nil, python, "-c", forkUntilEAGAIN, "100")
	if got != "63 BlockingIOError EAGAIN\n" {
		t.Errorf("default process limit: %q", got)
	}
}

// cliMemoryKilled matches the line that reports a kill by the memory limit.
var cliMemoryKilled = regexp.MustCompile(`^sandlock: process killed: memory limit exceeded\b.*\n$`)

func TestCLILimitsMaxMemory(t *testing.T) {
	alloc := func(mb int) string {
		return fmt.Sprintf("b = bytearray(%d * 1024 * 1024); print('alive')", mb)
	}
	for _, flag := range []string{"-m", "--max-memory"} {
		code, stdout, stderr := cli(t, cliRunArgs(cliGrants(flag, "64M"), python, "-c", alloc(200))...)
		if code != 137 {
			t.Errorf("%s 64M, 200M allocated: exit %d, want 137 (SIGKILL)", flag, code)
		}
		if !cliMemoryKilled.MatchString(stderr) {
			t.Errorf("%s 64M: stderr %q, want one \"sandlock: process killed: memory limit exceeded\" line", flag, stderr)
		}
		if stdout != "" {
			t.Errorf("%s 64M: the program went on: %q", flag, stdout)
		}
	}
	// Under the budget, in every unit.
	for _, size := range []string{"64M", "64m", "65536K", "1G", "1g", "67108864"} {
		if got := cliOK(t, []string{"-m", size}, python, "-c", alloc(20)); got != "alive\n" {
			t.Errorf("-m %s, 20M allocated: %q", size, got)
		}
	}
	// A child killed, its parent going on.
	code, stdout, stderr := cli(t, cliRunArgs(cliGrants("-m", "64M"), "/bin/sh", "-c",
		python+` -c "b = bytearray(200 << 20)"; echo "child exit $?"`)...)
	if code != 0 || stdout != "child exit 137\n" {
		t.Errorf("child over budget: exit %d, stdout %q", code, stdout)
	}
	// The shell reports the kill too.
	if first, _, _ := strings.Cut(stderr, "\n"); !cliMemoryKilled.MatchString(first + "\n") {
		t.Errorf("child over budget: stderr %q", stderr)
	}
}

func TestCLILimitsMaxOpenFiles(t *testing.T) {
	if got := cliOK(t, []string{"--max-open-files", "50"}, "/bin/sh", "-c", "ulimit -n; ulimit -Hn"); got != "50\n50\n" {
		t.Errorf("--max-open-files 50: %q", got)
	}
	if got := cliOK(t, []string{"--max-open-files", "50"}, python, "-c", openUntilEMFILE, "60"); got != "EMFILE 49\n" {
		t.Errorf("--max-open-files 50, 60 opened: %q", got)
	}
	if got := cliOK(t, []string{"--max-open-files", "50"}, python, "-c", openUntilEMFILE, "40"); !strings.HasPrefix(got, "none ") {
		t.Errorf("--max-open-files 50, 40 opened: %q", got)
	}
	// Clamped to sandlock's own limit.
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	lim := min(rl.Cur, rl.Max)
	if got := cliOK(t, []string{"--max-open-files", "4294967295"}, "/bin/sh", "-c", "ulimit -n; ulimit -Hn"); got != fmt.Sprintf("%d\n%d\n", lim, lim) {
		t.Errorf("--max-open-files 4294967295: %q, want %d twice", got, lim)
	}
}

func TestCLILimitsCPU(t *testing.T) {
	// See TestLimitCPUThrottle: the throttled share, and the time stopped.
	ratio := func(flags ...string) (float64, float64) {
		t.Helper()
		return cpuFigures(t, cliOK(t, append(flags, "-r", "/proc"), python, "-c", cpuLoop, "0.5"))
	}
	free, freeStopped := ratio()
	throttled, _ := ratio("-c", "25")
	full, fullStopped := ratio("--cpu", "100")
	t.Logf("wall/cpu: unthrottled %.2f, -c 25 %.2f, --cpu 100 %.2f; stopped: unthrottled %.0f%%, --cpu 100 %.0f%%",
		free, throttled, full, 100*freeStopped, 100*fullStopped)
	if throttled < 3 {
		t.Errorf("-c 25: %.2f× wall per CPU second, unthrottled %.2f×: want at least three", throttled, free)
	}
	if fullStopped > 0.15 || freeStopped > 0.15 {
		t.Errorf("--cpu 100 stopped %.0f%% of the time, unthrottled %.0f%%: 100 should not throttle", 100*fullStopped, 100*freeStopped)
	}
}

func TestCLILimitsPlacement(t *testing.T) {
	cpus := ownCPUs(t)
	last := strconv.Itoa(cpus[len(cpus)-1])
	got := cliOK(t, []string{"-r", "/proc", "--cpu-cores", last}, "/bin/grep", "Cpus_allowed_list", "/proc/self/status")
	if strings.Join(strings.Fields(got), " ") != "Cpus_allowed_list: "+last {
		t.Errorf("--cpu-cores %s: %q", last, got)
	}
	if len(cpus) >= 2 && cpus[0] == 0 && cpus[1] == 1 {
		got := cliOK(t, []string{"-r", "/proc", "--cpu-cores", "0-1"}, "/bin/grep", "Cpus_allowed_list", "/proc/self/status")
		if strings.Join(strings.Fields(got), " ") != "Cpus_allowed_list: 0-1" {
			t.Errorf("--cpu-cores 0-1: %q", got)
		}
	}
	if got := cliOK(t, []string{"--num-cpus", "1"}, "nproc"); got != "1\n" {
		t.Errorf("--num-cpus 1: nproc %q", got)
	}
	if got := cliOK(t, nil, "nproc"); got != strconv.Itoa(len(cpus))+"\n" {
		t.Errorf("without --num-cpus: nproc %q, want %d", got, len(cpus))
	}
}

func TestCLILimitsGPU(t *testing.T) {
	show := []string{"/bin/sh", "-c", `echo "cuda=${CUDA_VISIBLE_DEVICES-unset} rocr=${ROCR_VISIBLE_DEVICES-unset}"`}
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--clean-env"}, "cuda=unset rocr=unset\n"},
		{[]string{"--clean-env", "--gpu", "all"}, "cuda=unset rocr=unset\n"},
		{[]string{"--clean-env", "--gpu", "0,2"}, "cuda=0,2 rocr=0,2\n"},
		{[]string{"--clean-env", "--gpu", "1"}, "cuda=1 rocr=1\n"},
	} {
		if got := cliOK(t, tc.flags, show...); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.flags, got, tc.want)
		}
	}
}

func TestCLILimitsKnobs(t *testing.T) {
	soft, hard := withCoreLimit(t)
	core := "Max core file size " + soft + " " + hard + " bytes"
	probe := []string{"/bin/sh", "-c", `grep "Max core file size" /proc/self/limits; cat /proc/self/personality; grep THP_enabled /proc/self/status`}
	norm := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	got := norm(cliOK(t, []string{"-r", "/proc"}, probe...))
	if want := core + " 00000000 THP_enabled: 1"; got != want {
		t.Errorf("without knobs: %q, want %q", got, want)
	}
	got = norm(cliOK(t, []string{"-r", "/proc", "--no-coredump", "--no-randomize-memory", "--no-huge-pages"}, probe...))
	if want := "Max core file size 0 0 bytes 00040000 THP_enabled: 0"; got != want {
		t.Errorf("with every knob: %q, want %q", got, want)
	}
	// Each knob on its own.
	for flag, want := range map[string]string{
		"--no-coredump":         "Max core file size 0 0 bytes 00000000 THP_enabled: 1",
		"--no-randomize-memory": core + " 00040000 THP_enabled: 1",
		"--no-huge-pages":       core + " 00000000 THP_enabled: 0",
	} {
		if got := norm(cliOK(t, []string{"-r", "/proc", flag}, probe...)); got != want {
			t.Errorf("%s: %q, want %q", flag, got, want)
		}
	}
	// Two runs without randomization have the same layout.
	layoutRun := func() string {
		return cliOK(t, []string{"-r", "/proc", "--no-randomize-memory", "--env", "PYTHONHASHSEED=0"}, python, "-c", layout)
	}
	if a, b := layoutRun(), layoutRun(); a != b {
		t.Errorf("--no-randomize-memory: layouts differ:\n%s--\n%s", a, b)
	}
}

func TestCLILimitsInvalid(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want []string // substrings of the one stderr line
	}{
		{[]string{"-P", "0"}, 1, []string{"--max-processes 0", "at least 1"}},
		{[]string{"--max-processes", "0"}, 1, []string{"--max-processes 0"}},
		{[]string{"--max-open-files", "0"}, 1, []string{"--max-open-files 0", "omit the flag"}},
		{[]string{"-c", "0"}, 1, []string{"--cpu 0", "1 to 100"}},
		{[]string{"-c", "101"}, 1, []string{"--cpu 101", "1 to 100"}},
		{[]string{"--cpu", "255"}, 1, []string{"--cpu 255", "1 to 100"}},
		{[]string{"--cpu-cores", "5-2"}, 1, []string{`--cpu-cores "5-2"`, "range"}},
		{[]string{"--cpu-cores", "x"}, 1, []string{`--cpu-cores "x"`}},
		{[]string{"--cpu-cores", ""}, 0, nil}, // empty: no pinning
		{[]string{"--cpu-cores", "999"}, 1, []string{`--cpu-cores "999"`, "not available"}},
		{[]string{"--cpu-cores", "0,998-999"}, 1, []string{`--cpu-cores "0,998,999"`, "CPU 998 is not available"}},
		{[]string{"--gpu", "x"}, 1, []string{`--gpu "x"`, "all"}},
		{[]string{"--gpu", "0-1"}, 1, []string{`--gpu "0-1"`}},
		{[]string{"--gpu", ""}, 1, []string{`--gpu ""`}},
		{[]string{"-m", "12Q"}, 1, []string{`--max-memory "12Q"`}},
		{[]string{"--max-memory", "0"}, 1, []string{`--max-memory "0"`, "more than 0"}},
		{[]string{"-m", "1.5G"}, 1, []string{`--max-memory "1.5G"`}},
		{[]string{"-m", "64MiB"}, 1, []string{`--max-memory "64MiB"`}},
		{[]string{"--max-memory="}, 1, []string{`--max-memory ""`, "omit the flag"}},
		{[]string{"--num-cpus", "0"}, 1, []string{"--num-cpus 0", "at least 1"}},
		{[]string{"--no-supervisor", "-m", "64M"}, 1, []string{"--max-memory", "--no-supervisor"}},
		{[]string{"--no-supervisor", "-P", "5"}, 1, []string{"--max-processes", "--no-supervisor"}},
		{[]string{"--no-supervisor", "--num-cpus", "1"}, 1, []string{"--num-cpus", "--no-supervisor"}},
		// The knobs need no supervisor.
		{[]string{"--no-supervisor", "--max-open-files", "40", "-c", "50", "--no-coredump", "--no-huge-pages", "--no-randomize-memory"}, 0, nil},
		// pflag's own parse errors are usage errors.
		{[]string{"--cpu", "abc"}, 2, []string{"abc", "cpu"}},
		{[]string{"-c", "300"}, 2, []string{"300", "cpu"}},
		{[]string{"-c", "-5"}, 2, []string{"-5", "cpu"}},
		{[]string{"-P", "abc"}, 2, []string{"abc", "max-processes"}},
		{[]string{"-P", "-1"}, 2, []string{"-1", "max-processes"}},
		{[]string{"--max-open-files", "many"}, 2, []string{"many", "max-open-files"}},
		{[]string{"--num-cpus", "two"}, 2, []string{"two", "num-cpus"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := cli(t, cliRunArgs(cliGrants(tc.args...), "echo", "ran")...)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, stderr)
			}
			if tc.code == 0 {
				if stdout != "ran\n" {
					t.Errorf("stdout %q", stdout)
				}
				return
			}
			if stdout != "" {
				t.Errorf("the command ran: stdout %q", stdout)
			}
			cliOneLine(t, strings.Join(tc.args, " "), stderr)
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not contain %q", stderr, w)
				}
			}
		})
	}
}
