//go:build linux

package sandlock_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock"
)

// runBoth runs a shell script in the sandbox sb as root (library) and,
// with the same grants given as flags, as nobody (CLI), and hands each
// stdout to check.
func runBoth(t *testing.T, sb *sandlock.Sandbox, flags []string, script string, check func(t *testing.T, out string)) {
	t.Helper()
	t.Run("root", func(t *testing.T) {
		check(t, sandboxOut(t, sb, "/bin/sh", "-c", script))
	})
	t.Run("nobody", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Fatal("this test needs root to switch to cliNobody (run the tests as root, as CI does)")
		}
		code, stdout, stderr := cliAs(t, cliNobody, cliRunArgs(flags, "/bin/sh", "-c", script)...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		check(t, stdout)
	})
}

// psPids runs ps in the sandbox (with a child of its own asleep) and
// returns the pids and commands it lists.
func psPids(out string) map[int]string {
	got := map[int]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 {
			pid, _ := strconv.Atoi(f[0])
			got[pid] = f[1]
		}
	}
	return got
}

// TestProcViewPs: ps inside the sandbox lists the sandbox's processes and
// no other, the same user's included; with the host's /proc it lists the
// machine's.
func TestProcViewPs(t *testing.T) {
	const script = `sleep 30 & ps -e -o pid=,comm=; kill $!`
	for _, who := range []string{"root", "nobody"} {
		t.Run(who, func(t *testing.T) {
			var prefix []string
			if who == "nobody" {
				if os.Geteuid() != 0 {
					t.Fatal("this test needs root to switch to cliNobody (run the tests as root, as CI does)")
				}
				prefix = cliNobody
			}
			outside := victim(t, prefix...)
			run := func(t *testing.T, tier string) map[int]string {
				if who == "root" {
					sb := base()
					sb.FSReadable = append(sb.FSReadable, "/proc")
					sb.ProcView = sandlock.ProcView(tier)
					return psPids(sandboxOut(t, sb, "/bin/sh", "-c", script))
				}
				flags := cliGrants("-r", "/proc")
				if tier != "" {
					flags = append(flags, "--proc", tier)
				}
				code, stdout, stderr := cliAs(t, cliNobody, cliRunArgs(flags, "/bin/sh", "-c", script)...)
				if code != 0 {
					t.Fatalf("exit %d: %s", code, stderr)
				}
				return psPids(stdout)
			}
			got := run(t, "")
			var comms []string
			for _, c := range got {
				comms = append(comms, c)
			}
			slices.Sort(comms)
			if !slices.Equal(comms, []string{"ps", "sh", "sleep"}) {
				t.Errorf("ps listed %v, want the sandbox's sh, sleep and ps only", got)
			}
			if _, ok := got[outside]; ok {
				t.Errorf("ps listed the process outside (%d)", outside)
			}
			if host := run(t, "host"); host[outside] != "sleep" || host[1] == "" {
				t.Errorf("with --proc host ps listed %d processes, not the one outside (%d) and pid 1", len(host), outside)
			}
		})
	}
}

