//go:build linux

package sandlock_test

// Tests of the escapes closed in the filesystem (issue 12, items 1–2 and
// 8): metadata changes and reads Landlock does not cover, fs-deny on every
// syscall that takes a path, and fs-deny's opens of /proc. Each runs real
// programs in real sandboxes and checks what the host holds afterwards.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock"
)

// fsEachSrc makes every syscall the metadata guard covers once on a target
// (through the path, an O_PATH descriptor, a read-only descriptor) and
// prints "name: OK" or "name: ERRNO" for each.
const fsEachSrc = `// each TARGET: makes every syscall the metadata guard covers once on
// TARGET and prints "name: OK" or "name: ERRNO" for each. Changes use
// values that show on the host (mode 0600, times 1s/2s, xattr user.new,
// removal of user.pre); reads print what they read.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <utime.h>

#define NR_fchmodat2 452
#define NR_setxattrat 463
#define NR_getxattrat 464
#define NR_listxattrat 465
#define NR_removexattrat 466
#define NR_file_getattr 468
#define NR_file_setattr 469
struct xattr_args { unsigned long long value; unsigned size, flags; };
struct file_attr { unsigned long long xflags; unsigned extsize, nextents, projid, cowextsize; };

static void res(const char *name, long r) {
	if (r < 0)
		printf("%s: %s\n", name, strerrorname_np(errno));
	else
		printf("%s: OK\n", name);
}
#define T(name, expr) do { errno = 0; res(name, (long)(expr)); } while (0)

int main(int argc, char **argv) {
	const char *t = argv[1];
	struct timespec ts[2] = {{1, 0}, {2, 0}};
	struct timeval tv[2] = {{1, 0}, {2, 0}};
	struct utimbuf ub = {1, 2};
	struct file_attr fa = {0};
	char v[256];
	struct xattr_args sa = {(unsigned long)"x", 1, 0}, ga = {(unsigned long)v, sizeof v, 0};
	uid_t u = getuid();
	gid_t g = getgid();

	// Reads first: the changes below remove user.pre.
	T("getxattr", getxattr(t, "user.pre", v, sizeof v));
	T("lgetxattr", lgetxattr(t, "user.pre", v, sizeof v));
	T("getxattrat", syscall(NR_getxattrat, AT_FDCWD, t, 0, "user.pre", &ga, sizeof ga));
	T("listxattr", listxattr(t, v, sizeof v));
	T("llistxattr", llistxattr(t, v, sizeof v));
	T("listxattrat", syscall(NR_listxattrat, AT_FDCWD, t, 0, v, sizeof v));
	T("file_getattr", syscall(NR_file_getattr, AT_FDCWD, t, &fa, sizeof fa, 0));
	int in = inotify_init1(IN_CLOEXEC);
	T("inotify_add_watch", inotify_add_watch(in, t, IN_ATTRIB));
	int fan;
	T("fanotify_init", fan = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_FID, O_RDONLY));
	if (fan >= 0)
		T("fanotify_mark", fanotify_mark(fan, FAN_MARK_ADD, FAN_ATTRIB, AT_FDCWD, t));

	// An O_PATH descriptor needs no access at all.
	int pf;
	T("opath open", pf = open(t, O_PATH | O_CLOEXEC));
	char p[64];
	snprintf(p, sizeof p, "/proc/self/fd/%d", pf);
	if (pf >= 0) {
		T("opath getxattrat", syscall(NR_getxattrat, pf, "", AT_EMPTY_PATH, "user.pre", &ga, sizeof ga));
		T("opath proc getxattr", getxattr(p, "user.pre", v, sizeof v));
	}
	// A read-only descriptor.
	int rf;
	T("open", rf = open(t, O_RDONLY | O_CLOEXEC));
	if (rf >= 0) {
		T("fgetxattr", fgetxattr(rf, "user.pre", v, sizeof v));
		T("flistxattr", flistxattr(rf, v, sizeof v));
		T("fd getxattrat", syscall(NR_getxattrat, rf, "", AT_EMPTY_PATH, "user.pre", &ga, sizeof ga));
		T("fd listxattrat", syscall(NR_listxattrat, rf, "", AT_EMPTY_PATH, v, sizeof v));
	}

	// Changes through the path.
	T("chmod", chmod(t, 0600));
	T("fchmodat", fchmodat(AT_FDCWD, t, 0600, 0));
	T("fchmodat2", syscall(NR_fchmodat2, AT_FDCWD, t, 0600, AT_SYMLINK_NOFOLLOW));
	T("chown", chown(t, u, g));
	T("lchown", lchown(t, u, g));
	T("fchownat", fchownat(AT_FDCWD, t, u, g, 0));
	T("utime", utime(t, &ub));
	T("utimes", utimes(t, tv));
	T("futimesat", syscall(SYS_futimesat, AT_FDCWD, t, tv));
	T("utimensat", utimensat(AT_FDCWD, t, ts, 0));
	T("setxattr", setxattr(t, "user.new", "x", 1, 0));
	T("lsetxattr", lsetxattr(t, "user.new", "x", 1, 0));
	T("setxattrat", syscall(NR_setxattrat, AT_FDCWD, t, 0, "user.new", &sa, sizeof sa));
	T("file_setattr", syscall(NR_file_setattr, AT_FDCWD, t, &fa, sizeof fa, 0));
	T("removexattr", removexattr(t, "user.pre"));
	T("lremovexattr", lremovexattr(t, "user.pre"));
	T("removexattrat", syscall(NR_removexattrat, AT_FDCWD, t, 0, "user.pre"));
	// Through the O_PATH descriptor: empty paths and its magic link.
	if (pf >= 0) {
		T("opath fchmodat2", syscall(NR_fchmodat2, pf, "", 0600, AT_EMPTY_PATH));
		T("opath fchownat", fchownat(pf, "", u, g, AT_EMPTY_PATH));
		T("opath utimensat", utimensat(pf, "", ts, AT_EMPTY_PATH));
		T("opath setxattrat", syscall(NR_setxattrat, pf, "", AT_EMPTY_PATH, "user.new", &sa, sizeof sa));
		T("opath proc chmod", chmod(p, 0600));
	}
	// Through the read-only descriptor.
	if (rf >= 0) {
		T("fchmod", fchmod(rf, 0600));
		T("fchown", fchown(rf, u, g));
		T("futimens", futimens(rf, ts));
		T("futimesat fd", syscall(SYS_futimesat, rf, NULL, tv));
		T("fsetxattr", fsetxattr(rf, "user.new", "x", 1, 0));
		T("fd setxattrat", syscall(NR_setxattrat, rf, "", AT_EMPTY_PATH, "user.new", &sa, sizeof sa));
		T("fd fchmodat2", syscall(NR_fchmodat2, rf, "", 0600, AT_EMPTY_PATH));
		T("fd fchownat", fchownat(rf, "", u, g, AT_EMPTY_PATH));
		T("fd utimensat", utimensat(rf, "", ts, AT_EMPTY_PATH));
		T("fd file_setattr", syscall(NR_file_setattr, rf, "", &fa, sizeof fa, AT_EMPTY_PATH));
		T("fremovexattr", fremovexattr(rf, "user.pre"));
		T("fd removexattrat", syscall(NR_removexattrat, rf, NULL, AT_EMPTY_PATH, "user.pre"));
	}
	return 0;
}
`

