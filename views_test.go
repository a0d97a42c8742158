//go:build linux

package sandlock_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sandlock-go/sandlock"
)

// Tests of what the program sees of the host (issue 16): the served /proc
// view, the hostname, /etc/hosts by identity, the network interfaces. Each
// runs the same probe as root through the library and as nobody through
// the CLI, with the host's processes of the same user as the sandbox's
// (which the kernel alone would show it) outside.

// viewProbe opens what a program might, by every trick, and prints one
// JSON object: for each probe its result, or the errno name. argv: the pid
// of a process outside the sandbox, a writable directory, a host interface
// other than lo.
const viewProbe = `
import errno, json, os, sys
R = {}
def probe(name, fn):
    try:
        R[name] = fn()
    except OSError as e:
        R[name] = errno.errorcode[e.errno]
def rd(p, **kw):
    fd = os.open(p, os.O_RDONLY, **kw)
    try:
        return os.read(fd, 65536).decode(errors="replace")
    finally:
        os.close(fd)
outside, tmp = int(sys.argv[1]), sys.argv[2]
sup = os.getppid()  # the sandbox's root is this program: its parent is sandlock
me = os.getpid()

probe("self status", lambda: rd("/proc/self/status").startswith("Name:"))
probe("own pid cmdline", lambda: "python" in rd("/proc/%d/cmdline" % me))
probe("thread-self comm", lambda: rd("/proc/thread-self/comm").strip())
probe("self environ", lambda: len(rd("/proc/self/environ")) > 0)
probe("self fd dir", lambda: "0" in os.listdir("/proc/self/fd"))
probe("outside cmdline", lambda: rd("/proc/%d/cmdline" % outside))
probe("outside status", lambda: rd("/proc/%d/status" % outside))
probe("outside dir", lambda: os.listdir("/proc/%d" % outside))
probe("pid 1", lambda: rd("/proc/1/cmdline"))
probe("supervisor", lambda: rd("/proc/%d/cmdline" % sup))
probe("root trick", lambda: rd("/proc/self/root/proc/%d/cmdline" % outside))
probe("dotdot trick", lambda: rd("/proc/self/../%d/cmdline" % outside))
probe("dotdot self", lambda: rd("/proc/%d/../self/comm" % me).strip())
d = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY)
probe("dirfd outside", lambda: rd("%d/cmdline" % outside, dir_fd=d))
probe("dirfd self", lambda: rd("self/comm", dir_fd=d).strip())
os.chdir("/proc")
probe("cwd outside", lambda: rd("%d/status" % outside))
probe("cwd self", lambda: rd("self/comm").strip())
os.chdir("/")
os.symlink("/proc/%d" % outside, tmp + "/out")
os.symlink("/proc/self", tmp + "/me")
probe("symlink outside", lambda: rd(tmp + "/out/cmdline"))
probe("symlink self", lambda: rd(tmp + "/me/comm").strip())
probe("fd of dir outside", lambda: rd("/proc/self/fd/%d/%d/environ" % (d, outside)))
probe("fd of dir self", lambda: rd("/proc/self/fd/%d/self/comm" % d).strip())
pids = [int(n) for n in os.listdir("/proc") if n.isdigit()]
R["listing self"] = me in pids
R["listing outside"] = outside in pids
R["listing 1"] = 1 in pids
R["listing supervisor"] = sup in pids
for f in ["kallsyms", "kcore", "kmsg", "keys", "key-users", "sysrq-trigger", "modules", "cmdline", "timer_list",
          "net/tcp", "net/unix", "net/route", "self/mountstats"]:
    probe(f, lambda f=f: len(rd("/proc/" + f)) >= 0)
for f in ["sys/net/ipv4/conf", "sys/net/ipv6/neigh"]:
    probe(f, lambda f=f: os.listdir("/proc/" + f))
for f in ["version", "uptime", "filesystems", "self/maps", "sys/kernel/osrelease", "sys/net/ipv4/conf/lo/forwarding",
          "sys/net/ipv6/conf/all/disable_ipv6", "sys/net/core/somaxconn"]:
    probe(f, lambda f=f: len(rd("/proc/" + f)) > 0)
probe("host interface sysctl", lambda: rd("/proc/sys/net/ipv4/conf/%s/forwarding" % sys.argv[3]))
probe("net/dev", lambda: [l.split(":")[0].strip() for l in rd("/proc/net/dev").splitlines()[2:]])
probe("net/if_inet6", lambda: [l.split()[-1] for l in rd("/proc/net/if_inet6").splitlines()])
probe("loadavg", lambda: len(rd("/proc/loadavg").split()))
probe("mounts has /", lambda: any(l.split()[1] == "/" for l in rd("/etc/mtab").splitlines()))
probe("write sysctl", lambda: os.open("/proc/sys/kernel/hostname", os.O_WRONLY))
probe("write own comm", lambda: os.write(os.open("/proc/self/comm", os.O_WRONLY), b"renamed") and rd("/proc/self/comm").strip())
print(json.dumps(R))
`

