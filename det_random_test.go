//go:build linux

package sandlock_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sandlock-go/sandlock"
)

// Deterministic runs (issue 15): the randomness of RandomSeed.

// seeded is base() with RandomSeed (nil: none) and a clean environment
// (no PYTHONHASHSEED from the caller), reading extra paths.
func seeded(seed *uint64, extra ...string) *sandlock.Sandbox {
	sb := base()
	sb.RandomSeed = seed
	sb.CleanEnv = true
	sb.FSReadable = append(sb.FSReadable, extra...)
	return sb
}

func seed(n uint64) *uint64 { return &n }

// runOut runs cmd in sb and returns its stdout, failing on a non-zero exit.
func runOut(t *testing.T, sb *sandlock.Sandbox, cmd ...string) string {
	t.Helper()
	res := run(t, sb, cmd...)
	if res.ExitCode != 0 {
		t.Fatalf("%q: exit %d (%v)\nstdout: %s\nstderr: %s", cmd, res.ExitCode, res.Reason, res.Stdout, res.Stderr)
	}
	return string(res.Stdout)
}

// sameAndDifferent runs cmd twice with seed 42, once with seed 43 and twice
// without a seed: the first two agree and differ from the third; the two
// unseeded runs differ from each other (real randomness).
func sameAndDifferent(t *testing.T, what string, mk func(seed *uint64) *sandlock.Sandbox, cmd ...string) string {
	t.Helper()
	a, b := runOut(t, mk(seed(42)), cmd...), runOut(t, mk(seed(42)), cmd...)
	c := runOut(t, mk(seed(43)), cmd...)
	u1, u2 := runOut(t, mk(nil), cmd...), runOut(t, mk(nil), cmd...)
	if a != b {
		t.Errorf("%s: seed 42 twice differs:\n%s\n%s", what, a, b)
	}
	if a == c {
		t.Errorf("%s: seeds 42 and 43 agree:\n%s", what, a)
	}
	if u1 == u2 {
		t.Errorf("%s: two unseeded runs agree (the test proves nothing):\n%s", what, u1)
	}
	if strings.TrimSpace(a) == "" {
		t.Errorf("%s: no output", what)
	}
	return a
}

// od of /dev/urandom and /dev/random, Python's os.urandom and its string
// hash (seeded by getrandom at start-up): the same bytes for the same seed.
func TestRandomSeedRepeatable(t *testing.T) {
	mk := func(s *uint64) *sandlock.Sandbox { return seeded(s) }
	sameAndDifferent(t, "od", mk, "/bin/sh", "-c", "od -An -N32 -tx1 /dev/urandom; od -An -N32 -tx1 /dev/random")
	sameAndDifferent(t, "python", mk, python, "-c", `
import os
print(os.urandom(32).hex(), hash("x"), open("/dev/urandom", "rb").read(16).hex())`)
}

// getrandomProgram calls getrandom with every flag combination, the
// invalid ones, a read-only buffer and a buffer that ends partway.
const getrandomProgram = `
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

static void hex(const unsigned char *b, int n) {
	for (int i = 0; i < n; i++) printf("%02x", b[i]);
	printf("\n");
}

int main(void) {
	unsigned char buf[64];
	int flags[] = {0, GRND_NONBLOCK, GRND_RANDOM, GRND_INSECURE, GRND_RANDOM | GRND_NONBLOCK, GRND_INSECURE | GRND_NONBLOCK};
	for (unsigned i = 0; i < sizeof flags / sizeof flags[0]; i++) {
		memset(buf, 0, sizeof buf);
		long r = syscall(SYS_getrandom, buf, sizeof buf, flags[i]);
		printf("flags %d: %ld ", flags[i], r);
		hex(buf, sizeof buf);
	}
	long r = syscall(SYS_getrandom, buf, 16, GRND_RANDOM | GRND_INSECURE);
	printf("random|insecure: %ld %s\n", r, strerror(errno));
	r = syscall(SYS_getrandom, buf, 16, 0x100);
	printf("unknown flag: %ld %s\n", r, strerror(errno));
	printf("zero length: %ld\n", (long)syscall(SYS_getrandom, NULL, 0, 0));

	long page = sysconf(_SC_PAGESIZE);
	unsigned char *ro = mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	r = syscall(SYS_getrandom, ro, 32, 0);
	int zero = 1;
	for (int i = 0; i < 32; i++) zero &= ro[i] == 0;
	printf("read-only buffer: %ld %s untouched=%d\n", r, strerror(errno), zero);

	unsigned char *two = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mprotect(two + page, page, PROT_NONE);
	r = syscall(SYS_getrandom, two + page - 100, 200, 0);
	printf("ends partway: %ld ", r);
	hex(two + page - 100, 100);

	unsigned char big[1 << 16];
	r = syscall(SYS_getrandom, big, sizeof big, 0);
	printf("64 KiB: %ld ", r);
	hex(big + sizeof big - 16, 16);
	return 0;
}
`