// fsMatrixSrc makes the covered syscalls with valid and invalid arguments
// on a tree it builds, printing every result and the state left: natively
// and in a sandbox where the tree is writable, the output must be the same.
const fsMatrixSrc = `// matrix DIR: builds a small tree in DIR (which holds "other", a file of
// another user) and makes the covered syscalls with valid and invalid
// arguments on it, printing each result and the state it left: the same
// program natively and in a sandbox with DIR writable must print the same.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/fanotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <utime.h>

#define NR_fchmodat2 452
#define NR_setxattrat 463
#define NR_getxattrat 464
#define NR_listxattrat 465
#define NR_removexattrat 466
#define NR_file_getattr 468
#define NR_file_setattr 469
struct xattr_args { unsigned long long value; unsigned size, flags; };

static char out[70000];
static long n;

static void res(const char *name, long r) {
	if (r < 0)
		printf("%s: %s\n", name, strerrorname_np(errno));
	else
		printf("%s: %ld\n", name, r);
}
#define T(name, expr) do { errno = 0; n = (long)(expr); res(name, n); } while (0)
// TV also prints the bytes a read returned.
#define TV(name, expr) do { T(name, expr); if (n > 0) show(out, n); } while (0)

static void show(const char *b, long len) {
	printf("  =");
	for (long i = 0; i < len && i < 64; i++)
		printf(b[i] >= 32 && b[i] < 127 ? "%c" : "\\%o", (unsigned char)b[i]);
	printf("\n");
}

static void st(const char *name) {
	struct stat s;
	if (lstat(name, &s) < 0) {
		printf("  %s: %s\n", name, strerrorname_np(errno));
		return;
	}
	printf("  %s: mode %o uid %s", name, s.st_mode, s.st_uid == getuid() ? "self" : "other");
	// Times set by the program are small; others are "now", which differs
	// from run to run.
	if (s.st_atim.tv_sec < 1000000)
		printf(" atime %ld.%09ld", s.st_atim.tv_sec, s.st_atim.tv_nsec);
	if (s.st_mtim.tv_sec < 1000000)
		printf(" mtime %ld.%09ld", s.st_mtim.tv_sec, s.st_mtim.tv_nsec);
	printf("\n");
}

int main(int argc, char **argv) {
	if (chdir(argv[1]) < 0)
		return 2;
	close(open("f", O_CREAT | O_WRONLY, 0644));
	mkdir("d", 0755);
	mkdir("sub", 0755);
	close(open("sub/g", O_CREAT | O_WRONLY, 0644));
	symlink("f", "l");
	symlink("d", "dl");
	symlink("missing", "dangling");
	symlink("loop2", "loop1");
	symlink("loop1", "loop2");
	chmod("f", 0644);
	chmod("sub/g", 0644);
	int rf = open("f", O_RDONLY), pf = open("f", O_PATH), pl = open("l", O_PATH | O_NOFOLLOW);
	int dfd = open("sub", O_RDONLY | O_DIRECTORY), wf = open("sub/g", O_WRONLY);
	int pipefd[2];
	pipe(pipefd);
	int mfd = memfd_create("m", 0);
	char *nullname = NULL;
	char longname[300];
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = 0;
	memcpy(longname, "user.", 5);
	char name255[256];
	memset(name255, 'b', 255);
	name255[255] = 0;
	memcpy(name255, "user.", 5);
	char *big = calloc(1, 65537);
	char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct timespec ts[2] = {{1000, 111}, {2000, 222}};
	struct timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
	struct timespec omit[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
	struct timespec badns[2] = {{1, 1000000000}, {1, 0}};
	struct timeval tv[2] = {{3000, 333}, {4000, 444}};
	struct timeval badtv[2] = {{3000, 1000000}, {4000, 0}};
	struct utimbuf ub = {5000, 6000};
	char fa[64] = {0};
	struct xattr_args sa = {(unsigned long)"val", 3, 0}, ga = {(unsigned long)out, sizeof out, 0};

	printf("# chmod\n");
	T("chmod f", chmod("f", 0600)); st("f");
	T("chmod l", chmod("l", 0640)); st("f"); st("l");
	T("chmod setuid", chmod("f", 04755)); st("f");
	T("chmod high bits", syscall(SYS_chmod, "f", 0x10000 | 0644)); st("f");
	T("chmod missing", chmod("missing", 0600));
	T("chmod dangling", chmod("dangling", 0600));
	T("chmod notdir", chmod("f/x", 0600));
	T("chmod loop", chmod("loop1", 0600));
	T("chmod empty", chmod("", 0600));
	T("chmod null", syscall(SYS_chmod, NULL, 0600));
	T("chmod other", chmod("other", 0600));
	T("chmod dir", chmod("d", 0700)); st("d");
	T("chmod trailing slash file", chmod("f/", 0600));
	T("chmod dot", chmod(".", 0777)); st(".");
	T("fchmodat rel", fchmodat(dfd, "g", 0604, 0)); st("sub/g");
	T("fchmodat dotdot", fchmodat(dfd, "../f", 0640, 0)); st("f");
	T("fchmodat badfd", fchmodat(999, "g", 0600, 0));
	T("fchmodat notdirfd", fchmodat(rf, "g", 0600, 0));
	T("fchmodat abs ignores dirfd", fchmodat(999, "/nonexistent-sandlock", 0600, 0));
	T("fchmodat2 nofollow symlink", syscall(NR_fchmodat2, AT_FDCWD, "l", 0600, AT_SYMLINK_NOFOLLOW));
	T("fchmodat2 nofollow file", syscall(NR_fchmodat2, AT_FDCWD, "f", 0620, AT_SYMLINK_NOFOLLOW)); st("f");
	T("fchmodat2 empty opath", syscall(NR_fchmodat2, pf, "", 0644, AT_EMPTY_PATH)); st("f");
	T("fchmodat2 empty opath symlink", syscall(NR_fchmodat2, pl, "", 0644, AT_EMPTY_PATH));
	T("fchmodat2 null", syscall(NR_fchmodat2, pf, NULL, 0644, AT_EMPTY_PATH));
	T("fchmodat2 empty no flag", syscall(NR_fchmodat2, pf, "", 0644, 0));
	T("fchmodat2 bad flags", syscall(NR_fchmodat2, AT_FDCWD, "f", 0644, 0x2));
	T("fchmodat2 cwd empty", syscall(NR_fchmodat2, AT_FDCWD, "", 0777, AT_EMPTY_PATH)); st(".");
	T("fchmod", fchmod(rf, 0444)); st("f");
	T("fchmod opath", fchmod(pf, 0644));
	T("fchmod badfd", fchmod(999, 0644));
	T("fchmod negative", fchmod(-5, 0644));
	T("fchmod pipe", fchmod(pipefd[0], 0600));
	T("fchmod memfd", fchmod(mfd, 0600));
	T("fchmod back", fchmod(rf, 0644)); st("f");

	printf("# chown\n");
	T("chown self", chown("f", getuid(), getgid())); st("f");
	T("chown keep", chown("f", -1, -1));
	T("chown to other", chown("f", 1234, -1));
	T("chown other", chown("other", getuid(), -1));
	T("chown missing", chown("missing", -1, -1));
	T("lchown symlink", lchown("l", -1, -1));
	T("lchown dangling", lchown("dangling", -1, -1));
	T("chown dangling", chown("dangling", -1, -1));
	T("fchownat nofollow", fchownat(AT_FDCWD, "l", -1, -1, AT_SYMLINK_NOFOLLOW));
	T("fchownat empty opath", fchownat(pf, "", -1, -1, AT_EMPTY_PATH));
	T("fchownat empty opath symlink", fchownat(pl, "", -1, -1, AT_EMPTY_PATH));
	T("fchownat null", syscall(SYS_fchownat, pf, NULL, -1, -1, AT_EMPTY_PATH));
	T("fchownat bad flags", fchownat(AT_FDCWD, "f", -1, -1, 0x1));
	T("fchownat rel", fchownat(dfd, "g", -1, -1, 0));
	T("fchown", fchown(rf, -1, -1));
	T("fchown other uid", fchown(rf, 1234, -1));
	T("fchown opath", fchown(pf, -1, -1));
	T("fchown badfd", fchown(999, -1, -1));

	printf("# times\n");
	T("utimensat", utimensat(AT_FDCWD, "f", ts, 0)); st("f");
	T("utimensat symlink nofollow", utimensat(AT_FDCWD, "l", ts, AT_SYMLINK_NOFOLLOW)); st("l");
	T("utimensat omit missing", utimensat(AT_FDCWD, "missing", omit, 0));
	T("utimensat omit bad flags", utimensat(AT_FDCWD, "f", omit, 0x1234));
	T("utimensat bad nsec", utimensat(AT_FDCWD, "f", badns, 0));
	T("utimensat bad ptr", syscall(SYS_utimensat, AT_FDCWD, "f", (void *)8, 0));
	T("utimensat bad flags", utimensat(AT_FDCWD, "f", ts, 0x1));
	T("utimensat now omit", utimensat(AT_FDCWD, "f", now, 0));
	T("utimensat null times", utimensat(AT_FDCWD, "sub/g", NULL, 0));
	T("utimensat other now", utimensat(AT_FDCWD, "other", NULL, 0));
	T("utimensat other set", utimensat(AT_FDCWD, "other", ts, 0));
	T("utimensat fd", syscall(SYS_utimensat, rf, NULL, ts, 0)); st("f");
	T("utimensat fd flags", syscall(SYS_utimensat, rf, NULL, ts, AT_SYMLINK_NOFOLLOW));
	T("utimensat fd opath", syscall(SYS_utimensat, pf, NULL, ts, 0));
	T("utimensat cwd null", syscall(SYS_utimensat, AT_FDCWD, NULL, ts, 0));
	T("utimensat empty opath", utimensat(pf, "", ts, AT_EMPTY_PATH));
	T("utimensat badfd", syscall(SYS_utimensat, 999, NULL, ts, 0));
	T("futimens pipe", futimens(pipefd[1], ts));
	T("utime", utime("f", &ub)); st("f");
	T("utime null path", syscall(SYS_utime, NULL, &ub));
	T("utime bad ptr", syscall(SYS_utime, "f", (void *)8));
	T("utimes", utimes("f", tv)); st("f");
	T("utimes bad usec", utimes("f", badtv));
	T("futimesat rel", syscall(SYS_futimesat, dfd, "g", tv)); st("sub/g");
	T("futimesat fd", syscall(SYS_futimesat, wf, NULL, tv)); st("sub/g");
	T("futimesat cwd null", syscall(SYS_futimesat, AT_FDCWD, NULL, tv));
	T("utimensat final", utimensat(AT_FDCWD, "f", ts, 0)); st("f");

	printf("# set xattrs\n");
	T("setxattr", setxattr("f", "user.a", "one", 3, 0));
	T("setxattr create exists", setxattr("f", "user.a", "two", 3, XATTR_CREATE));
	T("setxattr replace missing", setxattr("f", "user.b", "two", 3, XATTR_REPLACE));
	T("setxattr empty value", setxattr("f", "user.e", "", 0, 0));
	T("setxattr null value", setxattr("f", "user.n", NULL, 0, 0));
	T("setxattr null value size", syscall(SYS_setxattr, "f", "user.n", NULL, 3, 0));
	T("setxattr empty name", setxattr("f", "", "x", 1, 0));
	T("setxattr null name", setxattr("f", nullname, "x", 1, 0));
	T("setxattr long name", setxattr("f", longname, "x", 1, 0));
	T("setxattr 255 name", setxattr("f", name255, "x", 1, 0));
	T("setxattr bad flags", setxattr("f", "user.a", "x", 1, 4));
	T("setxattr too big", setxattr("f", "user.a", big, 65537, 0));
	T("setxattr bad ns", setxattr("f", "bogus.a", "x", 1, 0));
	T("setxattr trusted", setxattr("f", "trusted.a", "x", 1, 0));
	T("setxattr symlink follows", setxattr("l", "user.c", "via", 3, 0));
	T("lsetxattr symlink", lsetxattr("l", "user.c", "x", 1, 0));
	T("setxattr dir", setxattr("d", "user.d", "dir", 3, 0));
	T("setxattr missing", setxattr("missing", "user.a", "x", 1, 0));
	T("setxattr other", setxattr("other", "user.a", "x", 1, 0));
	T("setxattr large", setxattr("f", "user.large", big, 3000, 0));
	T("fsetxattr", fsetxattr(rf, "user.r", "rd", 2, 0));
	T("fsetxattr opath", fsetxattr(pf, "user.r", "rd", 2, 0));
	T("fsetxattr badfd", fsetxattr(999, "user.r", "rd", 2, 0));
	T("fsetxattr pipe", fsetxattr(pipefd[0], "user.r", "rd", 2, 0));
	T("setxattrat", syscall(NR_setxattrat, AT_FDCWD, "f", 0, "user.s", &sa, sizeof sa));
	T("setxattrat rel", syscall(NR_setxattrat, dfd, "g", 0, "user.s", &sa, sizeof sa));
	T("setxattrat nofollow", syscall(NR_setxattrat, AT_FDCWD, "l", AT_SYMLINK_NOFOLLOW, "user.s", &sa, sizeof sa));
	T("setxattrat fd empty", syscall(NR_setxattrat, rf, "", AT_EMPTY_PATH, "user.t", &sa, sizeof sa));
	T("setxattrat fd null", syscall(NR_setxattrat, rf, NULL, AT_EMPTY_PATH, "user.u", &sa, sizeof sa));
	T("setxattrat opath empty", syscall(NR_setxattrat, pf, "", AT_EMPTY_PATH, "user.t", &sa, sizeof sa));
	T("setxattrat cwd empty", syscall(NR_setxattrat, AT_FDCWD, "", AT_EMPTY_PATH, "user.cwd", &sa, sizeof sa));
	T("setxattrat null no flag", syscall(NR_setxattrat, rf, NULL, 0, "user.t", &sa, sizeof sa));
	T("setxattrat small size", syscall(NR_setxattrat, AT_FDCWD, "f", 0, "user.s", &sa, 8));
	T("setxattrat huge size", syscall(NR_setxattrat, AT_FDCWD, "f", 0, "user.s", &sa, 4097));
	char tail[32] = {0};
	memcpy(tail, &sa, sizeof sa);
	T("setxattrat zero tail", syscall(NR_setxattrat, AT_FDCWD, "f", 0, "user.z", tail, sizeof tail));
	tail[20] = 1;
	T("setxattrat nonzero tail", syscall(NR_setxattrat, AT_FDCWD, "f", 0, "user.z", tail, sizeof tail));
	T("setxattrat bad at flags", syscall(NR_setxattrat, AT_FDCWD, "f", 0x2, "user.s", &sa, sizeof sa));
	struct xattr_args badf = {(unsigned long)"v", 1, 8};
	T("setxattrat bad xattr flags", syscall(NR_setxattrat, AT_FDCWD, "f", 0, "user.s", &badf, sizeof badf));
	T("file_setattr", syscall(NR_file_setattr, AT_FDCWD, "f", fa, 24, 0));
	T("file_setattr small", syscall(NR_file_setattr, AT_FDCWD, "f", fa, 16, 0));
	T("file_setattr huge", syscall(NR_file_setattr, AT_FDCWD, "f", fa, 5000, 0));
	T("file_setattr bad flags", syscall(NR_file_setattr, AT_FDCWD, "f", fa, 24, 0x2));
	T("file_setattr fd", syscall(NR_file_setattr, rf, "", fa, 24, AT_EMPTY_PATH));
	T("file_setattr opath", syscall(NR_file_setattr, pf, "", fa, 24, AT_EMPTY_PATH));
	T("file_setattr bad ptr", syscall(NR_file_setattr, AT_FDCWD, "f", (void *)8, 24, 0));

	printf("# get xattrs\n");
	TV("getxattr", getxattr("f", "user.a", out, sizeof out));
	TV("getxattr size probe", getxattr("f", "user.a", NULL, 0));
	TV("getxattr small", getxattr("f", "user.a", out, 1));
	TV("getxattr exact", getxattr("f", "user.a", out, 3));
	TV("getxattr empty value", getxattr("f", "user.e", out, sizeof out));
	TV("getxattr missing attr", getxattr("f", "user.zz", out, sizeof out));
	TV("getxattr null buf", syscall(SYS_getxattr, "f", "user.a", NULL, 10));
	TV("getxattr readonly buf", getxattr("f", "user.a", ro, 10));
	TV("getxattr huge size", syscall(SYS_getxattr, "f", "user.a", out, 1 << 20));
	TV("getxattr large", getxattr("f", "user.large", out, sizeof out));
	TV("getxattr empty name", getxattr("f", "", out, sizeof out));
	TV("getxattr missing", getxattr("missing", "user.a", out, sizeof out));
	TV("getxattr symlink follows", getxattr("l", "user.a", out, sizeof out));
	TV("lgetxattr symlink", lgetxattr("l", "user.a", out, sizeof out));
	TV("getxattr dir", getxattr("d", "user.d", out, sizeof out));
	TV("getxattr other", getxattr("other", "user.a", out, sizeof out));
	TV("getxattrat", syscall(NR_getxattrat, AT_FDCWD, "f", 0, "user.s", &ga, sizeof ga));
	TV("getxattrat fd", syscall(NR_getxattrat, rf, "", AT_EMPTY_PATH, "user.t", &ga, sizeof ga));
	TV("getxattrat fd null", syscall(NR_getxattrat, rf, NULL, AT_EMPTY_PATH, "user.u", &ga, sizeof ga));
	TV("getxattrat opath", syscall(NR_getxattrat, pf, "", AT_EMPTY_PATH, "user.t", &ga, sizeof ga));
	TV("getxattrat cwd", syscall(NR_getxattrat, AT_FDCWD, "", AT_EMPTY_PATH, "user.cwd", &ga, sizeof ga));
	struct xattr_args gflags = {(unsigned long)out, sizeof out, 1};
	TV("getxattrat flags", syscall(NR_getxattrat, AT_FDCWD, "f", 0, "user.s", &gflags, sizeof gflags));
	struct xattr_args gsmall = {(unsigned long)out, 1, 0};
	TV("getxattrat small", syscall(NR_getxattrat, AT_FDCWD, "f", 0, "user.s", &gsmall, sizeof gsmall));
	TV("listxattr", listxattr("f", out, sizeof out));
	TV("listxattr probe", listxattr("f", NULL, 0));
	TV("listxattr small", listxattr("f", out, 3));
	TV("listxattr symlink", listxattr("l", out, sizeof out));
	TV("llistxattr symlink", llistxattr("l", out, sizeof out));
	TV("listxattr dir", listxattr("d", out, sizeof out));
	TV("listxattr missing", listxattr("missing", out, sizeof out));
	TV("listxattrat fd", syscall(NR_listxattrat, rf, "", AT_EMPTY_PATH, out, sizeof out));
	TV("listxattrat cwd", syscall(NR_listxattrat, AT_FDCWD, "", AT_EMPTY_PATH, out, sizeof out));
	TV("listxattrat rel", syscall(NR_listxattrat, dfd, "g", 0, out, sizeof out));
	TV("listxattrat bad flags", syscall(NR_listxattrat, dfd, "g", 0x2, out, sizeof out));
	TV("fgetxattr", fgetxattr(rf, "user.r", out, sizeof out));
	TV("flistxattr", flistxattr(rf, out, sizeof out));
	memset(fa, 0x55, sizeof fa);
	TV("file_getattr", syscall(NR_file_getattr, AT_FDCWD, "f", fa, 32, 0));
	show(fa, 32);
	TV("file_getattr opath", syscall(NR_file_getattr, pf, "", fa, 24, AT_EMPTY_PATH));
	TV("file_getattr small", syscall(NR_file_getattr, AT_FDCWD, "f", fa, 8, 0));

	printf("# remove xattrs\n");
	T("removexattr", removexattr("f", "user.a"));
	T("removexattr missing attr", removexattr("f", "user.a"));
	T("removexattr empty name", removexattr("f", ""));
	T("lremovexattr symlink", lremovexattr("l", "user.c"));
	T("removexattr symlink follows", removexattr("l", "user.c"));
	T("fremovexattr", fremovexattr(rf, "user.r"));
	T("fremovexattr opath", fremovexattr(pf, "user.r"));
	T("removexattrat", syscall(NR_removexattrat, AT_FDCWD, "f", 0, "user.s"));
	T("removexattrat fd null", syscall(NR_removexattrat, rf, NULL, AT_EMPTY_PATH, "user.u"));
	T("removexattrat cwd empty", syscall(NR_removexattrat, AT_FDCWD, "", AT_EMPTY_PATH, "user.cwd"));
	T("removexattrat bad flags", syscall(NR_removexattrat, AT_FDCWD, "f", 0x2, "user.s"));
	TV("listxattr after", listxattr("f", out, sizeof out));
	TV("listxattr cwd after", listxattr(".", out, sizeof out));

	printf("# watches\n");
	int in = inotify_init1(IN_CLOEXEC);
	T("inotify", inotify_add_watch(in, "f", IN_ATTRIB));
	T("inotify again", inotify_add_watch(in, "f", IN_ATTRIB | IN_MODIFY));
	T("inotify symlink follows", inotify_add_watch(in, "l", IN_ATTRIB));
	T("inotify symlink nofollow", inotify_add_watch(in, "l", IN_ATTRIB | IN_DONT_FOLLOW));
	T("inotify onlydir file", inotify_add_watch(in, "f", IN_ATTRIB | IN_ONLYDIR));
	T("inotify onlydir dir", inotify_add_watch(in, "dl", IN_ATTRIB | IN_ONLYDIR));
	T("inotify missing", inotify_add_watch(in, "missing", IN_ATTRIB));
	T("inotify badfd", inotify_add_watch(999, "f", IN_ATTRIB));
	T("inotify not inotify", inotify_add_watch(rf, "f", IN_ATTRIB));
	T("inotify mask create add", inotify_add_watch(in, "d", IN_ATTRIB | IN_MASK_CREATE | IN_MASK_ADD));
	T("inotify mask create exists", inotify_add_watch(in, "f", IN_ATTRIB | IN_MASK_CREATE));
	chmod("f", 0600);
	char ev[4096];
	T("inotify event", read(in, ev, sizeof ev) > 0 ? ((struct inotify_event *)ev)->mask & IN_ATTRIB : -1);
	int fan = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_FID, O_RDONLY);
	T("fanotify_init", fan < 0 ? fan : 0);
	if (fan >= 0) {
		T("fanotify_mark", fanotify_mark(fan, FAN_MARK_ADD, FAN_ATTRIB, AT_FDCWD, "f"));
		T("fanotify_mark rel", fanotify_mark(fan, FAN_MARK_ADD, FAN_ATTRIB, dfd, "g"));
		T("fanotify_mark null", fanotify_mark(fan, FAN_MARK_ADD, FAN_ATTRIB, rf, NULL));
		T("fanotify_mark null opath", fanotify_mark(fan, FAN_MARK_ADD, FAN_ATTRIB, pf, NULL));
		T("fanotify_mark missing", fanotify_mark(fan, FAN_MARK_ADD, FAN_ATTRIB, AT_FDCWD, "missing"));
		T("fanotify_mark onlydir", fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_ONLYDIR, FAN_ATTRIB, AT_FDCWD, "f"));
		T("fanotify_mark mount", fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_ATTRIB, AT_FDCWD, "f"));
		T("fanotify_mark flush", fanotify_mark(fan, FAN_MARK_FLUSH, 0, AT_FDCWD, NULL));
		T("fanotify_mark not fanotify", fanotify_mark(in, FAN_MARK_ADD, FAN_ATTRIB, AT_FDCWD, "f"));
	}

	printf("# state\n");
	const char *names[] = {"f", "l", "d", "sub", "sub/g", "other", NULL};
	for (int i = 0; names[i]; i++) {
		st(names[i]);
		n = llistxattr(names[i], out, sizeof out);
		if (n > 0)
			show(out, n);
	}
	return 0;
}
`

