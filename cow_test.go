//go:build linux

package sandlock_test

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock"
)

// Tests of the copy-on-write workdir (issue 18), in real sandboxes: every
// semantic inside the sandbox and after the commit, abort and keep, the
// supervisor killed during the run and during the commit, dry runs,
// MaxDisk, and what the program can never reach (the workdir itself, the
// branch storage).

// cowTree makes a project directory for a test: files, a nested
// directory, a symlink, and a parent of its own (the branch storage goes
// beside the workdir).
func cowTree(t *testing.T) string {
	t.Helper()
	top := tempDir(t)
	w := filepath.Join(top, "project")
	for p, data := range map[string]string{
		"a.txt":         "alpha\n",
		"b.txt":         "beta\n",
		"c.txt":         "gamma\n",
		"a-copy.txt":    "old copy\n",
		"dir/sub/d.txt": "delta\n",
		"dir/e.txt":     "epsilon\n",
		"full/x":        "x\n",
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(w, p)), 0o777)
		if err := os.WriteFile(filepath.Join(w, p), []byte(data), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("a.txt", filepath.Join(w, "link"))
	filepath.Walk(top, func(p string, fi os.FileInfo, err error) error {
		// Everyone's, for the tests run as nobody.
		if fi.IsDir() {
			os.Chmod(p, 0o777)
		} else if fi.Mode().IsRegular() {
			os.Chmod(p, 0o666)
		}
		return nil
	})
	return w
}

// cowSnapshot describes a tree: every entry's type, mode, owner, size,
// content or link target, and times; hard links share an inode tag.
func cowSnapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	inodes := map[uint64]string{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		desc := fmt.Sprintf("mode=%o uid=%d gid=%d mtime=%d.%09d", st.Mode, st.Uid, st.Gid, st.Mtim.Sec, st.Mtim.Nsec)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, _ := os.ReadFile(p)
			desc += fmt.Sprintf(" data=%q", b)
			if st.Nlink > 1 {
				if first, ok := inodes[st.Ino]; ok {
					desc += " linked-to=" + first
				} else {
					inodes[st.Ino] = rel
				}
			}
		case unix.S_IFLNK:
			l, _ := os.Readlink(p)
			desc += " link=" + l
		}
		out[rel] = desc
		return nil
	})
	return out
}

func cowSame(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	var diffs []string
	for k, v := range want {
		if got[k] != v {
			diffs = append(diffs, fmt.Sprintf("%s: %q, want %q", k, got[k], v))
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: unexpected %q", k, v))
		}
	}
	sort.Strings(diffs)
	for _, d := range diffs {
		t.Errorf("%s: %s", what, d)
	}
}

// cowBox is base() with the workdir.
func cowBox(w string) *sandlock.Sandbox {
	sb := base()
	sb.Workdir = w
	return sb
}

// storageOf returns the branch storage base beside the workdir.
func storageOf(w string) string { return filepath.Join(filepath.Dir(w), ".sandlock-cow") }

// branchesIn lists the branch directories in a storage base.
func branchesIn(base string) []string {
	ents, _ := os.ReadDir(base)
	var out []string
	for _, e := range ents {
		out = append(out, filepath.Join(base, e.Name()))
	}
	return out
}

// cowScript exercises every semantic of the merged view; each line of its
// output is checked. It runs in the workdir, which it finds in $W.
const cowScript = `
set -e
cat a.txt
echo more >> a.txt
cat a.txt
ls | tr '\n' ' '; echo
mv dir renamed
ls renamed | tr '\n' ' '; echo
cat renamed/sub/d.txt
echo over > over.txt
mv over.txt a-copy.txt
cat a-copy.txt
rm b.txt
echo again > b.txt
cat b.txt
rmdir full 2>&1 || true
rm full/x
rmdir full && echo full-removed
(set -C; echo x > a.txt) 2>/dev/null || echo excl-refused
ln a.txt hard
echo via-hard >> hard
tail -1 a.txt
ln -s a.txt rel
ln -s "$W/b.txt" abs
cat rel abs
chmod 600 a.txt
stat -c %a a.txt
touch -d '2001-02-03 04:05:06 UTC' c.txt
stat -c %Y c.txt
exec 3<c.txt
rm c.txt
cat <&3
test -e c.txt || echo c-gone
printf '#!/bin/sh\necho script-ran\n' > run.sh
chmod +x run.sh
./run.sh
cp /bin/true mytrue
./mytrue && echo binary-ran
mkdir -p new/deeper
cd new/deeper
pwd
echo inside > f
cd ../..
cat new/deeper/f
mkdir spot
mv -T renamed/sub spot
cat spot/d.txt
test -e renamed/sub || echo sub-moved-over-spot
`

var cowScriptOut = []string{
	"alpha", "alpha", "more", "a-copy.txt a.txt b.txt c.txt dir full link ", "e.txt sub ", "delta", "over",
	"again", "rmdir: failed to remove 'full': Directory not empty", "full-removed", "excl-refused", "via-hard",
	"alpha", "more", "via-hard", "again", "600", "981173106", "gamma", "c-gone", "script-ran", "binary-ran", "%W/new/deeper", "inside",
	"delta", "sub-moved-over-spot",
}

