//go:build linux

package landlock

import (
	"os"
	"path/filepath"
	"testing"
)

// build builds a ruleset of rules and returns its grants.
func build(t *testing.T, rules []PathRule) Grants {
	t.Helper()
	abi, err := ABI()
	if err != nil {
		t.Fatal(err)
	}
	cfg := &Config{ABI: abi, HandledFS: HandledFS(abi), Paths: rules}
	rs, err := cfg.Build()
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	return rs.Grants()
}

// TestGrants: a ruleset's grants are the objects its rules bind, by the
// path the kernel gives them (a symlinked grant is its target).
func TestGrants(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"ro", "rw", "rwx", "real"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	g := build(t, []PathRule{
		{Path: filepath.Join(dir, "ro"), Access: FSRead},
		{Path: filepath.Join(dir, "rw"), Access: HandledFS(6)},
		{Path: file, Access: FSReadFile | FSWriteFile},
		{Path: filepath.Join(dir, "link"), Access: HandledFS(6)},
		{Path: filepath.Join(dir, "rwx"), Access: FSExecute}, // neither read nor write
	})
	for _, c := range []struct {
		path        string
		read, write bool
	}{
		{dir + "/ro", true, false},
		{dir + "/ro/x/y", true, false},
		{dir + "/rw/x", true, true},
		{dir + "/rwx", false, false}, // a sibling sharing a prefix
		{dir + "/file", true, true},
		{dir + "/real/x", true, true}, // the symlink's target is what is granted
		{dir + "/link/x", false, false},
		{dir, false, false},
		{"/", false, false},
	} {
		if got := g.Allows(c.path, false); got != c.read {
			t.Errorf("Allows(%s, read) = %v, want %v", c.path, got, c.read)
		}
		if got := g.Allows(c.path, true); got != c.write {
			t.Errorf("Allows(%s, write) = %v, want %v", c.path, got, c.write)
		}
	}
	if g.Everything(false) || g.Everything(true) {
		t.Error("Everything: no grant on /")
	}
	root := build(t, []PathRule{{Path: "/", Access: FSRead}})
	if !root.Everything(false) || root.Everything(true) || !root.Allows("/etc/passwd", false) || root.Allows("/etc/passwd", true) {
		t.Error("a readable grant on / allows every read and no write")
	}
}
