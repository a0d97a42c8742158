//go:build linux

package sandlock_test

// Tests of fs-deny at the exec stop (issue 13 item 4): what an exec loaded
// is checked by identity before its first instruction, so that neither a
// path swapped against the execve nor an interpreter named by a file
// (#! or PT_INTERP) runs a denied file.

import (
	"bytes"
	"debug/elf"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandlock-go/sandlock"
)

// execRaceSrc: execrace MODE DIR TRIES. A flipper thread swaps what a
// name refers to in a tight loop, between DIR/pub/prog (allowed) and
// DIR/secret/prog (denied), while the main thread starts TRIES children
// that exec that name, one after the other, and counts how each ended:
// "allowed" (exit 0), "denied" (exit 42: the denied program ran),
// "refused" (the exec failed with EACCES), "killed" (SIGKILL), "other".
//
// MODE symlink: the flipper swaps DIR/link and DIR/other (renameat2
// RENAME_EXCHANGE), symlinks to the two programs; a forked child execs
// DIR/link. MODE dirfd: the flipper dup2s a descriptor of DIR/pub or of
// DIR/sym (where "prog" is a symlink to the denied program: the program
// cannot open the denied directory itself) onto one fd number, and a child
// sharing the fd table (clone(CLONE_FILES)) execs "prog" relative to that
// number (execveat).
const execRaceSrc = `#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
static char link_[4096], other[4096], *dir;
static int dirfd_, pub, sym, dirfdMode;
static volatile int stop;
static long flips;
static void *flip(void *a) {
	while (!stop) {
		if (dirfdMode) {
			dup2(pub, dirfd_);
			dup2(sym, dirfd_);
			flips += 2;
		} else if (syscall(SYS_renameat2, AT_FDCWD, link_, AT_FDCWD, other, 2 /* RENAME_EXCHANGE */) == 0)
			flips++;
	}
	return NULL;
}
static int child(void *a) {
	char *argv[] = {"prog", dir, NULL}, *envp[] = {NULL};
	if (dirfdMode)
		syscall(SYS_execveat, dirfd_, "prog", argv, envp, 0);
	else
		execve(link_, argv, envp);
	_exit(errno == EACCES ? 113 : 100);
}
int main(int argc, char **argv) {
	int tries = atoi(argv[3]), allowed = 0, denied = 0, refused = 0, killed = 0, others = 0;
	char p[4096];
	static char stack[1 << 16];
	dir = argv[2];
	dirfdMode = strcmp(argv[1], "dirfd") == 0;
	snprintf(link_, sizeof link_, "%s/link", dir);
	snprintf(other, sizeof other, "%s/other", dir);
	snprintf(p, sizeof p, "%s/pub", dir);
	pub = open(p, O_PATH | O_DIRECTORY);
	snprintf(p, sizeof p, "%s/sym", dir);
	sym = open(p, O_PATH | O_DIRECTORY);
	if (pub < 0 || sym < 0) {
		perror("open");
		return 1;
	}
	dirfd_ = dup(pub);
	pthread_t t;
	pthread_create(&t, NULL, flip, NULL);
	for (int i = 0; i < tries; i++) {
		pid_t pid = dirfdMode ? clone(child, stack + sizeof stack, CLONE_FILES | SIGCHLD, NULL) : fork();
		if (pid == 0)
			child(NULL);
		int st;
		if (pid < 0 || waitpid(pid, &st, 0) != pid) {
			others++;
			continue;
		}
		if (WIFSIGNALED(st) && WTERMSIG(st) == 9)
			killed++;
		else if (!WIFEXITED(st))
			others++;
		else if (WEXITSTATUS(st) == 0)
			allowed++;
		else if (WEXITSTATUS(st) == 42)
			denied++;
		else if (WEXITSTATUS(st) == 113)
			refused++;
		else
			others++;
	}
	stop = 1;
	pthread_join(t, NULL);
	printf("allowed %d denied %d refused %d killed %d other %d flips %ld\n", allowed, denied, refused, killed, others, flips);
	return 0;
}
`

