//go:build linux

package procview

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/sandlock-go/sandlock/internal/landlock"
)

// tree makes directories and files (a trailing slash makes a directory)
// and symlinks ("name -> target") under a temporary root.
func tree(t *testing.T, entries ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, e := range entries {
		if name, target, ok := strings.Cut(e, " -> "); ok {
			if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		p := filepath.Join(root, e)
		if strings.HasSuffix(e, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func rulePaths(root string, rules []landlock.PathRule) map[string]uint64 {
	out := map[string]uint64{}
	for _, r := range rules {
		rel, err := filepath.Rel(root, r.Path)
		if err != nil || strings.HasPrefix(rel, "..") {
			rel = r.Path
		}
		out[rel] = r.Access
	}
	return out
}

// TestCarve: a grant above a refused tree becomes grants on every entry
// beside the way down to it; the tree itself, what is below it, and
// symlinks among the entries get none; a read-only tree is narrowed to
// reading under a writable grant only; grants elsewhere are untouched.
func TestCarve(t *testing.T) {
	root := tree(t,
		"proc/1/status", "proc/self -> 1", "usr/bin/", "etc/hosts", "bin -> usr/bin",
		"sys/firmware/acpi/", "sys/kernel/security/", "sys/kernel/mm/", "sys/class/net/", "sys/class/block/", "sys/devices/",
		"tmp/", "home/user/",
	)
	refused := []string{root + "/proc", root + "/sys/firmware", root + "/sys/kernel/security", root + "/sys/class/net"}
	readOnly := []string{root + "/sys"}
	const rw = landlock.FSRead | landlock.FSWriteFile | landlock.FSMakeReg
	t.Run("read", func(t *testing.T) {
		c := Carve([]landlock.PathRule{{Path: root, Access: landlock.FSRead}}, refused, readOnly)
		want := map[string]uint64{
			"usr": landlock.FSRead, "etc": landlock.FSRead, "tmp": landlock.FSRead, "home": landlock.FSRead,
			"sys/kernel/mm": landlock.FSRead, "sys/class/block": landlock.FSRead, "sys/devices": landlock.FSRead,
		}
		if got := rulePaths(root, c.Rules); !reflect.DeepEqual(got, want) {
			t.Errorf("rules %v, want %v", got, want)
		}
		hollow := slices.Clone(c.Hollow)
		sort.Strings(hollow)
		if want := []string{root, root + "/sys", root + "/sys/class", root + "/sys/kernel"}; !slices.Equal(hollow, want) {
			t.Errorf("hollow %v, want %v", hollow, want)
		}
		for _, r := range c.Rules {
			if !r.Optional {
				t.Errorf("rule on %s is not optional: an entry may vanish before the build", r.Path)
			}
		}
		if !slices.Equal(c.Reach, []string{root}) {
			t.Errorf("reach %v", c.Reach)
		}
	})
	t.Run("write", func(t *testing.T) {
		c := Carve([]landlock.PathRule{{Path: root, Access: rw}}, refused, readOnly)
		got := rulePaths(root, c.Rules)
		if got["usr"] != rw || got["tmp"] != rw {
			t.Errorf("writable entries lost rights: %v", got)
		}
		if got["sys/kernel/mm"] != landlock.FSRead || got["sys/devices"] != landlock.FSRead {
			t.Errorf("/sys is not read-only: %v", got)
		}
	})
	t.Run("sys written directly", func(t *testing.T) {
		c := Carve([]landlock.PathRule{{Path: root + "/sys/devices", Access: rw}}, refused, readOnly)
		if got := rulePaths(root, c.Rules); !reflect.DeepEqual(got, map[string]uint64{"sys/devices": landlock.FSRead}) {
			t.Errorf("rules %v", got)
		}
	})
	t.Run("inside and elsewhere", func(t *testing.T) {
		in := []landlock.PathRule{
			{Path: root + "/proc/1", Access: landlock.FSRead},
			{Path: root + "/sys/firmware/acpi", Access: landlock.FSRead},
			{Path: root + "/usr", Access: landlock.FSRead},
			{Path: root + "/missing", Access: landlock.FSRead, Optional: true},
		}
		c := Carve(in, refused, readOnly)
		if got := rulePaths(root, c.Rules); !reflect.DeepEqual(got, map[string]uint64{"usr": landlock.FSRead, "missing": landlock.FSRead}) {
			t.Errorf("rules %v", got)
		}
		if len(c.Hollow) != 0 {
			t.Errorf("hollow %v", c.Hollow)
		}
	})
}

// TestCarveProc: the grants that covered /proc are kept for the view, by
// the path they were written with (/proc/self stays the program's own),
// and a grant above /proc counts as one on /proc.
func TestCarveProc(t *testing.T) {
	c := Carve([]landlock.PathRule{
		{Path: "/", Access: landlock.FSRead},
		{Path: "/proc/self/", Access: landlock.FSRead | landlock.FSWriteFile},
		{Path: "/proc/cpuinfo", Access: landlock.FSRead},
	}, Refused, ReadOnly)
	want := []landlock.PathRule{
		{Path: "/proc", Access: landlock.FSRead},
		{Path: "/proc/self", Access: landlock.FSRead | landlock.FSWriteFile},
		{Path: "/proc/cpuinfo", Access: landlock.FSRead},
	}
	if !reflect.DeepEqual(c.Proc, want) {
		t.Errorf("proc grants %v, want %v", c.Proc, want)
	}
	for _, r := range c.Rules {
		if under(r.Path, "/proc") || under(r.Path, "/sys/firmware") || r.Path == "/" {
			t.Errorf("rule on %s survived the carve", r.Path)
		}
	}
	if !slices.Contains(c.Hollow, "/") {
		t.Errorf("/ is not hollow: %v", c.Hollow)
	}
}

// TestGranted: a grant under /proc covers what is below it; /proc/self
// and /proc/thread-self in a grant are the task's own; write needs a
// writable grant.
func TestGranted(t *testing.T) {
	v := New(Config{ProcGrants: []landlock.PathRule{
		{Path: "/proc/self", Access: landlock.FSRead | landlock.FSWriteFile},
		{Path: "/proc/thread-self/comm", Access: landlock.FSReadFile},
		{Path: "/proc/cpuinfo", Access: landlock.FSReadFile},
	}})
	for _, c := range []struct {
		rel   string
		write bool
		want  bool
	}{
		{"100/status", false, true},
		{"100/status", true, true},
		{"100", false, true},
		{"101/status", false, false},
		{"cpuinfo", false, true},
		{"cpuinfo", true, false},
		{"meminfo", false, false},
		{"", false, false},
	} {
		if got := v.granted(c.rel, c.write, 100, 105); got != c.want {
			t.Errorf("granted(%q, write %v) = %v, want %v", c.rel, c.write, got, c.want)
		}
	}
	if v.procRoot {
		t.Errorf("/proc is listable without a grant on it")
	}
	threadSelf := New(Config{ProcGrants: []landlock.PathRule{{Path: "/proc/thread-self/comm", Access: landlock.FSReadFile}}})
	if !threadSelf.granted("100/task/105/comm", false, 100, 105) || threadSelf.granted("100/task/106/comm", false, 100, 105) || threadSelf.granted("100/comm", false, 100, 105) {
		t.Errorf("/proc/thread-self is not the calling thread's")
	}
	if !New(Config{ProcGrants: []landlock.PathRule{{Path: "/proc", Access: landlock.FSRead}}}).procRoot {
		t.Errorf("a read grant on /proc does not make it listable")
	}
}

// TestClassify: other processes and the host's entries are refused, the
// sandbox's own shown, and the files the sandbox sees differently are
// synthetic; hooks of other features come first.
func TestClassify(t *testing.T) {
	visible := map[int]bool{100: true, 105: true, 200: true}
	v := New(Config{
		Visible:  func(pid int) bool { return visible[pid] },
		NumCPUs:  2,
		Nodename: func() string { return "box" },
		Files:    map[string]func(int) []byte{"sys/kernel/random/boot_id": func(int) []byte { return []byte("seeded\n") }},
	})
	for _, c := range []struct {
		rel  string
		want string // refused, real or synthetic
	}{
		{"", "real"},
		{"1", "refused"},
		{"1/cmdline", "refused"},
		{"300/status", "refused"},
		{"100/status", "real"},
		{"200/environ", "real"},
		{"100/task/105/status", "real"},
		{"100/mounts", "synthetic"},
		{"100/mountinfo", "synthetic"},
		{"100/task/105/mountinfo", "synthetic"},
		{"100/mountstats", "refused"},
		{"100/net", "real"},
		{"100/net/dev", "synthetic"},
		{"100/net/if_inet6", "synthetic"},
		{"100/net/tcp", "refused"},
		{"100/net/unix", "refused"},
		{"100/net/stat/rt_cache", "refused"},
		{"kallsyms", "refused"},
		{"kcore", "refused"},
		{"kmsg", "refused"},
		{"keys", "refused"},
		{"key-users", "refused"},
		{"sysrq-trigger", "refused"},
		{"modules", "refused"},
		{"cmdline", "refused"},
		{"sysvipc/shm", "refused"},
		{"cpuinfo", "synthetic"},
		{"stat", "synthetic"},
		{"meminfo", "real"},
		{"loadavg", "synthetic"},
		{"uptime", "real"},
		{"version", "real"},
		{"sys/kernel/hostname", "synthetic"},
		{"sys/kernel/random/boot_id", "synthetic"},
		{"sys/vm/overcommit_memory", "real"},
		{"sys/net/ipv4/conf", "refused"},
		{"sys/net/ipv4/conf/eth0", "refused"},
		{"sys/net/ipv4/conf/eth0/forwarding", "refused"},
		{"sys/net/ipv6/neigh/wlan0/retrans_time", "refused"},
		{"sys/net/ipv6/neigh", "refused"},
		{"sys/net/ipv4/conf/lo/forwarding", "real"},
		{"sys/net/ipv4/conf/all/forwarding", "real"},
		{"sys/net/ipv6/conf/default/disable_ipv6", "real"},
		{"sys/net/ipv4/ip_forward", "real"},
		{"sys/net/core/somaxconn", "real"},
		{"sys/net", "real"},
	} {
		e := v.classify(c.rel, 100)
		got := "real"
		switch {
		case e.refused:
			got = "refused"
		case e.gen != nil:
			got = "synthetic"
		}
		if got != c.want {
			t.Errorf("classify(%q) = %s, want %s", c.rel, got, c.want)
		}
	}
	if got := string(v.classify("sys/kernel/hostname", 100).gen()); got != "box\n" {
		t.Errorf("hostname %q", got)
	}
	if e := v.classify("100/status", 100); e.pid != 100 {
		t.Errorf("pid of 100/status = %d", e.pid)
	}
	// The caller's own process is visible even before the tracer knows it.
	if v.classify("400/status", 400).refused {
		t.Errorf("the caller's own process is refused")
	}
}

const hostCPUInfo = `processor	: 0
vendor_id	: GenuineIntel
model name	: Test CPU
siblings	: 4
core id		: 0
cpu cores	: 4
apicid		: 0
flags		: fpu sse2

processor	: 1
vendor_id	: GenuineIntel
model name	: Test CPU
siblings	: 4
core id		: 1
cpu cores	: 4
apicid		: 2
flags		: fpu sse2

`

// TestCPUInfo: n blocks, numbered from 0, repeating the host's when it
// has fewer, every other field kept.
func TestCPUInfo(t *testing.T) {
	for _, n := range []int{1, 2, 3} {
		got := string(cpuinfo([]byte(hostCPUInfo), n))
		if c := strings.Count(got, "processor\t: "); c != n {
			t.Errorf("n=%d: %d processors\n%s", n, c, got)
		}
		for i := 0; i < n; i++ {
			if !strings.Contains(got, "processor\t: "+string(rune('0'+i))+"\n") {
				t.Errorf("n=%d: no processor %d\n%s", n, i, got)
			}
		}
		if strings.Count(got, "flags\t\t: fpu sse2") != n || strings.Count(got, "siblings\t: "+string(rune('0'+n))) != n {
			t.Errorf("n=%d: fields lost or not rewritten\n%s", n, got)
		}
	}
}

const hostStat = `cpu  10 0 20 300 0 0 0 0 0 0
cpu0 4 0 8 150 0 0 0 0 0 0
cpu1 6 0 12 150 0 0 0 0 0 0
intr 1 2 3
ctxt 42
btime 1700000000
processes 99
`

// TestProcStat: n CPU lines and their sum as the total; btime replaced
// only when asked; other lines kept.
func TestProcStat(t *testing.T) {
	got := string(procStat([]byte(hostStat), 1, 0))
	want := "cpu  4 0 8 150 0 0 0 0 0 0\ncpu0 4 0 8 150 0 0 0 0 0 0\nintr 1 2 3\nctxt 42\nbtime 1700000000\nprocesses 99\n"
	if got != want {
		t.Errorf("n=1:\n%s\nwant\n%s", got, want)
	}
	got = string(procStat([]byte(hostStat), 3, 1234))
	for _, l := range []string{"cpu  14 0 28 450", "cpu0 4 0 8", "cpu1 6 0 12", "cpu2 4 0 8", "btime 1234\n", "ctxt 42\n"} {
		if !strings.Contains(got, l) {
			t.Errorf("n=3, btime: no %q in\n%s", l, got)
		}
	}
	if got := string(procStat([]byte(hostStat), 0, 0)); got != hostStat {
		t.Errorf("nothing asked, changed:\n%s", got)
	}
}

// TestMeminfo: the budget is the machine's memory, what the sandbox uses
// is what is not free; swap and caches are none; other fields stay.
func TestMeminfo(t *testing.T) {
	host := "MemTotal:       16000000 kB\nMemFree:         8000000 kB\nMemAvailable:   12000000 kB\nCached:          3000000 kB\nSwapTotal:       2000000 kB\nHugePages_Total:       0\n"
	got := string(meminfo([]byte(host), 256<<20, 56<<20))
	for _, l := range []string{
		"MemTotal:         262144 kB\n", "MemFree:          204800 kB\n", "MemAvailable:     204800 kB\n",
		"Cached:                0 kB\n", "SwapTotal:             0 kB\n", "HugePages_Total:       0\n",
	} {
		if !strings.Contains(got, l) {
			t.Errorf("no %q in\n%s", l, got)
		}
	}
	// More used than the budget (the sampler saw an overshoot): nothing free.
	if got := string(meminfo(nil, 1<<20, 2<<20)); !strings.Contains(got, "MemFree:               0 kB") || !strings.Contains(got, "MemTotal:           1024 kB") {
		t.Errorf("over budget, no host file:\n%s", got)
	}
}

// TestLoadAvg: the averages move toward the count, the shortest fastest.
func TestLoadAvg(t *testing.T) {
	var a loadAvg
	l := a.update(4)
	if !(l[0] > l[1] && l[1] > l[2] && l[2] > 0 && l[0] < 4) {
		t.Errorf("first reading %v", l)
	}
	if got := string(loadavgLine([3]float64{1, 0.5, 0.25}, 2, 7, 1234)); got != "1.00 0.50 0.25 2/7 1234\n" {
		t.Errorf("line %q", got)
	}
}

const hostMountinfo = `22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
23 22 0:5 / /proc rw,nosuid,nodev,noexec,relatime shared:2 - proc proc rw
24 23 0:30 / /proc/sys/fs/binfmt_misc rw,relatime shared:3 - binfmt_misc binfmt_misc rw
25 22 0:6 / /sys rw,nosuid shared:4 - sysfs sysfs rw
26 25 0:7 / /sys/kernel/security rw shared:5 - securityfs securityfs rw
27 22 0:8 / /home/user/my\040dir rw shared:6 - tmpfs tmpfs rw,size=1024k
28 22 0:9 / /etc/hosts ro shared:7 - ext4 /dev/vdb ro
29 22 0:10 / /srv rw shared:8 - tmpfs tmpfs rw
`

// TestFilterMounts: mounts are kept by mount point (escapes undone),
// the files the view stands in for are mounts of their own, replacing
// the host's.
func TestFilterMounts(t *testing.T) {
	keep := func(mp string) bool {
		return mp == "/" || mp == "/proc" || mp == "/sys" || mp == "/home/user/my dir" || mp == "/etc/hosts"
	}
	m, mi := filterMounts([]byte(hostMountinfo), keep, []string{"/etc/hosts", "/etc/hostname"})
	wantM := "/dev/vda / ext4 rw,relatime 0 0\n" +
		"proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n" +
		"sysfs /sys sysfs rw,nosuid 0 0\n" +
		"tmpfs /home/user/my\\040dir tmpfs rw,size=1024k 0 0\n" +
		"sandlock /etc/hosts tmpfs ro,nosuid,nodev,noexec,relatime 0 0\n" +
		"sandlock /etc/hostname tmpfs ro,nosuid,nodev,noexec,relatime 0 0\n"
	if string(m) != wantM {
		t.Errorf("mounts:\n%s\nwant\n%s", m, wantM)
	}
	lines := strings.Split(strings.TrimSpace(string(mi)), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[3], "27 22 ") || !strings.HasSuffix(lines[4], " 22 0:1024 / /etc/hosts ro,nosuid,nodev,noexec,relatime - tmpfs sandlock ro") {
		t.Errorf("mountinfo:\n%s", mi)
	}
	if strings.Contains(string(mi), "/dev/vdb") || strings.Contains(string(mi), "binfmt") || strings.Contains(string(mi), "securityfs") {
		t.Errorf("a mount left out is shown:\n%s", mi)
	}
}

// dirents builds a getdents64 (or getdents) buffer.
func dirents(is64 bool, names ...string) []byte {
	var b []byte
	for i, n := range names {
		nameAt := 18
		if is64 {
			nameAt = 19
		}
		reclen := (nameAt + len(n) + 1 + 1 + 7) &^ 7
		rec := make([]byte, reclen)
		binary.NativeEndian.PutUint64(rec, uint64(i+1))
		binary.NativeEndian.PutUint64(rec[8:], uint64(i+2))
		binary.NativeEndian.PutUint16(rec[16:], uint16(reclen))
		copy(rec[nameAt:], n)
		b = append(b, rec...)
	}
	return b
}

// TestFilterDirents: entries are kept or dropped whole, in order, in both
// formats; a malformed record ends the listing.
func TestFilterDirents(t *testing.T) {
	for _, is64 := range []bool{true, false} {
		in := dirents(is64, ".", "..", "1", "self", "4242", "cpuinfo", "77")
		keep := func(n string) bool { return n != "1" && n != "77" }
		got := filterDirents(slices.Clone(in), is64, keep)
		if want := dirents(is64, ".", "..", "self", "4242", "cpuinfo"); !reflect.DeepEqual(names(got, is64), names(want, is64)) {
			t.Errorf("64=%v: kept %v", is64, names(got, is64))
		}
		bad := slices.Clone(in)
		binary.NativeEndian.PutUint16(bad[16:], 3) // shorter than a header
		if got := filterDirents(bad, is64, keep); len(got) != 0 {
			t.Errorf("64=%v: a malformed first record gave %d bytes", is64, len(got))
		}
	}
}

// names lists the names in a buffer.
func names(b []byte, is64 bool) []string {
	var out []string
	filterDirents(b, is64, func(n string) bool { out = append(out, n); return true })
	return out
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/x\134y`: `/x\y`, `/plain`: "/plain", `/end\04`: `/end\04`, `/t\011`: "/t\t"} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCPUList(t *testing.T) {
	for n, want := range map[int]string{1: "0\n", 2: "0-1\n", 8: "0-7\n"} {
		if got := string(cpuList(n)); got != want {
			t.Errorf("cpuList(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestRefusedTrees: the trees refused are Refused and, for every link of
// /sys/class/net, the directory it leads into (lo's is
// /sys/devices/virtual/net), each once.
func TestRefusedTrees(t *testing.T) {
	trees := RefusedTrees()
	if !slices.Equal(trees[:len(Refused)], Refused) {
		t.Errorf("RefusedTrees() = %v, want Refused first", trees)
	}
	links, err := filepath.Glob("/sys/class/net/*")
	if err != nil || len(links) == 0 {
		t.Fatalf("no interfaces in /sys/class/net: %v", err)
	}
	for _, l := range links {
		dev, err := filepath.EvalSymlinks(l)
		if err != nil {
			t.Fatal(err)
		}
		if !underAny(dev, trees) {
			t.Errorf("%s (%s) is not in a refused tree: %v", l, dev, trees)
		}
	}
	if !slices.Contains(trees, "/sys/devices/virtual/net") {
		t.Errorf("RefusedTrees() = %v, want /sys/devices/virtual/net", trees)
	}
	seen := map[string]bool{}
	for _, tr := range trees {
		if seen[tr] {
			t.Errorf("%s twice", tr)
		}
		seen[tr] = true
	}
}