// getrandom answers every flag combination from the seed, refuses what
// the kernel refuses, fails a read-only buffer with EFAULT (never falling
// back to real bytes) and counts what fits before a hole, as the kernel
// does.
func TestRandomSeedGetrandom(t *testing.T) {
	prog := cProgram(t, "getrandom", getrandomProgram)
	mk := func(s *uint64) *sandlock.Sandbox { return seeded(s, filepath.Dir(prog)) }
	out := sameAndDifferent(t, "getrandom", mk, prog)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 12 {
		t.Fatalf("output:\n%s", out)
	}
	seen := map[string]bool{}
	for _, l := range lines[:6] {
		f := strings.Fields(l)
		if len(f) != 4 || f[2] != "64" || len(f[3]) != 128 || seen[f[3]] {
			t.Errorf("%q: want 64 fresh bytes", l)
		}
		seen[f[3]] = true
	}
	for i, want := range []string{
		"random|insecure: -1 Invalid argument",
		"unknown flag: -1 Invalid argument",
		"zero length: 0",
		"read-only buffer: -1 Bad address untouched=1",
	} {
		if lines[6+i] != want {
			t.Errorf("%q, want %q", lines[6+i], want)
		}
	}
	if !strings.HasPrefix(lines[10], "ends partway: 100 ") || strings.HasSuffix(lines[10], strings.Repeat("00", 100)) {
		t.Errorf("%q: want the 100 bytes before the hole", lines[10])
	}
	if !strings.HasPrefix(lines[11], "64 KiB: 65536 ") {
		t.Errorf("%q", lines[11])
	}
	// The same program without a seed: the kernel's answers, the same
	// errors and counts.
	res := run(t, seeded(nil, filepath.Dir(prog)), prog)
	native := strings.Split(strings.TrimSpace(string(res.Stdout)), "\n")
	for i := 6; i < 10; i++ {
		if native[i] != lines[i] {
			t.Errorf("seeded %q, native %q", lines[i], native[i])
		}
	}
	if !strings.HasPrefix(native[10], "ends partway: 100 ") {
		t.Errorf("native: %q", native[10])
	}
}

// devicesProgram opens the random devices every way a path can name them,
// reads 16 bytes from each, and tells what it got.
const devicesProgram = `
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

static void show(const char *name, int fd) {
	unsigned char b[16];
	if (fd < 0) { printf("%s: open %s\n", name, strerror(errno)); return; }
	ssize_t n = read(fd, b, sizeof b);
	printf("%s: %zd ", name, n);
	for (int i = 0; i < n; i++) printf("%02x", b[i]);
	printf("\n");
	close(fd);
}

int main(int argc, char **argv) {
	show("urandom", open("/dev/urandom", O_RDONLY));
	show("random", open("/dev/random", O_RDONLY | O_CLOEXEC));
	show("dotdot", open("/dev/../dev/./urandom", O_RDONLY));
	show("symlink", open(argv[1], O_RDONLY));
	int dev = open("/dev", O_PATH | O_DIRECTORY);
	show("dirfd", openat(dev, "urandom", O_RDONLY));
	show("nonblock", open("/dev/urandom", O_RDONLY | O_NONBLOCK));
	int w = open("/dev/urandom", O_WRONLY);
	printf("write-only: %s\n", w >= 0 && write(w, "entropy", 7) == 7 ? "written" : strerror(errno));
	int rw = open("/dev/urandom", O_RDWR);
	printf("read-write: %s\n", rw >= 0 && write(rw, "entropy", 7) == 7 ? "written" : strerror(errno));
	show("after-write", rw);
	return 0;
}
`