// hostInterface returns a network interface of the host other than lo,
// whose settings /proc/sys/net/ipv4/conf/<name> the host shows.
func hostInterface(t *testing.T) string {
	t.Helper()
	entries, err := os.ReadDir("/proc/sys/net/ipv4/conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if n := e.Name(); n != "lo" && n != "all" && n != "default" {
			return n
		}
	}
	t.Fatal("the host has no interface but lo: nothing to hide")
	return ""
}

// viewWant is what viewProbe finds in a served /proc view: its own
// processes, the host's none, by any path; writable says whether the
// grant on /proc is writable.
func viewWant(writable bool) map[string]any {
	own := "renamed"
	if !writable {
		own = "EACCES"
	}
	want := map[string]any{
		"self status": true, "own pid cmdline": true, "thread-self comm": "python3", "self environ": true, "self fd dir": true,
		"outside cmdline": "EACCES", "outside status": "EACCES", "outside dir": "EACCES", "pid 1": "EACCES", "supervisor": "EACCES",
		"root trick": "EACCES", "dotdot trick": "EACCES", "dotdot self": "python3",
		"dirfd outside": "EACCES", "dirfd self": "python3", "cwd outside": "EACCES", "cwd self": "python3",
		"symlink outside": "EACCES", "symlink self": "python3", "fd of dir outside": "EACCES", "fd of dir self": "python3",
		"listing self": true, "listing outside": false, "listing 1": false, "listing supervisor": false,
		"version": true, "uptime": true, "filesystems": true, "self/maps": true, "sys/kernel/osrelease": true,
		"sys/net/ipv4/conf/lo/forwarding": true, "sys/net/ipv6/conf/all/disable_ipv6": true, "sys/net/core/somaxconn": true,
		"sys/net/ipv4/conf": "EACCES", "sys/net/ipv6/neigh": "EACCES", "host interface sysctl": "EACCES",
		"net/dev": []any{"lo"}, "net/if_inet6": []any{"lo"}, "loadavg": 5.0, "mounts has /": true,
		"write sysctl": "EACCES", "write own comm": own,
	}
	for _, f := range []string{"kallsyms", "kcore", "kmsg", "keys", "key-users", "sysrq-trigger", "modules", "cmdline", "timer_list",
		"net/tcp", "net/unix", "net/route", "self/mountstats"} {
		want[f] = "EACCES"
		if _, err := os.Stat("/proc/" + f); os.IsNotExist(err) {
			want[f] = "ENOENT" // not on this kernel: nothing to refuse
		}
	}
	return want
}

// expectAny compares a probe's results with want, key by key.
func expectAny(t *testing.T, got, want map[string]any) {
	t.Helper()
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: not probed", k)
			continue
		}
		if gs, ws := strconv.Quote(toString(g)), strconv.Quote(toString(want[k])); gs != ws {
			t.Errorf("%s = %s, want %s", k, gs, ws)
		}
	}
}

