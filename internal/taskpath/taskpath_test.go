//go:build linux

package taskpath

import (
	"os"
	"strconv"
	"testing"
)

// TestMagic: the task's own magic links are recognised by every name the
// kernel gives them (here the task is the test process itself).
func TestMagic(t *testing.T) {
	tid := uint32(os.Getpid())
	self := strconv.Itoa(os.Getpid())
	for _, c := range []struct {
		path, entry, rest, link string
	}{
		{"/proc/self/fd/3", "/proc/" + self + "/fd/3", "", "/proc/" + self + "/fd/3"},
		{"/proc/self/fd/3/x/y", "/proc/" + self + "/fd/3", "x/y", ""},
		{"/proc/thread-self/cwd/a", "/proc/" + self + "/cwd", "a", ""},
		{"/dev/fd/0", "/proc/" + self + "/fd/0", "", "/proc/" + self + "/fd/0"},
		{"/dev/stderr", "/proc/" + self + "/fd/2", "", "/proc/" + self + "/fd/2"},
		{"/proc/" + self + "/exe", "/proc/" + self + "/exe", "", "/proc/" + self + "/exe"},
		{"/proc/self/root/etc", "/", "etc", ""},
		{"/proc/self/root", "/", "", "/proc/" + self + "/root"},
		{"/proc/self/fd/3/", "/proc/" + self + "/fd/3", "", ""}, // followed: the slash
	} {
		entry, rest, ok := magic(tid, c.path)
		if !ok || entry != c.entry || rest != c.rest {
			t.Errorf("magic(%q) = %q, %q, %v; want %q, %q", c.path, entry, rest, ok, c.entry, c.rest)
		}
		if link := linkOf(tid, c.path, rest); link != c.link {
			t.Errorf("linkOf(%q) = %q, want %q", c.path, link, c.link)
		}
	}
	for _, p := range []string{"/proc/self/status", "/proc/self/fd", "/proc/1/fd/3", "/proc/self/../1/fd/0", "/dev/null", "/etc/passwd"} {
		if entry, rest, ok := magic(tid, p); ok {
			t.Errorf("magic(%q) = %q, %q: not a magic link of the task", p, entry, rest)
		}
	}
}

func TestProcSelf(t *testing.T) {
	tid := uint32(os.Getpid())
	self := strconv.Itoa(os.Getpid())
	for in, want := range map[string]string{
		"/proc/self/status":      "/proc/" + self + "/status",
		"/proc/thread-self/stat": "/proc/" + self + "/task/" + self + "/stat",
		"/proc/self/":            "/proc/" + self + "/",
		"/proc/self/../1/status": "/proc/self/../1/status",
		"/proc/meminfo":          "/proc/meminfo",
		"/etc/proc/self/x":       "/etc/proc/self/x",
	} {
		if got := procSelf(tid, in); got != want {
			t.Errorf("procSelf(%q) = %q, want %q", in, got, want)
		}
	}
}
