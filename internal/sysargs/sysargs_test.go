//go:build linux

package sysargs

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/sysnum"
)

func TestTableSortedAndReal(t *testing.T) {
	for i, e := range layouts {
		if i > 0 && layouts[i-1].name >= e.name {
			t.Errorf("%s after %s: the table must be sorted", e.name, layouts[i-1].name)
		}
		if got, ok := Of(e.name); !ok || got != e.l {
			t.Errorf("Of(%s) = %+v, %v", e.name, got, ok)
		}
		// Every name is a syscall of amd64 (arm64 lacks the legacy ones).
		if _, ok := sysnum.AMD64.Nr(e.name); !ok {
			t.Errorf("%s is not a syscall", e.name)
		}
	}
	if _, ok := Of("read"); ok {
		t.Error("Of(read): a layout for a call without a path")
	}
}

func TestReading(t *testing.T) {
	args := [6]uint64{10, 11, 12, 13, 14, 15}
	for _, c := range []struct {
		name                     string
		dirfd, path, flags, mode uint64
		dirfd2, path2            uint64
	}{
		{"openat", 10, 11, 12, 13, atFDCWD, 0},
		{"open", atFDCWD, 10, 11, 12, atFDCWD, 0},
		{"creat", atFDCWD, 10, unix.O_CREAT | unix.O_WRONLY | unix.O_TRUNC, 11, atFDCWD, 0},
		{"rmdir", atFDCWD, 10, unix.AT_REMOVEDIR, 0, atFDCWD, 0},
		{"lchown", atFDCWD, 10, unix.AT_SYMLINK_NOFOLLOW, 0, atFDCWD, 0},
		{"renameat2", 10, 11, 14, 0, 12, 13},
		{"rename", atFDCWD, 10, 0, 0, atFDCWD, 11},
		{"symlinkat", atFDCWD, 10, 0, 0, 11, 12},
		{"utimensat", 10, 11, 13, 0, atFDCWD, 0},
		{"inotify_add_watch", atFDCWD, 11, 0, 0, atFDCWD, 0},
	} {
		l := MustOf(c.name)
		if l.DirfdOf(args) != c.dirfd || l.PathOf(args) != c.path || l.FlagsOf(args) != c.flags || l.ModeOf(args) != c.mode ||
			l.Dirfd2Of(args) != c.dirfd2 || l.Path2Of(args) != c.path2 {
			t.Errorf("%s: dirfd %d path %d flags %#x mode %d dirfd2 %d path2 %d", c.name,
				l.DirfdOf(args), l.PathOf(args), l.FlagsOf(args), l.ModeOf(args), l.Dirfd2Of(args), l.Path2Of(args))
		}
	}
	if l := MustOf("connect"); l.Addr != 1 || l.AddrLen != 2 {
		t.Errorf("connect: %+v", l)
	}
}