// deniedMarkerSrc is the denied program: it leaves a file in DIR (its
// argument) and exits 42.
const deniedMarkerSrc = `#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
	char p[4096];
	snprintf(p, sizeof p, "%s/denied-ran", argv[1]);
	close(open(p, O_CREAT | O_WRONLY, 0644));
	return 42;
}
`

// TestFSDenyExecRace: a thread swaps what a name refers to — a symlink
// (renamed over), or a directory fd number (dup2'ed over) — between an
// allowed and a denied executable while children exec that name,
// thousands of times. The check before the execve cannot hold (the kernel
// resolves the name again after it), so some execs load the denied file;
// the exec stop kills each of them before its first instruction: the
// denied program never runs (its file never appears), the allowed one
// does.
func TestFSDenyExecRace(t *testing.T) {
	const tries = 3000
	race := cProgram(t, "execrace", execRaceSrc)
	deniedBin := cProgram(t, "deniedmarker", deniedMarkerSrc)
	for _, mode := range []string{"symlink", "dirfd"} {
		t.Run(mode, func(t *testing.T) {
			dir := tempDir(t)
			for _, d := range []string{"pub", "secret", "sym"} {
				must(t, os.Mkdir(filepath.Join(dir, d), 0o755))
			}
			must(t, os.Symlink(filepath.Join(dir, "secret", "prog"), filepath.Join(dir, "sym", "prog")))
			copyFile(t, "/bin/true", filepath.Join(dir, "pub", "prog"), 0o755)
			copyFile(t, deniedBin, filepath.Join(dir, "secret", "prog"), 0o755)
			must(t, os.Symlink(filepath.Join(dir, "pub", "prog"), filepath.Join(dir, "link")))
			must(t, os.Symlink(filepath.Join(dir, "secret", "prog"), filepath.Join(dir, "other")))

			sb := base()
			sb.FSReadable = append(sb.FSReadable, filepath.Dir(race))
			sb.FSWritable = []string{dir}
			sb.FSDenied = []string{filepath.Join(dir, "secret")}
			var logs bytes.Buffer
			sb.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			res := run(t, sb, race, mode, dir, fmt.Sprint(tries))
			if res.ExitCode != 0 {
				t.Fatalf("exit %d: %s", res.ExitCode, res.Stderr)
			}
			var allowed, denied, refused, killed, other, flips int
			if _, err := fmt.Sscanf(string(res.Stdout), "allowed %d denied %d refused %d killed %d other %d flips %d",
				&allowed, &denied, &refused, &killed, &other, &flips); err != nil {
				t.Fatalf("%q: %v", res.Stdout, err)
			}
			t.Logf("%d execs: allowed %d, denied %d, refused before the exec %d, killed at the exec stop %d, other %d; %d flips",
				tries, allowed, denied, refused, killed, other, flips)
			if denied != 0 {
				t.Errorf("the denied program ran %d times", denied)
			}
			if _, err := os.Stat(filepath.Join(dir, "denied-ran")); err == nil {
				t.Error("the denied program left its file")
			}
			if allowed == 0 || refused == 0 {
				t.Errorf("both sides should be reached: allowed %d, refused %d", allowed, refused)
			}
			// dup2 flips millions of times a second: some execs are sure to
			// load the denied file (a fifth of them here); renames through
			// the supervisor flip too slowly for that to be sure.
			if mode == "dirfd" && killed == 0 {
				t.Errorf("no exec loaded the denied program: the race was not exercised")
			}
			if other != 0 {
				t.Errorf("%d execs ended otherwise", other)
			}
			// Each kill says why.
			if n := strings.Count(logs.String(), "killed at exec, before it ran: fs deny: the image was loaded from "+filepath.Join(dir, "secret", "prog")+", which is denied"); n != killed {
				t.Errorf("%d kills logged for %d killed; log:\n%.2000s", n, killed, logs.String())
			}
		})
	}
}

