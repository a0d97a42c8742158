//go:build linux

package cow

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tree describes a directory tree: path → content ("dir/" for a
// directory, "->target" for a symlink).
type tree map[string]string

func (tr tree) make(t *testing.T, root string) {
	t.Helper()
	paths := make([]string, 0, len(tr))
	for p := range tr {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		v := tr[p]
		full := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		switch {
		case strings.HasSuffix(p, "/"):
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(v, "->"):
			if err := os.Symlink(v[2:], full); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(full, []byte(v), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// snapshot records a tree's entries: type, mode, owner, content, link
// target, mtime and inode numbers of regular files (to tell links apart).
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := make(map[string]string)
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		desc := fmt.Sprintf("mode=%o uid=%d gid=%d", st.Mode, st.Uid, st.Gid)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, _ := os.ReadFile(p)
			desc += fmt.Sprintf(" mtime=%d.%d data=%q", st.Mtim.Sec, st.Mtim.Nsec, b)
		case unix.S_IFLNK:
			l, _ := os.Readlink(p)
			desc += " link=" + l
		case unix.S_IFDIR:
			if rel != "." {
				desc += fmt.Sprintf(" mtime=%d.%d", st.Mtim.Sec, st.Mtim.Nsec)
			}
		}
		out[rel] = desc
		return nil
	})
	return out
}

func sameSnapshot(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s: got %q, want %q", what, k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected %s: %q", what, k, got[k])
		}
	}
}