// The random devices are known by what the path resolves to: a dotted
// path, a symlink elsewhere and a dirfd-relative open all read the seed's
// streams (one per open, each different); writing to the device works,
// also to one opened for reading and writing, which then reads the seed's.
func TestRandomSeedDevices(t *testing.T) {
	prog := cProgram(t, "devices", devicesProgram)
	dir := tempDir(t)
	link := filepath.Join(dir, "rnd")
	if err := os.Symlink("/dev/urandom", link); err != nil {
		t.Fatal(err)
	}
	mk := func(s *uint64) *sandlock.Sandbox {
		sb := seeded(s, filepath.Dir(prog), dir)
		sb.FSReadable = append(sb.FSReadable, "/dev/urandom", "/dev/random")
		sb.FSWritable = []string{"/dev/urandom"}
		return sb
	}
	out := sameAndDifferent(t, "devices", mk, prog, link)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 9 {
		t.Fatalf("output:\n%s", out)
	}
	seen := map[string]bool{}
	for _, l := range append(lines[:6:6], lines[8]) {
		f := strings.Fields(l)
		if len(f) != 3 || f[1] != "16" || len(f[2]) != 32 || seen[f[2]] {
			t.Errorf("%q: want 16 bytes of a stream of its own", l)
			continue
		}
		seen[f[2]] = true
	}
	if lines[6] != "write-only: written" || lines[7] != "read-write: written" {
		t.Errorf("%q, %q: want both written", lines[6], lines[7])
	}
}

// The stream never runs dry, and is the seed's from the first byte to the
// last. Every read gets all it asked for, as from the device, however
// large (dd reads each block with one read): how far the supervisor's
// feeder was ahead never shows in what a program reads.
func TestRandomSeedEndless(t *testing.T) {
	mk := func(s *uint64) *sandlock.Sandbox { return seeded(s) }
	out := sameAndDifferent(t, "4 MiB", mk, "/bin/sh", "-c", `head -c 4M /dev/urandom | wc -c; head -c 4M /dev/urandom | md5sum
dd if=/dev/urandom bs=1M count=4 2>/dev/null | wc -c
dd if=/dev/urandom bs=100000 count=30 2>/dev/null | md5sum
dd if=/dev/urandom bs=3M count=1 2>&1 >/dev/null | grep -c '^1+0 records in'`)
	lines := strings.Split(out, "\n")
	if len(lines) < 5 || lines[0] != "4194304" || lines[2] != "4194304" || lines[4] != "1" {
		t.Errorf("head -c 4M | wc -c; dd bs=1M count=4 | wc -c; dd bs=3M count=1 whole records: %q", out)
	}
	// Without a seed, the device itself: the same counts.
	real := runOut(t, mk(nil), "/bin/sh", "-c", "dd if=/dev/urandom bs=1M count=4 2>/dev/null | wc -c")
	if real != "4194304\n" {
		t.Errorf("the real device: dd bs=1M count=4 | wc -c: %q", real)
	}
}

