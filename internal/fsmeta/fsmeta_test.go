//go:build linux

package fsmeta

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/sysnum"
	"github.com/sandlock-go/sandlock/internal/taskpath"
)

// TestPrivate: objects no path reaches are the task's own; a file that
// still has a name (even one it was opened by no longer) is not.
func TestPrivate(t *testing.T) {
	dir := t.TempDir()
	check := func(name string, fd int, want bool) {
		t.Helper()
		p, err := taskpath.FDPath(fd)
		if err != nil {
			t.Fatal(err)
		}
		if got := private(fd, p); got != want {
			t.Errorf("%s (%s): private %v, want %v", name, p, got, want)
		}
	}
	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	check("pipe", pipe[0], true)
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	check("socket", sock, true)
	mem, err := unix.MemfdCreate("x", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	check("memfd", mem, true)
	tmp, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	check("O_TMPFILE", tmp, true)

	open := func(name string) int {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		return fd
	}
	check("file", open("f"), false)
	gone := open("gone")
	os.Remove(filepath.Join(dir, "gone"))
	check("unlinked file", gone, true)
	linked := open("linked")
	if err := os.Link(filepath.Join(dir, "linked"), filepath.Join(dir, "other name")); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "linked"))
	check("unlinked name of a file with another", linked, false)
}

func TestAtFlags(t *testing.T) {
	for _, f := range []uint64{0, unix.AT_SYMLINK_NOFOLLOW, unix.AT_EMPTY_PATH, unix.AT_SYMLINK_NOFOLLOW | unix.AT_EMPTY_PATH, 1 << 32} {
		if err := atFlags(f); err != nil {
			t.Errorf("atFlags(%#x) = %v", f, err)
		}
	}
	for _, f := range []uint64{unix.AT_SYMLINK_FOLLOW, unix.AT_REMOVEDIR, 1} {
		if err := atFlags(f); err != unix.EINVAL {
			t.Errorf("atFlags(%#x) = %v, want EINVAL", f, err)
		}
	}
}

// TestImplemented: the probe tells this kernel's young syscalls (it has
// them all: Linux ≥ 6.17) from a number that is no syscall.
func TestImplemented(t *testing.T) {
	arch := sysnum.Native()
	for _, name := range []string{"fchmodat2", "setxattrat", "getxattrat", "listxattrat", "removexattrat", "file_getattr", "file_setattr"} {
		if !young(name) {
			t.Errorf("%s is not young", name)
		}
		nr, ok := arch.Nr(name)
		if !ok {
			t.Fatalf("%s: no number", name)
		}
		if !implemented(nr) {
			t.Errorf("%s (%d): not found on this kernel", name, nr)
		}
	}
	if implemented(arch.Size() + 100) {
		t.Errorf("a number past the table is a syscall")
	}
}