// TestProcViewSynthetic: with NumCPUs the program sees that many CPUs
// wherever it counts them (sched_getaffinity, /proc/cpuinfo, /proc/stat,
// /sys/devices/system/cpu/online through sysconf); with MaxMemory,
// /proc/meminfo and free(1) show the budget; mounts show what the grants
// reach; loadavg is the sandbox's. Without those fields, the host's files.
func TestProcViewSynthetic(t *testing.T) {
	code := `
import json, os
R = {}
R["cpu_count"] = os.cpu_count()
R["affinity"] = len(os.sched_getaffinity(0))
R["cpuinfo"] = open("/proc/cpuinfo").read().count("processor\t:")
R["stat cpus"] = sum(1 for l in open("/proc/stat") if l.startswith("cpu") and l[3].isdigit())
R["online"] = open("/sys/devices/system/cpu/online").read().strip()
mem = dict((l.split(":")[0], int(l.split()[1])) for l in open("/proc/meminfo") if l.split()[1].isdigit())
R["memtotal"] = mem["MemTotal"]
R["memavail ok"] = 0 < mem["MemAvailable"] <= mem["MemTotal"]
mounts = [l.split()[1] for l in open("/proc/self/mounts")]
R["mount /"] = "/" in mounts
R["mount /proc"] = "/proc" in mounts
R["mount security"] = "/sys/kernel/security" in mounts
R["mount binfmt"] = "/proc/sys/fs/binfmt_misc" in mounts
la = open("/proc/loadavg").read().split()
R["loadavg"] = len(la) == 5 and "/" in la[3]
print(json.dumps(R))
`
	hostCPUs := strings.Count(string(must1(os.ReadFile("/proc/cpuinfo"))), "processor\t:")
	hostMem := strings.Fields(strings.Split(string(must1(os.ReadFile("/proc/meminfo"))), "\n")[0])[1]
	hostOnline := strings.TrimSpace(string(must1(os.ReadFile("/sys/devices/system/cpu/online"))))
	t.Run("limited", func(t *testing.T) {
		sb := &sandlock.Sandbox{FSReadable: []string{"/"}, NumCPUs: 1, MaxMemory: "64M"}
		var got map[string]any
		hdlJSON(t, py(t, sb, code), &got)
		expectAny(t, got, map[string]any{
			"cpu_count": 1.0, "affinity": 1.0, "cpuinfo": 1.0, "stat cpus": 1.0, "online": "0",
			"memtotal": 65536.0, "memavail ok": true,
			"mount /": true, "mount /proc": true, "mount security": false, "mount binfmt": false, "loadavg": true,
		})
	})
	t.Run("host", func(t *testing.T) {
		sb := &sandlock.Sandbox{FSReadable: []string{"/"}}
		var got map[string]any
		hdlJSON(t, py(t, sb, code), &got)
		mem, _ := strconv.ParseFloat(hostMem, 64)
		expectAny(t, got, map[string]any{
			"cpuinfo": float64(hostCPUs), "stat cpus": float64(hostCPUs), "online": hostOnline, "memtotal": mem,
			"mount /": true, "mount /proc": true, "loadavg": true,
		})
	})
	runBoth(t, &sandlock.Sandbox{FSReadable: []string{"/"}, NumCPUs: 1, MaxMemory: "64M"},
		[]string{"-r", "/", "--num-cpus", "1", "-m", "64M"},
		`nproc; getconf _NPROCESSORS_ONLN; free -m | awk '/^Mem:/ {print $2}'`,
		func(t *testing.T, out string) {
			if got := strings.Fields(out); !slices.Equal(got, []string{"1", "1", "64"}) {
				t.Errorf("nproc, getconf, free printed %q, want 1, 1, 64", out)
			}
		})
}

