//go:build linux

package limits

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/sysnum"
)

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true},
		{"1", 1, true},
		{"512", 512, true},
		{"007", 7, true},
		{"1K", 1 << 10, true},
		{"1k", 1 << 10, true},
		{"64M", 64 << 20, true},
		{"64m", 64 << 20, true},
		{"2G", 2 << 30, true},
		{"2g", 2 << 30, true},
		{"0K", 0, true},
		{"18446744073709551615", math.MaxUint64, true},
		{"17179869183G", 17179869183 << 30, true},
		{"18014398509481983K", 18014398509481983 << 10, true},

		{"", 0, false},
		{"K", 0, false},
		{"M", 0, false},
		{"18446744073709551616", 0, false}, // 2^64
		{"99999999999999999999999", 0, false},
		{"17179869184G", 0, false},       // 2^64
		{"18014398509481984K", 0, false}, // 2^64
		{"16777216T", 0, false},          // no T suffix
		{"1T", 0, false},
		{"1P", 0, false},
		{"1.5G", 0, false},
		{"1,5G", 0, false},
		{"1e6", 0, false},
		{"0x10", 0, false},
		{"1MiB", 0, false},
		{"1MB", 0, false},
		{"1KB", 0, false},
		{"1B", 0, false},
		{"1 M", 0, false},
		{" 1M", 0, false},
		{"1M ", 0, false},
		{"1M\n", 0, false},
		{"\t1", 0, false},
		{"-5", 0, false},
		{"+5", 0, false},
		{"-5M", 0, false},
		{"12X", 0, false},
		{"12Q", 0, false},
		{"MM", 0, false},
		{"1KK", 0, false},
		{"١٢", 0, false},      // Arabic-Indic digits
		{"1\u212a", 0, false}, // Kelvin sign: a K only to case folding
	} {
		got, err := ParseSize(c.in)
		if c.ok {
			if err != nil || got != c.want {
				t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
			}
			continue
		}
		if err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", c.in, got)
		} else if !strings.Contains(err.Error(), "size") {
			t.Errorf("ParseSize(%q) error %q does not say what it was parsing", c.in, err)
		}
	}
}