// fsRacerSrc races a flipper thread rewriting a path buffer against a
// syscall made on it thousands of times.
const fsRacerSrc = `// racer OP ALLOWED OTHER TRIES [MARKER]: a flipper thread rewrites the
// path buffer between ALLOWED and OTHER (padded to one length with leading
// slashes) while the main thread runs OP on it TRIES times. Prints
// "ok=N fail=N hit=N": hit counts results that could only come from OTHER
// (its content or xattr value equal to MARKER).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

static char buf[4096];
static char a[4096], b[4096];
static size_t n;
static volatile int stop;

static void pad(char *dst, const char *src, size_t len) {
	size_t l = strlen(src), i;
	for (i = 0; i < len - l; i++)
		dst[i] = '/';
	strcpy(dst + i, src);
}

static void *flip(void *arg) {
	(void)arg;
	while (!stop) {
		memcpy(buf, a, n + 1);
		memcpy(buf, b, n + 1);
	}
	return NULL;
}

int main(int argc, char **argv) {
	if (argc < 5) {
		fprintf(stderr, "usage: racer OP ALLOWED OTHER TRIES [MARKER]\n");
		return 2;
	}
	const char *op = argv[1], *marker = argc > 5 ? argv[5] : "\x01";
	n = strlen(argv[2]) > strlen(argv[3]) ? strlen(argv[2]) : strlen(argv[3]);
	pad(a, argv[2], n);
	pad(b, argv[3], n);
	memcpy(buf, a, n + 1);
	int tries = atoi(argv[4]), ok = 0, fail = 0, hit = 0;
	pthread_t th;
	pthread_create(&th, NULL, flip, NULL);
	char val[4096];
	for (int i = 0; i < tries; i++) {
		ssize_t r = -1;
		if (!strcmp(op, "open")) {
			int fd = open(buf, O_RDONLY);
			if (fd >= 0) {
				r = read(fd, val, sizeof val - 1);
				close(fd);
			}
		} else if (!strcmp(op, "chmod")) {
			r = chmod(buf, i & 1 ? 0600 : 0640);
		} else if (!strcmp(op, "setxattr")) {
			r = setxattr(buf, "user.race", "v", 1, 0);
		} else if (!strcmp(op, "getxattr")) {
			r = getxattr(buf, "user.secret", val, sizeof val - 1);
		} else {
			fprintf(stderr, "unknown op %s\n", op);
			return 2;
		}
		if (r < 0) {
			fail++;
			continue;
		}
		if (r > 0 && (!strcmp(op, "open") || !strcmp(op, "getxattr"))) {
			val[r] = 0;
			if (strstr(val, marker)) {
				hit++;
				continue;
			}
		}
		ok++;
	}
	stop = 1;
	pthread_join(th, NULL);
	printf("ok=%d fail=%d hit=%d\n", ok, fail, hit);
	return 0;
}
`