// cowScriptAfter is the workdir after a commit of cowScript (without the
// files whose metadata varies).
func checkAfterScript(t *testing.T, w string) {
	t.Helper()
	want := map[string]string{
		"a.txt":         "alpha\nmore\nvia-hard\n",
		"hard":          "alpha\nmore\nvia-hard\n",
		"a-copy.txt":    "over\n",
		"b.txt":         "again\n",
		"spot/d.txt":    "delta\n",
		"renamed/e.txt": "epsilon\n",
		"new/deeper/f":  "inside\n",
		"run.sh":        "#!/bin/sh\necho script-ran\n",
	}
	for p, data := range want {
		b, err := os.ReadFile(filepath.Join(w, p))
		if err != nil || string(b) != data {
			t.Errorf("after commit, %s: %q %v, want %q", p, b, err, data)
		}
	}
	for _, p := range []string{"c.txt", "dir", "full", "renamed/sub"} {
		if _, err := os.Lstat(filepath.Join(w, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after commit, %s: %v, want it gone", p, err)
		}
	}
	var a, h unix.Stat_t
	unix.Stat(filepath.Join(w, "a.txt"), &a)
	unix.Stat(filepath.Join(w, "hard"), &h)
	if a.Ino != h.Ino || a.Nlink != 2 || a.Mode&0o777 != 0o600 {
		t.Errorf("after commit, a.txt and hard: inodes %d %d, links %d, mode %o: want one file, 2 links, 0600", a.Ino, h.Ino, a.Nlink, a.Mode&0o777)
	}
	for p, target := range map[string]string{"rel": "a.txt", "abs": filepath.Join(w, "b.txt")} {
		if l, err := os.Readlink(filepath.Join(w, p)); err != nil || l != target {
			t.Errorf("after commit, %s: %q %v, want a symlink to %s", p, l, err, target)
		}
	}
	if fi, err := os.Stat(filepath.Join(w, "mytrue")); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("after commit, mytrue: %v %v", fi, err)
	}
	if _, err := os.Stat(storageOf(w)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the storage is still there after the commit: %v", err)
	}
}

func scriptLines(out []byte, w string) []string {
	return strings.Split(strings.TrimSuffix(strings.ReplaceAll(string(out), w, "%W"), "\n"), "\n")
}