func must1[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestHostname: a named sandbox says its name in all four places — uname
// (hostname(1), uname -n), /etc/hostname (without a grant on /etc) and
// /proc/sys/kernel/hostname; an unnamed one says the name it was
// registered under, or a generated one, and /etc/hostname is the host's
// as the grants allow it.
func TestHostname(t *testing.T) {
	name := fmt.Sprintf("view-%d", os.Getpid())
	noEtc := []string{"/usr", "/lib", "/lib64", "/bin", "/proc"}
	const script = `uname -n; hostname; cat /etc/hostname; cat /proc/sys/kernel/hostname`
	t.Run("named", func(t *testing.T) {
		sb := &sandlock.Sandbox{FSReadable: noEtc, Name: name}
		var flags []string
		for _, p := range noEtc {
			flags = append(flags, "-r", p)
		}
		runBoth(t, sb, append(flags, "--name", name+"-cli"), script, func(t *testing.T, out string) {
			want := name
			if strings.Contains(out, "-cli") {
				want = name + "-cli"
			}
			if got := strings.Fields(out); !slices.Equal(got, []string{want, want, want, want}) {
				t.Errorf("printed %q, want %s four times", out, want)
			}
		})
	})
	t.Run("unnamed", func(t *testing.T) {
		sb := base()
		sb.FSReadable = append(sb.FSReadable, "/proc")
		p, err := sb.Popen(sandlock.Stdio{Stdout: sandlock.StdioPiped}, "/bin/sh", "-c", script)
		if err != nil {
			t.Fatal(err)
		}
		out := string(must1(readAll(p.Stdout)))
		reg := p.Name()
		if _, err := p.Wait(); err != nil {
			t.Fatal(err)
		}
		host := strings.TrimSpace(string(must1(os.ReadFile("/etc/hostname"))))
		if got := strings.Fields(out); !strings.HasPrefix(reg, "sandbox-") || !slices.Equal(got, []string{reg, reg, host, reg}) {
			t.Errorf("printed %q, want %q, %q, the host's /etc/hostname %q, %q", out, reg, reg, host, reg)
		}
	})
	t.Run("unregistered", func(t *testing.T) {
		sb := &sandlock.Sandbox{FSReadable: noEtc, NoRegistry: true}
		res := run(t, sb, "/bin/sh", "-c", script)
		got := strings.Fields(string(res.Stdout))
		if len(got) != 3 || !strings.HasPrefix(got[0], "sandbox-") || got[1] != got[0] || got[2] != got[0] ||
			!strings.Contains(string(res.Stderr), "/etc/hostname: Permission denied") {
			t.Errorf("printed %q (stderr %q), want a generated name three times and /etc/hostname refused", res.Stdout, res.Stderr)
		}
	})
}

func readAll(f *os.File) ([]byte, error) {
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := f.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return []byte(b.String()), nil
		}
	}
}

// TestHostsByIdentity: under a hostname rule, every open that reaches the
// host's /etc/hosts — by its path, "..", a symlink, a hard link, a dirfd,
// the program's root link — reads the synthetic file; mounts show it; a
// write open is refused. Another file is untouched.
func TestHostsByIdentity(t *testing.T) {
	tmp := tempDir(t)
	must(t, os.Symlink("/etc/hosts", filepath.Join(tmp, "sym")))
	hard := filepath.Join(tmp, "hard")
	hasHard := os.Link("/etc/hosts", hard) == nil
	code := `
import json, os, sys
tmp = sys.argv[1]
def rd(p, **kw):
    fd = os.open(p, os.O_RDONLY, **kw)
    try:
        return os.read(fd, 65536).decode()
    finally:
        os.close(fd)
R = {"path": rd("/etc/hosts")}
R["dotdot"] = rd("/etc/../etc/hosts")
R["symlink"] = rd(tmp + "/sym")
R["hard"] = rd(tmp + "/hard") if os.path.exists(tmp + "/hard") else R["path"]
d = os.open("/etc", os.O_RDONLY | os.O_DIRECTORY)
R["dirfd"] = rd("hosts", dir_fd=d)
R["root link"] = rd("/proc/self/root/etc/hosts")
R["mounted"] = "/etc/hosts" in [l.split()[1] for l in open("/proc/self/mounts")]
try:
    os.open("/etc/hosts", os.O_WRONLY)
    R["write"] = "OK"
except OSError as e:
    R["write"] = e.strerror
R["passwd"] = rd("/etc/passwd") == open("/etc/passwd").read()
print(json.dumps(R))
`
	sb := base()
	sb.FSReadable = append(sb.FSReadable, "/proc")
	sb.FSWritable = []string{tmp}
	sb.NetAllow = []string{"localhost:80"}
	var got map[string]any
	res := run(t, sb, python, "-c", code, tmp)
	if res.ExitCode != 0 {
		t.Fatalf("exit %d: %s", res.ExitCode, res.Stderr)
	}
	hdlJSON(t, strings.TrimSpace(string(res.Stdout)), &got)
	synthetic, _ := got["path"].(string)
	real := string(must1(os.ReadFile("/etc/hosts")))
	if !strings.HasPrefix(synthetic, "127.0.0.1 localhost\n::1 localhost\n") || synthetic == real {
		t.Fatalf("/etc/hosts inside is %q, not the synthetic file", synthetic)
	}
	for _, k := range []string{"dotdot", "symlink", "hard", "dirfd", "root link"} {
		if got[k] != synthetic {
			t.Errorf("%s: read %q, want the synthetic file", k, got[k])
		}
	}
	if !hasHard {
		t.Logf("no hard link to /etc/hosts could be made here: not probed")
	}
	if got["mounted"] != true || got["write"] != "Permission denied" || got["passwd"] != true {
		t.Errorf("mounted %v, write %v, /etc/passwd untouched %v", got["mounted"], got["write"], got["passwd"])
	}
}

