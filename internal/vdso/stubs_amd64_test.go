//go:build linux

package vdso

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The byte table is exactly testdata/stubs_amd64.S assembled: the same
// code (relocation fields zero), stubs where the table says, the same
// relocations.
func TestStubTableAmd64(t *testing.T) {
	dir := t.TempDir()
	obj := filepath.Join(dir, "stubs.o")
	if out, err := exec.Command("gcc", "-c", "-o", obj, "testdata/stubs_amd64.S").CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	f, err := elf.Open(obj)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	text, err := f.Section(".text").Data()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(text, amd64Stubs.code) {
		t.Errorf("the code differs from the assembled source:\n got %x\nwant %x", amd64Stubs.code, text)
	}
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	stubs := map[string]int{}
	for _, s := range syms {
		if s.Section != elf.SHN_UNDEF && s.Name != "" {
			stubs[s.Name] = int(s.Value)
		}
	}
	for _, e := range amd64Stubs.entries {
		name := e.replaces[len("__vdso_"):] + "_stub"
		if at, ok := stubs[name]; !ok || at != e.at {
			t.Errorf("%s: table at %#x, source at %#x (found %v)", name, e.at, at, ok)
		}
	}
	names := map[string]target{
		"orig_clock_gettime": origClockGettime, "orig_gettimeofday": origGettimeofday, "orig_time": origTime,
		"off_sec": offSec, "off_nsec": offNsec, "off_usec": offUsec,
	}
	rela, err := f.Section(".rela.text").Data()
	if err != nil {
		t.Fatal(err)
	}
	var got []fixup
	for i := 0; i+24 <= len(rela); i += 24 {
		off, info, add := binary.LittleEndian.Uint64(rela[i:]), binary.LittleEndian.Uint64(rela[i+8:]), int64(binary.LittleEndian.Uint64(rela[i+16:]))
		typ := elf.R_X86_64(info & 0xffffffff)
		if typ != elf.R_X86_64_PC32 && typ != elf.R_X86_64_PLT32 {
			t.Errorf("relocation of type %v at %#x", typ, off)
		}
		to, ok := names[syms[info>>32-1].Name]
		if !ok {
			t.Fatalf("relocation against %s", syms[info>>32-1].Name)
		}
		got = append(got, fixup{at: int(off), to: to, addend: add})
	}
	want := map[fixup]bool{}
	for _, f := range amd64Stubs.fixups {
		want[f] = true
	}
	if len(got) != len(want) {
		t.Errorf("%d relocations, the table has %d fixups", len(got), len(want))
	}
	for _, f := range got {
		if !want[f] {
			t.Errorf("relocation %+v is not in the table", f)
		}
	}
}

