//go:build linux

package sandlock_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock"
)

// probe runs Python calls in the sandbox and returns one result per line.
func probe(t *testing.T, sb *sandlock.Sandbox, calls ...string) []string {
	t.Helper()
	code := errnoProbe + "\n" + "for r in [" + strings.Join(calls, ", ") + "]:\n    print(r)\n"
	out := py(t, sb, code)
	lines := strings.Split(out, "\n")
	if len(lines) != len(calls) {
		t.Fatalf("probe printed %q for %d calls", out, len(calls))
	}
	return lines
}

func TestDefaultBlocklist(t *testing.T) {
	names := []string{"mount", "umount2", "pivot_root", "unshare", "setns", "ptrace", "bpf", "perf_event_open",
		"userfaultfd", "keyctl", "add_key", "process_vm_readv", "io_uring_setup", "personality",
		"kexec_load", "init_module", "reboot", "sethostname", "clock_settime", "settimeofday", "adjtimex", "clock_adjtime",
		"shmget", "msgget", "semget"}
	var calls []string
	for _, n := range names {
		calls = append(calls, fmt.Sprintf("sc(%d, 0, 0, 0, 0, 0)", mustNr(t, n)))
	}
	got := probe(t, base(), calls...)
	for i, n := range names {
		if got[i] != "EPERM" {
			t.Errorf("%s: got %s, want EPERM", n, got[i])
		}
	}
	// Harmless syscalls stay allowed.
	got = probe(t, base(), fmt.Sprintf("sc(%d)", mustNr(t, "getpid")), fmt.Sprintf("sc(%d, 0)", mustNr(t, "uname")))
	if got[0] != "OK" || got[1] != "EFAULT" {
		t.Errorf("getpid %s (want OK), uname(NULL) %s (want EFAULT from the kernel)", got[0], got[1])
	}
}

func TestX32SyscallsAreRefused(t *testing.T) {
	got := probe(t, base(), fmt.Sprintf("sc(%d)", 0x40000000|mustNr(t, "getpid")))
	if got[0] != "EPERM" {
		t.Fatalf("x32 getpid: %s, want EPERM", got[0])
	}
}

func TestArgumentFilters(t *testing.T) {
	sb := base()
	got := probe(t, sb,
		// clone with a namespace flag; clone3 falls back to ENOSYS.
		fmt.Sprintf("sc(%d, %d, 0, 0, 0, 0)", mustNr(t, "clone"), unix.CLONE_NEWUSER|int(unix.SIGCHLD)),
		fmt.Sprintf("sc(%d, 0, 0)", mustNr(t, "clone3")),
		// prctl
		fmt.Sprintf("sc(%d, %d, 0)", mustNr(t, "prctl"), unix.PR_SET_DUMPABLE),
		fmt.Sprintf("sc(%d, %d, 0)", mustNr(t, "prctl"), unix.PR_SET_SECUREBITS),
		fmt.Sprintf("sc(%d, %d, 0)", mustNr(t, "prctl"), unix.PR_SET_PTRACER),
		fmt.Sprintf("sc(%d, %d, %d)", mustNr(t, "prctl"), unix.PR_GET_DUMPABLE, 0),
		// ioctl: TIOCSTI is refused before the kernel looks at the fd.
		fmt.Sprintf("sc(%d, 0, %d, 0)", mustNr(t, "ioctl"), unix.TIOCSTI),
		fmt.Sprintf("sc(%d, 0, %d, 0)", mustNr(t, "ioctl"), unix.SIOCGIFCONF),
		fmt.Sprintf("sc(%d, 9999, %d, 0)", mustNr(t, "ioctl"), unix.TCGETS),
		// unshare: only a private fd table (the child stage's own last
		// step) gets through, nothing with it.
		fmt.Sprintf("sc(%d, %d)", mustNr(t, "unshare"), unix.CLONE_FILES),
		fmt.Sprintf("sc(%d, %d)", mustNr(t, "unshare"), unix.CLONE_FILES|unix.CLONE_NEWUSER),
		fmt.Sprintf("sc(%d, %d)", mustNr(t, "unshare"), unix.CLONE_FS),
		fmt.Sprintf("sc(%d, %d)", mustNr(t, "unshare"), unix.CLONE_FILES|1<<32),
	)
	want := []string{"EPERM", "ENOSYS", "EPERM", "EPERM", "EPERM", "OK", "EPERM", "EPERM", "EBADF", "OK", "EPERM", "EPERM", "EPERM"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("call %d: got %s, want %s", i, got[i], want[i])
		}
	}
	// A fork without namespace flags works (the shell forks).
	if res := sh(t, sb, "(echo sub)"); string(res.Stdout) != "sub\n" {
		t.Fatalf("subshell: %q", res.Stdout)
	}
}