// TestInterfaces: the program sees loopback only, through libc
// (if_nameindex, getifaddrs, getaddrinfo with AI_ADDRCONFIG) and ip(8);
// changes are refused, other netlink protocols and the interface ioctls
// too: every one, so that no getter tells a name the host has (SIOCGIFMTU
// answers "lo" and ENODEV for a missing name outside) from one it lacks.
func TestInterfaces(t *testing.T) {
	code := `
import ctypes, ctypes.util, errno, fcntl, json, socket, struct
R = {}
R["if_nameindex"] = socket.if_nameindex()
R["addrconfig"] = sorted(set(a[4][0] for a in socket.getaddrinfo("localhost", 80, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_ADDRCONFIG)))
class ifaddrs(ctypes.Structure):
    pass
ifaddrs._fields_ = [("next", ctypes.POINTER(ifaddrs)), ("name", ctypes.c_char_p), ("flags", ctypes.c_uint),
                    ("addr", ctypes.c_void_p), ("netmask", ctypes.c_void_p), ("ifu", ctypes.c_void_p), ("data", ctypes.c_void_p)]
libc = ctypes.CDLL(None, use_errno=True)
p = ctypes.POINTER(ifaddrs)()
if libc.getifaddrs(ctypes.byref(p)) == 0:
    names, q = set(), p
    while q:
        names.add(q.contents.name.decode())
        q = q.contents.next
    R["getifaddrs"] = sorted(names)
    libc.freeifaddrs(p)
else:
    R["getifaddrs"] = errno.errorcode[ctypes.get_errno()]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
try:
    fcntl.ioctl(s, 0x8912, struct.pack("iL", 0, 0))  # SIOCGIFCONF
    R["SIOCGIFCONF"] = "OK"
except OSError as e:
    R["SIOCGIFCONF"] = errno.errorcode[e.errno]
# The getters that answer unprivileged for a guessed name: SIOCGIFMTU,
# SIOCGIFTXQLEN, SIOCGIFMETRIC, SIOCGIFMAP.
for cmd in (0x8921, 0x8942, 0x891d, 0x8970):
    for name in (b"lo", b"nonexistent0"):
        try:
            fcntl.ioctl(s, cmd, struct.pack("16s24x", name))
            R["%#x %s" % (cmd, name.decode())] = "OK"
        except OSError as e:
            R["%#x %s" % (cmd, name.decode())] = errno.errorcode[e.errno]
# A command on the socket itself still works.
R["SIOCINQ"] = struct.unpack("i", fcntl.ioctl(s, 0x541b, struct.pack("i", 7)))[0]
try:
    socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 9)  # NETLINK_AUDIT
    R["audit"] = "OK"
except OSError as e:
    R["audit"] = errno.errorcode[e.errno]
n = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
n.bind((0, 0))
R["getsockname"] = n.getsockname()[0] > 0
print(json.dumps(R))
`
	want := map[string]any{
		"if_nameindex": []any{[]any{1.0, "lo"}}, "addrconfig": []any{"127.0.0.1"}, "getifaddrs": []any{"lo"},
		"SIOCGIFCONF": "EPERM", "audit": "EAFNOSUPPORT", "getsockname": true, "SIOCINQ": 0.0,
	}
	// Outside, the same getters tell lo from a name the host lacks.
	for _, cmd := range []uint{unix.SIOCGIFMTU, unix.SIOCGIFTXQLEN, unix.SIOCGIFMETRIC, unix.SIOCGIFMAP} {
		for _, name := range []string{"lo", "nonexistent0"} {
			want[fmt.Sprintf("%#x %s", cmd, name)] = "EPERM"
		}
	}
	if sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM, 0); err == nil {
		ifr, _ := unix.NewIfreq("lo")
		errLo := unix.IoctlIfreq(sock, unix.SIOCGIFMTU, ifr)
		ifr, _ = unix.NewIfreq("nonexistent0")
		errNone := unix.IoctlIfreq(sock, unix.SIOCGIFMTU, ifr)
		unix.Close(sock)
		if errLo != nil || errNone != unix.ENODEV {
			t.Fatalf("outside the sandbox SIOCGIFMTU gives %v for lo and %v for a missing name: the probe tells nothing", errLo, errNone)
		}
	}
	runBoth(t, base(), readArgs(), python+" -c '"+code+"'", func(t *testing.T, out string) {
		var got map[string]any
		hdlJSON(t, strings.TrimSpace(out), &got)
		if ac, _ := got["addrconfig"].([]any); len(ac) > 0 && toString(ac) != toString(want["addrconfig"]) {
			// ::1 appears when the host has a global IPv6 address.
			want["addrconfig"] = []any{"127.0.0.1", "::1"}
		}
		expectAny(t, got, want)
	})
	t.Run("ip", func(t *testing.T) {
		res := run(t, base(), "/bin/sh", "-c", "ip -o link; ip -o addr; ip link set lo down; echo rc=$?")
		out := string(res.Stdout)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[0], "1: lo: <LOOPBACK,UP,LOWER_UP>") ||
			!strings.Contains(lines[1], "inet 127.0.0.1/8") || !strings.Contains(lines[2], "inet6 ::1/128") || lines[3] != "rc=2" ||
			!strings.Contains(string(res.Stderr), "Operation not permitted") {
			t.Errorf("ip printed\n%s\nstderr %s", out, res.Stderr)
		}
	})
}