// patchOwn patches this test process's own vDSO once, in place, and
// returns the stubs' addresses. The Go runtime resolved its vDSO functions
// at start-up and keeps calling the originals, which the patch leaves as
// they were.
var patchOwn = sync.OnceValues(func() (map[string]uintptr, error) {
	f, err := os.OpenFile("/proc/self/mem", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := selfMem{f}
	base := uintptr(auxval(33))
	out := map[string]uintptr{}
	if img, err := pristine(); err != nil {
		return nil, err
	} else if im, err := parse(img); err != nil {
		return nil, err
	} else {
		for _, s := range im.syms {
			out["orig "+s.name] = base + uintptr(s.value)
		}
	}
	if _, err := NewPatcher(Patch{Clock: &testShift, HideGetrandom: true}).Apply(m, uint64(base)); err != nil {
		return nil, err
	}
	img, err := readImage(m, uint64(base))
	if err != nil {
		return nil, err
	}
	im, err := parse(img)
	if err != nil {
		return nil, err
	}
	for _, s := range im.syms {
		if s.shndx != shnUndef {
			out[s.name] = base + uintptr(s.value)
		}
	}
	out["base"], out["end"] = base, base+uintptr(len(img))
	return out, nil
})

// testShift carries on almost every read: its nanoseconds are 999999000.
var testShift = Shift{Sec: -777_777_777, Nsec: 999_999_000}

func stubs(t *testing.T) map[string]uintptr {
	t.Helper()
	s, err := patchOwn()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ns(ts unix.Timespec) int64 { return ts.Sec*1e9 + ts.Nsec }

func realNow(t *testing.T, clk int) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(int32(clk), &ts); err != nil {
		t.Fatal(err)
	}
	return ns(ts)
}

// Every symbol of the patched functions points into the stubs, past the
// original image; getrandom is gone.
func TestStubsInstalled(t *testing.T) {
	s := stubs(t)
	for _, name := range []string{"__vdso_clock_gettime", "clock_gettime", "__vdso_gettimeofday", "gettimeofday", "__vdso_time", "time"} {
		a, ok := s[name]
		if !ok || a < s["base"] || a >= s["end"] {
			t.Errorf("%s at %#x, not in the vDSO [%#x, %#x)", name, a, s["base"], s["end"])
		}
	}
	if s["__vdso_clock_gettime"] == s["__vdso_clock_getres"] {
		t.Error("clock_getres was redirected")
	}
	for _, name := range []string{"__vdso_getrandom", "getrandom"} {
		if _, ok := s[name]; ok {
			t.Errorf("%s still defined", name)
		}
	}
}

// The stubs run: the REALTIME family is shifted, to the nanosecond between
// two real readings, with tv_nsec always in range; other clocks are the
// originals'; errors pass through.
func TestStubClockGettime(t *testing.T) {
	cgt := stubs(t)["__vdso_clock_gettime"]
	shift := testShift.Nanoseconds()
	call := func(clk int) (int64, unix.Timespec, int) {
		var ts unix.Timespec
		r := int(int32(callC(cgt, uintptr(uint32(int32(clk))), uintptr(unsafe.Pointer(&ts)))))
		return ns(ts), ts, r
	}
	for _, tc := range []struct {
		name    string
		clk     int
		shifted bool
	}{
		{"REALTIME", unix.CLOCK_REALTIME, true},
		{"REALTIME_COARSE", unix.CLOCK_REALTIME_COARSE, true},
		{"TAI", unix.CLOCK_TAI, true},
		{"MONOTONIC", unix.CLOCK_MONOTONIC, false},
		{"MONOTONIC_COARSE", unix.CLOCK_MONOTONIC_COARSE, false},
		{"MONOTONIC_RAW", unix.CLOCK_MONOTONIC_RAW, false},
		{"BOOTTIME", unix.CLOCK_BOOTTIME, false},
	} {
		for i := 0; i < 2000; i++ {
			before := realNow(t, tc.clk)
			got, ts, r := call(tc.clk)
			after := realNow(t, tc.clk)
			if r != 0 {
				t.Fatalf("%s: returned %d", tc.name, r)
			}
			if ts.Nsec < 0 || ts.Nsec >= 1e9 {
				t.Fatalf("%s: tv_nsec %d", tc.name, ts.Nsec)
			}
			if tc.shifted {
				got -= shift
			}
			if got < before || got > after {
				t.Fatalf("%s: %d not within [%d, %d] (shifted %v)", tc.name, got, before, after, tc.shifted)
			}
		}
	}
	// The process's own CPU clock (a negative id), unshifted: it only grows.
	cpu := -6 // MAKE_PROCESS_CPUCLOCK(0, CPUCLOCK_SCHED): ^0<<3 | 2
	before := realNow(t, cpu)
	got, _, r := call(cpu)
	if r != 0 || got < before || got > before+int64(1e9) {
		t.Errorf("process CPU clock: %d (ret %d), before %d", got, r, before)
	}
	// An invalid clock: the original's error, untouched.
	if _, _, r := call(100); r != -int(unix.EINVAL) {
		t.Errorf("clock 100: returned %d, want -EINVAL", r)
	}
	// CLOCK_REALTIME_ALARM has no vDSO path: the original makes the
	// syscall (from inside the vDSO), and the stub shifts a success.
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_REALTIME_ALARM, &ts); err == nil {
		before := realNow(t, unix.CLOCK_REALTIME)
		got, _, r := call(unix.CLOCK_REALTIME_ALARM)
		after := realNow(t, unix.CLOCK_REALTIME)
		if r != 0 || got-shift < before || got-shift > after {
			t.Errorf("REALTIME_ALARM: %d (ret %d) not within [%d, %d] shifted", got, r, before, after)
		}
	} else if _, _, r := call(unix.CLOCK_REALTIME_ALARM); r != -int(err.(unix.Errno)) {
		t.Errorf("REALTIME_ALARM: returned %d, the kernel says %v", r, err)
	}
}

