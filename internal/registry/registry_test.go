//go:build linux

package registry

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// useShm points the registry at a fresh directory standing for /dev/shm.
func useShm(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	old := shm
	shm = dir
	t.Cleanup(func() { shm = old })
	return dir
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"a", "my-box", ".hidden", "...", strings.Repeat("x", 64), "sp ace", "ünï"} {
		if err := CheckName(ok); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "/", "a\x00b", strings.Repeat("x", 65)} {
		if err := CheckName(bad); err == nil {
			t.Errorf("CheckName(%q) = nil, want an error", bad)
		}
	}
}

// FuzzCheckName: an accepted name is a single path component of at most
// 64 bytes that stays inside the runtime directory when joined to it.
func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"a", ".", "..", "a/b", "x\x00", strings.Repeat("y", 65), "../etc", "a/.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if CheckName(name) != nil {
			return
		}
		if name == "" || len(name) > MaxName || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
			t.Fatalf("CheckName accepted %q", name)
		}
		if filepath.Dir(filepath.Join("/base", name)) != "/base" {
			t.Fatalf("%q escapes the base directory", name)
		}
	})
}

func TestBaseRefusals(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root to create directories of another uid")
	}
	dir := useShm(t)
	base := filepath.Join(dir, baseName())

	// Someone else's directory.
	must(t, os.Mkdir(base, 0o700))
	must(t, os.Chown(base, 4242, 4242))
	if _, err := Claim("x"); err == nil || !strings.Contains(err.Error(), "belongs to uid 4242") {
		t.Errorf("a base directory of another uid: %v", err)
	}
	must(t, os.Remove(base))

	// Open to others.
	must(t, os.Mkdir(base, 0o700))
	must(t, os.Chmod(base, 0o777))
	if _, err := Claim("x"); err == nil || !strings.Contains(err.Error(), "open to other users") {
		t.Errorf("a base directory of mode 0777: %v", err)
	}
	must(t, os.Remove(base))

	// A symlink, even to a directory that would pass.
	target := filepath.Join(dir, "elsewhere")
	must(t, os.Mkdir(target, 0o700))
	must(t, os.Symlink(target, base))
	if _, err := Claim("x"); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("a symlinked base directory: %v", err)
	}
	if ents, _ := os.ReadDir(target); len(ents) != 0 {
		t.Errorf("something was created through the symlink: %v", ents)
	}
	must(t, os.Remove(base))

	// A file.
	must(t, os.WriteFile(base, nil, 0o600))
	if _, err := Claim("x"); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a file as the base directory: %v", err)
	}
	must(t, os.Remove(base))

	// Created fresh: mode 0700, ours.
	e, err := Claim("x")
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	st, err := os.Lstat(base)
	if err != nil || st.Mode().Perm() != 0o700 || !st.IsDir() {
		t.Errorf("fresh base directory: %v %v", st.Mode(), err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// publish claims name and publishes it with h until the returned func is
// called.
func publish(t *testing.T, name string, h Handler) (*Entry, func()) {
	t.Helper()
	e, err := Claim(name)
	if err != nil {
		t.Fatal(err)
	}
	if h.Status == nil {
		h.Status = func() any { return map[string]int{"n": 1} }
	}
	if h.Config == nil {
		h.Config = func() ([]byte, error) { return []byte(`{"limits":{"processes":3}}`), nil }
	}
	if h.Kill == nil {
		h.Kill = func() {}
	}
	must(t, e.Publish(os.Getpid(), os.Getpid(), h))
	var once sync.Once
	stop := func() { once.Do(e.Close) }
	t.Cleanup(stop)
	return e, stop
}

func TestClaimAndList(t *testing.T) {
	dir := useShm(t)
	e, stop := publish(t, "one", Handler{})
	entry := filepath.Join(dir, baseName(), "one")
	for name, mode := range map[string]os.FileMode{"lock": 0o600, "pid": 0o600, "control.sock": 0o600} {
		st, err := os.Lstat(filepath.Join(entry, name))
		if err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: %v %v, want mode %o", name, st.Mode(), err, mode)
		}
	}
	b, _ := os.ReadFile(filepath.Join(entry, "pid"))
	pid := strconv.Itoa(os.Getpid())
	if string(b) != pid+"\n"+pid+"\n" {
		t.Errorf("pid file %q", b)
	}
	// The name is taken while held.
	if _, err := Claim("one"); err == nil {
		t.Fatal("a live name was claimed twice")
	} else {
		var re *RunningError
		if !errors.As(err, &re) || re.Pid != os.Getpid() {
			t.Errorf("duplicate: %v", err)
		}
	}
	list, err := List()
	if err != nil || len(list) != 1 || list[0].Name != "one" || list[0].Pid != os.Getpid() {
		t.Errorf("List: %+v %v", list, err)
	}
	data, err := Ask("one", "config")
	if err != nil || string(data) != `{"limits":{"processes":3}}` {
		t.Errorf("config: %s %v", data, err)
	}
	if _, err := Ask("one", "bogus"); err == nil || !strings.Contains(err.Error(), "unknown verb: bogus") {
		t.Errorf("unknown verb: %v", err)
	}
	_ = e
	stop()
	if _, err := os.Lstat(entry); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("entry left after Close: %v", err)
	}
	if list, _ := List(); len(list) != 0 {
		t.Errorf("List after Close: %+v", list)
	}
}