// TestProcessSubstitution: bash's <(…), /dev/stdin, /dev/fd/N and
// /proc/self/fd/N reopen the program's own descriptors, whatever the view.
func TestProcessSubstitution(t *testing.T) {
	const script = `cat <(echo sub); echo piped | cat /dev/stdin; cat /dev/fd/0 <<< here; cat /proc/self/fd/3 3< <(echo three)`
	for _, c := range []struct {
		name string
		sb   *sandlock.Sandbox
		flag []string
	}{
		{"served", &sandlock.Sandbox{FSReadable: append(slices.Clone(systemRead), "/proc")}, cliGrants("-r", "/proc")},
		{"served root", &sandlock.Sandbox{FSReadable: []string{"/"}}, []string{"-r", "/"}},
		{"none", &sandlock.Sandbox{FSReadable: systemRead, ProcView: sandlock.ProcViewNone}, cliGrants("--proc", "none")},
		{"no grant", base(), readArgs()},
	} {
		t.Run(c.name, func(t *testing.T) {
			runBothBash(t, c.sb, c.flag, script, func(t *testing.T, out string) {
				if got := strings.Fields(out); !slices.Equal(got, []string{"sub", "piped", "here", "three"}) {
					t.Errorf("printed %q", out)
				}
			})
		})
	}
}