// noCaps runs a native command as root without any capability, as the
// sandboxed program runs.
var noCaps = []string{"setpriv", "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs"}

// nativeOut runs argv natively behind prefix and returns its stdout.
func nativeOut(t *testing.T, prefix []string, argv ...string) string {
	t.Helper()
	all := append(append([]string(nil), prefix...), argv...)
	out, err := exec.Command(all[0], all[1:]...).Output()
	if err != nil {
		t.Fatalf("native %q: %v", all, err)
	}
	return string(out)
}

// sandboxOut runs argv in sb and returns its stdout, failing unless it
// exited 0.
func sandboxOut(t *testing.T, sb *sandlock.Sandbox, argv ...string) string {
	t.Helper()
	res := run(t, sb, argv...)
	if res.ExitCode != 0 {
		t.Fatalf("%q exited %d\nstdout: %s\nstderr: %s", argv, res.ExitCode, res.Stdout, res.Stderr)
	}
	return string(res.Stdout)
}

// nobodyOut runs argv through the CLI as nobody with flags, and returns
// its stdout.
func nobodyOut(t *testing.T, flags []string, argv ...string) string {
	t.Helper()
	code, stdout, stderr := cliAs(t, cliNobody, cliRunArgs(cliGrants(flags...), argv...)...)
	if code != 0 {
		t.Fatalf("%q as nobody exited %d: %s", argv, code, stderr)
	}
	return stdout
}

// progSandbox is base() with a C program's directory readable.
func progSandbox(prog string) *sandlock.Sandbox {
	sb := base()
	sb.FSReadable = append(sb.FSReadable, filepath.Dir(prog))
	return sb
}

// lineResults parses "name: RESULT" lines.
func lineResults(t *testing.T, out string) map[string]string {
	t.Helper()
	r := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		name, v, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("unexpected line %q in\n%s", line, out)
		}
		r[name] = v
	}
	return r
}

// lineJSON decodes a JSON object of strings printed on one line.
func lineJSON(t *testing.T, line string) map[string]string {
	t.Helper()
	var r map[string]string
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("decoding %q: %v", line, err)
	}
	return r
}

// hostMeta is what a metadata change would alter on the host.
type hostMeta struct {
	mode, uid, gid      uint32
	atime, mtime, ctime unix.Timespec
	xattrs              string
}

func metaOf(t *testing.T, path string) hostMeta {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	m := hostMeta{mode: st.Mode, uid: st.Uid, gid: st.Gid, atime: st.Atim, mtime: st.Mtim, ctime: st.Ctim}
	buf := make([]byte, 4096)
	n, _ := unix.Llistxattr(path, buf)
	names := strings.Split(strings.TrimRight(string(buf[:max(n, 0)]), "\x00"), "\x00")
	sort.Strings(names)
	for _, name := range names {
		if name == "" {
			continue
		}
		v := make([]byte, 4096)
		vn, _ := unix.Lgetxattr(path, name, v)
		m.xattrs += fmt.Sprintf("%s=%q ", name, v[:max(vn, 0)])
	}
	return m
}

// unchanged fails unless path's metadata is still before (the change time
// included: any successful change, even to the same values, moves it).
func unchanged(t *testing.T, path string, before hostMeta) {
	t.Helper()
	if after := metaOf(t, path); after != before {
		t.Errorf("%s changed on the host:\n before %+v\n after  %+v", path, before, after)
	}
}