// TestFSDenyExecRaceUnprivileged: the dup2 race through the CLI as nobody:
// the supervisor, of the same unprivileged user, checks every image.
func TestFSDenyExecRaceUnprivileged(t *testing.T) {
	const tries = 2000
	race := cProgram(t, "execrace", execRaceSrc)
	deniedBin := cProgram(t, "deniedmarker", deniedMarkerSrc)
	dir := tempDir(t)
	for _, d := range []string{"pub", "secret", "sym"} {
		must(t, os.Mkdir(filepath.Join(dir, d), 0o755))
	}
	must(t, os.Symlink(filepath.Join(dir, "secret", "prog"), filepath.Join(dir, "sym", "prog")))
	copyFile(t, "/bin/true", filepath.Join(dir, "pub", "prog"), 0o755)
	copyFile(t, deniedBin, filepath.Join(dir, "secret", "prog"), 0o755)
	flags := append(readArgs(), "-r", filepath.Dir(race), "-w", dir, "--fs-deny", filepath.Join(dir, "secret"))
	code, stdout, stderr := cliAs(t, nobody, cliRunArgs(flags, race, "dirfd", dir, fmt.Sprint(tries))...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var allowed, denied, refused, killed, other, flips int
	if _, err := fmt.Sscanf(stdout, "allowed %d denied %d refused %d killed %d other %d flips %d",
		&allowed, &denied, &refused, &killed, &other, &flips); err != nil {
		t.Fatalf("%q: %v", stdout, err)
	}
	t.Logf("as nobody, %d execs: allowed %d, denied %d, refused before the exec %d, killed at the exec stop %d, other %d; %d flips",
		tries, allowed, denied, refused, killed, other, flips)
	if denied != 0 {
		t.Errorf("the denied program ran %d times", denied)
	}
	if _, err := os.Stat(filepath.Join(dir, "denied-ran")); err == nil {
		t.Error("the denied program left its file")
	}
	if allowed == 0 || refused == 0 || killed == 0 || other != 0 {
		t.Errorf("want every side reached and nothing else: allowed %d, refused %d, killed %d, other %d\nstderr: %.2000s", allowed, refused, killed, other, stderr)
	}
	if n := strings.Count(stderr, "which is denied"); n != killed {
		t.Errorf("%d kills reported for %d killed", n, killed)
	}
}

// TestFSDenyExecInterpreter: the files an exec loads by a path that the
// binary or script names — a #! interpreter, an ELF program interpreter
// (PT_INTERP) — are checked at the exec stop: a denied one is killed before
// it runs; an allowed one runs.
func TestFSDenyExecInterpreter(t *testing.T) {
	dir := tempDir(t)
	for _, d := range []string{"pub", "secret"} {
		must(t, os.Mkdir(filepath.Join(dir, d), 0o755))
	}
	// #!: a script in an allowed place naming a denied interpreter.
	copyFile(t, "/bin/sh", filepath.Join(dir, "secret", "sh"), 0o755)
	copyFile(t, "/bin/sh", filepath.Join(dir, "pub", "sh"), 0o755)
	for _, d := range []string{"pub", "secret"} {
		script := fmt.Sprintf("#!%s\necho ran > %s/%s-script-ran\n", filepath.Join(dir, d, "sh"), dir, d)
		must(t, os.WriteFile(filepath.Join(dir, d+"-interp.sh"), []byte(script), 0o755))
	}
	// PT_INTERP: a program whose dynamic loader is a copy in a denied
	// place.
	ldso, err := filepath.EvalSymlinks(elfInterpOf(t, "/bin/true"))
	must(t, err)
	for _, d := range []string{"pub", "secret"} {
		copyFile(t, ldso, filepath.Join(dir, d, "ld.so"), 0o755)
		src := filepath.Join(dir, d+".c")
		must(t, os.WriteFile(src, []byte(fmt.Sprintf(`#include <stdio.h>
int main(void) { FILE *f = fopen("%s/%s-ldso-ran", "w"); return f == NULL; }
`, dir, d)), 0o644))
		out, err := exec.Command("gcc", "-o", filepath.Join(dir, d+"-ldso"), "-Wl,--dynamic-linker="+filepath.Join(dir, d, "ld.so"), src).CombinedOutput()
		if err != nil {
			t.Fatalf("gcc: %v\n%s", err, out)
		}
	}
	sb := base()
	sb.FSWritable = []string{dir}
	sb.FSDenied = []string{filepath.Join(dir, "secret")}
	sb.Logger = slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))
	for _, tc := range []struct {
		prog, marker string
		runs         bool
	}{
		{"pub-interp.sh", "pub-script-ran", true},
		{"secret-interp.sh", "secret-script-ran", false},
		{"pub-ldso", "pub-ldso-ran", true},
		{"secret-ldso", "secret-ldso-ran", false},
	} {
		res := run(t, sb, filepath.Join(dir, tc.prog))
		_, err := os.Stat(filepath.Join(dir, tc.marker))
		if tc.runs && (res.ExitCode != 0 || err != nil) {
			t.Errorf("%s: exit %d (%v), marker %v; stderr %s", tc.prog, res.ExitCode, res.Reason, err, res.Stderr)
		}
		if !tc.runs && (res.Reason != sandlock.ReasonKilled || err == nil) {
			t.Errorf("%s: %v exit %d, marker %v: want killed before it ran", tc.prog, res.Reason, res.ExitCode, err)
		}
	}
}