// runBothBash is runBoth with bash.
func runBothBash(t *testing.T, sb *sandlock.Sandbox, flags []string, script string, check func(t *testing.T, out string)) {
	t.Helper()
	t.Run("root", func(t *testing.T) {
		check(t, sandboxOut(t, sb, "/bin/bash", "-c", script))
	})
	t.Run("nobody", func(t *testing.T) {
		code, stdout, stderr := cliAs(t, cliNobody, cliRunArgs(flags, "/bin/bash", "-c", script)...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		check(t, stdout)
	})
}

// TestSysCarved: under a grant on /, the parts of /sys that describe the
// host are refused and the rest stays readable; / itself and the
// directories above a refused tree are still listed (served); /sys is
// read-only under a writable grant, while the rest stays writable. The
// directories of the host's network interfaces are refused where
// /sys/class/net's links lead, not only there; so are the control groups
// (whose cgroup.procs list the host's pids). With --proc none, the
// directories above a refused tree are not listed (the price of not
// serving anything) and their entries still are.
func TestSysCarved(t *testing.T) {
	tmp := tempDir(t)
	// The directories that list the host's interfaces where
	// /sys/class/net's links lead (/sys/devices/virtual/net, a PCI
	// device's net): all refused, and the rest of their parents listed.
	var netDirs []string
	links, _ := filepath.Glob("/sys/class/net/*")
	for _, l := range links {
		if dev, err := filepath.EvalSymlinks(l); err == nil && !slices.Contains(netDirs, filepath.Dir(dev)) {
			netDirs = append(netDirs, filepath.Dir(dev))
		}
	}
	if out, err := exec.Command("/bin/sh", "-c", "cat /sys/fs/cgroup/cgroup.procs /sys/fs/cgroup/*/cgroup.procs 2>/dev/null").Output(); len(out) == 0 {
		t.Fatalf("outside the sandbox no cgroup.procs lists a pid (%v): the probe tells nothing", err)
	}
	if !slices.Contains(netDirs, "/sys/devices/virtual/net") {
		t.Fatalf("the interfaces' directories %v do not hold /sys/devices/virtual/net (lo's)", netDirs)
	}
	script := `
for d in /sys/firmware /sys/kernel/security /sys/class/net ` + strings.Join(netDirs, " ") + ` /sys/kernel/debug /sys/fs/cgroup /sys/class /sys/devices/virtual /sys/devices /sys/kernel /sys/fs /sys /; do
  if ls "$d" >/dev/null 2>&1; then echo "$d listed"; else echo "$d refused"; fi
done
if cat /sys/devices/virtual/net/lo/ifindex >/dev/null 2>&1; then echo "lo ifindex read"; else echo "lo ifindex refused"; fi
if cat /sys/devices/virtual/mem/null/dev >/dev/null 2>&1; then echo "null read"; else echo "null refused"; fi
if cat /sys/fs/cgroup/cgroup.procs /sys/fs/cgroup/*/cgroup.procs 2>/dev/null | grep -q .; then echo "cgroup.procs read"; else echo "cgroup.procs refused"; fi
if (exec 3>/sys/kernel/mm/transparent_hugepage/enabled) 2>/dev/null; then echo "sys writable"; else echo "sys read-only"; fi
if echo x > "$TMPD/f.$$" 2>/dev/null; then echo "tmp writable"; else echo "tmp refused"; fi`
	want := []string{"/sys/firmware refused", "/sys/kernel/security refused", "/sys/class/net refused"}
	for _, d := range netDirs {
		want = append(want, d+" refused")
	}
	want = append(want, "/sys/kernel/debug refused", "/sys/fs/cgroup refused",
		"/sys/class listed", "/sys/devices/virtual listed", "/sys/devices listed", "/sys/kernel listed", "/sys/fs listed", "/sys listed", "/ listed",
		"lo ifindex refused", "null read", "cgroup.procs refused", "sys read-only", "tmp writable")
	check := func(want []string) func(t *testing.T, out string) {
		return func(t *testing.T, out string) {
			if got := strings.Split(strings.TrimSpace(out), "\n"); !slices.Equal(got, want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		}
	}
	t.Run("served", func(t *testing.T) {
		sb := &sandlock.Sandbox{FSWritable: []string{"/"}, Env: map[string]string{"TMPD": tmp}}
		check(want)(t, sandboxOut(t, sb, "/bin/sh", "-c", script))
	})
	t.Run("served nobody", func(t *testing.T) {
		code, stdout, stderr := cliAs(t, cliNobody, cliRunArgs([]string{"-r", "/", "-w", tmp, "--env", "TMPD=" + tmp}, "/bin/sh", "-c", script)...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		check(want)(t, stdout)
	})
	t.Run("none", func(t *testing.T) {
		sb := &sandlock.Sandbox{FSWritable: []string{"/"}, ProcView: sandlock.ProcViewNone, Env: map[string]string{"TMPD": tmp}}
		none := slices.Clone(want)
		for i, w := range none {
			if strings.HasSuffix(w, " listed") {
				none[i] = strings.TrimSuffix(w, " listed") + " refused"
			}
		}
		check(none)(t, sandboxOut(t, sb, "/bin/sh", "-c", script))
	})
}

// TestViewsAfterDenials: a denied path stays denied even where the view
// would serve a synthetic file; the views answer before user handlers,
// which see every other open.
func TestViewsAfterDenials(t *testing.T) {
	sb := base()
	sb.FSReadable = append(sb.FSReadable, "/proc")
	sb.NumCPUs = 1
	sb.Name = fmt.Sprintf("deny-%d", os.Getpid())
	sb.FSDenied = []string{"/proc/cpuinfo", "/etc/hostname"}
	res := run(t, sb, "/bin/sh", "-c", "cat /proc/cpuinfo; cat /etc/hostname; grep -c ^processor /proc/self/../cpuinfo; cat /proc/sys/kernel/hostname")
	if got := strings.TrimSpace(string(res.Stdout)); got != sb.Name ||
		strings.Count(string(res.Stderr), "Permission denied") != 3 {
		t.Errorf("stdout %q, stderr %q: want the denied files refused and the hostname shown", res.Stdout, res.Stderr)
	}

	var seen atomic.Int64
	var viewed atomic.Int64
	openat := hdl(t, "openat", func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
		path, err := hc.ReadCString(hc.Notif.Data.Args[1], 4096)
		if err == nil && strings.Contains(path, "/proc/self/status") {
			viewed.Add(1)
		}
		if err == nil && strings.Contains(path, "os-release") {
			seen.Add(1)
		}
		return sandlock.Continue()
	})
	sb = base()
	sb.FSReadable = append(sb.FSReadable, "/proc")
	res, err := sb.RunWithHandlers(ctxT(t), []string{"/bin/sh", "-c", "head -1 /proc/self/status; head -1 /usr/lib/os-release"}, openat)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(res.Stdout), "Name:") || seen.Load() == 0 || viewed.Load() != 0 {
		t.Errorf("stdout %q; the user handler saw os-release %d times and /proc/self/status %d times (want >0 and 0)", res.Stdout, seen.Load(), viewed.Load())
	}
}

// TestInterfacesGo: Go's net package (its own netlink client, which checks
// the socket's family and port) sees loopback only, with its addresses.
func TestInterfacesGo(t *testing.T) {
	prog := goProgram(t, "ifaces", `package main

import (
	"fmt"
	"net"
)

func main() {
	ifs, err := net.Interfaces()
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	for _, i := range ifs {
		addrs, err := i.Addrs()
		fmt.Println(i.Index, i.Name, i.Flags&net.FlagLoopback != 0, addrs, err)
	}
}
`)
	sb := &sandlock.Sandbox{FSReadable: []string{filepath.Dir(prog)}}
	if got := strings.TrimSpace(sandboxOut(t, sb, prog)); got != "1 lo true [127.0.0.1/8 ::1/128] <nil>" {
		t.Errorf("net.Interfaces in the sandbox: %q", got)
	}
}