func toString(v any) string {
	switch v := v.(type) {
	case []any:
		s := make([]string, len(v))
		for i, e := range v {
			s[i] = toString(e)
		}
		return "[" + strings.Join(s, " ") + "]"
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	case string:
		return v
	}
	return "?"
}

// decodeAny decodes the last line of a program's output.
func decodeAny(t *testing.T, out string) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var r map[string]any
	hdlJSON(t, lines[len(lines)-1], &r)
	return r
}

// TestProcViewServed: with a grant on /proc (or on /), the program sees
// its own processes through every spelling of a path — absolute, "..",
// its root link, a dirfd, its cwd, a symlink in a writable directory, a
// descriptor's magic link — and never another process, the supervisor or
// pid 1, nor the host's kernel files; listings of /proc hold its own
// pids only; /proc is read-only but for its own entries under a writable
// grant. As root through the library, and as nobody through the CLI with
// the other process nobody's own.
func TestProcViewServed(t *testing.T) {
	t.Run("root", func(t *testing.T) {
		outside := victim(t)
		for _, c := range []struct {
			name     string
			read     []string
			write    []string
			writable bool
		}{
			{"-r /proc", append(slices.Clone(systemRead), "/proc"), nil, false},
			{"-w /proc", systemRead, []string{"/proc"}, true},
			{"-r /", []string{"/"}, nil, false},
		} {
			t.Run(c.name, func(t *testing.T) {
				tmp := tempDir(t)
				sb := &sandlock.Sandbox{FSReadable: c.read, FSWritable: append(slices.Clone(c.write), tmp)}
				out := sandboxOut(t, sb, python, "-c", viewProbe, strconv.Itoa(outside), tmp, hostInterface(t))
				expectAny(t, decodeAny(t, out), viewWant(c.writable))
			})
		}
	})
	t.Run("nobody", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Fatal("this test needs root to switch to cliNobody (run the tests as root, as CI does)")
		}
		outside := victim(t, cliNobody...)
		for _, c := range []struct {
			name  string
			flags []string
		}{
			{"-r /proc", cliGrants("-r", "/proc")},
			{"-r /", []string{"-r", "/"}},
		} {
			t.Run(c.name, func(t *testing.T) {
				tmp := tempDir(t)
				code, stdout, stderr := cliAs(t, cliNobody, cliRunArgs(append(c.flags, "-w", tmp), python, "-c", viewProbe, strconv.Itoa(outside), tmp, hostInterface(t))...)
				if code != 0 {
					t.Fatalf("exit %d: %s", code, stderr)
				}
				expectAny(t, decodeAny(t, stdout), viewWant(false))
			})
		}
	})
}

// TestProcViewTiers: --proc host shows the host's processes (the leak it
// is documented for); --proc none refuses all of /proc, the program's own
// entries included; without any grant on /proc, /proc is refused as
// before. The magic links of the program's own descriptors work in all.
func TestProcViewTiers(t *testing.T) {
	outside := victim(t)
	code := `
import errno, json, os, sys
R = {}
def probe(name, fn):
    try:
        R[name] = fn()
    except OSError as e:
        R[name] = errno.errorcode[e.errno]
outside = int(sys.argv[1])
probe("self", lambda: open("/proc/self/status").read().startswith("Name:"))
probe("outside", lambda: "sleep" in open("/proc/%d/cmdline" % outside).read())
probe("listed", lambda: outside in [int(n) for n in os.listdir("/proc") if n.isdigit()])
r, w = os.pipe()
os.write(w, b"piped")
probe("fd link", lambda: open("/proc/self/fd/%d" % r).read(5))
print(json.dumps(R))
`
	for _, c := range []struct {
		name string
		tier sandlock.ProcView
		proc bool
		want map[string]any
	}{
		{"host", sandlock.ProcViewHost, true, map[string]any{"self": true, "outside": true, "listed": true, "fd link": "piped"}},
		{"none", sandlock.ProcViewNone, true, map[string]any{"self": "EACCES", "outside": "EACCES", "listed": "EACCES", "fd link": "piped"}},
		{"served", sandlock.ProcViewServed, true, map[string]any{"self": true, "outside": "EACCES", "listed": false, "fd link": "piped"}},
		{"no grant", sandlock.ProcViewDefault, false, map[string]any{"self": "EACCES", "outside": "EACCES", "listed": "EACCES", "fd link": "piped"}},
		{"served, no grant", sandlock.ProcViewServed, false, map[string]any{"self": "EACCES", "outside": "EACCES", "listed": "EACCES", "fd link": "piped"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			sb := base()
			if c.proc {
				sb.FSReadable = append(sb.FSReadable, "/proc")
			}
			sb.ProcView = c.tier
			expectAny(t, decodeAny(t, sandboxOut(t, sb, python, "-c", code, strconv.Itoa(outside))), c.want)
		})
	}
}