// Children running in parallel each read a stream of their own, by their
// place in the process tree: the same in every run, whatever order they
// run in.
func TestRandomSeedParallelChildren(t *testing.T) {
	outs := make([]string, 2)
	for i := range outs {
		dir := tempDir(t)
		sb := seeded(seed(7))
		sb.FSWritable = []string{dir}
		res := sh(t, sb, `for i in 1 2 3 4; do (od -An -N16 -tx1 /dev/urandom > `+dir+`/$i; `+python+` -c 'import os; print(os.urandom(8).hex())' >> `+dir+`/$i) & done; wait`)
		if res.ExitCode != 0 {
			t.Fatalf("exit %d: %s", res.ExitCode, res.Stderr)
		}
		var all []string
		seen := map[string]bool{}
		for _, n := range []string{"1", "2", "3", "4"} {
			b, err := os.ReadFile(filepath.Join(dir, n))
			if err != nil {
				t.Fatal(err)
			}
			if seen[string(b)] {
				t.Errorf("child %s read what another read: %q", n, b)
			}
			seen[string(b)] = true
			all = append(all, string(b))
		}
		outs[i] = strings.Join(all, "|")
	}
	if outs[0] != outs[1] {
		t.Errorf("two runs differ:\n%s\n%s", outs[0], outs[1])
	}
}

// goRandomProgram prints what a Go program's randomness comes from: its
// runtime's seed (the 16 AT_RANDOM bytes, which the runtime overwrites
// with the first outputs of the generator it seeds from them), crypto/rand
// (the vDSO's getrandom, hidden, then the syscall) and /dev/urandom; then
// map order and math/rand/v2, which draw from the state of the thread the
// goroutine runs on.
const goRandomProgram = `package main

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"strings"
	"unsafe"
)

func main() {
	auxv, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		panic(err)
	}
	var seed []byte
	for i := 0; i+16 <= len(auxv); i += 16 {
		if binary.NativeEndian.Uint64(auxv[i:]) == 25 { // AT_RANDOM
			seed = unsafe.Slice((*byte)(unsafe.Pointer(uintptr(binary.NativeEndian.Uint64(auxv[i+8:])))), 16)
		}
	}
	m := map[int]bool{}
	for i := 0; i < 64; i++ {
		m[i] = true
	}
	var order []string
	for k := range m {
		order = append(order, fmt.Sprint(k))
	}
	a, b := mrand.Uint64(), mrand.IntN(1000000)
	buf := make([]byte, 16)
	rand.Read(buf)
	fmt.Printf("runtime seed %x\n", seed)
	fmt.Printf("crypto/rand %x\n", buf)
	f, err := os.Open("/dev/urandom")
	if err != nil {
		panic(err)
	}
	f.Read(buf)
	fmt.Printf("urandom %x\n", buf)
	fmt.Println("map", strings.Join(order, " "))
	fmt.Println("math/rand/v2", a, b)
}
`

// A static Go program's runtime seed, crypto/rand and /dev/urandom come
// from the seed. Its map order and math/rand/v2 come from per-thread
// states the runtime seeds in turn from that seed, as its threads start;
// which thread runs the goroutine that draws is the scheduler's choice (a
// blocking receive in the runtime's start-up decides it), so those repeat
// as far as the scheduling does, and only change with the seed otherwise.
func TestRandomSeedGo(t *testing.T) {
	prog := goProgram(t, "gorandom", goRandomProgram)
	mk := func(s *uint64) *sandlock.Sandbox { return seeded(s, filepath.Dir(prog), "/proc") }
	head := func(out string) string { return strings.Join(strings.SplitN(out, "\n", 4)[:3], "\n") }
	a, b, c := runOut(t, mk(seed(42)), prog), runOut(t, mk(seed(42)), prog), runOut(t, mk(seed(43)), prog)
	u1, u2 := runOut(t, mk(nil), prog), runOut(t, mk(nil), prog)
	if head(a) != head(b) {
		t.Errorf("seed 42 twice differs:\n%s\n%s", head(a), head(b))
	}
	if head(u1) == head(u2) {
		t.Errorf("two unseeded runs agree (the test proves nothing):\n%s", head(u1))
	}
	la, lc := strings.Split(a, "\n"), strings.Split(c, "\n")
	if len(la) < 5 || len(lc) < 5 {
		t.Fatalf("output:\n%s\n%s", a, c)
	}
	for i := 0; i < 5; i++ {
		if la[i] == lc[i] {
			t.Errorf("seeds 42 and 43 agree on %q", la[i])
		}
	}
}

