//go:build linux

package fsdeny

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// mappedFiles lists this test binary (by its path and inode) once, however
// many mappings it has, and no pseudo-mapping ([stack], [vdso], …).
func TestMappedFiles(t *testing.T) {
	files, err := mappedFiles(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe, _ = filepath.EvalSymlinks(exe)
	var st unix.Stat_t
	if err := unix.Stat(exe, &st); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if f.path == exe {
			n++
			if f.ino != st.Ino {
				t.Errorf("%s: inode %d, want %d", exe, f.ino, st.Ino)
			}
		}
		if f.path == "" || f.path[0] != '/' || f.ino == 0 {
			t.Errorf("not a file: %+v", f)
		}
	}
	if n != 1 {
		t.Errorf("%s listed %d times in %+v", exe, n, files)
	}
	if _, err := mappedFiles(1 << 30); err == nil {
		t.Error("no error for a process that does not exist")
	}
}
