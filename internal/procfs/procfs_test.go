//go:build linux

package procfs

import (
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestStatusFields(t *testing.T) {
	s := Status("Name:\tsh\nUmask:\t0027\nState:\tS (sleeping)\nTgid:\t42\nPPid:\t7\nUid:\t1000\t1001\t1002\t1003\nNoNewPrivs:\t1\n")
	for name, want := range map[string]string{"Name": "sh", "Umask": "0027", "State": "S (sleeping)", "Uid": "1000\t1001\t1002\t1003", "NoNewPrivs": "1"} {
		if got, err := s.Field(name); err != nil || got != want {
			t.Errorf("Field(%s) = %q, %v; want %q", name, got, err, want)
		}
	}
	for name, want := range map[string]int64{"Tgid": 42, "PPid": 7, "Uid": 1000} {
		if got, err := s.Int(name); err != nil || got != want {
			t.Errorf("Int(%s) = %d, %v; want %d", name, got, err, want)
		}
	}
	// A name is matched whole, at a line start.
	if _, err := s.Field("Pid"); !errors.Is(err, ErrNoField) {
		t.Errorf("Field(Pid) in a status without it: %v", err)
	}
	if _, err := s.Field("id"); !errors.Is(err, ErrNoField) {
		t.Errorf("Field(id): %v", err)
	}
	if _, err := s.Int("State"); err == nil {
		t.Error("Int of a word: no error")
	}
}

func TestOwnProcess(t *testing.T) {
	pid := os.Getpid()
	if got := TGID(unix.Gettid()); got != pid {
		t.Errorf("TGID of this thread: %d, want %d", got, pid)
	}
	if got := PPid(pid); got != os.Getppid() {
		t.Errorf("PPid: %d, want %d", got, os.Getppid())
	}
	old := unix.Umask(0o027)
	defer unix.Umask(old)
	if got := Umask(pid); got != 0o027 {
		t.Errorf("Umask: %o", got)
	}
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, err := FDLink(pid, int(f.Fd())); err != nil || got != "/dev/null" {
		t.Errorf("FDLink: %q %v", got, err)
	}
	// A task that is gone counts as its own process; no parent.
	if TGID(1<<22+12345) != 1<<22+12345 || PPid(1<<22+12345) != 0 || Umask(1<<22+12345) != 0o022 {
		t.Error("a missing task")
	}
}

func TestParseMapsLine(t *testing.T) {
	m, ok := ParseMapsLine([]byte("7f12a000-7f12c000 rw-s 00001000 00:01 4242                       /memfd:x y (deleted)"))
	if !ok || m.Start != 0x7f12a000 || m.End != 0x7f12c000 || m.Size() != 0x2000 || m.Perms != "rw-s" || !m.Shared() ||
		!m.Accessible() || m.Offset != 0x1000 || m.Major != 0 || m.Minor != 1 || m.Inode != 4242 || m.Path != "/memfd:x y (deleted)" {
		t.Errorf("%+v %v", m, ok)
	}
	m, ok = ParseMapsLine([]byte("5000-6000 ---p 00000000 fd:02 0 "))
	if !ok || m.Path != "" || m.Accessible() || m.Shared() || m.Major != 0xfd || m.Minor != 2 {
		t.Errorf("anonymous: %+v %v", m, ok)
	}
	if m, ok := ParseMapsLine([]byte(`1000-2000 r--p 0 08:01 7 /a/new\012line`)); !ok || m.Path != "/a/new\nline" {
		t.Errorf("an escaped newline: %+v", m)
	}
	for _, bad := range []string{"", "garbage", "2000-1000 r--p 0 08:01 7 /x", "1000-2000 r--p 0 0801 7 /x", "1000-2000 r--p 0 08:01 x /x"} {
		if _, ok := ParseMapsLine([]byte(bad)); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestMapsOfThisProcess(t *testing.T) {
	var vdso, stack int
	err := Maps(os.Getpid(), func(m Mapping) bool {
		switch m.Path {
		case "[vdso]":
			vdso++
		case "[stack]":
			stack++
		}
		return true
	})
	if err != nil || vdso != 1 || stack != 1 {
		t.Errorf("vdso %d stack %d err %v", vdso, stack, err)
	}
	if Maps(1<<30, func(Mapping) bool { return true }) == nil {
		t.Error("no error for a process that does not exist")
	}
}