// The 16 AT_RANDOM bytes of each new image come from the seed: a C
// program's, in a program that execs another.
func TestRandomSeedAtRandom(t *testing.T) {
	prog := cProgram(t, "atrandom", `
#include <stdio.h>
#include <sys/auxv.h>
int main(void) {
	unsigned char *r = (unsigned char *)getauxval(AT_RANDOM);
	for (int i = 0; i < 16; i++) printf("%02x", r[i]);
	printf("\n");
	return 0;
}`)
	mk := func(s *uint64) *sandlock.Sandbox { return seeded(s, filepath.Dir(prog)) }
	out := sameAndDifferent(t, "AT_RANDOM", mk, "/bin/sh", "-c", prog+"; "+prog+"; exec "+prog)
	lines := strings.Fields(out)
	if len(lines) != 3 || lines[0] == lines[1] || lines[1] == lines[2] {
		t.Errorf("want three different images' bytes: %q", out)
	}
}

func TestRandomSeedErrors(t *testing.T) {
	sb := seeded(seed(1))
	sb.NoSupervisor = true
	_, err := sb.Run(ctxT(t), "true")
	var fe *sandlock.FieldError
	if !errors.As(err, &fe) || fe.Field != "RandomSeed" {
		t.Errorf("RandomSeed with NoSupervisor: %v", err)
	}
}

// The CLI flag and the profile key.
func TestRandomSeedCLI(t *testing.T) {
	args := func(extra ...string) []string {
		return append(append(append([]string{"run"}, extra...), readArgs()...), "--", "od", "-An", "-N8", "-tx1", "/dev/urandom")
	}
	_, a, _ := cli(t, args("--random-seed", "9")...)
	code, b, stderr := cli(t, args("--random-seed", "9")...)
	if code != 0 || a != b || a == "" {
		t.Errorf("--random-seed 9 twice: %q, %q (exit %d, %q)", a, b, code, stderr)
	}
	dir := tempDir(t)
	prof := filepath.Join(dir, "p.toml")
	os.WriteFile(prof, []byte("[determinism]\nrandom_seed = 9\n"), 0o644)
	code, c, stderr := cli(t, args("--profile-file", prof)...)
	if code != 0 || c != a {
		t.Errorf("[determinism] random_seed = 9: %q, want %q (exit %d, %q)", c, a, code, stderr)
	}
	code, _, stderr = cli(t, args("--random-seed", "x")...)
	if code == 0 || !strings.Contains(stderr, "--random-seed") {
		t.Errorf("--random-seed x: exit %d stderr %q", code, stderr)
	}
}

// With FSDenied, fs-deny's checks come first: a denied random device stays
// denied, the others are served from the seed, and the denials hold.
func TestRandomSeedWithFSDenied(t *testing.T) {
	sb := seeded(seed(5))
	sb.FSDenied = []string{"/dev/random", "/etc/passwd"}
	res := sh(t, sb, `od -An -N8 -tx1 /dev/urandom; od -An -N8 -tx1 /dev/random; echo "random: $?"; cat /etc/passwd; echo "passwd: $?"`)
	again := sh(t, sb, `od -An -N8 -tx1 /dev/urandom`)
	lines := strings.Split(string(res.Stdout), "\n")
	if len(lines) < 3 || lines[0] != strings.TrimRight(string(again.Stdout), "\n") || lines[1] != "random: 1" || lines[2] != "passwd: 1" {
		t.Errorf("stdout %q (again %q) stderr %q", res.Stdout, again.Stdout, res.Stderr)
	}
	if !strings.Contains(string(res.Stderr), "/dev/random: Permission denied") {
		t.Errorf("stderr %q", res.Stderr)
	}
}