// metaTarget creates a file with the attribute user.pre="pre", owned by
// uid (-1: the caller).
func metaTarget(t *testing.T, path string, uid int) string {
	t.Helper()
	must(t, os.WriteFile(path, []byte("content\n"), 0o644))
	must(t, unix.Setxattr(path, "user.pre", []byte("pre"), 0))
	if uid >= 0 {
		must(t, os.Chown(path, uid, uid))
	}
	return path
}

// The names fsEachSrc prints, by kind.
var (
	eachReads    = []string{"getxattr", "lgetxattr", "getxattrat", "listxattr", "llistxattr", "listxattrat", "file_getattr", "inotify_add_watch", "fanotify_mark", "opath proc getxattr"}
	eachWrites   = []string{"chmod", "fchmodat", "fchmodat2", "chown", "lchown", "fchownat", "utime", "utimes", "futimesat", "utimensat", "setxattr", "lsetxattr", "setxattrat", "file_setattr", "removexattr", "lremovexattr", "removexattrat", "opath fchmodat2", "opath fchownat", "opath utimensat", "opath proc chmod"}
	eachFDReads  = []string{"fgetxattr", "flistxattr", "fd getxattrat", "fd listxattrat"}
	eachFDWrites = []string{"fchmod", "fchown", "futimens", "futimesat fd", "fsetxattr", "fd setxattrat", "fd fchmodat2", "fd fchownat", "fd utimensat", "fd file_setattr", "fremovexattr", "fd removexattrat"}
)

// eachWant builds the expected results of fsEachSrc from what the same
// program printed natively: kinds mapped to "native" keep the kernel's
// answer, others get the given errno; opened says whether the O_RDONLY
// open succeeds (the descriptor forms run only then) and opath whether the
// O_PATH open does.
func eachWant(native map[string]string, reads, writes string, opened, opath bool) map[string]string {
	want := map[string]string{"fanotify_init": native["fanotify_init"]}
	set := func(names []string, v string) {
		for _, n := range names {
			if v == "native" {
				want[n] = native[n]
			} else {
				want[n] = v
			}
		}
	}
	set(eachReads, reads)
	set(eachWrites, writes)
	want["opath open"], want["open"] = "EACCES", "EACCES"
	if opath {
		want["opath open"] = "OK"
		// The descriptor forms of the *xattrat syscalls refuse O_PATH
		// descriptors before anything else.
		want["opath getxattrat"], want["opath setxattrat"] = "EBADF", "EBADF"
	} else {
		for _, n := range []string{"opath proc getxattr", "opath fchmodat2", "opath fchownat", "opath utimensat", "opath proc chmod"} {
			delete(want, n)
		}
	}
	if opened {
		want["open"] = "OK"
		set(eachFDReads, "native")
		set(eachFDWrites, writes)
	}
	return want
}

// TestFSMetaGrants runs every covered syscall on a file outside every
// grant, under a readable grant, under a writable grant, and denied: a
// change needs a writable grant, a read any grant, and a denied file
// refuses both; refused calls leave the host file exactly as it was.
func TestFSMetaGrants(t *testing.T) {
	prog := cProgram(t, "fsmeta_each", fsEachSrc)
	root := tempDir(t)
	// What the kernel answers without a sandbox, on the same kind of file.
	native := lineResults(t, nativeOut(t, noCaps, prog, metaTarget(t, filepath.Join(root, "native"), -1)))
	if native["chmod"] != "OK" || native["getxattr"] != "OK" || native["fchmod"] != "OK" {
		t.Fatalf("the native run failed where it should not:\n%v", native)
	}
	cases := []struct {
		name   string
		grants func(sb *sandlock.Sandbox, dir string)
		target string // relative to the case's directory
		want   map[string]string
	}{
		{"outside every grant", func(*sandlock.Sandbox, string) {}, "t",
			eachWant(native, "EACCES", "EACCES", false, true)},
		{"readable", func(sb *sandlock.Sandbox, dir string) { sb.FSReadable = append(sb.FSReadable, dir) }, "t",
			eachWant(native, "native", "EACCES", true, true)},
		{"writable", func(sb *sandlock.Sandbox, dir string) { sb.FSWritable = []string{dir} }, "t",
			eachWant(native, "native", "native", true, true)},
		{"denied", func(sb *sandlock.Sandbox, dir string) {
			sb.FSWritable, sb.FSDenied = []string{dir}, []string{filepath.Join(dir, "t")}
		}, "t", eachWant(native, "EACCES", "EACCES", false, false)},
		{"denied through a hard link", func(sb *sandlock.Sandbox, dir string) {
			must(t, os.Mkdir(filepath.Join(dir, "secret"), 0o755))
			must(t, os.Rename(filepath.Join(dir, "t"), filepath.Join(dir, "secret", "t")))
			must(t, os.Link(filepath.Join(dir, "secret", "t"), filepath.Join(dir, "t")))
			sb.FSWritable, sb.FSDenied = []string{dir}, []string{filepath.Join(dir, "secret")}
		}, "t", eachWant(native, "EACCES", "EACCES", false, false)},
		{"denied through a symlink", func(sb *sandlock.Sandbox, dir string) {
			must(t, os.Symlink("t", filepath.Join(dir, "link")))
			sb.FSWritable, sb.FSDenied = []string{dir}, []string{filepath.Join(dir, "t")}
		}, "link", nil},
	}
	// Through a symlink, the path forms that do not follow it act on the
	// link itself, which is not denied.
	symWant := eachWant(native, "EACCES", "EACCES", false, false)
	for _, n := range []string{"lchown", "fchmodat2", "lgetxattr", "llistxattr", "lsetxattr", "lremovexattr"} {
		delete(symWant, n)
	}
	cases[5].want = symWant
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(root, strings.ReplaceAll(c.name, " ", "-"))
			must(t, os.Mkdir(dir, 0o755))
			file := metaTarget(t, filepath.Join(dir, "t"), -1)
			sb := progSandbox(prog)
			c.grants(sb, dir)
			before := metaOf(t, file)
			got := lineResults(t, sandboxOut(t, sb, prog, filepath.Join(dir, c.target)))
			for k, v := range c.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			if c.name != "denied through a symlink" {
				for k := range got {
					if _, ok := c.want[k]; !ok {
						t.Errorf("%s = %q: unexpected", k, got[k])
					}
				}
			}
			if c.name == "writable" {
				after := metaOf(t, file)
				if after.mode&0o7777 != 0o600 || after.mtime.Sec != 2 || after.xattrs != `user.new="x" ` {
					t.Errorf("the changes did not reach the file: %+v", after)
				}
				return
			}
			unchanged(t, file, before)
		})
	}
}

// TestFSMetaGrantsUnprivileged is TestFSMetaGrants' outside and writable
// cases as nobody, on files nobody owns: only the sandbox stands between
// the program and the change.
func TestFSMetaGrantsUnprivileged(t *testing.T) {
	prog := cProgram(t, "fsmeta_each", fsEachSrc)
	root := tempDir(t)
	native := lineResults(t, nativeOut(t, cliNobody, prog, metaTarget(t, filepath.Join(root, "native"), 65534)))
	if native["chmod"] != "OK" || native["fchmod"] != "OK" {
		t.Fatalf("the native run failed where it should not:\n%v", native)
	}
	outside := metaTarget(t, filepath.Join(root, "outside"), 65534)
	before := metaOf(t, outside)
	got := lineResults(t, nobodyOut(t, []string{"-r", filepath.Dir(prog)}, prog, outside))
	expect(t, got, eachWant(native, "EACCES", "EACCES", false, true))
	unchanged(t, outside, before)

	dir := filepath.Join(root, "w")
	must(t, os.Mkdir(dir, 0o777))
	inside := metaTarget(t, filepath.Join(dir, "t"), 65534)
	got = lineResults(t, nobodyOut(t, []string{"-r", filepath.Dir(prog), "-w", dir}, prog, inside))
	expect(t, got, eachWant(native, "native", "native", true, true))
	if after := metaOf(t, inside); after.mode&0o7777 != 0o600 || after.mtime.Sec != 2 {
		t.Errorf("the changes did not reach the file: %+v", after)
	}
}

// TestFSMetaMatchesKernel runs fsMatrixSrc natively and in a sandbox where
// its tree is writable, as root without capabilities and as nobody: every
// result (values, sizes, ERANGE, ENODATA, EPERM, ELOOP, ENOTDIR, ENOENT,
// EBADF, EFAULT, EINVAL, E2BIG, EOPNOTSUPP…) and the state left must be
// the kernel's.
func TestFSMetaMatchesKernel(t *testing.T) {
	prog := cProgram(t, "fsmeta_matrix", fsMatrixSrc)
	tree := func(t *testing.T) string {
		dir := tempDir(t)
		other := filepath.Join(dir, "other")
		must(t, os.WriteFile(other, []byte("other\n"), 0o644))
		must(t, os.Chown(other, 1234, 1234))
		return dir
	}
	compare := func(t *testing.T, native, sandboxed string) {
		t.Helper()
		for _, marker := range []string{"chmod f: 0\n", "chmod other: EPERM\n", "getxattr small: ERANGE\n", "setxattr long name: ERANGE\n", "chmod loop: ELOOP\n", "getxattr: 3\n  =one\n"} {
			if !strings.Contains(native, marker) {
				t.Fatalf("the native run lacks %q:\n%s", marker, native)
			}
		}
		n, s := strings.Split(native, "\n"), strings.Split(sandboxed, "\n")
		for i := 0; i < max(len(n), len(s)); i++ {
			var nl, sl string
			if i < len(n) {
				nl = n[i]
			}
			if i < len(s) {
				sl = s[i]
			}
			if nl != sl {
				t.Errorf("line %d: native %q, sandboxed %q", i+1, nl, sl)
			}
		}
	}
	t.Run("root", func(t *testing.T) {
		native := nativeOut(t, noCaps, prog, tree(t))
		dir := tree(t)
		sb := progSandbox(prog)
		sb.FSWritable = []string{dir}
		compare(t, native, sandboxOut(t, sb, prog, dir))
	})
	t.Run("nobody", func(t *testing.T) {
		native := nativeOut(t, cliNobody, prog, tree(t))
		dir := tree(t)
		compare(t, native, nobodyOut(t, []string{"-r", filepath.Dir(prog), "-w", dir}, prog, dir))
	})
}