func TestParseSizeErrorQuotesInput(t *testing.T) {
	for _, in := range []string{"12X", "1.5G", "18446744073709551616", "K"} {
		_, err := ParseSize(in)
		if err == nil || !strings.Contains(err.Error(), in) {
			t.Errorf("ParseSize(%q) error %v does not quote the input", in, err)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for _, c := range []struct {
		n    uint64
		want string
	}{
		{0, "0"},
		{1, "1"},
		{1023, "1023"},
		{1024, "1K"},
		{1536, "1536"}, // 1.5K: not a whole number of K
		{1 << 20, "1M"},
		{3 << 20, "3M"},
		{1<<20 + 1<<10, "1025K"},
		{1<<20 + 1, "1048577"},
		{64 << 30, "64G"},
		{1 << 40, "1024G"},
		{math.MaxUint64, "18446744073709551615"},
		{math.MaxUint64 &^ (1<<30 - 1), "17179869183G"},
	} {
		got := FormatSize(c.n)
		if got != c.want {
			t.Errorf("FormatSize(%d) = %q, want %q", c.n, got, c.want)
		}
		back, err := ParseSize(got)
		if err != nil || back != c.n {
			t.Errorf("ParseSize(FormatSize(%d) = %q) = %d, %v", c.n, got, back, err)
		}
	}
}

func TestFormatSizeRoundTrip(t *testing.T) {
	for _, s := range []string{"0", "1", "1K", "512M", "4G", "3000", "1025K", "7G"} {
		n, err := ParseSize(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := FormatSize(n); got != s {
			t.Errorf("FormatSize(ParseSize(%q)) = %q", s, got)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "512", "1K", "64m", "2G", "18446744073709551615", "18446744073709551616",
		"17179869184G", "16777216T", "1.5G", "1MiB", " 1M", "-5", "+5", "", "K", "\xff", "1\u212a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			if n != 0 {
				t.Errorf("ParseSize(%q) failed but returned %d", s, n)
			}
			return
		}
		// Accepted input is digits with at most one K/M/G suffix.
		body := strings.TrimRight(s, "KkMmGg")
		if len(s)-len(body) > 1 || body == "" || strings.TrimLeft(body, "0123456789") != "" {
			t.Errorf("ParseSize accepted %q = %d", s, n)
		}
		f := FormatSize(n)
		back, err := ParseSize(f)
		if err != nil || back != n {
			t.Errorf("ParseSize(%q) = %d; FormatSize = %q parses back to %d, %v", s, n, f, back, err)
		}
	})
}

// fakeRoot builds a root directory with the given files (regular files
// standing in for device nodes and driver directories).
func fakeRoot(t *testing.T, files ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, f := range files {
		p := filepath.Join(root, f)
		if strings.HasSuffix(f, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func rel(t *testing.T, root string, paths []string) []string {
	t.Helper()
	out := []string{}
	for _, p := range paths {
		r, err := filepath.Rel(root, p)
		if err != nil || strings.HasPrefix(r, "..") {
			t.Fatalf("%s is not under the root %s", p, root)
		}
		out = append(out, "/"+r)
	}
	sort.Strings(out)
	return out
}

var gpuFiles = []string{
	"dev/nvidia0", "dev/nvidia1", "dev/nvidia2", "dev/nvidia10",
	"dev/nvidiactl", "dev/nvidia-uvm", "dev/nvidia-uvm-tools", "dev/nvidia-modeset",
	"dev/nvidia-caps/", "dev/nvidiafoo", "dev/nvidia0x",
	"dev/dri/renderD128", "dev/dri/renderD129", "dev/dri/renderD130",
	"dev/dri/card0", "dev/dri/card1", "dev/dri/renderDx",
	"dev/null", "dev/sda",
	"proc/driver/nvidia/version", "sys/module/nvidia/version",
}

func TestGPUsNil(t *testing.T) {
	root := fakeRoot(t, gpuFiles...)
	a := GPUs(root, nil)
	if len(a.Devices) != 0 || len(a.Read) != 0 || a.Env != nil {
		t.Errorf("GPUs(nil) = %+v, want nothing at all", a)
	}
}

func TestGPUsAll(t *testing.T) {
	root := fakeRoot(t, gpuFiles...)
	a := GPUs(root, []uint32{})
	want := []string{
		"/dev/dri/renderD128", "/dev/dri/renderD129", "/dev/dri/renderD130",
		"/dev/nvidia-modeset", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools",
		"/dev/nvidia0", "/dev/nvidia1", "/dev/nvidia10", "/dev/nvidia2", "/dev/nvidiactl",
	}
	if got := rel(t, root, a.Devices); !reflect.DeepEqual(got, want) {
		t.Errorf("all: devices %q\nwant %q", got, want)
	}
	if got, want := rel(t, root, a.Read), []string{"/proc/driver/nvidia", "/sys/module/nvidia"}; !reflect.DeepEqual(got, want) {
		t.Errorf("all: read %q, want %q", got, want)
	}
	if a.Env != nil {
		t.Errorf("all: env %v, want none (every device is visible)", a.Env)
	}
}

func TestGPUsSelected(t *testing.T) {
	root := fakeRoot(t, gpuFiles...)
	a := GPUs(root, []uint32{2, 0, 2})
	want := []string{
		"/dev/dri/renderD128", "/dev/dri/renderD130",
		"/dev/nvidia-modeset", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools",
		"/dev/nvidia0", "/dev/nvidia2", "/dev/nvidiactl",
	}
	if got := rel(t, root, a.Devices); !reflect.DeepEqual(got, want) {
		t.Errorf("[2 0 2]: devices %q\nwant %q", got, want)
	}
	for _, d := range a.Devices {
		switch base := filepath.Base(d); {
		case base == "nvidia1", base == "nvidia10", base == "renderD129", base == "nvidiafoo", base == "nvidia0x",
			base == "nvidia-caps", base == "null", base == "sda", strings.HasPrefix(base, "card"):
			t.Errorf("[2 0 2]: %s granted", d)
		}
	}
	wantEnv := map[string]string{"CUDA_VISIBLE_DEVICES": "0,2", "ROCR_VISIBLE_DEVICES": "0,2"}
	if !reflect.DeepEqual(a.Env, wantEnv) {
		t.Errorf("[2 0 2]: env %v, want %v", a.Env, wantEnv)
	}
	if got, want := rel(t, root, a.Read), []string{"/proc/driver/nvidia", "/sys/module/nvidia"}; !reflect.DeepEqual(got, want) {
		t.Errorf("[2 0 2]: read %q, want %q", got, want)
	}
}

func TestGPUsIndexTen(t *testing.T) {
	// nvidia10 is GPU 10, not GPU 1 with a stray 0.
	root := fakeRoot(t, gpuFiles...)
	a := GPUs(root, []uint32{1})
	want := []string{"/dev/dri/renderD129", "/dev/nvidia-modeset", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia1", "/dev/nvidiactl"}
	if got := rel(t, root, a.Devices); !reflect.DeepEqual(got, want) {
		t.Errorf("[1]: devices %q\nwant %q", got, want)
	}
	a = GPUs(root, []uint32{10})
	want = []string{"/dev/nvidia-modeset", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia10", "/dev/nvidiactl"}
	if got := rel(t, root, a.Devices); !reflect.DeepEqual(got, want) {
		t.Errorf("[10]: devices %q\nwant %q", got, want)
	}
}

func TestGPUsMissing(t *testing.T) {
	// No GPU at all: nothing to grant, but explicit indices still say
	// which devices the program may use.
	root := fakeRoot(t, "dev/null", "dev/dri/card0")
	for _, sel := range [][]uint32{{}, {0}, {3, 1}} {
		a := GPUs(root, sel)
		if len(a.Devices) != 0 || len(a.Read) != 0 {
			t.Errorf("%v without GPUs: %+v", sel, a)
		}
		if len(sel) == 0 && a.Env != nil {
			t.Errorf("all without GPUs: env %v", a.Env)
		}
	}
	a := GPUs(root, []uint32{3, 1})
	if a.Env["CUDA_VISIBLE_DEVICES"] != "1,3" || a.Env["ROCR_VISIBLE_DEVICES"] != "1,3" {
		t.Errorf("[3 1]: env %v, want 1,3", a.Env)
	}
	// A root with no /dev at all.
	if a := GPUs(t.TempDir(), []uint32{}); len(a.Devices) != 0 {
		t.Errorf("empty root: %+v", a)
	}
}

func TestGPUsSubsetOfAll(t *testing.T) {
	root := fakeRoot(t, gpuFiles...)
	all := map[string]bool{}
	for _, d := range GPUs(root, []uint32{}).Devices {
		all[d] = true
	}
	for _, sel := range [][]uint32{{0}, {1}, {2}, {10}, {0, 1, 2, 10}, {7}} {
		for _, d := range GPUs(root, sel).Devices {
			if !all[d] {
				t.Errorf("%v grants %s, which all does not", sel, d)
			}
		}
	}
}

// procHarness drives a Processes with a fake tracer and clock.
type procHarness struct {
	mu   sync.Mutex
	live int
	tgid map[int]int // tid → tgid; missing: its own
	now  time.Time
	p    *Processes
}

func newProcHarness(max, live int) *procHarness {
	h := &procHarness{live: live, tgid: map[int]int{}, now: time.Unix(1e9, 0)}
	h.p = NewProcesses(max,
		func() int { h.mu.Lock(); defer h.mu.Unlock(); return h.live },
		func(tid int) int {
			h.mu.Lock()
			defer h.mu.Unlock()
			if g, ok := h.tgid[tid]; ok {
				return g
			}
			return tid
		})
	h.p.now = func() time.Time { h.mu.Lock(); defer h.mu.Unlock(); return h.now }
	return h
}

func (h *procHarness) advance(d time.Duration) { h.mu.Lock(); h.now = h.now.Add(d); h.mu.Unlock() }
func (h *procHarness) setLive(n int)           { h.mu.Lock(); h.live = n; h.mu.Unlock() }

// fork asks for syscall name from task tid with the given clone flags.
func (h *procHarness) fork(t *testing.T, name string, tid int, flags uint64) notify.Action {
	t.Helper()
	nr, ok := sysnum.Native().Nr(name)
	if !ok {
		t.Fatalf("no syscall %s here", name)
	}
	hc := &notify.HandlerCtx{Notif: notify.Notif{ID: 1, PID: uint32(tid), Data: notify.NotifData{Nr: int32(nr)}}, NotifFD: -1}
	hc.Notif.Data.Args[0] = flags
	return h.p.Handle(context.Background(), hc)
}

func wantAllowed(t *testing.T, what string, a notify.Action) {
	t.Helper()
	if !a.IsContinue() {
		t.Errorf("%s: %v, want Continue", what, a)
	}
}

func wantEAGAIN(t *testing.T, what string, a notify.Action) {
	t.Helper()
	if a.ErrnoOf() != unix.EAGAIN {
		t.Errorf("%s: %v, want EAGAIN", what, a)
	}
}

const sigchld = uint64(unix.SIGCHLD)

func TestProcessesAtLimit(t *testing.T) {
	h := newProcHarness(3, 1)
	wantAllowed(t, "fork 1 (1 live)", h.fork(t, "clone", 100, sigchld))
	wantAllowed(t, "fork 2 (1 live, 1 reserved)", h.fork(t, "fork", 100, 0))
	wantEAGAIN(t, "fork 3 (1 live, 2 reserved)", h.fork(t, "vfork", 100, 0))
	// The tracer reports the children: reservations become live processes.
	h.setLive(2)
	h.p.Forked(100)
	wantEAGAIN(t, "2 live, 1 reserved", h.fork(t, "clone", 100, sigchld))
	h.setLive(3)
	h.p.Forked(100)
	wantEAGAIN(t, "3 live", h.fork(t, "clone", 100, sigchld))
	wantEAGAIN(t, "3 live, another process", h.fork(t, "clone", 101, sigchld))
	// An exit frees a slot at once.
	h.setLive(2)
	wantAllowed(t, "2 live after an exit", h.fork(t, "clone", 101, sigchld))
	wantEAGAIN(t, "2 live, 1 reserved", h.fork(t, "clone", 100, sigchld))
}

func TestProcessesEveryForkSyscall(t *testing.T) {
	for _, name := range []string{"clone", "fork", "vfork"} {
		h := newProcHarness(2, 2)
		wantEAGAIN(t, name+" at the limit", h.fork(t, name, 100, sigchld))
		h = newProcHarness(2, 1)
		wantAllowed(t, name+" under the limit", h.fork(t, name, 100, sigchld))
	}
	// posix_spawn's clone(CLONE_VM|CLONE_VFORK) is a process.
	h := newProcHarness(2, 2)
	wantEAGAIN(t, "clone(CLONE_VM|CLONE_VFORK)", h.fork(t, "clone", 100, unix.CLONE_VM|unix.CLONE_VFORK|sigchld))
}

func TestProcessesThreadsPass(t *testing.T) {
	h := newProcHarness(1, 1) // at the limit
	threadFlags := uint64(unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND |
		unix.CLONE_THREAD | unix.CLONE_SYSVSEM | unix.CLONE_SETTLS | unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_CLEARTID)
	for i := 0; i < 100; i++ {
		wantAllowed(t, "thread at the limit", h.fork(t, "clone", 100, threadFlags))
	}
	// Threads reserve nothing: a process slot freed is still free.
	h.setLive(0)
	wantAllowed(t, "fork after threads", h.fork(t, "clone", 100, sigchld))
	wantEAGAIN(t, "second fork", h.fork(t, "clone", 100, sigchld))
	// fork and vfork take no flags: CLONE_THREAD in their first argument
	// means nothing.
	h = newProcHarness(1, 1)
	wantEAGAIN(t, "fork with a stray CLONE_THREAD bit", h.fork(t, "fork", 100, unix.CLONE_THREAD))
}

func TestProcessesReservationLapses(t *testing.T) {
	h := newProcHarness(2, 1)
	wantAllowed(t, "fork", h.fork(t, "clone", 100, sigchld))
	wantEAGAIN(t, "fork while the first is pending", h.fork(t, "clone", 100, sigchld))
	h.advance(reservationLapse / 2)
	wantEAGAIN(t, "half a lapse later", h.fork(t, "clone", 100, sigchld))
	// The first fork failed in the kernel: no child is ever reported.
	h.advance(reservationLapse/2 + time.Millisecond)
	wantAllowed(t, "after the lapse", h.fork(t, "clone", 100, sigchld))
	wantEAGAIN(t, "the new reservation holds", h.fork(t, "clone", 100, sigchld))
}

func TestProcessesForkedConsumesReservation(t *testing.T) {
	h := newProcHarness(3, 1)
	wantAllowed(t, "fork by 100", h.fork(t, "clone", 100, sigchld))
	wantAllowed(t, "fork by 200", h.fork(t, "clone", 200, sigchld))
	wantEAGAIN(t, "two reserved", h.fork(t, "clone", 300, sigchld))
	// 200's child appears: live 2, only 100's reservation is left.
	h.setLive(2)
	h.p.Forked(200)
	wantEAGAIN(t, "2 live + 1 reserved", h.fork(t, "clone", 300, sigchld))
	// Forked for a process without a reservation changes nothing (a child
	// reported before its parent's fork event, or a second report).
	h.p.Forked(200)
	h.p.Forked(999)
	wantEAGAIN(t, "still 2 live + 1 reserved", h.fork(t, "clone", 300, sigchld))
	h.setLive(3)
	h.p.Forked(100)
	wantEAGAIN(t, "3 live", h.fork(t, "clone", 300, sigchld))
	h.setLive(2)
	wantAllowed(t, "2 live, nothing reserved", h.fork(t, "clone", 300, sigchld))
}

func TestProcessesReservationByThreadGroup(t *testing.T) {
	// A fork by a thread is reserved for its thread group, which the
	// tracer reports as the parent.
	h := newProcHarness(2, 1)
	h.tgid[105] = 100
	wantAllowed(t, "fork by thread 105 of 100", h.fork(t, "clone", 105, sigchld))
	h.setLive(2)
	h.p.Forked(100)
	h.setLive(1) // the child exited
	wantAllowed(t, "the reservation went with Forked(100)", h.fork(t, "clone", 100, sigchld))
}

func TestProcessesConcurrent(t *testing.T) {
	// Many forks at once never get more through than the limit allows.
	h := newProcHarness(10, 3)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(tid int) {
			defer wg.Done()
			if h.fork(t, "clone", tid, sigchld).IsContinue() {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		}(1000 + i)
	}
	wg.Wait()
	if allowed != 7 {
		t.Errorf("%d forks let through with 3 live under a limit of 10, want 7", allowed)
	}
}

func TestNumCPUsMask(t *testing.T) {
	for _, c := range []struct {
		n      int
		length uint64
		want   []byte
		errno  syscall.Errno
	}{
		{1, 8, []byte{1, 0, 0, 0, 0, 0, 0, 0}, 0},
		{1, 128, []byte{1, 0, 0, 0, 0, 0, 0, 0}, 0}, // the answer is as long as needed
		{2, 8, []byte{3, 0, 0, 0, 0, 0, 0, 0}, 0},
		{8, 8, []byte{0xff, 0, 0, 0, 0, 0, 0, 0}, 0},
		{9, 8, []byte{0xff, 1, 0, 0, 0, 0, 0, 0}, 0},
		{64, 8, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0},
		{65, 16, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 0, 0, 0}, 0},
		{65, 8, nil, unix.EINVAL},  // too small
		{1, 0, nil, unix.EINVAL},   // too small
		{1, 4, nil, unix.EINVAL},   // too small, and not whole longs
		{1, 12, nil, unix.EINVAL},  // not whole longs
		{1, 129, nil, unix.EINVAL}, // not whole longs
	} {
		got, errno := NumCPUs{N: c.n}.mask(c.length)
		if errno != c.errno || !reflect.DeepEqual(got, c.want) {
			t.Errorf("NumCPUs{%d}.mask(%d) = %v, %v; want %v, %v", c.n, c.length, got, errno, c.want, c.errno)
		}
	}
	// Every answer has exactly N bits set and is a whole number of longs.
	for n := 1; n <= 300; n++ {
		got, errno := NumCPUs{N: n}.mask(1024)
		if errno != 0 || len(got)%8 != 0 || len(got) < (n+7)/8 {
			t.Fatalf("N=%d: %d bytes, %v", n, len(got), errno)
		}
		for i := 0; i < len(got)*8; i++ {
			if set := got[i/8]&(1<<(i%8)) != 0; set != (i < n) {
				t.Errorf("N=%d: CPU %d set: %v", n, i, set)
			}
		}
	}
}

func TestNumCPUsHandleErrors(t *testing.T) {
	nr := sysnum.Native().MustNr("sched_getaffinity")
	hc := func(length uint64) *notify.HandlerCtx {
		return &notify.HandlerCtx{Notif: notify.Notif{ID: 1, PID: uint32(os.Getpid()),
			Data: notify.NotifData{Nr: int32(nr), Args: [6]uint64{0, length, 0x1000}}}, NotifFD: -1}
	}
	c := NumCPUs{N: 4}
	if a := c.Handle(context.Background(), hc(4)); a.ErrnoOf() != unix.EINVAL {
		t.Errorf("len 4: %v, want EINVAL", a)
	}
	// The kernel takes len as an unsigned int: 2^32 is 0.
	if a := c.Handle(context.Background(), hc(1<<32)); a.ErrnoOf() != unix.EINVAL {
		t.Errorf("len 2^32: %v, want EINVAL", a)
	}
	// A notification that is not pending (no listener here) cannot be
	// written to: EFAULT, never a write into whichever process has the pid.
	if a := c.Handle(context.Background(), hc(8)); a.ErrnoOf() != unix.EFAULT {
		t.Errorf("len 8, stale notification: %v, want EFAULT", a)
	}
}

func TestCPUMask(t *testing.T) {
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		t.Fatal(err)
	}
	var first = -1
	for i := 0; i < len(allowed)*64; i++ {
		if allowed.IsSet(i) {
			first = i
			break
		}
	}
	m, err := CPUMask([]uint32{uint32(first)})
	if err != nil || m.Count() != 1 || !m.IsSet(first) {
		t.Errorf("CPUMask([%d]) = %v, %v", first, m, err)
	}
	for _, bad := range [][]uint32{{999}, {uint32(len(allowed) * 64)}, {1 << 31}, {uint32(first), 4000}} {
		if _, err := CPUMask(bad); err == nil || !strings.Contains(err.Error(), "not available") {
			t.Errorf("CPUMask(%v): %v, want not available", bad, err)
		}
	}
}

// busyProcesses starts n processes that spin until killed.
func busyProcesses(t *testing.T, n int) []*exec.Cmd {
	t.Helper()
	var cmds []*exec.Cmd
	for i := 0; i < n; i++ {
		cmd := exec.Command("/bin/sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	t.Cleanup(func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	})
	return cmds
}

func TestCPUShareHoldsOverProcesses(t *testing.T) {
	// One, two and three busy processes share 20% of one core in all: the
	// throttle sums their CPU time, it does not time-slice each.
	for _, n := range []int{1, 2, 3} {
		cmds := busyProcesses(t, n)
		pids := make([]int, n)
		for i, c := range cmds {
			pids[i] = c.Process.Pid
		}
		share := NewCPUShare(20, func() []int { return pids }, func(sig syscall.Signal) {
			for _, pid := range pids {
				unix.Kill(pid, sig)
			}
		})
		start := share.Used()
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		share.Run(ctx)
		cancel()
		wall := time.Since(t0)
		used := share.Used() - start
		ratio := float64(used) / float64(wall)
		t.Logf("%d busy processes at 20%%: %v CPU in %v wall, %.3f of one core", n, used, wall, ratio)
		if ratio < 0.1 || ratio > 0.3 {
			t.Errorf("%d busy processes at 20%%: %.3f of one core, want 0.1–0.3", n, ratio)
		}
		// The throttle leaves them running.
		for _, pid := range pids {
			if st := procState(t, pid); st == "T" {
				t.Errorf("process %d left stopped", pid)
			}
		}
		for _, c := range cmds {
			c.Process.Kill()
		}
	}
}

// procState returns the state letter of /proc/<pid>/stat.
func procState(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.LastIndexByte(b, ')')
	return string(bytes.Fields(b[i+1:])[0])
}

func TestCPUShareCountsExitedProcesses(t *testing.T) {
	// A process that has exited keeps its CPU time in the total: read
	// from its clock while it is a zombie, or from its rusage once reaped.
	share := NewCPUShare(50, func() []int { return nil }, func(syscall.Signal) {})
	burn := func() *exec.Cmd {
		cmd := exec.Command("/bin/sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		share.Started(cmd.Process.Pid, os.Getpid())
		return cmd
	}
	// A zombie: its clock still reads.
	zombie := burn()
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, zombie.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatal(err)
	}
	want, ok := processCPUTime(zombie.Process.Pid)
	if !ok || want <= 0 {
		t.Fatalf("the zombie's clock: %v %v", want, ok)
	}
	share.Exited(zombie.Process.Pid, nil)
	zombie.Wait()
	if got := share.Used(); got != want {
		t.Errorf("after a zombie's exit: %v, want its clock %v", got, want)
	}
	// Reaped already: its rusage counts.
	reaped := burn()
	var ws unix.WaitStatus
	var ru unix.Rusage
	if _, err := unix.Wait4(reaped.Process.Pid, &ws, 0, &ru); err != nil {
		t.Fatal(err)
	}
	share.Exited(reaped.Process.Pid, &ru)
	both := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if got := share.Used(); got != want+both || both <= 0 {
		t.Errorf("after a reaped process's exit: %v, want %v + %v", got, want, both)
	}
}

func TestDutyCycle(t *testing.T) {
	// With a fake signal sink: the throttle alternates SIGSTOP and SIGCONT
	// and leaves the sandbox running when it ends.
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var sigs []syscall.Signal
	done := make(chan struct{})
	go func() {
		DutyCycle(ctx, 50, func(s syscall.Signal) { mu.Lock(); sigs = append(sigs, s); mu.Unlock() })
		close(done)
	}()
	for {
		mu.Lock()
		n := len(sigs)
		mu.Unlock()
		if n >= 5 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	for i, s := range sigs {
		want := unix.SIGSTOP
		if i%2 == 1 {
			want = unix.SIGCONT
		}
		if s != want {
			t.Fatalf("signal %d is %v, want %v (all: %v)", i, s, want, sigs)
		}
	}
	if sigs[len(sigs)-1] != unix.SIGCONT {
		t.Errorf("the throttle ended with the sandbox stopped: %v", sigs)
	}
}

func TestMmapSize(t *testing.T) {
	pid := os.Getpid()
	memfd, err := unix.MemfdCreate("sandlock-test", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(memfd)
	file, err := os.Open("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	page := uint64(os.Getpagesize())
	rw := uint64(unix.PROT_READ | unix.PROT_WRITE)
	anon := uint64(unix.MAP_ANONYMOUS)
	for _, c := range []struct {
		what        string
		length      uint64
		prot, flags uint64
		fd          int
		grow        uint64
		shared      bool
	}{
		{"private anonymous", 10 * page, rw, unix.MAP_PRIVATE | anon, -1, 10 * page, false},
		{"rounded up to pages", 10*page + 1, rw, unix.MAP_PRIVATE | anon, -1, 11 * page, false},
		{"private anonymous reservation (PROT_NONE)", 1 << 27, unix.PROT_NONE, unix.MAP_PRIVATE | anon | unix.MAP_NORESERVE, -1, 0, false},
		{"private anonymous read-only", 1 << 20, unix.PROT_READ, unix.MAP_PRIVATE | anon, -1, 0, false},
		{"shared anonymous", 1 << 20, rw, unix.MAP_SHARED | anon, -1, 1 << 20, true},
		{"shared anonymous, read-only", 1 << 20, unix.PROT_READ, unix.MAP_SHARED | anon, -1, 1 << 20, true},
		{"shared anonymous reservation (PROT_NONE)", 1 << 30, unix.PROT_NONE, unix.MAP_SHARED | anon, -1, 0, true},
		{"memfd shared", 1 << 20, rw, unix.MAP_SHARED, memfd, 1 << 20, true},
		{"memfd shared, read-only", 1 << 20, unix.PROT_READ, unix.MAP_SHARED, memfd, 1 << 20, true},
		{"memfd shared_validate", 1 << 20, rw, unix.MAP_SHARED_VALIDATE, memfd, 1 << 20, true},
		{"memfd private writable", 1 << 20, rw, unix.MAP_PRIVATE, memfd, 1 << 20, false},
		{"file private read-only", 1 << 20, unix.PROT_READ | unix.PROT_EXEC, unix.MAP_PRIVATE, int(file.Fd()), 0, false},
		{"file private writable (copy-on-write)", 1 << 20, rw, unix.MAP_PRIVATE, int(file.Fd()), 1 << 20, false},
		{"file shared", 1 << 20, unix.PROT_READ, unix.MAP_SHARED, int(file.Fd()), 0, false},
		{"bad fd", 1 << 20, rw, unix.MAP_SHARED, 9999, 0, false},
	} {
		grow, shared := mmapSize(pid, [6]uint64{0, c.length, c.prot, c.flags, uint64(int64(c.fd)), 0})
		if grow != c.grow || shared != c.shared {
			t.Errorf("%s: grow %d shared %v, want %d %v", c.what, grow, shared, c.grow, c.shared)
		}
	}
	if grow, _ := mmapSize(pid, [6]uint64{0, math.MaxUint64, rw, unix.MAP_PRIVATE | anon, math.MaxUint64, 0}); grow < 1<<63 {
		t.Errorf("a huge length wrapped to %d", grow)
	}
}

func TestSharedAnonSizeAndHeap(t *testing.T) {
	pid := os.Getpid()
	before, _, ok := sharedAnonSize(pid)
	if !ok {
		t.Fatal("cannot read own maps")
	}
	memfd, err := unix.MemfdCreate("sandlock test with spaces", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(memfd)
	if err := unix.Ftruncate(memfd, 3<<20); err != nil {
		t.Fatal(err)
	}
	m1, err := unix.Mmap(memfd, 0, 3<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := unix.Mmap(-1, 0, 2<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	// Neither private memory nor read-only file mappings count.
	m3, err := unix.Mmap(-1, 0, 4<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	// Nor does an inaccessible shared mapping, though it is found.
	m4, err := unix.Mmap(-1, 0, 8<<20, unix.PROT_NONE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	during, found, _ := sharedAnonSize(pid)
	if !found {
		t.Error("shared anonymous mappings not found")
	}
	if during-before != 5<<20 {
		t.Errorf("shared anonymous size grew by %d with 3M of memfd and 2M of shared anonymous mapped, want %d", during-before, 5<<20)
	}
	unix.Munmap(m1)
	unix.Munmap(m2)
	unix.Munmap(m3)
	unix.Munmap(m4)
	if after, _, _ := sharedAnonSize(pid); after != before {
		t.Errorf("after unmapping: %d, want %d", after, before)
	}

	// The heap's end (the Go runtime does not use brk, so without cgo
	// there is no [heap] yet and it is where the heap starts), and what
	// moving the break from there adds.
	end, ok := heapEnd(pid)
	if !ok || end == 0 || end%uint64(os.Getpagesize()) != 0 {
		t.Fatalf("heapEnd = %#x, %v", end, ok)
	}
	page := uint64(os.Getpagesize())
	for _, c := range []struct{ addr, want uint64 }{
		{end, 0}, {end - page, 0}, {end + 1, page}, {end + page, page}, {end + 10*page + 5, 11 * page},
	} {
		if got := brkGrowth(end, c.addr); got != c.want {
			t.Errorf("brkGrowth(end, end%+d) = %d, want %d", int64(c.addr-end), got, c.want)
		}
	}
	if _, ok := heapEnd(1 << 30); ok {
		t.Error("heapEnd of a task that does not exist succeeded")
	}
	if got := pageAlign(math.MaxUint64); got != math.MaxUint64 {
		t.Errorf("pageAlign(max) = %#x", got)
	}
}

func TestDataSize(t *testing.T) {
	before, ok := dataSize(os.Getpid())
	if !ok || before == 0 {
		t.Fatalf("dataSize = %d, %v", before, ok)
	}
	m, err := unix.Mmap(-1, 0, 64<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	during, _ := dataSize(os.Getpid())
	unix.Munmap(m)
	// Other goroutines may allocate meanwhile: at least the mapping.
	if during < before+64<<20 {
		t.Errorf("data size %d → %d with 64M mapped", before, during)
	}
	if _, ok := dataSize(1 << 30); ok {
		t.Error("dataSize of a task that does not exist succeeded")
	}
}
