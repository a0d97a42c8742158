//go:build linux

package sandlock_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sandlock-go/sandlock"
)

// Deterministic runs (issue 15): sorted directory listings.

// bigDir makes a directory of n files created in a random order, and
// returns it with the sorted names.
func bigDir(t *testing.T, n int) (string, []string) {
	t.Helper()
	dir := tempDir(t)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("f%05d-%x", i, rand.Uint32())
	}
	for _, i := range rand.Perm(n) {
		if err := os.WriteFile(filepath.Join(dir, names[i]), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(names)
	return dir, names
}

// listProgram lists a directory with raw getdents64 (or, with "legacy",
// getdents) calls into a buffer of the given size, one name per line.
const listProgram = `
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
	int fd = open(argv[1], O_RDONLY | O_DIRECTORY);
	int size = atoi(argv[2]);
	int legacy = argc > 3;
	char *buf = malloc(size);
	long calls = 0;
	for (;;) {
		long n = syscall(legacy ? SYS_getdents : SYS_getdents64, fd, buf, size);
		if (n < 0) { perror("getdents"); return 1; }
		if (n == 0) break;
		calls++;
		for (long off = 0; off < n;) {
			unsigned short reclen = *(unsigned short *)(buf + off + 16);
			const char *name = buf + off + (legacy ? 18 : 19);
			if (strcmp(name, ".") && strcmp(name, "..")) printf("%s\n", name);
			off += reclen;
		}
	}
	fprintf(stderr, "%ld calls\n", calls);
	return 0;
}
`

// A directory larger than any buffer, read with small buffers over
// thousands of calls, lists sorted and complete, the same in every run,
// with getdents64 and the legacy getdents; ls and Python agree. Without
// the flag the filesystem's order is not sorted (the test proves
// something).
func TestDeterministicDirsLarge(t *testing.T) {
	prog := cProgram(t, "listdir", listProgram)
	dir, names := bigDir(t, 5000)
	want := strings.Join(names, "\n") + "\n"
	sb := base()
	sb.FSReadable = append(sb.FSReadable, filepath.Dir(prog), dir)
	sb.DeterministicDirs = true
	for _, args := range [][]string{{"120"}, {"32768"}, {"100", "legacy"}} {
		res := run(t, sb, append([]string{prog, dir}, args...)...)
		if res.ExitCode != 0 || string(res.Stdout) != want {
			t.Errorf("buffer %v: exit %d, %d bytes (want %d) sorted=%v, stderr %q", args, res.ExitCode, len(res.Stdout), len(want),
				slices.IsSorted(strings.Fields(string(res.Stdout))), res.Stderr)
		}
	}
	if out := runOut(t, sb, "ls", "-f", "-A", dir); out != want {
		t.Errorf("ls -f: %d bytes, sorted=%v", len(out), slices.IsSorted(strings.Fields(out)))
	}
	if out := runOut(t, sb, python, "-c", "import os, sys; print('\\n'.join(os.listdir(sys.argv[1])))", dir); out != want {
		t.Errorf("os.listdir: %d bytes, sorted=%v", len(out), slices.IsSorted(strings.Fields(out)))
	}
	sb.DeterministicDirs = false
	res := run(t, sb, prog, dir, "32768")
	got := strings.Fields(string(res.Stdout))
	if len(got) != len(names) || slices.IsSorted(got) {
		t.Errorf("without the flag: %d names, sorted=%v: the test proves nothing", len(got), slices.IsSorted(got))
	}
}

// seekProgram walks a directory with readdir, telldir, seekdir and
// rewinddir; a file created after the first read shows after a rewind.
const seekProgram = `
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *next(DIR *d) {
	struct dirent *e;
	while ((e = readdir(d)) && (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))) {}
	return e ? e->d_name : "(end)";
}

int main(int argc, char **argv) {
	DIR *d = opendir(argv[1]);
	for (int i = 0; i < 3; i++) printf("%s ", next(d));
	long pos = telldir(d);
	char a[256], b[256];
	strcpy(a, next(d));
	strcpy(b, next(d));
	seekdir(d, pos);
	printf("| %s %s = %s ", a, b, next(d));
	printf("%s ", next(d));
	char path[4096];
	snprintf(path, sizeof path, "%s/0new", argv[1]);
	close(open(path, O_CREAT | O_WRONLY, 0644));
	rewinddir(d);
	printf("| %s\n", next(d));
	return 0;
}
`

// telldir and seekdir come back to the same entry; rewinddir reads the
// directory afresh, as it would natively.
func TestDeterministicDirsSeek(t *testing.T) {
	prog := cProgram(t, "seekdir", seekProgram)
	dir := tempDir(t)
	for _, n := range []string{"e", "c", "a", "d", "b", "f"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o644)
	}
	sb := base()
	sb.FSReadable = append(sb.FSReadable, filepath.Dir(prog))
	sb.FSWritable = []string{dir}
	sb.DeterministicDirs = true
	out := runOut(t, sb, prog, dir)
	if want := "a b c | d e = d e | 0new\n"; out != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

// errorsProgram makes the getdents64 calls the kernel refuses.
const errorsProgram = `
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static void try(const char *what, int fd, void *buf, int size) {
	long r = syscall(SYS_getdents64, fd, buf, size);
	printf("%s: %ld %s\n", what, r, r < 0 ? strerror(errno) : "");
}

int main(int argc, char **argv) {
	char buf[4096];
	try("regular file", open(argv[2], O_RDONLY), buf, sizeof buf);
	try("O_PATH", open(argv[1], O_PATH | O_DIRECTORY), buf, sizeof buf);
	try("bad fd", 999, buf, sizeof buf);
	try("tiny buffer", open(argv[1], O_RDONLY | O_DIRECTORY), buf, 8);
	void *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	try("read-only buffer", open(argv[1], O_RDONLY | O_DIRECTORY), ro, 4096);
	int fd = open(argv[1], O_RDONLY | O_DIRECTORY);
	while (syscall(SYS_getdents64, fd, buf, sizeof buf) > 0) {}
	try("at the end", fd, buf, sizeof buf);
	return 0;
}
`

// What the kernel refuses is refused alike with the flag.
func TestDeterministicDirsErrors(t *testing.T) {
	prog := cProgram(t, "direrrors", errorsProgram)
	dir := tempDir(t)
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o644)
	mk := func(on bool) *sandlock.Sandbox {
		sb := base()
		sb.FSReadable = append(sb.FSReadable, filepath.Dir(prog), dir)
		sb.DeterministicDirs = on
		return sb
	}
	native := runOut(t, mk(false), prog, dir, filepath.Join(dir, "file"))
	sorted := runOut(t, mk(true), prog, dir, filepath.Join(dir, "file"))
	if native != sorted {
		t.Errorf("native:\n%s\nsorted:\n%s", native, sorted)
	}
	for _, want := range []string{"regular file: -1 Not a directory", "O_PATH: -1 Bad file descriptor", "bad fd: -1 Bad file descriptor",
		"tiny buffer: -1 Invalid argument", "read-only buffer: -1 Bad address", "at the end: 0"} {
		if !strings.Contains(sorted, want+"\n") && !strings.Contains(sorted, want+" \n") {
			t.Errorf("missing %q in:\n%s", want, sorted)
		}
	}
}

// The CLI flag and the profile key.
func TestDeterministicDirsCLI(t *testing.T) {
	dir, names := bigDir(t, 50)
	want := strings.Join(names, "\n") + "\n"
	code, out, stderr := cli(t, append(append([]string{"run", "--deterministic-dirs", "-r", dir}, readArgs()...), "--", "ls", "-f", "-A", dir)...)
	if code != 0 || out != want {
		t.Errorf("--deterministic-dirs: exit %d, sorted=%v, stderr %q", code, slices.IsSorted(strings.Fields(out)), stderr)
	}
	prof := filepath.Join(tempDir(t), "p.toml")
	os.WriteFile(prof, []byte("[determinism]\ndeterministic_dirs = true\n"), 0o644)
	code, out, stderr = cli(t, append(append([]string{"run", "--profile-file", prof, "-r", dir}, readArgs()...), "--", "ls", "-f", "-A", dir)...)
	if code != 0 || out != want {
		t.Errorf("[determinism] deterministic_dirs: exit %d, sorted=%v, stderr %q", code, slices.IsSorted(strings.Fields(out)), stderr)
	}
}