// procRacerSrc races the served view from a second thread:
//
//	procracer symlink DIR OWN OTHER TRIES MARKER
//	    the flipper points DIR/link at OWN, then OTHER (a symlink made
//	    aside and renamed over it) while the main thread reads DIR/link/comm.
//	procracer dirfd DIR OTHERPID TRIES MARKER
//	    the flipper dup2()s a descriptor of /proc and one of DIR (which
//	    holds OTHERPID/comm, a decoy) onto one fd number while the main
//	    thread reads OTHERPID/comm relative to that number.
//	procracer getdents DIR OTHERPID TRIES
//	    the same flipper while the main thread lists the fd number.
//
// Prints "ok=N fail=N hit=N own=N": hit counts results that could only
// come from the other process (MARKER read, OTHERPID listed), own the
// listings that named the program's own pid (a /proc listing).
const procRacerSrc = `#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile int stop, flips;
static char link_[4096], tmpa[4096], tmpb[4096];
static const char *own, *other;
static int n, pfd, dfd;

static void *flip_link(void *arg) {
	(void)arg;
	while (!stop) {
		symlink(own, tmpa);
		rename(tmpa, link_);
		symlink(other, tmpb);
		rename(tmpb, link_);
		flips++;
	}
	return NULL;
}

static void *flip_fd(void *arg) {
	(void)arg;
	while (!stop) {
		dup2(pfd, n);
		dup2(dfd, n);
		flips++;
	}
	return NULL;
}

/* start runs the flipper and waits until it flips. */
static void start(pthread_t *th, void *(*fn)(void *)) {
	pthread_create(th, NULL, fn, NULL);
	while (!flips)
		;
}

int main(int argc, char **argv) {
	if (argc < 5) {
		fprintf(stderr, "usage\n");
		return 2;
	}
	const char *mode = argv[1], *dir = argv[2];
	int ok = 0, fail = 0, hit = 0, mine = 0;
	char buf[32768];
	pthread_t th;
	if (!strcmp(mode, "symlink")) {
		own = argv[3];
		other = argv[4];
		int tries = atoi(argv[5]);
		const char *marker = argv[6];
		snprintf(link_, sizeof link_, "%s/link", dir);
		snprintf(tmpa, sizeof tmpa, "%s/a", dir);
		snprintf(tmpb, sizeof tmpb, "%s/b", dir);
		symlink(own, link_);
		char path[4200];
		snprintf(path, sizeof path, "%s/comm", link_);
		start(&th, flip_link);
		for (int i = 0; i < tries; i++) {
			int fd = open(path, O_RDONLY);
			ssize_t r = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
			if (fd >= 0)
				close(fd);
			if (r < 0) {
				fail++;
				continue;
			}
			buf[r] = 0;
			if (strstr(buf, marker))
				hit++;
			else
				ok++;
		}
	} else {
		long otherpid = atol(argv[3]);
		int tries = atoi(argv[4]);
		pfd = open("/proc", O_RDONLY | O_DIRECTORY);
		dfd = open(dir, O_RDONLY | O_DIRECTORY);
		if (pfd < 0 || dfd < 0) {
			perror("open");
			return 2;
		}
		n = dup(dfd);
		start(&th, flip_fd);
		if (!strcmp(mode, "dirfd")) {
			const char *marker = argv[5];
			char rel[64];
			snprintf(rel, sizeof rel, "%ld/comm", otherpid);
			for (int i = 0; i < tries; i++) {
				int fd = openat(n, rel, O_RDONLY);
				ssize_t r = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
				if (fd >= 0)
					close(fd);
				if (r < 0) {
					fail++;
					continue;
				}
				buf[r] = 0;
				if (strstr(buf, marker))
					hit++;
				else
					ok++;
			}
		} else {
			for (int i = 0; i < tries; i++) {
				lseek(n, 0, SEEK_SET);
				int saw_other = 0, saw_own = 0, err = 0;
				for (;;) {
					long r = syscall(SYS_getdents64, n, buf, sizeof buf);
					if (r < 0) {
						err = 1;
						break;
					}
					if (r == 0)
						break;
					for (long off = 0; off < r;) {
						struct dirent64 *d = (struct dirent64 *)(buf + off);
						char *end;
						long pid = strtol(d->d_name, &end, 10);
						if (*end == 0 && end != d->d_name) {
							if (pid == otherpid)
								saw_other = 1;
							if (pid == getpid())
								saw_own = 1;
						}
						off += d->d_reclen;
					}
				}
				if (err)
					fail++;
				else if (saw_other)
					hit++;
				else
					ok++;
				mine += saw_own;
			}
		}
	}
	stop = 1;
	pthread_join(th, NULL);
	printf("ok=%d fail=%d hit=%d own=%d\n", ok, fail, hit, mine);
	return 0;
}
`