// elfInterpOf returns a binary's program interpreter (PT_INTERP).
func elfInterpOf(t *testing.T, path string) string {
	t.Helper()
	f, err := elf.Open(path)
	must(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			_, err := p.ReadAt(b, 0)
			must(t, err)
			return strings.TrimRight(string(b), "\x00")
		}
	}
	t.Fatalf("%s has no program interpreter", path)
	return ""
}

// TestFSDenyExecUndumpable: an image the kernel made undumpable (an
// execute-only binary run by a user who cannot read it) cannot be
// inspected by a supervisor of the same user without CAP_SYS_PTRACE: under
// fs-deny it is killed before it runs, with a message that says why (the
// check fails closed). As root, whose supervisor can inspect it, it runs.
func TestFSDenyExecUndumpable(t *testing.T) {
	xonly := executeOnly(t, "/bin/true")
	denied := tempDir(t)
	grants := append(readArgs(), "-r", filepath.Dir(xonly), "--fs-deny", denied)
	cmd := []string{"/bin/sh", "-c", xonly + "; echo status $?"}
	code, stdout, stderr := cliAs(t, nobody, cliRunArgs(grants, cmd...)...)
	if code != 0 || strings.TrimSpace(stdout) != "status 137" {
		t.Errorf("execute-only binary under fs-deny as nobody: exit %d, stdout %q, want status 137 (killed)\nstderr: %s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "killed at exec, before it ran: fs deny: cannot check the file it executes") || !strings.Contains(stderr, "undumpable") {
		t.Errorf("the message does not say why: %q", stderr)
	}
	code, stdout, stderr = cli(t, cliRunArgs(grants, cmd...)...)
	if code != 0 || strings.TrimSpace(stdout) != "status 0" {
		t.Errorf("execute-only binary under fs-deny as root: exit %d, stdout %q\nstderr: %s", code, stdout, stderr)
	}
	// Without fs-deny nothing needs inspecting: it runs, as nobody too.
	code, stdout, stderr = cliAs(t, nobody, cliRunArgs(append(readArgs(), "-r", filepath.Dir(xonly)), cmd...)...)
	if code != 0 || strings.TrimSpace(stdout) != "status 0" {
		t.Errorf("execute-only binary without fs-deny as nobody: stdout %q\nstderr: %s", stdout, stderr)
	}
}