// TestFSMetaRootOwnedReadOnly: as root (without capabilities, but the
// owner), a file opened read-only under a readable grant — /usr's own —
// keeps its mode, owner and times, through the descriptor as through the
// path. The values written are the file's own, so that nothing would
// change on the host even if the sandbox let the calls through: the change
// time shows whether they ran.
func TestFSMetaRootOwnedReadOnly(t *testing.T) {
	const target = "/usr/bin/env"
	before := metaOf(t, target)
	sb := base()
	sb.Env = map[string]string{"D": "/usr"}
	got := pyProbe(t, sb, `
P_ = "`+target+`"
st = os.stat(P_)
fd = os.open(P_, os.O_RDONLY)
probe("fchmod", lambda: os.fchmod(fd, stat.S_IMODE(st.st_mode)))
probe("fchown", lambda: os.fchown(fd, -1, -1))
probe("futimens", lambda: os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns)))
probe("chmod", lambda: os.chmod(P_, stat.S_IMODE(st.st_mode)))
probe("chown", lambda: os.chown(P_, -1, -1))
probe("utime", lambda: os.utime(P_, ns=(st.st_atime_ns, st.st_mtime_ns)))
probe("getxattr", lambda: os.getxattr(P_, "user.none"))
probe("read", lambda: len(os.read(fd, 4)))
`)
	expect(t, got, map[string]string{
		"fchmod": "EACCES", "fchown": "EACCES", "futimens": "EACCES",
		"chmod": "EACCES", "chown": "EACCES", "utime": "EACCES",
		"getxattr": "ENODATA", "read": "4",
	})
	unchanged(t, target, before)
}

// TestFSMetaInheritedFD: a descriptor the program was given (its stdin)
// is judged like one it opened: a change needs its file under a writable
// grant and not denied.
func TestFSMetaInheritedFD(t *testing.T) {
	dir := tempDir(t)
	secret := metaTarget(t, filepath.Join(dir, "secret"), -1)
	outside := metaTarget(t, filepath.Join(tempDir(t), "outside"), -1)
	inside := metaTarget(t, filepath.Join(dir, "inside"), -1)
	script := "import os; os.fchmod(0, 0o600)"
	for _, c := range []struct {
		name, file string
		flags      []string
		ok         bool
	}{
		{"outside every grant", outside, nil, false},
		{"writable", inside, []string{"-w", dir}, true},
		{"denied", secret, []string{"-w", dir, "--fs-deny", secret}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := os.Open(c.file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			before := metaOf(t, c.file)
			cmd := exec.Command(cliBinary, cliRunArgs(cliGrants(c.flags...), python, "-c", script)...)
			cmd.Stdin = f
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err = cmd.Run()
			if c.ok {
				if err != nil {
					t.Fatalf("fchmod of the inherited descriptor failed: %v\n%s", err, stderr.String())
				}
				if m := metaOf(t, c.file); m.mode&0o7777 != 0o600 {
					t.Errorf("mode %o, want 600", m.mode&0o7777)
				}
				return
			}
			if err == nil || !strings.Contains(stderr.String(), "PermissionError") {
				t.Errorf("fchmod of the inherited descriptor: %v\n%s", err, stderr.String())
			}
			unchanged(t, c.file, before)
		})
	}
}

var racerResult = regexp.MustCompile(`^ok=(\d+) fail=(\d+) hit=(\d+)\n$`)

// race runs fsRacerSrc and returns how often the allowed variant succeeded
// and how often a result could only have come from the other path.
func race(t *testing.T, out string) (ok, hit int) {
	t.Helper()
	m := racerResult.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("racer printed %q", out)
	}
	ok, _ = strconv.Atoi(m[1])
	hit, _ = strconv.Atoi(m[3])
	t.Logf("%s", strings.TrimSpace(out))
	return ok, hit
}

// raceTries is how many times each racing test makes its syscall.
const raceTries = "5000"

// TestFSMetaRace: a thread flips the path between a file under a writable
// grant and one outside it (or denied) while the main thread changes or
// reads through it thousands of times. The allowed file is reached; the
// other never is: its mode, times and attributes stay, its attribute's
// value never comes back.
func TestFSMetaRace(t *testing.T) {
	prog := cProgram(t, "fsmeta_racer", fsRacerSrc)
	type setup struct{ allowed, other string }
	scenarios := []struct {
		name  string
		setup func(t *testing.T, uid int) (setup, []string)
	}{
		{"outside", func(t *testing.T, uid int) (setup, []string) {
			dir := tempDir(t)
			w := filepath.Join(dir, "w")
			must(t, os.Mkdir(w, 0o777))
			return setup{metaTarget(t, filepath.Join(w, "allowed"), uid), metaTarget(t, filepath.Join(dir, "victim"), uid)}, []string{"-w", w}
		}},
		{"denied", func(t *testing.T, uid int) (setup, []string) {
			dir := tempDir(t)
			victim := metaTarget(t, filepath.Join(dir, "victim"), uid)
			return setup{metaTarget(t, filepath.Join(dir, "allowed"), uid), victim}, []string{"-w", dir, "--fs-deny", victim}
		}},
	}
	for _, who := range []string{"root", "nobody"} {
		for _, sc := range scenarios {
			for _, op := range []string{"chmod", "setxattr", "getxattr"} {
				t.Run(who+"/"+sc.name+"/"+op, func(t *testing.T) {
					uid := -1
					if who == "nobody" {
						uid = 65534
					}
					s, flags := sc.setup(t, uid)
					must(t, unix.Setxattr(s.allowed, "user.secret", []byte("public"), 0))
					must(t, unix.Setxattr(s.other, "user.secret", []byte("SECRET"), 0))
					before := metaOf(t, s.other)
					argv := []string{prog, op, s.allowed, s.other, raceTries, "SECRET"}
					var out string
					if who == "root" {
						sb := progSandbox(prog)
						for i := 0; i < len(flags); i += 2 {
							switch flags[i] {
							case "-w":
								sb.FSWritable = append(sb.FSWritable, flags[i+1])
							case "--fs-deny":
								sb.FSDenied = append(sb.FSDenied, flags[i+1])
							}
						}
						out = sandboxOut(t, sb, argv...)
					} else {
						out = nobodyOut(t, append([]string{"-r", filepath.Dir(prog)}, flags...), argv...)
					}
					ok, hit := race(t, out)
					if hit != 0 {
						t.Errorf("%d results came from the other file", hit)
					}
					if ok == 0 {
						t.Errorf("the allowed file was never reached")
					}
					unchanged(t, s.other, before)
				})
			}
		}
	}
}

// TestFSDenyRaceProcOpen: fs-deny's opens of /proc are no exception to
// "no Continue on a path from memory". A thread flips the path between
// /proc/self/status and a denied file while the main thread opens and
// reads it thousands of times: the status is read, the denied content
// never is.
func TestFSDenyRaceProcOpen(t *testing.T) {
	prog := cProgram(t, "fsmeta_racer", fsRacerSrc)
	for _, who := range []string{"root", "nobody"} {
		t.Run(who, func(t *testing.T) {
			f := newFSTree(t)
			argv := []string{prog, "open", "/proc/self/status", filepath.Join(f.secret, "s.txt"), raceTries, "SECRET"}
			var out string
			if who == "root" {
				sb := f.sandbox(f.secret)
				sb.FSReadable = append(sb.FSReadable, "/proc", filepath.Dir(prog))
				out = sandboxOut(t, sb, argv...)
			} else {
				out = nobodyOut(t, []string{"-r", "/proc", "-r", filepath.Dir(prog), "-w", f.root, "--fs-deny", f.secret}, argv...)
			}
			ok, hit := race(t, out)
			if hit != 0 {
				t.Errorf("the denied file was read %d times", hit)
			}
			if ok == 0 {
				t.Errorf("/proc/self/status was never read")
			}
			f.intact(t)
		})
	}
}

