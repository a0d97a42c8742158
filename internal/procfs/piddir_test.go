//go:build linux

package procfs

import "testing"

func TestPidDir(t *testing.T) {
	for p, want := range map[string]int{
		"/proc/1":               1,
		"/proc/42/environ":      42,
		"/proc/42/task/43/maps": 42,
		"/proc/self":            0,
		"/proc/meminfo":         0,
		"/proc/0/x":             0,
		"/proc":                 0,
		"/procx/42":             0,
		"/proc/99999999999/x":   0,
		"/tmp/proc/42":          0,
	} {
		pid, ok := PidDir(p)
		if (want != 0) != ok || pid != want {
			t.Errorf("PidDir(%q) = %d, %v; want %d", p, pid, ok, want)
		}
	}
}