// randomRaceProgram opens a path that a sibling thread flips between the
// random device and a regular file, thousands of times, and counts what
// each open gave: the real device must never come through.
const randomRaceProgram = `
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static char path[256];
static const char *a, *b;
static volatile int stop;

static void *flip(void *arg) {
	while (!stop) {
		strcpy(path, a);
		strcpy(path, b);
	}
	return NULL;
}

int main(int argc, char **argv) {
	a = "/dev/urandom";
	b = argv[1];
	strcpy(path, b);
	pthread_t th;
	pthread_create(&th, NULL, flip, NULL);
	int n = atoi(argv[2]), device = 0, seeded = 0, file = 0, failed = 0;
	for (int i = 0; i < n; i++) {
		int fd = open(path, O_RDONLY);
		if (fd < 0) { failed++; continue; }
		struct stat st;
		fstat(fd, &st);
		if (S_ISCHR(st.st_mode)) device++;
		else if (S_ISSOCK(st.st_mode)) seeded++;
		else file++;
		close(fd);
	}
	stop = 1;
	pthread_join(th, NULL);
	printf("device=%d seeded=%d file=%d failed=%d\n", device, seeded, file, failed);
	return 0;
}
`

// A sibling thread rewriting the path between the resolution and the
// kernel's own lookup cannot get the real device: the open is done from
// what was resolved. Both sides happen: the seeded stream and the file.
func TestRandomSeedOpenRace(t *testing.T) {
	prog := cProgram(t, "randomrace", randomRaceProgram)
	dir := tempDir(t)
	// The flips may leave a mixture of the two paths, which names nothing
	// (those opens fail): the test counts what the others opened.
	file := filepath.Join(dir, "r")
	if err := os.WriteFile(file, []byte("plain"), 0o644); err != nil {
		t.Fatal(err)
	}
	sb := seeded(seed(3), filepath.Dir(prog), dir)
	out := strings.TrimSpace(runOut(t, sb, prog, file, "3000"))
	var device, seededOpens, plain, failed int
	if _, err := fmt.Sscanf(out, "device=%d seeded=%d file=%d failed=%d", &device, &seededOpens, &plain, &failed); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	t.Logf("3000 opens under a flipping path: %s", out)
	if device != 0 {
		t.Errorf("the real random device was opened %d times", device)
	}
	if seededOpens == 0 || plain == 0 {
		t.Errorf("one side never happened: %s", out)
	}
}

// /proc/sys/kernel/random/uuid, where the sandbox may read /proc, gives
// the seed's UUIDs: a fresh version 4 one at each open, the same ones for
// the same seed. Where /proc is not granted, it stays refused.
func TestRandomSeedProcUUID(t *testing.T) {
	mk := func(s *uint64) *sandlock.Sandbox { return seeded(s, "/proc") }
	script := `for i in 1 2 3; do cat /proc/sys/kernel/random/uuid; done; head -c 8 /proc/sys/kernel/random/uuid; echo`
	out := sameAndDifferent(t, "uuid", mk, "/bin/sh", "-c", script)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	v4 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if len(lines) != 4 || lines[0] == lines[1] || lines[1] == lines[2] || len(lines[3]) != 8 {
		t.Fatalf("want three different UUIDs and 8 characters of a fourth: %q", out)
	}
	for _, l := range lines[:3] {
		if !v4.MatchString(l) {
			t.Errorf("%q is not a version 4 UUID as the kernel writes it", l)
		}
	}
	res := sh(t, seeded(seed(1)), `cat /proc/sys/kernel/random/uuid`)
	if res.ExitCode == 0 || !strings.Contains(string(res.Stderr), "Permission denied") {
		t.Errorf("without a /proc grant: exit %d stdout %q stderr %q, want it refused", res.ExitCode, res.Stdout, res.Stderr)
	}
}