// TestFSDenyProcSiblings: under fs-deny, a process opens the /proc entries
// of another process of the sandbox (its child) as it could without
// fs-deny, ptrace-protected ones (environ) included; once it has nested a
// Landlock domain of its own, it may not (Landlock refuses ptrace access
// from a nested domain to its parent's), with fs-deny as without.
func TestFSDenyProcSiblings(t *testing.T) {
	code := `
import ctypes, os, sys
R = {}
def probe(name, fn):
    try:
        R[name] = str(fn())
    except OSError as e:
        R[name] = errno.errorcode[e.errno]
import errno, json
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.environ["CHILD_MARK"] = "child"
    os.execv("/bin/sleep", ["sleep", "30"])
os.close(w)
import time
for _ in range(500):
    try:
        if b"CHILD_MARK=child" in open("/proc/%d/environ" % pid, "rb").read():
            break
    except OSError:
        pass
    time.sleep(0.01)
probe("child status", lambda: "State:" in open("/proc/%d/status" % pid).read())
probe("child environ", lambda: b"CHILD_MARK=child" in open("/proc/%d/environ" % pid, "rb").read())
probe("child cmdline", lambda: open("/proc/%d/cmdline" % pid, "rb").read().split(b"\0")[0].decode())
# Nest a Landlock domain: any handled right will do.
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
attr = ctypes.c_uint64(1 << 13)  # LANDLOCK_ACCESS_FS_MAKE_SOCK
fd = libc.syscall(444, ctypes.byref(attr), ctypes.c_size_t(8), 0)
probe("nest", lambda: libc.syscall(446, fd, 0) == 0)
probe("nested child status", lambda: "State:" in open("/proc/%d/status" % pid).read())
probe("nested child environ", lambda: b"CHILD_MARK=child" in open("/proc/%d/environ" % pid, "rb").read())
probe("nested own environ", lambda: len(open("/proc/self/environ", "rb").read()) > 0)
os.kill(pid, 9)
os.waitpid(pid, 0)
print(json.dumps(R))
`
	want := map[string]string{
		"child status": "True", "child environ": "True", "child cmdline": "sleep",
		"nest": "True", "nested child status": "True", "nested child environ": "EACCES",
		"nested own environ": "True",
	}
	decode := func(t *testing.T, sb *sandlock.Sandbox) map[string]string {
		out := py(t, sb, code)
		lines := strings.Split(out, "\n")
		return lineJSON(t, lines[len(lines)-1])
	}
	t.Run("without fs-deny", func(t *testing.T) {
		sb := base()
		sb.FSReadable = append(sb.FSReadable, "/proc")
		expect(t, decode(t, sb), want)
	})
	t.Run("fs-deny", func(t *testing.T) {
		f := newFSTree(t)
		sb := f.sandbox(f.secret)
		sb.FSReadable = append(sb.FSReadable, "/proc")
		expect(t, decode(t, sb), want)
	})
}

// TestFSMetaEverydayTools: cp -a, tar and git inside a writable grant
// keep modes, times, symlinks and content as they do without a sandbox.
func TestFSMetaEverydayTools(t *testing.T) {
	dir := tempDir(t)
	src := filepath.Join(dir, "src")
	must(t, os.MkdirAll(filepath.Join(src, "sub"), 0o755))
	files := map[string]os.FileMode{"a": 0o600, "sub/b": 0o755, "sub/c": 0o640}
	for name, mode := range files {
		p := filepath.Join(src, name)
		must(t, os.WriteFile(p, []byte("content of "+name), 0o644))
		must(t, os.Chmod(p, mode))
		must(t, unix.UtimesNano(p, []unix.Timespec{{Sec: 1000000000, Nsec: 5}, {Sec: 1100000000, Nsec: 7}}))
	}
	must(t, unix.Setxattr(filepath.Join(src, "a"), "user.tag", []byte("kept"), 0))
	must(t, os.Chmod(filepath.Join(src, "sub"), 0o751))
	must(t, os.Symlink("a", filepath.Join(src, "link")))
	sb := base()
	sb.FSWritable = []string{dir, "/dev/null"}
	sb.FSReadable = append(sb.FSReadable, "/dev/urandom")
	sb.Cwd = dir
	sb.Env = map[string]string{"HOME": dir}
	res := sh(t, sb, `set -e
cp -a src copy
tar --xattrs -cf t.tar src
mkdir x && tar --xattrs -xpf t.tar -C x
git init -q repo && cd repo && cp ../src/sub/b . && git add b && git -c user.email=t@t -c user.name=t commit -qm m && git ls-files -s b`)
	if res.ExitCode != 0 {
		t.Fatalf("exit %d\n%s", res.ExitCode, res.Stderr)
	}
	if !strings.HasPrefix(string(res.Stdout), "100755 ") {
		t.Errorf("git recorded %q, want mode 100755", res.Stdout)
	}
	for _, copy := range []string{"copy", "x/src"} {
		for name, mode := range files {
			p := filepath.Join(dir, copy, name)
			var st unix.Stat_t
			must(t, unix.Stat(p, &st))
			if os.FileMode(st.Mode&0o7777) != mode || st.Mtim.Sec != 1100000000 {
				t.Errorf("%s: mode %o mtime %d, want %o and 1100000000", p, st.Mode&0o7777, st.Mtim.Sec, mode)
			}
			hostFile(t, p, "content of "+name)
		}
		if fi, err := os.Stat(filepath.Join(dir, copy, "sub")); err != nil || fi.Mode().Perm() != 0o751 {
			t.Errorf("%s/sub: %v %v, want 751", copy, fi.Mode(), err)
		}
		if l, err := os.Readlink(filepath.Join(dir, copy, "link")); err != nil || l != "a" {
			t.Errorf("%s/link: %q %v", copy, l, err)
		}
		v := make([]byte, 16)
		if n, err := unix.Getxattr(filepath.Join(dir, copy, "a"), "user.tag", v); err != nil || string(v[:n]) != "kept" {
			t.Errorf("%s/a: user.tag %q %v, want kept", copy, v[:max(n, 0)], err)
		}
	}
}

// TestFSMetaUserHandler: a user handler on a covered syscall sees only the
// calls the guard allows (a refused one never reaches it), may answer them
// itself, and when it says Continue the guard performs the call.
func TestFSMetaUserHandler(t *testing.T) {
	dir := tempDir(t)
	inside := metaTarget(t, filepath.Join(dir, "inside"), -1)
	veto := metaTarget(t, filepath.Join(dir, "veto"), -1)
	outside := metaTarget(t, filepath.Join(tempDir(t), "outside"), -1)
	before := metaOf(t, outside)
	vetoBefore := metaOf(t, veto)
	var mu sync.Mutex
	var seen []string
	h := sandlock.SyscallHandler{
		Syscall: int64(mustNr(t, "chmod")),
		Handler: sandlock.HandlerFunc(func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
			p, err := hc.ReadCString(hc.Notif.Data.Args[0], 4096)
			if err != nil {
				return sandlock.Errno(unix.EFAULT)
			}
			mu.Lock()
			seen = append(seen, filepath.Base(p))
			mu.Unlock()
			if p == veto {
				return sandlock.Errno(unix.EROFS)
			}
			return sandlock.Continue()
		}),
	}
	sb := base()
	sb.FSWritable = []string{dir}
	sb.Env = map[string]string{"D": dir}
	code := errnoProbe + fmt.Sprintf(`
import json
R = {}
for n, p in [("inside", %[2]q), ("outside", %[3]q), ("veto", %[4]q)]:
    buf = ctypes.create_string_buffer(p.encode())
    R[n] = sc(%[1]d, ctypes.addressof(buf), 0o600)
print(json.dumps(R))
`, mustNr(t, "chmod"), inside, outside, veto)
	res, err := sb.RunWithHandlers(ctxT(t), []string{python, "-c", code}, h)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("run: %v exit %d\n%s", err, res.ExitCode, res.Stderr)
	}
	expect(t, lineJSON(t, strings.TrimSpace(string(res.Stdout))), map[string]string{"inside": "OK", "outside": "EACCES", "veto": "EROFS"})
	if m := metaOf(t, inside); m.mode&0o7777 != 0o600 {
		t.Errorf("inside: mode %o, want 600", m.mode&0o7777)
	}
	unchanged(t, outside, before)
	unchanged(t, veto, vetoBefore)
	if got := strings.Join(seen, " "); got != "inside veto" {
		t.Errorf("the handler saw %q, want the allowed calls only (inside veto)", got)
	}
}

// fsIoctlSrc makes the ioctls that change a file's attributes through a
// read-only descriptor (chattr's flags, fsxattr, the generation, verity, an
// encryption policy) and prints each result and the flags left.
const fsIoctlSrc = `// ioctls FILE DIR: the attribute-changing ioctls on FILE and DIR, opened
// read-only; prints each result and FILE's flags afterwards.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/fsverity.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static void res(const char *name, long r) {
	if (r < 0)
		printf("%s: %s\n", name, strerrorname_np(errno));
	else
		printf("%s: %ld\n", name, r);
}
#define T(name, expr) do { errno = 0; res(name, (long)(expr)); } while (0)

int main(int argc, char **argv) {
	int fd = open(argv[1], O_RDONLY | O_CLOEXEC), dir = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || dir < 0)
		return 1;
	int flags = 0;
	T("getflags", ioctl(fd, FS_IOC_GETFLAGS, &flags));
	int nf = flags | FS_NOATIME_FL;
	T("setflags", ioctl(fd, FS_IOC_SETFLAGS, &nf));
	T("setflags bad ptr", ioctl(fd, FS_IOC_SETFLAGS, (void *)8));
	struct fsxattr fx;
	T("fsgetxattr", ioctl(fd, FS_IOC_FSGETXATTR, &fx));
	fx.fsx_xflags |= FS_XFLAG_NODUMP;
	T("fssetxattr", ioctl(fd, FS_IOC_FSSETXATTR, &fx));
	int gen = 42;
	T("setversion", ioctl(fd, FS_IOC_SETVERSION, &gen));
	struct fsverity_enable_arg va = {.version = 1, .hash_algorithm = FS_VERITY_HASH_ALG_SHA256, .block_size = 4096};
	T("enable verity", ioctl(fd, FS_IOC_ENABLE_VERITY, &va));
	char policy[24] = {2};
	T("set encryption policy", ioctl(dir, FS_IOC_SET_ENCRYPTION_POLICY, policy));
	T("getflags after", ioctl(fd, FS_IOC_GETFLAGS, &flags));
	printf("flags: %x\n", flags);
	return 0;
}
`

