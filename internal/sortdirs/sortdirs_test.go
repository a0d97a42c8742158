//go:build linux

package sortdirs

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// A directory loads complete and sorted, and the entries written in
// linux_dirent64's layout parse back as the kernel's own would.
func TestLoadAndFormat(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for i := 300; i > 0; i-- {
		name := fmt.Sprintf("n%03d-%s", i, string(rune('a'+i%26)))
		want = append(want, name)
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	want = append(want, ".", "..", "sub")
	slices.Sort(want)

	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ls := &listing{dup: fd}
	defer ls.close()
	if err := ls.load(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ls.entries {
		got = append(got, e.name)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("loaded %q", got)
	}

	var buf []byte
	for i, e := range ls.entries {
		n := dirent64.size(e.name)
		buf = append(buf, make([]byte, n)...)
		dirent64.write(buf[len(buf)-n:], e, int64(i+1))
	}
	_, _, names := syscall.ParseDirent(buf, -1, nil)
	wantNoDots := slices.DeleteFunc(slices.Clone(want), func(s string) bool { return s == "." || s == ".." })
	if !slices.Equal(names, wantNoDots) {
		t.Errorf("parsed back %q", names)
	}
	for _, e := range ls.entries {
		if e.name == "sub" && e.typ != unix.DT_DIR {
			t.Errorf("sub: type %d", e.typ)
		}
	}
}

// The legacy layout keeps d_type in the record's last byte, and each
// record is 8-aligned with room for the name's NUL.
func TestLegacyFormat(t *testing.T) {
	for _, name := range []string{"a", "abcdef", "abcdefg", "0123456789abcdef"} {
		n := direntLegacy.size(name)
		if n%8 != 0 || n < 18+len(name)+2 {
			t.Errorf("%q: record of %d bytes", name, n)
		}
		b := make([]byte, n)
		direntLegacy.write(b, entry{name: name, ino: 42, typ: unix.DT_REG}, 7)
		if le.Uint64(b) != 42 || le.Uint64(b[8:]) != 7 || int(le.Uint16(b[16:])) != n || string(b[18:18+len(name)]) != name ||
			b[18+len(name)] != 0 || b[n-1] != unix.DT_REG {
			t.Errorf("%q: %x", name, b)
		}
	}
}
