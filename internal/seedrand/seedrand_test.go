//go:build linux

package seedrand

import (
	"bytes"
	"io"
	"testing"

	"golang.org/x/sys/unix"
)

func identity(tid int) int { return tid }

// draw reads n bytes of pid's stream.
func draw(s *Source, pid, n int) []byte {
	b := make([]byte, n)
	s.of(pid).read(b)
	return b
}

// A process's stream follows from the seed and its place in the tree:
// the same tree gives the same bytes whatever the pids, and siblings,
// parents and other seeds differ.
func TestStreamsFollowTheTree(t *testing.T) {
	tree := func(seed uint64, root, c1, c2, gc int) [][]byte {
		s := New(seed, identity)
		s.ProcessStart(root, 0)
		s.ProcessStart(c1, root)
		s.ProcessStart(c2, root)
		s.ProcessStart(gc, c2)
		return [][]byte{draw(s, root, 32), draw(s, c1, 32), draw(s, c2, 32), draw(s, gc, 32)}
	}
	a := tree(1, 100, 101, 102, 103)
	b := tree(1, 500, 777, 600, 900) // other pids, same places
	c := tree(2, 100, 101, 102, 103)
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Errorf("process %d: the same place gives other bytes", i)
		}
		if bytes.Equal(a[i], c[i]) {
			t.Errorf("process %d: another seed gives the same bytes", i)
		}
		for j := range i {
			if bytes.Equal(a[i], a[j]) {
				t.Errorf("processes %d and %d read the same stream", i, j)
			}
		}
	}
}

// The root may draw before the tracer announces it (the vfork mode lets
// it run a little before the seize): it still gets the root's stream.
func TestRootDrawsFirst(t *testing.T) {
	s := New(1, identity)
	early := draw(s, 100, 16)
	s.ProcessStart(100, 0)
	s2 := New(1, identity)
	s2.ProcessStart(100, 0)
	if !bytes.Equal(early, draw(s2, 100, 16)) {
		t.Error("the root's first bytes depend on when it was announced")
	}
	// A process nobody announced gets a stream of its own.
	if bytes.Equal(draw(s, 555, 16), draw(s2, 100, 16)) {
		t.Error("an unknown process reads the root's stream")
	}
}

func TestIsRandomDevice(t *testing.T) {
	for path, want := range map[string]bool{"/dev/urandom": true, "/dev/random": true, "/dev/null": false, "/dev/zero": false, "/": false} {
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil {
			t.Fatal(err)
		}
		if got := IsRandomDevice(&st); got != want {
			t.Errorf("%s: %v", path, got)
		}
	}
}

// The socket of a device open is endless, and its bytes follow the key.
func TestFeed(t *testing.T) {
	s := New(1, identity)
	defer s.Close()
	read := func(key [32]byte, n int64) []byte {
		r, err := s.feed(key)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		b, err := io.ReadAll(io.LimitReader(r, n))
		if err != nil || int64(len(b)) != n {
			t.Fatalf("read %d of %d: %v", len(b), n, err)
		}
		return b
	}
	k1, k2 := derive(nil, "a", nil), derive(nil, "b", nil)
	a, b := read(k1, 3<<20), read(k1, 3<<20)
	if !bytes.Equal(a, b) {
		t.Error("one key, two streams")
	}
	if bytes.Equal(a[:64], read(k2, 64)) {
		t.Error("two keys, one stream")
	}
	s.Close()
	if _, err := s.feed(k1); err != ErrClosed {
		t.Errorf("feed after Close: %v", err)
	}
}

// Close ends a feeder whose reader is still open: the reader sees the end
// of the stream.
func TestCloseEndsFeeders(t *testing.T) {
	s := New(1, identity)
	r, err := s.feed(derive(nil, "x", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s.Close()
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatal(err)
	}
}