// TestFSMetaIoctl: the attribute-changing ioctls need the file under a
// writable grant like file_setattr (Landlock covers ioctls on devices
// only): under a writable grant they do what the kernel does without a
// sandbox; under a readable one they fail with EACCES and the host file
// keeps its flags.
func TestFSMetaIoctl(t *testing.T) {
	prog := cProgram(t, "fsmeta_ioctl", fsIoctlSrc)
	tree := func(t *testing.T) (string, string) {
		dir := tempDir(t)
		must(t, os.Mkdir(filepath.Join(dir, "d"), 0o755))
		f := filepath.Join(dir, "f")
		must(t, os.WriteFile(f, []byte("x"), 0o644))
		return dir, f
	}
	dir, f := tree(t)
	native := lineResults(t, nativeOut(t, noCaps, prog, f, filepath.Join(dir, "d")))
	if native["setflags"] != "0" || native["setflags bad ptr"] != "EFAULT" {
		t.Fatalf("the native run failed where it should not: %v", native)
	}
	t.Run("writable", func(t *testing.T) {
		dir, f := tree(t)
		sb := progSandbox(prog)
		sb.FSWritable = []string{dir}
		expect(t, lineResults(t, sandboxOut(t, sb, prog, f, filepath.Join(dir, "d"))), native)
	})
	t.Run("readable", func(t *testing.T) {
		dir, f := tree(t)
		before := metaOf(t, f)
		flagsBefore := nativeOut(t, nil, "lsattr", "-d", f)
		sb := progSandbox(prog)
		sb.FSReadable = append(sb.FSReadable, dir)
		want := map[string]string{"getflags": "0", "fsgetxattr": "0", "getflags after": "0", "flags": native["flags"]}
		for _, k := range []string{"setflags", "fssetxattr", "setversion", "enable verity", "set encryption policy"} {
			want[k] = "EACCES"
		}
		want["setflags bad ptr"] = "EFAULT" // the argument is read first, as the kernel does
		// The flags were never set: what getflags reports is the file's
		// own, read natively.
		got := lineResults(t, sandboxOut(t, sb, prog, f, filepath.Join(dir, "d")))
		want["flags"] = got["flags"]
		expect(t, got, want)
		if got["flags"] == native["flags"] {
			t.Errorf("flags %s: the changes reached the file", got["flags"])
		}
		unchanged(t, f, before)
		if after := nativeOut(t, nil, "lsattr", "-d", f); after != flagsBefore {
			t.Errorf("lsattr: %q, was %q", after, flagsBefore)
		}
	})
}

// fsLoopSrc times the covered syscalls in a loop.
const fsLoopSrc = `// loop DIR N: N chmod, utimensat, fchmod, futimens and getxattr calls on a
// file in DIR; prints the mean time of each, in nanoseconds.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
int main(int argc, char **argv) {
	int n = atoi(argv[2]);
	chdir(argv[1]);
	close(open("f", O_CREAT | O_WRONLY, 0644));
	int fd = open("f", O_RDONLY);
	struct timespec ts[2] = {{1, 0}, {2, 0}};
	char v[16];
	double t0 = now();
	for (int i = 0; i < n; i++) chmod("f", i & 1 ? 0600 : 0644);
	double t1 = now();
	for (int i = 0; i < n; i++) utimensat(AT_FDCWD, "f", ts, 0);
	double t2 = now();
	for (int i = 0; i < n; i++) fchmod(fd, i & 1 ? 0600 : 0644);
	double t3 = now();
	for (int i = 0; i < n; i++) futimens(fd, ts);
	double t4 = now();
	for (int i = 0; i < n; i++) getxattr("f", "user.x", v, sizeof v);
	double t5 = now();
	printf("%.0f %.0f %.0f %.0f %.0f\n", (t1 - t0) / n, (t2 - t1) / n, (t3 - t2) / n, (t4 - t3) / n, (t5 - t4) / n);
	return 0;
}
`

// BenchmarkFSMeta is the cost of the covered syscalls, now notified in
// every sandbox: a loop of each in a writable directory, bare and
// sandboxed, reported in µs per call.
func BenchmarkFSMeta(b *testing.B) {
	dir := b.TempDir()
	prog := filepath.Join(dir, "loop")
	cmd := exec.Command("gcc", "-O2", "-x", "c", "-o", prog, "-")
	cmd.Stdin = strings.NewReader(fsLoopSrc)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("gcc: %v\n%s", err, out)
	}
	work := filepath.Join(dir, "w")
	if err := os.Mkdir(work, 0o755); err != nil {
		b.Fatal(err)
	}
	n := strconv.Itoa(max(b.N, 10000))
	names := []string{"chmod", "utimensat", "fchmod", "futimens", "getxattr"}
	report := func(out, suffix string) {
		f := strings.Fields(out)
		if len(f) != len(names) {
			b.Fatalf("loop printed %q", out)
		}
		for i, v := range f {
			ns, _ := strconv.ParseFloat(v, 64)
			b.ReportMetric(ns/1000, names[i]+suffix+"-µs")
		}
	}
	bare, err := exec.Command(prog, work, n).Output()
	if err != nil {
		b.Fatal(err)
	}
	sb := base()
	sb.FSReadable = append(sb.FSReadable, dir)
	sb.FSWritable = []string{work}
	res, err := sb.Run(context.Background(), prog, work, n)
	if err != nil || res.ExitCode != 0 {
		b.Fatal(fmt.Sprint(res, err))
	}
	report(string(bare), "-bare")
	report(string(res.Stdout), "")
	b.ReportMetric(0, "ns/op")
}

// TestFSMetaCommands: chmod, chown, touch, Python's os.setxattr and an
// inotify watch do their work on a file under a writable grant; on a file
// outside every grant or under a readable one the changes fail (a watch
// needs a grant, readable will do) and the host file keeps its mode, owner,
// times and attributes.
func TestFSMetaCommands(t *testing.T) {
	script := `f="$1"
chmod 600 "$f" && echo chmod=ok
chown "$(id -u):$(id -g)" "$f" && echo chown=ok
touch -d 2001-02-03T04:05:06Z "$f" && echo touch=ok
/usr/bin/python3 - "$f" <<'PY'
import ctypes, os, select, sys
f = sys.argv[1]
try:
    os.setxattr(f, "user.cmd", b"set")
    print("setxattr=ok")
except OSError as e:
    print("setxattr=" + os.strerror(e.errno))
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(os.O_NONBLOCK)
if libc.inotify_add_watch(fd, f.encode(), 0x4) < 0:  # IN_ATTRIB
    print("inotify=" + os.strerror(ctypes.get_errno()))
else:
    try:
        os.utime(f, (1, 2))
    except OSError:
        pass
    # fsnotify queues the event within the syscall: nothing to wait for.
    r, _, _ = select.select([fd], [], [], 0)
    print("inotify=event" if r else "inotify=silent")
PY
`
	dir := tempDir(t)
	for _, c := range []struct {
		name  string
		grant func(sb *sandlock.Sandbox, d string)
		ok    bool
	}{
		{"writable", func(sb *sandlock.Sandbox, d string) { sb.FSWritable = []string{d} }, true},
		{"readable", func(sb *sandlock.Sandbox, d string) { sb.FSReadable = append(sb.FSReadable, d) }, false},
		{"outside every grant", func(*sandlock.Sandbox, string) {}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
			must(t, os.Mkdir(d, 0o755))
			f := metaTarget(t, filepath.Join(d, "f"), -1)
			before := metaOf(t, f)
			sb := base()
			c.grant(sb, d)
			res := run(t, sb, "/bin/sh", "-c", script, "sh", f)
			got := map[string]string{}
			for _, line := range strings.Split(strings.TrimSpace(string(res.Stdout)), "\n") {
				if k, v, ok := strings.Cut(line, "="); ok {
					got[k] = v
				}
			}
			if c.ok {
				expect(t, got, map[string]string{"chmod": "ok", "chown": "ok", "touch": "ok", "setxattr": "ok", "inotify": "event"})
				m := metaOf(t, f)
				if m.mode&0o7777 != 0o600 || !strings.Contains(m.xattrs, `user.cmd="set"`) {
					t.Errorf("the commands did not change the file: %+v", m)
				}
				return
			}
			want := map[string]string{"setxattr": "Permission denied", "inotify": "Permission denied"}
			if c.name == "readable" {
				want["inotify"] = "silent" // watching is reading: allowed, and nothing changes
			}
			expect(t, got, want)
			if !strings.Contains(string(res.Stderr), "chmod: changing permissions") || !strings.Contains(string(res.Stderr), "touch: ") {
				t.Errorf("chmod and touch did not fail: %s", res.Stderr)
			}
			unchanged(t, f, before)
		})
	}
}