// newBranch makes a workdir from tr and a branch of it, in storage on the
// same filesystem (or on /dev/shm, a tmpfs, with crossFS).
func newBranch(t *testing.T, tr tree, crossFS bool) (*Branch, string) {
	t.Helper()
	top := t.TempDir()
	work := filepath.Join(top, "work")
	os.Mkdir(work, 0o755)
	tr.make(t, work)
	base := filepath.Join(top, "storage")
	if crossFS {
		var err error
		base, err = os.MkdirTemp("/dev/shm", "cowtest-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { removeTree(base) })
		os.Chmod(base, 0o700)
	} else if err := PrepareBase(base); err != nil {
		t.Fatal(err)
	}
	w, _ := filepath.EvalSymlinks(work)
	b, err := Create(Options{Workdir: w, Base: base})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	b.mu.Lock()
	err = b.materialize()
	b.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if b.SameFilesystem() == crossFS {
		t.Fatalf("same filesystem: %v, want %v", b.SameFilesystem(), !crossFS)
	}
	return b, w
}

// read reads a merged file through Open.
func read(t *testing.T, b *Branch, rel string) string {
	t.Helper()
	fd, err := b.Open(rel, unix.O_RDONLY, 0)
	if err != nil {
		t.Fatalf("open %s: %v", rel, err)
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	var buf bytes.Buffer
	buf.ReadFrom(f)
	return buf.String()
}

func write(t *testing.T, b *Branch, rel string, flags int, data string) {
	t.Helper()
	fd, err := b.Open(rel, unix.O_WRONLY|flags, 0o644)
	if err != nil {
		t.Fatalf("open %s for writing: %v", rel, err)
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
}

func names(t *testing.T, b *Branch, rel string) []string {
	t.Helper()
	ents, err := b.ReadDir(rel)
	if err != nil {
		t.Fatalf("readdir %s: %v", rel, err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name)
	}
	return out
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: %v, want %v", what, err, want)
	}
}

var base = tree{
	"a.txt":         "alpha",
	"dir/":          "",
	"dir/b.txt":     "beta",
	"dir/sub/":      "",
	"dir/sub/c.txt": "gamma",
	"empty/":        "",
	"link":          "->a.txt",
	"abs":           "->/etc/hostname",
}

// TestMergedView: reads see the workdir, writes land in the upper layer
// only, and the merged view shows both.
func TestMergedView(t *testing.T) {
	b, w := newBranch(t, base, false)
	before := snapshot(t, w)

	if got := read(t, b, "a.txt"); got != "alpha" {
		t.Errorf("a.txt = %q", got)
	}
	write(t, b, "a.txt", unix.O_APPEND, "+more")
	write(t, b, "new.txt", unix.O_CREAT|unix.O_EXCL, "fresh")
	if err := b.Mkdir("dir/newdir", 0o750); err != nil {
		t.Fatal(err)
	}
	write(t, b, "dir/newdir/x", unix.O_CREAT, "x")
	if got := read(t, b, "a.txt"); got != "alpha+more" {
		t.Errorf("a.txt after append = %q", got)
	}
	if got := strings.Join(names(t, b, ""), " "); got != "a.txt abs dir empty link new.txt" {
		t.Errorf("root listing: %s", got)
	}
	if got := strings.Join(names(t, b, "dir"), " "); got != "b.txt newdir sub" {
		t.Errorf("dir listing: %s", got)
	}
	_, err := b.Open("new.txt", unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o644)
	wantErr(t, "O_EXCL on a file of the upper layer", err, unix.EEXIST)
	_, err = b.Open("dir/b.txt", unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o644)
	wantErr(t, "O_EXCL on a file of the lower layer", err, unix.EEXIST)

	// The workdir has not changed at all.
	sameSnapshot(t, "workdir", snapshot(t, w), before)
}

// TestCopyUpKeepsMetadata: a copy keeps mode, owner, times and user
// extended attributes.
func TestCopyUpKeepsMetadata(t *testing.T) {
	b, w := newBranch(t, base, false)
	p := filepath.Join(w, "dir/b.txt")
	os.Chmod(p, 0o640)
	mt := time.Date(2001, 2, 3, 4, 5, 6, 7000, time.UTC)
	os.Chtimes(p, mt, mt)
	xattrs := unix.Setxattr(p, "user.test", []byte("value"), 0) == nil
	if os.Geteuid() == 0 {
		os.Lchown(p, 1234, 5678)
	}
	var lst unix.Stat_t
	unix.Lstat(p, &lst)

	if err := b.SetXattr("dir/b.txt", "user.other", []byte("o"), 0); err != nil && xattrs {
		t.Fatal(err)
	}
	e, err := b.Lstat("dir/b.txt")
	if err != nil || e.Layer != Upper {
		t.Fatalf("after a change: %+v %v", e, err)
	}
	if e.Stat.Mode != lst.Mode || e.Stat.Uid != lst.Uid || e.Stat.Gid != lst.Gid || e.Stat.Mtim != lst.Mtim || e.Stat.Size != lst.Size {
		t.Errorf("copy: mode %o uid %d gid %d mtime %v size %d; lower: mode %o uid %d gid %d mtime %v size %d",
			e.Stat.Mode, e.Stat.Uid, e.Stat.Gid, e.Stat.Mtim, e.Stat.Size, lst.Mode, lst.Uid, lst.Gid, lst.Mtim, lst.Size)
	}
	if xattrs {
		buf := make([]byte, 64)
		n, err := b.GetXattr("dir/b.txt", "user.test", buf)
		if err != nil || string(buf[:n]) != "value" {
			t.Errorf("user.test on the copy: %q %v", buf[:n], err)
		}
	}
	if got := read(t, b, "dir/b.txt"); got != "beta" {
		t.Errorf("copy's data: %q", got)
	}
}

// TestSparseCopyUp: a copy keeps the holes of a sparse file.
func TestSparseCopyUp(t *testing.T) {
	b, w := newBranch(t, tree{}, false)
	f, _ := os.Create(filepath.Join(w, "sparse"))
	f.WriteAt([]byte("head"), 0)
	f.WriteAt([]byte("tail"), 64<<20)
	f.Close()
	write(t, b, "sparse", unix.O_APPEND, "!")
	e, _ := b.Lstat("sparse")
	if e.Stat.Size != 64<<20+5 {
		t.Errorf("size %d", e.Stat.Size)
	}
	if e.Stat.Blocks*512 > 1<<20 {
		t.Errorf("the copy holds %d bytes: its holes were filled", e.Stat.Blocks*512)
	}
}

// TestRemoveAndRecreate: unlink, rmdir (merged emptiness), re-creation
// over a whiteout, and the errors of each.
func TestRemoveAndRecreate(t *testing.T) {
	b, _ := newBranch(t, base, false)
	wantErr(t, "rmdir of a merged non-empty directory", b.Rmdir("dir"), unix.ENOTEMPTY)
	wantErr(t, "rmdir of a file", b.Rmdir("a.txt"), unix.ENOTDIR)
	wantErr(t, "unlink of a directory", b.Unlink("dir"), unix.EISDIR)
	wantErr(t, "rmdir of the root", b.Rmdir(""), unix.EBUSY)
	if err := b.Unlink("dir/sub/c.txt"); err != nil {
		t.Fatal(err)
	}
	if err := b.Rmdir("dir/sub"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Lstat("dir/sub"); !errors.Is(err, unix.ENOENT) {
		t.Errorf("dir/sub after rmdir: %v", err)
	}
	// Re-created: opaque, the old entries do not come back.
	if err := b.Mkdir("dir/sub", 0o755); err != nil {
		t.Fatal(err)
	}
	if n := names(t, b, "dir/sub"); len(n) != 0 {
		t.Errorf("re-created dir/sub lists %v", n)
	}
	if err := b.Unlink("a.txt"); err != nil {
		t.Fatal(err)
	}
	_, err := b.Open("a.txt", unix.O_RDONLY, 0)
	wantErr(t, "open of a deleted file", err, unix.ENOENT)
	write(t, b, "a.txt", unix.O_CREAT|unix.O_EXCL, "again")
	if got := read(t, b, "a.txt"); got != "again" {
		t.Errorf("re-created a.txt = %q", got)
	}
}

// TestRename: files and directories, over existing targets, exchange,
// and the errors of each.
func TestRename(t *testing.T) {
	b, w := newBranch(t, base, false)
	before := snapshot(t, w)
	if err := b.Rename("dir", "moved", 0); err != nil {
		t.Fatal(err)
	}
	if got := read(t, b, "moved/sub/c.txt"); got != "gamma" {
		t.Errorf("moved/sub/c.txt = %q", got)
	}
	if _, err := b.Lstat("dir"); !errors.Is(err, unix.ENOENT) {
		t.Errorf("dir after rename: %v", err)
	}
	if err := b.Rename("a.txt", "moved/b.txt", 0); err != nil {
		t.Fatal(err)
	}
	if got := read(t, b, "moved/b.txt"); got != "alpha" {
		t.Errorf("moved/b.txt = %q", got)
	}
	wantErr(t, "rename a directory over a non-empty one", b.Rename("empty", "moved", 0), unix.ENOTEMPTY)
	wantErr(t, "rename a file over a directory", b.Rename("link", "empty", 0), unix.EISDIR)
	wantErr(t, "rename a directory over a file", b.Rename("empty", "moved/b.txt", 0), unix.ENOTDIR)
	wantErr(t, "rename a directory into itself", b.Rename("moved", "moved/sub/x", 0), unix.EINVAL)
	wantErr(t, "RENAME_NOREPLACE", b.Rename("link", "abs", unix.RENAME_NOREPLACE), unix.EEXIST)
	b.Mkdir("target", 0o755)
	if err := b.Rename("empty", "target", 0); err != nil {
		t.Errorf("rename a directory over an empty one: %v", err)
	}
	write(t, b, "x", unix.O_CREAT, "x")
	write(t, b, "y", unix.O_CREAT, "y")
	if err := b.Rename("x", "y", unix.RENAME_EXCHANGE); err != nil {
		t.Fatal(err)
	}
	if read(t, b, "x") != "y" || read(t, b, "y") != "x" {
		t.Errorf("exchange: x=%q y=%q", read(t, b, "x"), read(t, b, "y"))
	}
	b.Mkdir("ex", 0o755)
	write(t, b, "ex/in", unix.O_CREAT, "in")
	if err := b.Rename("ex", "x", unix.RENAME_EXCHANGE); err != nil {
		t.Fatal(err)
	}
	if read(t, b, "x/in") != "in" || read(t, b, "ex") != "y" {
		t.Errorf("exchange of a directory and a file")
	}
	checkIndex(t, b)
	sameSnapshot(t, "workdir", snapshot(t, w), before)
}

// TestLinks: hard links share their data; symlinks resolve in the merged
// view.
func TestLinks(t *testing.T) {
	b, _ := newBranch(t, base, false)
	if err := b.Link("a.txt", "hard"); err != nil {
		t.Fatal(err)
	}
	write(t, b, "hard", unix.O_APPEND, "+via hard")
	if got := read(t, b, "a.txt"); got != "alpha+via hard" {
		t.Errorf("a.txt after writing its link = %q", got)
	}
	wantErr(t, "link of a directory", b.Link("dir", "d2"), unix.EPERM)
	wantErr(t, "link over an entry", b.Link("a.txt", "link"), unix.EEXIST)
	if err := b.Symlink("dir/sub", "rel"); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Readlink("rel"); got != "dir/sub" {
		t.Errorf("readlink = %q", got)
	}
}

// TestWalk: relative and absolute symlinks, "..", leaving the workdir,
// and whether the kernel would find the same object.
func TestWalk(t *testing.T) {
	b, w := newBranch(t, base, false)
	in := Place{Inside: true}
	check := func(path string, follow bool, want Resolved) {
		t.Helper()
		got, err := b.Walk(in, path, follow)
		if err != nil {
			t.Errorf("walk %q: %v", path, err)
			return
		}
		got.Entry = Entry{}
		if got != want {
			t.Errorf("walk %q: %+v, want %+v", path, got, want)
		}
	}
	check("dir/sub/c.txt", true, Resolved{Inside: true, Rel: "dir/sub/c.txt", Exists: true})
	check("link", true, Resolved{Inside: true, Rel: "a.txt", Exists: true})
	check("link", false, Resolved{Inside: true, Rel: "link", Exists: true})
	check("dir/../a.txt", true, Resolved{Inside: true, Rel: "a.txt", Exists: true})
	check("abs", true, Resolved{Abs: "/etc/hostname"})
	check("../x", true, Resolved{Abs: filepath.Join(filepath.Dir(w), "x")})
	check(w+"/dir/b.txt", true, Resolved{Inside: true, Rel: "dir/b.txt", Exists: true})
	check("/usr/bin", true, Resolved{Abs: "/usr/bin"})
	check("dir/nothing", true, Resolved{Inside: true, Rel: "dir/nothing"})
	if _, err := b.Walk(in, "nothing/x", true); !errors.Is(err, unix.ENOENT) {
		t.Errorf("walk through a missing directory: %v", err)
	}
	if _, err := b.Walk(in, "a.txt/x", true); !errors.Is(err, unix.ENOTDIR) {
		t.Errorf("walk through a file: %v", err)
	}
	// A symlink made in the branch, relative and absolute, leading in.
	b.Symlink(w+"/dir", "absin")
	b.Symlink("dir/sub", "relin")
	check("absin/b.txt", true, Resolved{Inside: true, Rel: "dir/b.txt", Exists: true, Differs: true, ViaDiffers: true})
	check("relin/c.txt", true, Resolved{Inside: true, Rel: "dir/sub/c.txt", Exists: true, Differs: true, ViaDiffers: true})
	// A changed file differs; so does a deleted one.
	write(t, b, "dir/b.txt", unix.O_APPEND, "!")
	check("dir/b.txt", true, Resolved{Inside: true, Rel: "dir/b.txt", Exists: true, Differs: true})
	check("dir/sub/c.txt", true, Resolved{Inside: true, Rel: "dir/sub/c.txt", Exists: true})
	b.Unlink("a.txt")
	check("a.txt", true, Resolved{Inside: true, Rel: "a.txt", Differs: true})
	// A loop.
	b.Symlink("loop", "loop")
	if _, err := b.Walk(in, "loop", true); !errors.Is(err, unix.ELOOP) {
		t.Errorf("walk of a loop: %v", err)
	}
}

// TestPermissions: the program's rights decide, on the lower entry before
// anything is copied.
func TestPermissions(t *testing.T) {
	b, w := newBranch(t, base, false)
	os.Chmod(filepath.Join(w, "dir/b.txt"), 0o444)
	os.Chmod(filepath.Join(w, "empty"), 0o555)
	unprivileged(t, func() {
		_, err := b.Open("dir/b.txt", unix.O_WRONLY, 0)
		wantErr(t, "write-open of a read-only file", err, unix.EACCES)
		_, err = b.Open("empty/x", unix.O_WRONLY|unix.O_CREAT, 0o644)
		wantErr(t, "create in a read-only directory", err, unix.EACCES)
		wantErr(t, "truncate of a read-only file", b.Truncate("dir/b.txt", 0), unix.EACCES)
	})
	if e, _ := b.Lstat("dir/b.txt"); e.Layer != Lower {
		t.Errorf("a refused write copied the file up")
	}
}

// unprivileged runs fn with the calling thread's effective capabilities
// cleared, as the handlers run the program's calls.
func unprivileged(t *testing.T, fn func()) {
	t.Helper()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var caps [2]unix.CapUserData
	if err := unix.Capget(&hdr, &caps[0]); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		lockThread()
		none := caps
		none[0].Effective, none[1].Effective = 0, 0
		if err := unix.Capset(&hdr, &none[0]); err != nil {
			t.Error(err)
			return
		}
		fn()
		// The thread dies with its goroutine (locked, never unlocked).
	}()
	<-done
}

// TestLazyBranch: a branch that only reads makes nothing on disk, and its
// commit changes nothing; the first change makes its directory.
func TestLazyBranch(t *testing.T) {
	top := t.TempDir()
	w := filepath.Join(top, "work")
	os.Mkdir(w, 0o755)
	base.make(t, w)
	before := snapshot(t, w)
	store := filepath.Join(top, "storage")
	b, err := Create(Options{Workdir: w, Base: store})
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, b, "dir/sub/c.txt"); got != "gamma" || len(names(t, b, "")) != 5 {
		t.Errorf("reads of a fresh branch: %q %v", got, names(t, b, ""))
	}
	if _, err := os.Stat(store); !os.IsNotExist(err) || b.Materialized() {
		t.Errorf("a branch that only read made its storage: %v", err)
	}
	if ch, err := b.Commit(); err != nil || len(ch) != 0 {
		t.Errorf("commit of nothing: %v %v", ch, err)
	}
	sameSnapshot(t, "workdir", snapshot(t, w), before)

	b, _ = Create(Options{Workdir: w, Base: store})
	defer b.Close()
	write(t, b, "x", unix.O_CREAT, "x")
	if !b.Materialized() || !strings.HasPrefix(b.Dir(), store+"/") {
		t.Errorf("after a change: %q", b.Dir())
	}
}
