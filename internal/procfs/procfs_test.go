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
