//go:build linux

package cow

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// mergedSnapshot describes the merged view as snapshot describes a tree,
// plus its hard-link groups.
func mergedSnapshot(t *testing.T, b *Branch) (map[string]string, [][]string) {
	t.Helper()
	out := make(map[string]string)
	groups := make(map[string][]string)
	var walk func(rel string)
	walk = func(rel string) {
		e, err := b.Lstat(rel)
		if err != nil {
			t.Fatalf("merged %s: %v", rel, err)
		}
		st := e.Stat
		key := rel
		if key == "" {
			key = "."
		}
		desc := fmt.Sprintf("mode=%o uid=%d gid=%d", st.Mode, st.Uid, st.Gid)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			desc += fmt.Sprintf(" mtime=%d.%d data=%q", st.Mtim.Sec, st.Mtim.Nsec, read(t, b, rel))
			if st.Nlink > 1 {
				id := fmt.Sprintf("%d/%d", e.Layer, st.Ino)
				groups[id] = append(groups[id], key)
			}
		case unix.S_IFLNK:
			l, _ := b.Readlink(rel)
			desc += " link=" + l
		case unix.S_IFDIR:
			if key != "." {
				desc += fmt.Sprintf(" mtime=%d.%d", st.Mtim.Sec, st.Mtim.Nsec)
			}
			for _, n := range names(t, b, rel) {
				walk(join(rel, n))
			}
		}
		out[key] = desc
	}
	walk("")
	return out, linkGroups(groups)
}

// diskLinks returns the hard-link groups of a tree on disk.
func diskLinks(t *testing.T, root string) [][]string {
	groups := make(map[string][]string)
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().IsRegular() && st.Nlink > 1 {
			rel, _ := filepath.Rel(root, p)
			id := strconv.FormatUint(st.Ino, 10)
			groups[id] = append(groups[id], rel)
		}
		return nil
	})
	return linkGroups(groups)
}