// TestWorkdirSemantics: inside, every semantic of the merged view; the
// real workdir untouched while the program runs; after it exits 0, the
// workdir is what the program saw.
func TestWorkdirSemantics(t *testing.T) {
	w := cowTree(t)
	before := cowSnapshot(t, w)
	sb := cowBox(w)
	sb.Env = map[string]string{"W": w}
	var logb strings.Builder
	var logmu sync.Mutex
	sb.Logger = slog.New(slog.NewTextHandler(lockedWriter{&logmu, &logb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	defer func() {
		if t.Failed() {
			logmu.Lock()
			t.Logf("log:\n%s", logb.String())
			logmu.Unlock()
		}
	}()
	// The program stops after the script until told to go on: the
	// workdir is checked meanwhile.
	proc, err := sb.Popen(sandlock.Stdio{Stdin: sandlock.StdioPiped, Stdout: sandlock.StdioPiped, Stderr: sandlock.StdioPiped},
		"/bin/sh", "-c", cowScript+"echo done\nread go\n")
	if err != nil {
		t.Fatal(err)
	}
	outc := make(chan []byte, 1)
	errc := make(chan []byte, 1)
	go func() { b, _ := readAllOf(proc.Stdout); outc <- b }()
	go func() { b, _ := readAllOf(proc.Stderr); errc <- b }()
	// Wait for "done": read stdout line by line through a second reader.
	time.Sleep(0)
	deadline := time.Now().Add(cliDeadline)
	for time.Now().Before(deadline) {
		if entries := branchesIn(storageOf(w)); len(entries) == 1 {
			if _, err := os.Stat(filepath.Join(entries[0], "upper", "new", "deeper", "f")); err == nil {
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	cowSame(t, "the workdir while the program runs", cowSnapshot(t, w), before)
	proc.Stdin.Write([]byte("go\n"))
	res, err := proc.Wait()
	if err != nil {
		t.Fatal(err)
	}
	out, stderr := <-outc, <-errc
	if res.ExitCode != 0 {
		t.Fatalf("exit %d (%v, signal %d)\nstdout:\n%s\nstderr:\n%s", res.ExitCode, res.Reason, res.Signal, out, stderr)
	}
	got := scriptLines(out, w)
	want := append(append([]string(nil), cowScriptOut...), "done")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("inside the sandbox:\n%s\nwant:\n%s\nstderr:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), stderr)
	}
	checkAfterScript(t, w)
}

func readAllOf(f *os.File) ([]byte, error) {
	var b []byte
	buf := make([]byte, 4096)
	for {
		n, err := f.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			return b, nil
		}
	}
}

// TestWorkdirGit: git init and git commit inside; the repository is whole
// after the commit.
func TestWorkdirGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is needed")
	}
	w := cowTree(t)
	sb := cowBox(w)
	sb.Env = map[string]string{"HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1"}
	res := sh(t, sb, `git init -q repo && cd repo && echo hello > f && git add f &&
git -c user.email=a@b -c user.name=n commit -qm first && echo more >> f && git -c user.email=a@b -c user.name=n commit -qam second &&
git log --format=%s | tr '\n' ' ' && git status --porcelain | wc -l`)
	if res.ExitCode != 0 || strings.TrimSpace(string(res.Stdout)) != "second first 0" {
		t.Fatalf("git inside: exit %d stdout %q stderr %s", res.ExitCode, res.Stdout, res.Stderr)
	}
	out, err := exec.Command("git", "-C", filepath.Join(w, "repo"), "log", "--format=%s").CombinedOutput()
	if err != nil || string(out) != "second\nfirst\n" {
		t.Errorf("git log after commit: %q %v", out, err)
	}
	if out, err := exec.Command("git", "-C", filepath.Join(w, "repo"), "fsck", "--strict").CombinedOutput(); err != nil {
		t.Errorf("git fsck after commit: %v\n%s", err, out)
	}
}

// TestWorkdirAbort: a failing run (the default: abort), and OnExit abort:
// the workdir is unchanged byte for byte and metadata for metadata, and
// the storage is gone.
func TestWorkdirAbort(t *testing.T) {
	for _, tc := range []struct {
		name   string
		exit   string
		onExit sandlock.BranchAction
	}{{"failure", "exit 3", sandlock.BranchActionDefault}, {"abort on success", "true", sandlock.BranchActionAbort}} {
		t.Run(tc.name, func(t *testing.T) {
			w := cowTree(t)
			before := cowSnapshot(t, w)
			sb := cowBox(w)
			sb.OnExit = tc.onExit
			sb.Env = map[string]string{"W": w}
			res := sh(t, sb, cowScript+tc.exit)
			if res.ExitCode != 0 && tc.exit == "true" || res.ExitCode != 3 && tc.exit != "true" {
				t.Fatalf("exit %d: %s", res.ExitCode, res.Stderr)
			}
			cowSame(t, "the workdir after the abort", cowSnapshot(t, w), before)
			if _, err := os.Stat(storageOf(w)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("storage left: %v", err)
			}
		})
	}
}

// TestWorkdirKeep: the branch stays where the log says, the workdir is
// unchanged, and RecoverWorkdir reports it and removes it when asked.
func TestWorkdirKeep(t *testing.T) {
	w := cowTree(t)
	before := cowSnapshot(t, w)
	sb := cowBox(w)
	sb.OnExit = sandlock.BranchActionKeep
	var log strings.Builder
	var mu sync.Mutex
	sb.Logger = slog.New(slog.NewTextHandler(lockedWriter{&mu, &log}, nil))
	res := sh(t, sb, "echo kept > k")
	if res.ExitCode != 0 {
		t.Fatal(string(res.Stderr))
	}
	cowSame(t, "the workdir with a kept branch", cowSnapshot(t, w), before)
	br := branchesIn(storageOf(w))
	if len(br) != 1 || !strings.Contains(log.String(), br[0]) {
		t.Fatalf("branches %v; log %q", br, log.String())
	}
	if b, err := os.ReadFile(filepath.Join(br[0], "upper", "k")); err != nil || string(b) != "kept\n" {
		t.Errorf("the kept branch holds %q %v", b, err)
	}
	reps, err := sandlock.RecoverWorkdir(w, "", false)
	if err != nil || len(reps) != 1 || reps[0].State != "kept" || reps[0].Dir != br[0] {
		t.Fatalf("recover: %+v %v", reps, err)
	}
	reps, err = sandlock.RecoverWorkdir(w, "", true)
	if err != nil || len(reps) != 1 || reps[0].State != "removed" {
		t.Fatalf("recover --abort: %+v %v", reps, err)
	}
	if br := branchesIn(storageOf(w)); len(br) != 0 {
		t.Errorf("branches after recover --abort: %v", br)
	}
	cowSame(t, "the workdir after recover --abort", cowSnapshot(t, w), before)
}

// TestDryRun: the changes are reported, sorted, and nothing is applied,
// whatever OnExit says.
func TestDryRun(t *testing.T) {
	w := cowTree(t)
	before := cowSnapshot(t, w)
	sb := cowBox(w)
	sb.OnExit = sandlock.BranchActionCommit
	dr, err := sb.DryRun(ctxT(t), "/bin/sh", "-c", "echo x >> a.txt; rm b.txt; echo n > new.txt; mkdir d2; rm -r dir; echo out")
	if err != nil {
		t.Fatal(err)
	}
	if dr.ExitCode != 0 || string(dr.Stdout) != "out\n" {
		t.Fatalf("dry run: %+v %s", dr.Result, dr.Stderr)
	}
	var got []string
	for _, c := range dr.Changes {
		got = append(got, string(c.Kind)+"  "+c.Path)
	}
	want := []string{"M  a.txt", "D  b.txt", "D  dir", "D  dir/e.txt", "D  dir/sub", "D  dir/sub/d.txt", "A  d2", "A  new.txt"}
	sort.Slice(want, func(i, j int) bool { return want[i][3:] < want[j][3:] })
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	cowSame(t, "the workdir after a dry run", cowSnapshot(t, w), before)

	if _, err := base().DryRun(ctxT(t), "true"); err == nil || !strings.Contains(err.Error(), "Workdir") {
		t.Errorf("DryRun without Workdir: %v", err)
	}
}

// TestCLIDryRun: --dry-run prints the changes as upstream does, on
// standard error, and changes nothing; without --workdir it is an error.
func TestCLIDryRun(t *testing.T) {
	w := cowTree(t)
	before := cowSnapshot(t, w)
	code, stdout, stderr := cli(t, cliRunArgs(cliGrants("--workdir", w, "--dry-run"), "/bin/sh", "-c", "echo x >> a.txt; rm b.txt; echo n > new.txt; echo out")...)
	if want := "sandlock: dry-run: filesystem changes:\nM  a.txt\nD  b.txt\nA  new.txt\n"; code != 0 || stdout != "out\n" || stderr != want {
		t.Errorf("--dry-run: exit %d stdout %q stderr %q, want %q", code, stdout, stderr, want)
	}
	code, _, stderr = cli(t, cliRunArgs(cliGrants("--workdir", w, "--dry-run"), "true")...)
	if code != 0 || stderr != "sandlock: dry-run: no filesystem changes\n" {
		t.Errorf("--dry-run with no change: exit %d stderr %q", code, stderr)
	}
	code, _, stderr = cli(t, cliRunArgs(cliGrants("--dry-run"), "true")...)
	if code != 1 || stderr != "sandlock: --dry-run requires --workdir\n" {
		t.Errorf("--dry-run without --workdir: exit %d stderr %q", code, stderr)
	}
	cowSame(t, "the workdir after dry runs", cowSnapshot(t, w), before)
}

// TestCLIWorkdirAsNobody: the whole script, its commit, and an abort, as
// an unprivileged user.
func TestCLIWorkdirAsNobody(t *testing.T) {
	w := cowTree(t)
	exec.Command("chown", "-R", "65534:65534", filepath.Dir(w)).Run()
	code, stdout, stderr := cliAs(t, cliNobody, cliRunArgs(cliGrants("--workdir", w, "--env", "W="+w), "/bin/sh", "-c", cowScript)...)
	if code != 0 {
		t.Fatalf("as nobody: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if got := scriptLines([]byte(stdout), w); strings.Join(got, "\n") != strings.Join(cowScriptOut, "\n") {
		t.Errorf("as nobody:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(cowScriptOut, "\n"))
	}
	checkAfterScript(t, w)

	before := cowSnapshot(t, w)
	code, _, stderr = cliAs(t, cliNobody, cliRunArgs(cliGrants("--workdir", w), "/bin/sh", "-c", "rm -rf renamed; echo x > a.txt; exit 5")...)
	if code != 5 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	cowSame(t, "the workdir after an aborted run as nobody", cowSnapshot(t, w), before)
}

// TestCLIStatusAfterCommit: --status-fd is written once the commit is done:
// whoever reads the status line finds the committed workdir.
func TestCLIStatusAfterCommit(t *testing.T) {
	w := cowTree(t)
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(cliBinary, cliRunArgs(cliGrants("--workdir", w, "--status-fd", "3"), "/bin/sh", "-c", "for i in $(seq 200); do echo $i > f$i; done; echo final > a.txt")...)
	cmd.ExtraFiles = []*os.File{wr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	wr.Close()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil || line != "{\"exit_code\":0}\n" {
		t.Fatalf("status: %q %v", line, err)
	}
	// Read at once: no waiting for the CLI to exit.
	if b, err := os.ReadFile(filepath.Join(w, "a.txt")); err != nil || string(b) != "final\n" {
		t.Errorf("a.txt when the status came: %q %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(w, "f200")); err != nil || string(b) != "200\n" {
		t.Errorf("f200 when the status came: %q %v", b, err)
	}
	cmd.Wait()
}

// TestCLISupervisorKilledDuringRun: kill -9 of sandlock while the program
// writes: the program dies with it, the workdir is unchanged, and the
// branch is left for `sandlock cow recover`, which lists it and removes it
// with --abort.
func TestCLISupervisorKilledDuringRun(t *testing.T) {
	for _, as := range []struct {
		name   string
		prefix []string
	}{{"root", nil}, {"nobody", cliNobody}} {
		t.Run(as.name, func(t *testing.T) {
			w := cowTree(t)
			exec.Command("chown", "-R", "65534:65534", filepath.Dir(w)).Run()
			before := cowSnapshot(t, w)
			marker := cliMarker(60)
			argv := append(append([]string(nil), as.prefix...), cliBinary)
			argv = append(argv, cliRunArgs(cliGrants("--workdir", w), "/bin/sh", "-c", "echo x > a.txt; rm b.txt; mkdir n; echo y > n/f; exec sleep "+marker)...)
			cmd := exec.Command(argv[0], argv[1:]...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(cliDeadline)
			for len(cliMarkerProcs(t, marker)) == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			// The CLI itself (setpriv execs it: same pid).
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			for len(cliMarkerProcs(t, marker)) > 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if p := cliMarkerProcs(t, marker); len(p) > 0 {
				t.Errorf("the program outlived its supervisor: %v", p)
			}
			cowSame(t, "the workdir after the supervisor was killed", cowSnapshot(t, w), before)
			code, stdout, stderr := cliAs(t, as.prefix, "cow", "recover", w)
			if code != 0 || !strings.HasPrefix(stdout, "left ") || strings.Count(stdout, "\n") != 1 {
				t.Errorf("cow recover: exit %d stdout %q stderr %q", code, stdout, stderr)
			}
			code, stdout, stderr = cliAs(t, as.prefix, "cow", "recover", "--abort", w)
			if code != 0 || !strings.HasPrefix(stdout, "removed ") {
				t.Errorf("cow recover --abort: exit %d stdout %q stderr %q", code, stdout, stderr)
			}
			if br := branchesIn(storageOf(w)); len(br) != 0 {
				t.Errorf("branches left: %v", br)
			}
			cowSame(t, "the workdir after recover --abort", cowSnapshot(t, w), before)
		})
	}
}

// TestCLICommitKilled: kill -9 of sandlock at many points of a commit of a
// large file and of a tree with renames and hard links, then the next run
// on the workdir completes the commit: each file is its old or its new
// version before, the new one after, and nothing is left behind.
func TestCLICommitKilled(t *testing.T) {
	const script = `set -e
head -c 16777216 /dev/zero | tr '\0' 'n' > big
for i in $(seq 300); do echo "new $i" > "f$i"; done
mv dir renamed
ln a.txt hard
echo more >> hard
rm b.txt
mkdir -p t/u && for i in $(seq 100); do echo $i > t/u/g$i; done
echo done`
	newBig := strings.Repeat("n", 16<<20)
	kills, completed := 0, 0
	for i := 0; i < 12; i++ {
		w := cowTree(t)
		os.WriteFile(filepath.Join(w, "big"), []byte("the old big file\n"), 0o666)
		for j := 1; j <= 300; j += 7 {
			os.WriteFile(filepath.Join(w, "f"+strconv.Itoa(j)), []byte("old "+strconv.Itoa(j)+"\n"), 0o666)
		}
		old := cowSnapshot(t, w)
		cmd := exec.Command(cliBinary, cliRunArgs(cliGrants("--workdir", w), "/bin/sh", "-c", script)...)
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		if line != "done\n" {
			t.Fatalf("the script: %q", line)
		}
		// The program is done: the commit comes. Kill at a point of it
		// that moves with i (the journal's appearance starts the clock).
		var journal string
		deadline := time.Now().Add(cliDeadline)
		for journal == "" && time.Now().Before(deadline) {
			for _, b := range branchesIn(storageOf(w)) {
				if _, err := os.Stat(filepath.Join(b, "journal")); err == nil {
					journal = b
				}
			}
			if cmd.ProcessState != nil {
				break
			}
		}
		time.Sleep(time.Duration(i*i) * 100 * time.Microsecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if journal != "" {
			kills++
		}
		// Before recovery: every file old or new, whole.
		for rel, desc := range cowSnapshot(t, w) {
			if !strings.Contains(desc, "data=") || strings.HasPrefix(filepath.Base(rel), ".sandlock-") {
				continue
			}
			data := desc[strings.Index(desc, "data="):]
			if o, ok := old[rel]; ok && strings.HasSuffix(o, data) {
				continue
			}
			if rel == "big" && data == fmt.Sprintf("data=%q", newBig) {
				continue
			}
			if strings.HasPrefix(rel, "f") || strings.HasPrefix(rel, "t/") || rel == "hard" || rel == "a.txt" || strings.HasPrefix(rel, "renamed") {
				if strings.HasPrefix(data, `data="new `) || strings.HasPrefix(rel, "t/") || rel == "hard" || rel == "a.txt" || strings.HasPrefix(rel, "renamed") {
					continue
				}
			}
			t.Errorf("kill %d: %s holds neither its old nor its new content: %.60s", i, rel, data)
		}
		// The next run on the workdir completes the commit first.
		code, out, stderr := cli(t, cliRunArgs(cliGrants("--workdir", w), "/bin/sh", "-c", "cat f1; wc -c < big")...)
		if code != 0 || out != "new 1\n16777216\n" {
			t.Errorf("kill %d: the next run: exit %d stdout %q stderr %q", i, code, out, stderr)
		}
		if strings.Contains(stderr, "completed an interrupted commit") {
			completed++
		}
		if b, _ := os.ReadFile(filepath.Join(w, "hard")); string(b) != "alpha\nmore\n" {
			t.Errorf("kill %d: hard = %q", i, b)
		}
		var a, h unix.Stat_t
		unix.Stat(filepath.Join(w, "a.txt"), &a)
		unix.Stat(filepath.Join(w, "hard"), &h)
		if a.Ino != h.Ino {
			t.Errorf("kill %d: a.txt and hard are not one file after recovery", i)
		}
		filepath.Walk(w, func(p string, fi os.FileInfo, err error) error {
			if strings.HasPrefix(fi.Name(), ".sandlock-") {
				t.Errorf("kill %d: left-over %s", i, p)
			}
			return nil
		})
		if br := branchesIn(storageOf(w)); len(br) != 0 {
			t.Errorf("kill %d: branches left: %v", i, br)
		}
	}
	t.Logf("%d runs killed during their commit, %d of which the next run completed", kills, completed)
	if kills == 0 || completed == 0 {
		t.Errorf("no commit was interrupted (%d kills, %d completions): the test proved nothing", kills, completed)
	}
}

// TestWorkdirUnreachable: whatever the grants, the program cannot write
// the workdir itself (not even through a symlink placed outside it, which
// the kernel resolves) nor reach the branch storage by name.
func TestWorkdirUnreachable(t *testing.T) {
	w := cowTree(t)
	outside := filepath.Dir(w)
	os.Symlink(filepath.Join(w, "a.txt"), filepath.Join(outside, "link-in"))
	os.Mkdir(filepath.Join(outside, "sibling"), 0o777)
	before := cowSnapshot(t, w)
	sb := &sandlock.Sandbox{FSReadable: []string{"/"}, FSWritable: []string{outside}, Workdir: w}
	sb.OnExit = sandlock.BranchActionAbort
	res := run(t, sb, python, "-c", errnoProbe+`
import os, sys
out = []
w, outside = sys.argv[1], sys.argv[2]
def tryit(name, f):
    try:
        f()
        out.append(name + ":OK")
    except OSError as e:
        out.append(name + ":" + errno.errorcode[e.errno])
tryit("write-through-outside-link", lambda: open(outside + "/link-in", "w").write("x"))
# The first change makes the branch, and its storage beside the workdir.
tryit("write-in-workdir", lambda: open(w + "/a.txt", "a").write("through the branch\n"))
store = outside + "/.sandlock-cow"
tryit("list-storage", lambda: os.listdir(store))
tryit("stat-storage", lambda: os.stat(store))
tryit("sibling-file", lambda: open(outside + "/sibling/f", "w").write("y"))
# The grant on the workdir's parent keeps its rights on every entry but
# the workdir and the storage; a new entry directly in the parent is the
# price of that (Landlock only adds rights, see cow.Carve).
tryit("new-entry-in-parent", lambda: open(outside + "/new", "w").write("y"))
print(" ".join(out))
`, w, outside)
	want := "write-through-outside-link:EACCES write-in-workdir:OK list-storage:EACCES stat-storage:EACCES sibling-file:OK new-entry-in-parent:EACCES"
	if strings.TrimSpace(string(res.Stdout)) != want {
		t.Errorf("got  %s\nwant %s\nstderr: %s", res.Stdout, want, res.Stderr)
	}
	cowSame(t, "the workdir", cowSnapshot(t, w), before)
}

// TestMaxDisk: the upper layer never takes more than MaxDisk. A copy, a
// truncation or a new entry that would pass it fails with ENOSPC; a
// program that writes past it through a descriptor it holds is killed,
// and its branch is never committed.
func TestMaxDisk(t *testing.T) {
	w := cowTree(t)
	os.WriteFile(filepath.Join(w, "big"), make([]byte, 3<<20), 0o666)
	sb := cowBox(w)
	sb.MaxDisk = "2M"
	res := run(t, sb, python, "-c", errnoProbe+`
import os
out = []
def tryit(name, f):
    try:
        f()
        out.append(name + ":OK")
    except OSError as e:
        out.append(name + ":" + errno.errorcode[e.errno])
tryit("small-write", lambda: open("small", "w").write("x" * 1000))
tryit("copy-up-of-3M", lambda: open("big", "a").write("x"))
tryit("truncate-to-3M", lambda: os.truncate("small", 3 << 20))
tryit("read-big", lambda: len(open("big").read()))
print(" ".join(out))
`)
	if got, want := strings.TrimSpace(string(res.Stdout)), "small-write:OK copy-up-of-3M:ENOSPC truncate-to-3M:ENOSPC read-big:OK"; got != want {
		t.Errorf("got  %s\nwant %s\nstderr %s", got, want, res.Stderr)
	}
	if b, err := os.ReadFile(filepath.Join(w, "small")); err != nil || len(b) != 1000 {
		t.Errorf("small after the commit: %d bytes, %v", len(b), err)
	}

	// Writing on and on through one descriptor: killed.
	os.Remove(filepath.Join(w, "small"))
	before := cowSnapshot(t, w)
	var log strings.Builder
	var mu sync.Mutex
	sb.Logger = slog.New(slog.NewTextHandler(lockedWriter{&mu, &log}, nil))
	res = run(t, sb, python, "-c", `
f = open("flood", "wb", buffering=0)
chunk = b"z" * 65536
while True:
    f.write(chunk)
`)
	if res.Reason != sandlock.ReasonKilled {
		t.Errorf("the flooding program: %+v %s", res, res.Stderr)
	}
	mu.Lock()
	msg := log.String()
	mu.Unlock()
	if !strings.Contains(msg, "disk limit exceeded") || !strings.Contains(msg, "over MaxDisk 2M") {
		t.Errorf("log: %s", msg)
	}
	cowSame(t, "the workdir after the flood", cowSnapshot(t, w), before)
	if i := strings.Index(msg, "branch holds "); i >= 0 {
		t.Logf("killed when the branch held %s (quota 2M)", strings.Fields(msg[i+len("branch holds "):])[0])
	}

	// How far past the quota a writer flat out gets: a C program writing
	// 1 MiB at a time, its branch kept to be measured.
	flood := cProgram(t, "cowflood", `
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(void) {
	static char buf[1 << 20];
	memset(buf, 'z', sizeof buf);
	int fd = open("flood", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) return 2;
	for (;;) if (write(fd, buf, sizeof buf) < 0) return 3;
}`)
	sb = cowBox(w)
	sb.FSReadable = append(sb.FSReadable, filepath.Dir(flood))
	sb.MaxDisk = "16M"
	sb.OnError = sandlock.BranchActionKeep
	res = run(t, sb, flood)
	if res.Reason != sandlock.ReasonKilled {
		t.Fatalf("the C flood: %+v %s", res, res.Stderr)
	}
	br := branchesIn(storageOf(w))
	if len(br) != 1 {
		t.Fatalf("branches: %v", br)
	}
	fi, err := os.Stat(filepath.Join(br[0], "upper", "flood"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a writer of 1 MiB chunks was stopped with %d MiB written, %d MiB past the 16 MiB quota", fi.Size()>>20, (fi.Size()-16<<20)>>20)
	if _, err := sandlock.RecoverWorkdir(w, "", true); err != nil {
		t.Fatal(err)
	}
	cowSame(t, "the workdir after the C flood", cowSnapshot(t, w), before)
}

// TestWorkdirPathRace: a thread rewrites the path of an open for writing
// between a file outside the workdir (which the gate leaves to the kernel)
// and one inside it, or a name in the branch storage, thousands of times:
// the kernel never writes the workdir itself nor creates anything in the
// storage, while the allowed file is written.
func TestWorkdirPathRace(t *testing.T) {
	racer := cProgram(t, "cowrace", `
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static char path[4096];
static const char *a, *b;
static volatile int stop;
static void *flip(void *arg) {
	while (!stop) {
		strcpy(path, b);
		strcpy(path, a);
	}
	return NULL;
}
int main(int argc, char **argv) {
	a = argv[1];
	b = argv[2];
	strcpy(path, a);
	pthread_t th;
	pthread_create(&th, NULL, flip, NULL);
	int ok = 0;
	for (int i = 0; i < 5000; i++) {
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			if (write(fd, "EVIL\n", 5) == 5) ok++;
			close(fd);
		}
	}
	stop = 1;
	pthread_join(th, NULL);
	printf("%d\n", ok);
	return 0;
}`)
	w := cowTree(t)
	outside := filepath.Join(filepath.Dir(w), "out")
	os.Mkdir(outside, 0o777)
	before := cowSnapshot(t, w)
	for _, b := range []string{filepath.Join(w, "a.txt"), filepath.Join(storageOf(w), "planted")} {
		sb := cowBox(w)
		sb.FSReadable = append(sb.FSReadable, filepath.Dir(racer))
		sb.FSWritable = []string{outside}
		sb.OnExit = sandlock.BranchActionKeep
		res := run(t, sb, racer, filepath.Join(outside, "target"), b)
		if res.ExitCode != 0 {
			t.Fatalf("racer: %+v %s", res, res.Stderr)
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(res.Stdout)))
		if n == 0 {
			t.Errorf("racing %s: no write succeeded: the allowed side never worked", b)
		}
		if got, err := os.ReadFile(filepath.Join(outside, "target")); err != nil || string(got) != "EVIL\n" {
			t.Errorf("the allowed file: %q %v", got, err)
		}
		t.Logf("racing %s: %d of 5000 opens wrote", b, n)
		cowSame(t, "the workdir during the race", cowSnapshot(t, w), before)
		for _, br := range branchesIn(storageOf(w)) {
			if filepath.Base(br) == "planted" {
				t.Errorf("a file was created in the storage")
			}
		}
		if _, err := sandlock.RecoverWorkdir(w, "", true); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(outside, "target"))
	}
	cowSame(t, "the workdir after the races", cowSnapshot(t, w), before)
}

// TestWorkdirCalls: the calls that take a path or a descriptor of the
// merged view, from Python: O_TMPFILE then linkat, extended attributes,
// fchmod and fstat of a descriptor of the upper layer, /proc/self/fd
// links, directory positions (telldir/seekdir), a symlink made in the
// branch that leads out of the workdir (opened through it), statx, and
// FSDenied inside the workdir.
func TestWorkdirCalls(t *testing.T) {
	w := cowTree(t)
	out := filepath.Join(filepath.Dir(w), "out")
	os.Mkdir(out, 0o777)
	os.WriteFile(filepath.Join(out, "target"), []byte("outside\n"), 0o666)
	os.WriteFile(filepath.Join(w, "secret"), []byte("denied\n"), 0o666)
	sb := cowBox(w)
	sb.FSWritable = []string{out}
	sb.FSDenied = []string{filepath.Join(w, "secret")}
	res := run(t, sb, python, "-c", errnoProbe+`
import os, stat, sys
w, out = sys.argv[1], sys.argv[2]
r = []
def tryit(name, f):
    try:
        v = f()
        r.append(name + ":" + ("OK" if v is None else str(v)))
    except OSError as e:
        r.append(name + ":" + errno.errorcode[e.errno])
# O_TMPFILE, then linked in through /proc/self/fd.
fd = os.open(".", os.O_TMPFILE | os.O_WRONLY, 0o640)
os.write(fd, b"anonymous\n")
# link(2) does not follow the magic link (Linux): linkat with
# AT_SYMLINK_FOLLOW does, as glibc's documentation for O_TMPFILE says.
if libc.linkat(-100, b"/proc/self/fd/%d" % fd, -100, b"linked", 0x400) != 0:
    raise OSError(ctypes.get_errno(), "linkat")
os.close(fd)
tryit("tmpfile", lambda: open("linked").read().strip())
# xattrs on a lower file (copied up) and read back.
tryit("setxattr", lambda: os.setxattr("a.txt", "user.k", b"v1"))
tryit("getxattr", lambda: os.getxattr("a.txt", "user.k").decode())
tryit("listxattr", lambda: ",".join(x for x in os.listxattr("a.txt") if x.startswith("user.")))
# A descriptor of the upper layer: fchmod, fstat, its /proc link.
f = open("new.txt", "w"); f.write("n")
os.fchmod(f.fileno(), 0o604)
tryit("fstat-mode", lambda: oct(os.fstat(f.fileno()).st_mode & 0o777))
tryit("stat-mode", lambda: oct(os.stat("new.txt").st_mode & 0o777))
tryit("fd-link", lambda: os.readlink("/proc/self/fd/%d" % f.fileno()) == w + "/new.txt")
f.close()
# Directory positions in a merged directory.
import ctypes
d = os.scandir(".")
names = sorted(e.name for e in d)
tryit("listing", lambda: " ".join(n for n in names if n in ("a.txt", "linked", "new.txt", "dir")))
# A symlink made in the branch, out of the workdir.
os.symlink(out + "/target", "outlink")
tryit("read-through-outlink", lambda: open("outlink").read().strip())
tryit("write-through-outlink", lambda: open("outlink", "a").write("appended\n") and None)
# statx through the merged view.
tryit("statx-size", lambda: os.stat("linked").st_size)
# FSDenied inside the workdir: neither read, written, renamed nor removed.
tryit("read-denied", lambda: open("secret").read())
tryit("write-denied", lambda: open("secret", "w").write("x"))
tryit("rename-denied", lambda: os.rename("secret", "s2"))
tryit("unlink-denied", lambda: os.unlink("secret"))
print(" ".join(r))
`, w, out)
	want := "tmpfile:anonymous setxattr:OK getxattr:v1 listxattr:user.k fstat-mode:0o604 stat-mode:0o604 fd-link:True " +
		"listing:a.txt dir linked new.txt read-through-outlink:outside write-through-outlink:OK statx-size:10 " +
		"read-denied:EACCES write-denied:EACCES rename-denied:EACCES unlink-denied:EACCES"
	if got := strings.TrimSpace(string(res.Stdout)); got != want {
		t.Errorf("got  %s\nwant %s\nstderr: %s", got, want, res.Stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "target")); string(b) != "outside\nappended\n" {
		t.Errorf("the outside file: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(w, "linked")); string(b) != "anonymous\n" {
		t.Errorf("linked after the commit: %q", b)
	}
	if v, err := unix.Getxattr(filepath.Join(w, "a.txt"), "user.k", make([]byte, 8)); err != nil || v != 2 {
		t.Errorf("the xattr after the commit: %d %v", v, err)
	}
	if b, _ := os.ReadFile(filepath.Join(w, "secret")); string(b) != "denied\n" {
		t.Errorf("the denied file: %q", b)
	}
}

// TestCLIKillRunsOnError: `sandlock kill NAME` ends a run through its
// normal path, so its branch meets OnError: committed when asked.
func TestCLIKillRunsOnError(t *testing.T) {
	w := cowTree(t)
	name := "cow-kill-" + strconv.Itoa(os.Getpid())
	marker := cliMarker(60)
	cmd := exec.Command(cliBinary, cliRunArgs(cliGrants("--name", name, "--workdir", w, "--on-error", "commit"), "/bin/sh", "-c", "echo written > k; exec sleep "+marker)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(cliDeadline)
	for len(cliMarkerProcs(t, marker)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if code, _, stderr := cli(t, "kill", name); code != 0 {
		t.Fatalf("kill: %d %s", code, stderr)
	}
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 137 {
		t.Errorf("the killed run: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(w, "k")); err != nil || string(b) != "written\n" {
		t.Errorf("k after the kill with --on-error commit: %q %v", b, err)
	}
}

// TestMaxDiskMapped: writes through a shared mapping of an upper file make
// no inotify event; the periodic measurement still stops the program, and
// its branch is never committed.
func TestMaxDiskMapped(t *testing.T) {
	w := cowTree(t)
	before := cowSnapshot(t, w)
	mapper := cProgram(t, "cowmapper", `
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
int main(void) {
	size_t n = 64 << 20;
	int fd = open("mapped", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, n) < 0) return 2;
	char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) return 3;
	for (size_t off = 0; off < n; off += 1 << 20) memset(p + off, 'm', 1 << 20);
	for (;;) pause();
}`)
	sb := cowBox(w)
	sb.FSReadable = append(sb.FSReadable, filepath.Dir(mapper))
	sb.MaxDisk = "8M"
	var log strings.Builder
	var mu sync.Mutex
	sb.Logger = slog.New(slog.NewTextHandler(lockedWriter{&mu, &log}, nil))
	res := run(t, sb, mapper)
	mu.Lock()
	msg := log.String()
	mu.Unlock()
	if res.Reason != sandlock.ReasonKilled || !strings.Contains(msg, "disk limit exceeded") || !strings.Contains(msg, "over MaxDisk 8M") {
		t.Errorf("the mapping writer: %+v %s\nlog: %s", res, res.Stderr, msg)
	}
	if i := strings.Index(msg, "branch holds "); i >= 0 {
		t.Logf("a writer through a shared mapping was killed when the branch held %s (quota 8M)", strings.Fields(msg[i+len("branch holds "):])[0])
	}
	cowSame(t, "the workdir after the mapping writer", cowSnapshot(t, w), before)
	if br := branchesIn(storageOf(w)); len(br) != 0 {
		t.Errorf("branches left: %v", br)
	}
}

// TestCLIWorkdirSettings: the workdir's settings without --workdir, and
// --workdir with --no-supervisor, are errors in the terms the user wrote;
// a --fs-storage directory of the user's stays after the commit (only a
// base sandlock chose is removed), and `sandlock cow recover --abort`
// removes the base it chose once empty.
func TestCLIWorkdirSettings(t *testing.T) {
	w := cowTree(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-disk", "1M"}, "sandlock: --max-disk needs --workdir (a copy-on-write workdir)\n"},
		{[]string{"--on-exit", "keep"}, "sandlock: --on-exit needs --workdir (a copy-on-write workdir)\n"},
		{[]string{"--fs-storage", w}, "sandlock: --fs-storage needs --workdir (a copy-on-write workdir)\n"},
		{[]string{"--workdir", w, "--no-supervisor"}, "sandlock: --workdir needs the supervisor, which --no-supervisor turns off\n"},
	} {
		code, _, stderr := cli(t, cliRunArgs(cliGrants(tc.args...), "true")...)
		if code != 1 || stderr != tc.want {
			t.Errorf("%v: exit %d stderr %q, want %q", tc.args, code, stderr, tc.want)
		}
	}

	store := filepath.Join(tempDir(t), "store")
	os.Mkdir(store, 0o700)
	code, _, stderr := cli(t, cliRunArgs(cliGrants("--workdir", w, "--fs-storage", store), "/bin/sh", "-c", "echo s > stored")...)
	if code != 0 {
		t.Fatalf("--fs-storage: exit %d %s", code, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(w, "stored")); err != nil || string(b) != "s\n" {
		t.Errorf("committed through --fs-storage: %q %v", b, err)
	}
	if ents, err := os.ReadDir(store); err != nil || len(ents) != 0 {
		t.Errorf("the --fs-storage directory after the commit: %v %v, want it empty and still there", ents, err)
	}

	code, _, stderr = cli(t, cliRunArgs(cliGrants("--workdir", w, "--on-exit", "keep"), "/bin/sh", "-c", "echo k > kept")...)
	if code != 0 || len(branchesIn(storageOf(w))) != 1 {
		t.Fatalf("keep: exit %d %s; branches %v", code, stderr, branchesIn(storageOf(w)))
	}
	code, stdout, stderr := cli(t, "cow", "recover", "--abort", w)
	if code != 0 || !strings.HasPrefix(stdout, "removed ") {
		t.Errorf("cow recover --abort: exit %d stdout %q stderr %q", code, stdout, stderr)
	}
	if _, err := os.Stat(storageOf(w)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the storage base after recover --abort: %v, want it gone", err)
	}
	if _, err := os.Stat(filepath.Join(w, "kept")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("kept after an aborted branch: %v", err)
	}
}