func TestSocketGate(t *testing.T) {
	sock := mustNr(t, "socket")
	s := func(domain, typ, proto int) string {
		return fmt.Sprintf("sc(%d, %d, %d, %d)", sock, domain, typ, proto)
	}
	got := probe(t, base(),
		s(unix.AF_UNIX, unix.SOCK_STREAM, 0),
		s(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0),
		s(unix.AF_INET6, unix.SOCK_STREAM, 0),
		s(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP),
		s(unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_RAW),
		s(unix.AF_INET, unix.SOCK_DGRAM, 0),
		s(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP),
		s(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK, 0),
		s(unix.AF_INET, unix.SOCK_STREAM, 262), // MPTCP
		s(unix.AF_PACKET, unix.SOCK_RAW, 0),
		s(unix.AF_ALG, unix.SOCK_SEQPACKET, 0),
		s(unix.AF_VSOCK, unix.SOCK_STREAM, 0),
		s(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE),
		s(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_AUDIT),
	)
	want := []string{"OK", "OK", "OK", "EPERM", "EPERM", "EPERM", "EPERM", "EPERM", "EPROTONOSUPPORT",
		"EAFNOSUPPORT", "EAFNOSUPPORT", "EAFNOSUPPORT", "OK", "EAFNOSUPPORT"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("socket call %d: got %s, want %s", i, got[i], want[i])
		}
	}
}