func linkGroups(m map[string][]string) [][]string {
	var out [][]string
	for _, g := range m {
		if len(g) > 1 {
			sort.Strings(g)
			out = append(out, g)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// scenario makes every kind of change in a branch of the base tree.
func scenario(t *testing.T, b *Branch) {
	t.Helper()
	write(t, b, "a.txt", unix.O_APPEND, "+appended")          // modify
	write(t, b, "new.txt", unix.O_CREAT|unix.O_EXCL, "new")   // add
	if err := b.Link("new.txt", "dir/hardlink"); err != nil { // hard link, new
		t.Fatal(err)
	}
	if err := b.Link("dir/b.txt", "b-link"); err != nil { // hard link of a lower file
		t.Fatal(err)
	}
	if err := b.Rename("dir/sub", "renamed-sub", 0); err != nil { // directory rename
		t.Fatal(err)
	}
	if err := b.Unlink("link"); err != nil { // delete a symlink
		t.Fatal(err)
	}
	if err := b.Symlink("renamed-sub/c.txt", "link"); err != nil { // and re-create it elsewhere
		t.Fatal(err)
	}
	if err := b.Rmdir("empty"); err != nil { // delete a directory
		t.Fatal(err)
	}
	write(t, b, "empty", unix.O_CREAT, "now a file") // a file where a directory was
	if err := b.Mkdir("newdir", 0o700); err != nil { // a whole new tree
		t.Fatal(err)
	}
	if err := b.Mkdir("newdir/deeper", 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, b, "newdir/deeper/f", unix.O_CREAT, "deep")
	if err := b.Chmod("dir/b.txt", 0o600); err != nil { // metadata only
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
	fd, err := b.Open("big", unix.O_WRONLY|unix.O_CREAT, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	unix.Write(fd, big)
	unix.Close(fd)
	if err := b.Rename("abs", "dir/abs-moved", 0); err != nil {
		t.Fatal(err)
	}
}

var scenarioChanges = []string{
	"A  b-link", "M  a.txt", "D  abs", "A  big", "M  dir/b.txt", "A  dir/abs-moved", "A  dir/hardlink",
	"D  dir/sub", "D  dir/sub/c.txt", "M  empty", "M  link", "A  new.txt", "A  newdir", "A  newdir/deeper",
	"A  newdir/deeper/f", "A  renamed-sub", "A  renamed-sub/c.txt",
}

func changeLines(cs []Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, string(c.Kind)+"  "+c.Path)
	}
	return out
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	sort.Slice(c, func(i, j int) bool { return c[i][3:] < c[j][3:] })
	return c
}

// TestCommit: after a commit the workdir is the merged view, hard links
// included, with the changes Changes reported; on one filesystem and
// across two.
func TestCommit(t *testing.T) {
	for _, cross := range []bool{false, true} {
		t.Run(fmt.Sprintf("crossFS=%v", cross), func(t *testing.T) {
			b, w := newBranch(t, base, cross)
			scenario(t, b)
			checkIndex(t, b)
			want, wantLinks := mergedSnapshot(t, b)
			changes, err := b.Changes()
			if err != nil {
				t.Fatal(err)
			}
			if got, exp := strings.Join(changeLines(changes), "\n"), strings.Join(sortedCopy(scenarioChanges), "\n"); got != exp {
				t.Errorf("changes:\n%s\nwant:\n%s", got, exp)
			}
			committed, err := b.Commit()
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(committed) != fmt.Sprint(changes) {
				t.Errorf("commit's changes differ from Changes: %v / %v", committed, changes)
			}
			sameSnapshot(t, "workdir after commit", snapshot(t, w), want)
			if got := diskLinks(t, w); fmt.Sprint(got) != fmt.Sprint(wantLinks) {
				t.Errorf("hard links after commit: %v, want %v", got, wantLinks)
			}
			if _, err := os.Stat(b.Dir()); !os.IsNotExist(err) {
				t.Errorf("branch still there after commit: %v", err)
			}
			noLeftovers(t, w, b.Base())
		})
	}
}

// noLeftovers: no temporary of a commit in the workdir, no branch or
// trash in the storage base.
func noLeftovers(t *testing.T, w, storage string) {
	t.Helper()
	filepath.Walk(w, func(p string, fi os.FileInfo, err error) error {
		if strings.HasPrefix(fi.Name(), tempPrefix) {
			t.Errorf("left-over temporary %s", p)
		}
		return nil
	})
	ents, _ := os.ReadDir(storage)
	for _, e := range ents {
		t.Errorf("left in the storage: %s", e.Name())
	}
}

// TestAbort: the workdir is exactly as before, the branch is gone.
func TestAbort(t *testing.T) {
	b, w := newBranch(t, base, false)
	before := snapshot(t, w)
	scenario(t, b)
	if err := b.Abort(); err != nil {
		t.Fatal(err)
	}
	sameSnapshot(t, "workdir after abort", snapshot(t, w), before)
	noLeftovers(t, w, b.Base())
}

// TestKeepAndRecover: a kept branch stays, is reported, and is committed
// by nobody unasked; Abort removes it.
func TestKeepAndRecover(t *testing.T) {
	b, w := newBranch(t, base, false)
	before := snapshot(t, w)
	scenario(t, b)
	if err := b.Keep(); err != nil {
		t.Fatal(err)
	}
	rep, err := Recover(w, []string{b.Base()}, RecoverOptions{})
	if err != nil || len(rep) != 1 || rep[0].State != StateKept {
		t.Fatalf("recover: %+v %v", rep, err)
	}
	sameSnapshot(t, "workdir with a kept branch", snapshot(t, w), before)
	rep, err = Recover(w, []string{b.Base()}, RecoverOptions{Abort: true})
	if err != nil || len(rep) != 1 || rep[0].State != StateRemoved {
		t.Fatalf("recover --abort: %+v %v", rep, err)
	}
	noLeftovers(t, w, b.Base())
}

// faultPoints counts the points of a commit of the scenario.
func faultPoints(t *testing.T, cross bool) []string {
	b, _ := newBranch(t, base, cross)
	scenario(t, b)
	var points []string
	FaultHook = func(p string) { points = append(points, p) }
	defer func() { FaultHook = nil }()
	if _, err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	return points
}

type crash struct{}

// TestCommitInterrupted: a commit stopped at each of its points, then
// recovered, leaves the workdir exactly as an uninterrupted one, with no
// temporary file and no branch left; and before recovery, each file of
// the workdir is its old or its new version.
func TestCommitInterrupted(t *testing.T) {
	for _, cross := range []bool{false, true} {
		points := faultPoints(t, cross)
		if len(points) < 10 {
			t.Fatalf("only %d fault points", len(points))
		}
		for i, point := range points {
			t.Run(fmt.Sprintf("crossFS=%v/%d:%s", cross, i, point), func(t *testing.T) {
				b, w := newBranch(t, base, cross)
				old := snapshot(t, w)
				scenario(t, b)
				want, wantLinks := mergedSnapshot(t, b)
				n := 0
				FaultHook = func(p string) {
					if n == i {
						panic(crash{})
					}
					n++
				}
				func() {
					defer func() {
						if r := recover(); r != nil {
							if _, ok := r.(crash); !ok {
								panic(r)
							}
						}
					}()
					b.Commit()
					t.Fatal("the commit was not interrupted")
				}()
				FaultHook = nil
				b.Close()
				checkOldOrNew(t, w, old, want)
				rep, err := Recover(w, []string{b.Base()}, RecoverOptions{})
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range rep {
					if r.Err != nil {
						t.Errorf("recover %s: %v", r.Dir, r.Err)
					}
				}
				got := snapshot(t, w)
				if i == 0 {
					// Stopped before the journal: nothing happened, and the
					// branch is left for the user.
					sameSnapshot(t, "workdir", got, old)
					if len(rep) != 1 || rep[0].State != StateLeft {
						t.Errorf("recover: %+v", rep)
					}
					return
				}
				sameSnapshot(t, "workdir after recovery", got, want)
				if l := diskLinks(t, w); fmt.Sprint(l) != fmt.Sprint(wantLinks) {
					t.Errorf("hard links after recovery: %v, want %v", l, wantLinks)
				}
				noLeftovers(t, w, b.Base())
			})
		}
	}
}

// checkOldOrNew: every regular file of the workdir holds its old or its
// new content, whole.
func checkOldOrNew(t *testing.T, w string, old, new map[string]string) {
	t.Helper()
	for rel, desc := range snapshot(t, w) {
		if !strings.Contains(desc, "data=") || strings.HasPrefix(filepath.Base(rel), tempPrefix) {
			continue
		}
		data := desc[strings.Index(desc, "data="):]
		if o, ok := old[rel]; ok && strings.HasSuffix(o, data) {
			continue
		}
		if n, ok := new[rel]; ok && strings.HasSuffix(n, data) {
			continue
		}
		t.Errorf("%s holds neither its old nor its new content: %.80s", rel, data)
	}
}

// TestCommitKilled: the commit's process is SIGKILLed at each point, then
// the commit recovered from another: the same result, nothing torn, no
// leftovers.
func TestCommitKilled(t *testing.T) {
	if dir := os.Getenv("COW_TEST_COMMIT"); dir != "" {
		// The helper: commit the branch and die at the point asked.
		at, _ := strconv.Atoi(os.Getenv("COW_TEST_KILL_AT"))
		n := 0
		FaultHook = func(string) {
			if n == at {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
			n++
		}
		b, err := Open(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		b.Commit()
		os.Exit(0)
	}
	points := faultPoints(t, false)
	for _, i := range []int{1, 2, 3, len(points) / 2, len(points) - 2, len(points) - 1} {
		t.Run(fmt.Sprintf("%d:%s", i, points[i]), func(t *testing.T) {
			b, w := newBranch(t, base, false)
			old := snapshot(t, w)
			scenario(t, b)
			want, _ := mergedSnapshot(t, b)
			dir := b.Dir()
			b.Close()
			cmd := exec.Command(os.Args[0], "-test.run=^TestCommitKilled$")
			cmd.Env = append(os.Environ(), "COW_TEST_COMMIT="+dir, "COW_TEST_KILL_AT="+strconv.Itoa(i))
			out, err := cmd.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("helper: %v\n%s", err, out)
			}
			checkOldOrNew(t, w, old, want)
			if _, err := Recover(w, []string{filepath.Dir(dir)}, RecoverOptions{}); err != nil {
				t.Fatal(err)
			}
			sameSnapshot(t, "workdir after recovery", snapshot(t, w), want)
			noLeftovers(t, w, filepath.Dir(dir))
		})
	}
}

// checkIndex: the branch's indexes of the upper layer are exactly what the
// layer holds.
func checkIndex(t *testing.T, b *Branch) {
	t.Helper()
	dirs, ents := map[string]bool{"": true}, map[string]bool{}
	walkTree(b.upper, "", func(rel string, st *unix.Stat_t) error {
		if isDir(st) {
			dirs[rel] = true
		} else {
			ents[rel] = true
		}
		return nil
	})
	if fmt.Sprint(dirs) != fmt.Sprint(b.upperDir) || fmt.Sprint(ents) != fmt.Sprint(b.upperEnt) {
		t.Errorf("index of the upper layer:\ndirs %v\n  vs %v\nents %v\n  vs %v", b.upperDir, dirs, b.upperEnt, ents)
	}
}