// procRace parses procracer's output.
func procRace(t *testing.T, out string) (ok, hit, own int) {
	t.Helper()
	var fail int
	if _, err := fmt.Sscanf(strings.TrimSpace(out), "ok=%d fail=%d hit=%d own=%d", &ok, &fail, &hit, &own); err != nil {
		t.Fatalf("racer printed %q: %v", out, err)
	}
	t.Logf("%s", strings.TrimSpace(out))
	return ok, hit, own
}

// procRaceTries is how many times each racer opens or lists: the issue
// asks for a thousand.
const procRaceTries = "2000"

// TestProcViewRaces: a second thread swaps what the path, or the fd
// number, names between the program's own /proc entries and another
// process's, thousands of times, while the first opens or lists through
// it. The other process is never read nor listed; the program's own
// entries are, sometimes. As root and as nobody.
func TestProcViewRaces(t *testing.T) {
	prog := cProgram(t, "procracer", procRacerSrc)
	for _, who := range []string{"root", "nobody"} {
		t.Run(who, func(t *testing.T) {
			var prefix []string
			if who == "nobody" {
				prefix = cliNobody
			}
			outside := victim(t, prefix...)
			pid := strconv.Itoa(outside)
			runRacer := func(t *testing.T, dir string, argv ...string) string {
				t.Helper()
				if who == "root" {
					sb := base()
					sb.FSReadable = append(sb.FSReadable, "/proc", filepath.Dir(prog))
					sb.FSWritable = []string{dir}
					return sandboxOut(t, sb, append([]string{prog}, argv...)...)
				}
				return nobodyOut(t, []string{"-r", "/proc", "-r", filepath.Dir(prog), "-w", dir}, append([]string{prog}, argv...)...)
			}
			t.Run("path", func(t *testing.T) {
				// fsracer (escapes_fs_test.go) flips the path bytes.
				racer := cProgram(t, "fsmeta_racer", fsRacerSrc)
				var out string
				argv := []string{racer, "open", "/proc/self/comm", "/proc/" + pid + "/comm", procRaceTries, "sleep"}
				if who == "root" {
					sb := base()
					sb.FSReadable = append(sb.FSReadable, "/proc", filepath.Dir(racer))
					out = sandboxOut(t, sb, argv...)
				} else {
					out = nobodyOut(t, []string{"-r", "/proc", "-r", filepath.Dir(racer)}, argv...)
				}
				ok, hit := race(t, out)
				if hit != 0 || ok == 0 {
					t.Errorf("the other process's comm was read %d times, the program's own %d times", hit, ok)
				}
			})
			t.Run("symlink", func(t *testing.T) {
				dir := tempDir(t)
				ok, hit, _ := procRace(t, runRacer(t, dir, "symlink", dir, "/proc/self", "/proc/"+pid, procRaceTries, "sleep"))
				if hit != 0 || ok == 0 {
					t.Errorf("the other process's comm was read %d times, the program's own %d times", hit, ok)
				}
			})
			t.Run("dirfd", func(t *testing.T) {
				dir := tempDir(t)
				must(t, os.MkdirAll(filepath.Join(dir, pid), 0o755))
				must(t, os.WriteFile(filepath.Join(dir, pid, "comm"), []byte("decoy\n"), 0o644))
				ok, hit, _ := procRace(t, runRacer(t, dir, "dirfd", dir, pid, procRaceTries, "sleep"))
				if hit != 0 || ok == 0 {
					t.Errorf("the other process's comm was read %d times, the decoy %d times", hit, ok)
				}
			})
			t.Run("getdents", func(t *testing.T) {
				dir := tempDir(t)
				must(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
				ok, hit, own := procRace(t, runRacer(t, dir, "getdents", dir, pid, procRaceTries))
				if hit != 0 || own == 0 || ok == 0 {
					t.Errorf("the other process was listed %d times; /proc with the program's own pid %d times", hit, own)
				}
			})
		})
	}
	// The racers find what there is to find: with the host's /proc, the
	// other process is read and listed.
	t.Run("host tier leaks", func(t *testing.T) {
		outside := strconv.Itoa(victim(t))
		dir := tempDir(t)
		sb := base()
		sb.FSReadable = append(sb.FSReadable, "/proc", filepath.Dir(prog))
		sb.FSWritable = []string{dir}
		sb.ProcView = sandlock.ProcViewHost
		if _, hit, _ := procRace(t, sandboxOut(t, sb, prog, "symlink", dir, "/proc/self", "/proc/"+outside, procRaceTries, "sleep")); hit == 0 {
			t.Errorf("symlink: the host's /proc never showed the other process")
		}
		if _, hit, _ := procRace(t, sandboxOut(t, sb, prog, "getdents", dir, outside, procRaceTries)); hit == 0 {
			t.Errorf("getdents: the host's /proc never listed the other process")
		}
	})
}

// TestProcViewSignalThroughProcDir: a /proc/<pid> directory descriptor is
// a process handle (pidfd_send_signal takes one): the served view never
// gives the program one for a process outside the sandbox, while its own
// works. As root and as nobody, with the process outside the same user's.
func TestProcViewSignalThroughProcDir(t *testing.T) {
	const code = `
import errno, json, os, signal, sys
R = {}
def probe(name, fn):
    try:
        R[name] = fn()
    except OSError as e:
        R[name] = errno.errorcode[e.errno]
def send(p):
    fd = os.open(p, os.O_RDONLY | os.O_DIRECTORY)
    try:
        signal.pidfd_send_signal(fd, 0)
        return "OK"
    finally:
        os.close(fd)
probe("outside", lambda: send("/proc/%s" % sys.argv[1]))
probe("own", lambda: send("/proc/self"))
print(json.dumps(R))
`
	want := map[string]any{"outside": "EACCES", "own": "OK"}
	t.Run("root", func(t *testing.T) {
		outside := victim(t)
		sb := base()
		sb.FSReadable = append(sb.FSReadable, "/proc")
		expectAny(t, decodeAny(t, sandboxOut(t, sb, python, "-c", code, strconv.Itoa(outside))), want)
	})
	t.Run("nobody", func(t *testing.T) {
		outside := victim(t, cliNobody...)
		expectAny(t, decodeAny(t, nobodyOut(t, []string{"-r", "/proc"}, python, "-c", code, strconv.Itoa(outside))), want)
	})
}