func TestTCPIsDeniedWithoutRules(t *testing.T) {
	ln := acceptAll(t, "tcp4", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	code := fmt.Sprintf(`
import socket, errno
def attempt(f):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        f(s); return "OK"
    except OSError as e:
        return errno.errorcode[e.errno]
print(attempt(lambda s: s.connect(("127.0.0.1", %d))))
print(attempt(lambda s: s.bind(("127.0.0.1", 0))))
`, port)
	out := py(t, base(), code)
	if out != "EACCES\nEACCES" {
		t.Fatalf("connect/bind without network rules: %q, want EACCES twice", out)
	}
	// The host side of the same connect works: the listener is reachable.
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestSysVIPCGroup(t *testing.T) {
	shmget := fmt.Sprintf("sc(%d, 0, 4096, %d)", mustNr(t, "shmget"), unix.IPC_CREAT|0o600)
	if got := probe(t, base(), shmget); got[0] != "EPERM" {
		t.Fatalf("shmget by default: %s, want EPERM", got[0])
	}
	sb := base()
	sb.ExtraAllowSyscalls = []string{"sysv_ipc"}
	// IPC_PRIVATE segments go away when removed; remove it right away.
	code := errnoProbe + fmt.Sprintf(`
r = libc.syscall(%d, 0, 4096, %d)
print("OK" if r >= 0 else errno.errorcode[ctypes.get_errno()])
if r >= 0: libc.syscall(%d, r, 0, 0)
`, mustNr(t, "shmget"), unix.IPC_CREAT|0o600, mustNr(t, "shmctl"))
	if out := py(t, sb, code); out != "OK" {
		t.Fatalf("shmget with sysv_ipc allowed: %s", out)
	}
}

func TestExtraDenySyscalls(t *testing.T) {
	sb := base()
	sb.ExtraDenySyscalls = []string{"getpriority"}
	call := fmt.Sprintf("sc(%d, 0, 0)", mustNr(t, "getpriority"))
	if got := probe(t, sb, call); got[0] != "EPERM" {
		t.Fatalf("denied getpriority: %s", got[0])
	}
	if got := probe(t, base(), call); got[0] != "OK" {
		t.Fatalf("getpriority without the deny: %s", got[0])
	}
	// Syscalls the child stage makes before exec cannot be denied: the
	// program would never start.
	sb.ExtraDenySyscalls = []string{"dup3"}
	if _, err := sb.Run(ctxT(t), "true"); err == nil || !strings.Contains(err.Error(), "dup3") || !strings.Contains(err.Error(), "child stage") {
		t.Fatalf("denying dup3: %v", err)
	}
}

func TestSyscallListValidation(t *testing.T) {
	cases := []struct {
		allow, deny []string
		want        string
	}{
		{deny: []string{"no_such_syscall"}, want: "no_such_syscall"},
		{allow: []string{"getpid"}, want: "individual syscalls cannot be re-allowed"},
		{allow: []string{"nogroup"}, want: "nogroup"},
		{allow: []string{"sysv_ipc"}, deny: []string{"sysv_ipc"}, want: "both allowed and denied"},
		{allow: []string{"sysv_ipc"}, deny: []string{"shmget"}, want: "belongs to allowed group"},
	}
	for _, c := range cases {
		sb := base()
		sb.ExtraAllowSyscalls, sb.ExtraDenySyscalls = c.allow, c.deny
		_, err := sb.Run(ctxT(t), "true")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("allow %v deny %v: got %v, want an error mentioning %q", c.allow, c.deny, err, c.want)
		}
	}
}

func TestSignalScope(t *testing.T) {
	// The program may not signal processes outside its sandbox…
	code := fmt.Sprintf(`
import os, errno
try:
    os.kill(%d, 0); print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])
`, os.Getpid())
	if out := py(t, base(), code); out != "EPERM" {
		t.Fatalf("signal to the supervisor: %s, want EPERM", out)
	}
	// …but may signal its own children.
	if res := sh(t, base(), "sleep 30 & kill $! && wait $!; echo $?"); strings.TrimSpace(string(res.Stdout)) != "143" {
		t.Fatalf("signal to own child: %q", res.Stdout)
	}
	// With the protection disabled, the supervisor is reachable again.
	sb := base()
	sb.Disable = []sandlock.Protection{sandlock.ProtectionSignalScope}
	if out := py(t, sb, code); out != "OK" {
		t.Fatalf("signal with signal-scope disabled: %s", out)
	}
}

func TestAbstractUnixSocketScope(t *testing.T) {
	name := fmt.Sprintf("sandlock-test-%d", os.Getpid())
	acceptAll(t, "unix", "@"+name)
	code := fmt.Sprintf(`
import socket, errno
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect("\0%s"); print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])
`, name)
	if out := py(t, base(), code); out != "EPERM" {
		t.Fatalf("abstract socket outside the sandbox: %s, want EPERM", out)
	}
	sb := base()
	sb.AllowDegraded = []sandlock.Protection{sandlock.ProtectionNetTCP}
	sb.Disable = []sandlock.Protection{sandlock.ProtectionAbstractUnixSocketScope}
	if out := py(t, sb, code); out != "OK" {
		t.Fatalf("abstract socket with the scope disabled: %s", out)
	}
	// Inside the sandbox, abstract sockets between its own processes work.
	inside := `
import socket, os
name = "\0sandlock-inside-%d" % os.getpid()
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); srv.bind(name); srv.listen()
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); c.connect(name)
print("OK")
`
	if out := py(t, base(), inside); out != "OK" {
		t.Fatalf("abstract socket inside: %s", out)
	}
}

func TestProtectionPostures(t *testing.T) {
	sb := base()
	sb.Disable = []sandlock.Protection{sandlock.ProtectionFSRefer}
	if _, err := sb.Run(ctxT(t), "true"); err == nil || !strings.Contains(err.Error(), "fs-refer") {
		t.Fatalf("disabling fs-refer: %v", err)
	}
	// fs-truncate disabled: truncating a read-only-granted… still needs
	// write access; with it active, a writable grant truncates fine.
	dir := tempDir(t)
	f := filepath.Join(dir, "f")
	os.WriteFile(f, []byte("12345"), 0o644)
	sb = base()
	sb.FSWritable = []string{dir}
	sb.AllowDegraded = []sandlock.Protection{sandlock.ProtectionFSTruncate, sandlock.ProtectionNetTCP}
	if res := run(t, sb, "truncate", "-s", "2", f); res.ExitCode != 0 {
		t.Fatalf("truncate in writable grant: %s", res.Stderr)
	}
	if b, _ := os.ReadFile(f); string(b) != "12" {
		t.Fatalf("content %q", b)
	}
	if sandlock.ProtectionMinABI(sandlock.ProtectionSignalScope) != 6 || sandlock.MinLandlockABI() != 6 {
		t.Fatal("ABI table")
	}
	if abi := sandlock.LandlockABIVersion(); abi < 6 {
		t.Fatalf("this machine has Landlock ABI %d; the tests need ≥ 6", abi)
	}
}

func TestSyscallNr(t *testing.T) {
	nr, err := sandlock.SyscallNr("openat")
	if err != nil || nr != unix.SYS_OPENAT {
		t.Fatalf("openat = %d, %v", nr, err)
	}
	if _, err := sandlock.SyscallNr("nope"); err == nil {
		t.Fatal("unknown name accepted")
	}
}

// acceptAll listens on addr and accepts and closes every connection until
// the test ends.
func acceptAll(t *testing.T, network, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln
}

// TestExtraDenyWinsOverBuiltins denies syscalls that builtin features
// otherwise judge (metadata, network, other processes): the denial is what
// the program meets, before any judgement.
func TestExtraDenyWinsOverBuiltins(t *testing.T) {
	for _, name := range []string{"fchmodat", "chmod", "connect", "listen", "sendmsg", "setxattr", "getpriority", "sched_getparam"} {
		sb := base()
		sb.ExtraDenySyscalls = []string{name}
		// Arguments that natively fail with something else than EPERM.
		out := py(t, sb, errnoProbe+fmt.Sprintf("print(sc(%d, -1, 0, 0, 0))", mustNr(t, name)))
		if out != "EPERM" {
			t.Errorf("%s denied: %q, want EPERM", name, out)
		}
	}
}