// A stale entry: files left as a killed supervisor leaves them, its lock
// free. It is listed as nothing, removed, and its name claimed again.
func TestStaleEntry(t *testing.T) {
	dir := useShm(t)
	e, err := Claim("stale")
	if err != nil {
		t.Fatal(err)
	}
	must(t, e.Publish(999999, 999999, Handler{Status: func() any { return nil }, Config: func() ([]byte, error) { return nil, nil }, Kill: func() {}}))
	// Die without cleaning up: the control socket stops answering and the
	// lock is let go, the files stay.
	e.mu.Lock()
	e.closed = true
	unix.Shutdown(e.sock, unix.SHUT_RDWR)
	e.mu.Unlock()
	unix.Close(e.lock)
	entry := filepath.Join(dir, baseName(), "stale")
	if _, err := os.Lstat(filepath.Join(entry, "pid")); err != nil {
		t.Fatal(err)
	}
	if list, _ := List(); len(list) != 0 {
		t.Errorf("a stale entry is listed: %+v", list)
	}
	if _, err := os.Lstat(entry); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("List left the stale entry: %v", err)
	}
	// Again, and reclaimed directly.
	e2, err := Claim("stale")
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(e2.lock)
	e3, err := Claim("stale")
	if err != nil {
		t.Fatalf("stale name not reused: %v", err)
	}
	e3.Close()
}

// dial connects to an entry's control socket.
func dial(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: filepath.Join(shm, baseName(), name, "control.sock"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Silent, slow and oversized clients are cut off and never hold up
// another client.
func TestControlClients(t *testing.T) {
	useShm(t)
	old := Deadline
	Deadline = 300 * time.Millisecond
	t.Cleanup(func() { Deadline = old })
	publish(t, "srv", Handler{})

	var silent []*net.UnixConn
	for range 10 {
		silent = append(silent, dial(t, "srv"))
	}
	half := dial(t, "srv")
	half.Write([]byte{0, 0, 1}) // part of a length
	if _, err := Ask("srv", "status"); err != nil {
		t.Errorf("status with silent clients connected: %v", err)
	}
	// The silent ones are closed at their deadline.
	buf := make([]byte, 1)
	for _, c := range append(silent, half) {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(buf); err == nil {
			t.Error("a silent client got data")
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Error("a silent client was never cut off")
		}
		c.Close()
	}
	// More than 64 KiB: dropped without an answer.
	big := dial(t, "srv")
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], MaxMessage+1)
	big.Write(n[:])
	big.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := readMessage(big); err == nil {
		t.Errorf("an oversized request was answered: %s", got)
	}
	big.Close()
	// Bad JSON and a wrong version get upstream's errors.
	for body, want := range map[string]string{
		`{"v":1,`: "parse error: ",
		`{"v":2,"verb":"config","args":{"token":"` + token() + `"}}`: "unsupported protocol version: 2",
		// From this process, without the token: as a confined helper
		// thread acting for a program would send it.
		`{"v":1,"verb":"config","args":{}}`: "permission denied",
	} {
		c := dial(t, "srv")
		c.SetDeadline(time.Now().Add(10 * time.Second))
		binary.BigEndian.PutUint32(n[:], uint32(len(body)))
		c.Write(append(n[:], body...))
		b, err := readMessage(c)
		var resp Response
		if err != nil || json.Unmarshal(b, &resp) != nil || resp.OK || !strings.HasPrefix(resp.Err, want) {
			t.Errorf("%s: %s %v, want an error %q", body, b, err, want)
		}
		c.Close()
	}
}

func TestKillVerbAndWait(t *testing.T) {
	useShm(t)
	killed := make(chan struct{})
	stopc := make(chan func(), 1)
	_, stop := publish(t, "k", Handler{Kill: func() { close(killed); go (<-stopc)() }})
	stopc <- stop
	info, forced, err := Kill("k")
	if err != nil || forced || info.Name != "k" {
		t.Fatalf("Kill: %+v forced=%v %v", info, forced, err)
	}
	select {
	case <-killed:
	default:
		t.Error("the kill verb did not reach the handler")
	}
	if _, _, err := Kill("k"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a second Kill: %v, want ErrNotFound", err)
	}
}

func TestParentAndGroup(t *testing.T) {
	ppid, pgrp, ok := parentAndGroup(os.Getpid())
	if !ok || ppid != os.Getppid() || pgrp != unix.Getpgrp() {
		t.Errorf("parentAndGroup(self) = %d %d %v", ppid, pgrp, ok)
	}
}

// BenchmarkRegister is what a run pays for the registry: claiming a name
// (with the runtime directory's checks), publishing it and serving its
// control socket, and removing it at the end.
func BenchmarkRegister(b *testing.B) {
	for i := 0; i < b.N; i++ {
		e, err := Claim("bench-" + strconv.Itoa(os.Getpid()))
		if err != nil {
			b.Fatal(err)
		}
		if err := e.Publish(1, os.Getpid(), Handler{}); err != nil {
			b.Fatal(err)
		}
		e.Close()
	}
}
