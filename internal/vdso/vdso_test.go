//go:build linux

package vdso

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"sync"
	"testing"
)

// selfMem is this process's memory through /proc/self/mem, which, like the
// tracer's /proc/PID/mem, writes read-only mappings too.
type selfMem struct{ f *os.File }

func (m selfMem) ReadMem(addr uint64, b []byte) error {
	_, err := m.f.ReadAt(b, int64(addr))
	return err
}

func (m selfMem) WriteMem(addr uint64, b []byte) error {
	_, err := m.f.WriteAt(b, int64(addr))
	return err
}

// pristine is this process's vDSO as the kernel mapped it, read before any
// test patches it in place.
var pristine = sync.OnceValues(func() ([]byte, error) {
	f, err := os.Open("/proc/self/mem")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readImage(selfMem{f}, auxval(33))
})

// ownImage returns a copy of this process's vDSO mapping, unpatched.
func ownImage(t *testing.T) []byte {
	t.Helper()
	if auxval(33) == 0 {
		t.Fatal("no AT_SYSINFO_EHDR: this kernel maps no vDSO")
	}
	img, err := pristine()
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(img)
}

// readImage reads the vDSO mapped at base.
func readImage(m Memory, base uint64) ([]byte, error) {
	hdr := make([]byte, 64)
	if err := m.ReadMem(base, hdr); err != nil {
		return nil, err
	}
	size, err := Size(hdr)
	if err != nil {
		return nil, err
	}
	img := make([]byte, size)
	return img, m.ReadMem(base, img)
}

func auxval(tag uint64) uint64 {
	b, _ := os.ReadFile("/proc/self/auxv")
	for i := 0; i+16 <= len(b); i += 16 {
		if binary.NativeEndian.Uint64(b[i:]) == tag {
			return binary.NativeEndian.Uint64(b[i+8:])
		}
	}
	return 0
}

// The vDSO of this kernel parses: its functions are found, and the tail
// after its content is free.
func TestParseOwnVDSO(t *testing.T) {
	img := ownImage(t)
	im, err := parse(bytes.Clone(img))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"__vdso_clock_gettime", "__vdso_gettimeofday", "__vdso_time", "__vdso_getrandom"} {
		if _, ok := im.lookup(name); !ok {
			t.Errorf("%s not found", name)
		}
	}
	if im.size-im.free < dataSize+len(amd64Stubs.code) {
		t.Errorf("only %d bytes free after the image (content ends at %#x of %#x)", im.size-im.free, im.free, im.size)
	}
	for _, c := range img[im.free:] {
		if c != 0 {
			t.Fatal("the tail is not zero")
		}
	}
}

// Hiding getrandom leaves no defined symbol of that name, by the rule the
// Go runtime's parser and glibc's lookup apply (undefined section or value
// 0 means absent), and touches nothing else.
func TestHideGetrandom(t *testing.T) {
	img := ownImage(t)
	out, err := Patch{HideGetrandom: true}.Apply(img)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := parse(bytes.Clone(img))
	after, err := parse(out)
	if err != nil {
		t.Fatal(err)
	}
	orig, ok := before.lookup("__vdso_getrandom")
	if !ok {
		t.Fatal("no getrandom in this vDSO")
	}
	for i, s := range after.syms {
		was := before.syms[i]
		if was.value == orig.value && was.shndx != shnUndef {
			if s.shndx != shnUndef || s.value != 0 {
				t.Errorf("%s still defined (shndx %d value %#x)", s.name, s.shndx, s.value)
			}
			continue
		}
		if s != was {
			t.Errorf("%s changed: %+v → %+v", s.name, was, s)
		}
	}
	if _, ok := after.lookup("getrandom"); ok {
		t.Error("getrandom still found")
	}
	// Only symbol table bytes changed.
	for i := range img {
		if img[i] != out[i] && (i < after.syms[0].off || i >= after.syms[len(after.syms)-1].off+24) {
			t.Fatalf("byte %#x outside the symbol table changed", i)
		}
	}
}

func TestParseRejects(t *testing.T) {
	img := ownImage(t)
	for name, b := range map[string][]byte{
		"empty":     nil,
		"not ELF":   bytes.Repeat([]byte{1}, 8192),
		"truncated": img[:len(img)/2],
		"32-bit":    append([]byte("\x7fELF\x01\x01"), img[6:]...),
	} {
		if _, err := (Patch{HideGetrandom: true}).Apply(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A table pointing outside the image.
	bad := bytes.Clone(img)
	binary.LittleEndian.PutUint64(bad[40:], uint64(len(img)-8)) // e_shoff
	if _, err := (Patch{HideGetrandom: true}).Apply(bad); err == nil {
		t.Error("section headers outside the image: accepted")
	}
}

// A patched image cannot be patched again: its tail is taken.
func TestPatchTwice(t *testing.T) {
	sh := NewShift(-1e9, 0)
	once, err := Patch{Clock: &sh}.Apply(ownImage(t))
	if errors.Is(err, ErrUnsupportedArch) {
		t.Skip("no stubs for this architecture yet") // the amd64 tests cover the stubs
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (Patch{Clock: &sh}).Apply(once); err == nil {
		t.Fatal("patched twice")
	}
}

func TestNewShift(t *testing.T) {
	for _, tc := range []struct {
		sec, nsec int64
		want      Shift
	}{
		{0, 0, Shift{0, 0}},
		{0, 1_500_000_999, Shift{1, 500_000_000}},
		{0, -1, Shift{-1, 999_999_000}},
		{-1, 0, Shift{-1, 0}},
		{0, -1_000_000_001, Shift{-2, 999_999_000}},
		{2, 999_999_999, Shift{2, 999_999_000}},
		{250_000_000_000, -999_999_999, Shift{249_999_999_999, 0}}, // 7900 years: beyond a Duration
		{-2_000_000_000, 123_456_789, Shift{-2_000_000_000, 123_456_000}},
	} {
		if got := NewShift(tc.sec, tc.nsec); got != tc.want {
			t.Errorf("NewShift(%d, %d) = %+v, want %+v", tc.sec, tc.nsec, got, tc.want)
		}
	}
}