func TestStubGettimeofday(t *testing.T) {
	gtod := stubs(t)["__vdso_gettimeofday"]
	shiftUs := testShift.Nanoseconds() / 1000
	for i := 0; i < 2000; i++ {
		var tv unix.Timeval
		var tz [2]int32
		before := realNow(t, unix.CLOCK_REALTIME) / 1000
		r := int32(callC(gtod, uintptr(unsafe.Pointer(&tv)), uintptr(unsafe.Pointer(&tz))))
		after := realNow(t, unix.CLOCK_REALTIME) / 1000
		if r != 0 || tv.Usec < 0 || tv.Usec >= 1e6 {
			t.Fatalf("returned %d, tv %+v", r, tv)
		}
		got := tv.Sec*1e6 + tv.Usec - shiftUs
		if got < before || got > after {
			t.Fatalf("%d not within [%d, %d]", got, before, after)
		}
	}
	// NULL tv (only the zone asked): no write, success.
	var tz [2]int32
	if r := int32(callC(gtod, 0, uintptr(unsafe.Pointer(&tz)))); r != 0 {
		t.Errorf("NULL tv: returned %d", r)
	}
}

func TestStubTime(t *testing.T) {
	tm := stubs(t)["__vdso_time"]
	for i := 0; i < 2000; i++ {
		before := realNow(t, unix.CLOCK_REALTIME_COARSE) + testShift.Nanoseconds()
		var tloc int64
		r := int64(callC(tm, uintptr(unsafe.Pointer(&tloc)), 0))
		after := realNow(t, unix.CLOCK_REALTIME_COARSE) + testShift.Nanoseconds()
		if r != tloc {
			t.Fatalf("returned %d, stored %d", r, tloc)
		}
		if r < before/1e9 || r > after/1e9 {
			t.Fatalf("%d not within [%d, %d]", r, before/1e9, after/1e9)
		}
	}
	// NULL tloc.
	before := (realNow(t, unix.CLOCK_REALTIME_COARSE) + testShift.Nanoseconds()) / 1e9
	if r := int64(callC(tm, 0, 0)); r < before || r > before+1 {
		t.Errorf("NULL tloc: %d, want about %d", r, before)
	}
}

// BenchmarkStubClockGettime compares clock reads through the stubs with
// the original function (the bound: a stub call within 1.3x).
func BenchmarkStubClockGettime(b *testing.B) {
	s, err := patchOwn()
	if err != nil {
		b.Fatal(err)
	}
	var ts unix.Timespec
	p := uintptr(unsafe.Pointer(&ts))
	for _, bc := range []struct {
		name string
		fn   uintptr
		clk  uintptr
	}{
		{"original/REALTIME", s["orig __vdso_clock_gettime"], 0},
		{"stub/REALTIME", s["__vdso_clock_gettime"], 0},
		{"original/MONOTONIC", s["orig __vdso_clock_gettime"], 1},
		{"stub/MONOTONIC", s["__vdso_clock_gettime"], 1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				callC(bc.fn, bc.clk, p)
			}
		})
	}
}
