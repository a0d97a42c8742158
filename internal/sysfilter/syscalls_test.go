//go:build linux

package sysfilter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/filter"
	"github.com/sandlock-go/sandlock/internal/sysnum"
)

var tables = []*sysnum.Table{sysnum.AMD64, sysnum.ARM64}

// prog is a compiled filter ready to run in x/net/bpf's VM.
type prog struct {
	vm   *bpf.VM
	arch uint32
}

func compile(t *testing.T, s *FilterSpec) *prog {
	t.Helper()
	p, err := s.Filter()
	if err != nil {
		t.Fatalf("Filter: %v", err)
	}
	raw, err := p.Compile()
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	ri := make([]bpf.RawInstruction, len(raw))
	for i, f := range raw {
		ri[i] = bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}
	}
	insns, ok := bpf.Disassemble(ri)
	if !ok {
		t.Fatal("program does not disassemble")
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatalf("NewVM: %v", err)
	}
	return &prog{vm: vm, arch: s.Arch.AuditArch}
}

// evalArch runs the filter on one syscall. The VM loads big-endian words,
// so each 32-bit word of struct seccomp_data is stored big-endian with the
// value the kernel would load (low halves of the u64 arguments first).
func (p *prog) evalArch(t *testing.T, arch uint32, nr int, args ...uint64) filter.Action {
	t.Helper()
	b := make([]byte, 64)
	binary.BigEndian.PutUint32(b[0:], uint32(nr))
	binary.BigEndian.PutUint32(b[4:], arch)
	for i, a := range args {
		binary.BigEndian.PutUint32(b[16+8*i:], uint32(a))
		binary.BigEndian.PutUint32(b[20+8*i:], uint32(a>>32))
	}
	n, err := p.vm.Run(b)
	if err != nil {
		t.Fatalf("VM: %v", err)
	}
	return filter.Action(uint32(n))
}

func (p *prog) eval(t *testing.T, nr int, args ...uint64) filter.Action {
	t.Helper()
	return p.evalArch(t, p.arch, nr, args...)
}

func nrsOf(t *testing.T, tab *sysnum.Table, names ...string) []int {
	t.Helper()
	var out []int
	for _, n := range names {
		out = append(out, tab.MustNr(n))
	}
	return out
}

func namesOf(tab *sysnum.Table, nrs []int) map[string]bool {
	out := map[string]bool{}
	for _, nr := range nrs {
		n, _ := tab.Name(nr)
		out[n] = true
	}
	return out
}

// Every name the package lists must be a real syscall: DenyList skips
// names an architecture lacks, so a typo would silently deny nothing.
func TestListedNamesExist(t *testing.T) {
	var all []string
	all = append(all, DefaultBlocklist...)
	for i, g := range groups {
		if len(g.members) == 0 {
			t.Errorf("group %s is empty", g.name)
		}
		if i > 0 && groups[i-1].name >= g.name {
			t.Errorf("groups are not sorted by name at %s", g.name)
		}
		all = append(all, g.members...)
	}
	for _, n := range all {
		if _, ok := sysnum.AMD64.Nr(n); !ok {
			t.Errorf("%q is not an amd64 syscall", n)
		}
		if _, ok := sysnum.ARM64.Nr(n); !ok && n != "ioperm" && n != "iopl" {
			t.Errorf("%q is not an arm64 syscall", n)
		}
	}
	for _, g := range DefaultDeniedGroups {
		if _, ok := Group(g); !ok {
			t.Errorf("default-denied group %q does not exist", g)
		}
	}
}

func TestDenyListDefault(t *testing.T) {
	for _, tab := range tables {
		t.Run(tab.Arch, func(t *testing.T) {
			deny, err := DenyList(tab, DefaultBlocklist, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !sort.IntsAreSorted(deny) || len(slices.Compact(slices.Clone(deny))) != len(deny) {
				t.Errorf("deny list is not sorted and unique: %v", deny)
			}
			got := namesOf(tab, deny)
			mustDeny := []string{
				"mount", "umount2", "pivot_root", "unshare", "setns", "ptrace", "bpf", "kexec_load",
				"init_module", "finit_module", "keyctl", "perf_event_open", "userfaultfd",
				"process_vm_readv", "process_vm_writev", "open_by_handle_at", "io_uring_setup",
				"personality", "fsopen", "fsmount", "move_mount", "open_tree", "mount_setattr",
				// The host clock.
				"clock_settime", "settimeofday", "adjtimex", "clock_adjtime",
				// sysv_ipc, denied by default.
				"shmget", "shmat", "shmdt", "shmctl", "msgget", "msgsnd", "msgrcv", "msgctl",
				"semget", "semop", "semctl", "semtimedop",
			}
			if tab == sysnum.AMD64 {
				mustDeny = append(mustDeny, "ioperm", "iopl")
			}
			for _, n := range mustDeny {
				if !got[n] {
					t.Errorf("%s is not denied by default", n)
				}
			}
			// The other side: what programs need stays open, including
			// reading the clock.
			for _, n := range []string{"read", "write", "openat", "close", "execve", "clone", "socket",
				"ioctl", "prctl", "clock_gettime", "clock_getres", "clock_nanosleep", "gettimeofday",
				"getpid", "mmap", "wait4", "exit_group", "seccomp", "landlock_restrict_self"} {
				if got[n] {
					t.Errorf("%s is denied by default", n)
				}
			}
			// Nothing but the blocklist and the default-denied groups.
			want := map[string]bool{}
			for _, n := range DefaultBlocklist {
				if _, ok := tab.Nr(n); ok {
					want[n] = true
				}
			}
			for _, n := range sysvIPC(t) {
				want[n] = true
			}
			if len(got) != len(want) {
				t.Errorf("denied %d syscalls, want %d", len(got), len(want))
			}
			for n := range got {
				if !want[n] {
					t.Errorf("%s is denied but on no list", n)
				}
			}
		})
	}
}

func TestDenyListAllowSysvIPC(t *testing.T) {
	for _, tab := range tables {
		deny, err := DenyList(tab, DefaultBlocklist, []string{"sysv_ipc"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := namesOf(tab, deny)
		for _, n := range sysvIPC(t) {
			if got[n] {
				t.Errorf("%s: %s still denied with sysv_ipc allowed", tab.Arch, n)
			}
		}
		for _, n := range []string{"mount", "clock_settime", "ptrace"} {
			if !got[n] {
				t.Errorf("%s: allowing sysv_ipc re-allowed %s", tab.Arch, n)
			}
		}
		def, _ := DenyList(tab, DefaultBlocklist, nil, nil)
		if len(deny) != len(def)-len(sysvIPC(t)) {
			t.Errorf("%s: %d denied with sysv_ipc allowed, %d by default", tab.Arch, len(deny), len(def))
		}
	}
}

func TestDenyListExtraDeny(t *testing.T) {
	tab := sysnum.AMD64
	def, err := DenyList(tab, DefaultBlocklist, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	deny, err := DenyList(tab, DefaultBlocklist, nil, []string{"getpid", "open", "mount"})
	if err != nil {
		t.Fatal(err)
	}
	got := namesOf(tab, deny)
	if !got["getpid"] || !got["open"] || !got["mount"] {
		t.Errorf("extra deny names missing from %v", got)
	}
	if len(deny) != len(def)+2 { // mount was already denied
		t.Errorf("%d denied, want %d", len(deny), len(def)+2)
	}
	if !sort.IntsAreSorted(deny) || len(slices.Compact(slices.Clone(deny))) != len(deny) {
		t.Errorf("deny list is not sorted and unique")
	}

	// A group in extraDeny denies its members even when sysv_ipc would be
	// denied anyway, and is accepted without complaint.
	deny, err = DenyList(tab, DefaultBlocklist, nil, []string{"sysv_ipc"})
	if err != nil || len(deny) != len(def) {
		t.Errorf("extra deny sysv_ipc: %d denied, %v; want %d, nil", len(deny), err, len(def))
	}

	// An allowed group's members stay allowed next to an unrelated deny.
	deny, err = DenyList(tab, DefaultBlocklist, []string{"sysv_ipc"}, []string{"getpid"})
	if err != nil {
		t.Fatal(err)
	}
	got = namesOf(tab, deny)
	if !got["getpid"] || got["shmget"] {
		t.Errorf("allow sysv_ipc + deny getpid: getpid %v shmget %v", got["getpid"], got["shmget"])
	}

	// Names are per architecture: open exists on amd64 only.
	if _, err := DenyList(sysnum.ARM64, DefaultBlocklist, nil, []string{"open"}); !errors.Is(err, ErrSyscallSpec) || !strings.Contains(err.Error(), "open") {
		t.Errorf("arm64 extra deny open: %v, want an unknown-name error", err)
	}
}

func TestDenyListErrors(t *testing.T) {
	for _, tc := range []struct {
		name         string
		allow, deny  []string
		want, absent []string
	}{
		{
			name: "unknown deny names",
			deny: []string{"nope", "getpid", "alsono"},
			want: []string{"nope", "alsono", "ExtraDenySyscalls", "sysv_ipc"}, absent: []string{"getpid"},
		},
		{
			name:  "single syscall in allow",
			allow: []string{"getpid"},
			want:  []string{"getpid", "individual syscalls cannot be re-allowed", "sysv_ipc"},
		},
		{
			name:  "unknown allow group next to a known one",
			allow: []string{"sysv_ipc", "read", "bogus"},
			want:  []string{"read", "bogus", "individual syscalls cannot be re-allowed"}, absent: []string{"sysv_ipc,"},
		},
		{
			name:  "group both allowed and denied",
			allow: []string{"sysv_ipc"}, deny: []string{"sysv_ipc"},
			want: []string{"group sysv_ipc is both allowed and denied"},
		},
		{
			name:  "member of an allowed group denied",
			allow: []string{"sysv_ipc"}, deny: []string{"getpid", "shmget"},
			want: []string{"shmget is denied but belongs to allowed group sysv_ipc"}, absent: []string{"getpid"},
		},
		{
			name:  "every conflict reported",
			allow: []string{"sysv_ipc"}, deny: []string{"semop", "sysv_ipc", "msgget"},
			want: []string{"semop is denied", "group sysv_ipc is both", "msgget is denied"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			deny, err := DenyList(sysnum.AMD64, DefaultBlocklist, tc.allow, tc.deny)
			if err == nil {
				t.Fatalf("DenyList = %v, nil; want an error", deny)
			}
			if deny != nil {
				t.Errorf("a deny list came with the error")
			}
			if !errors.Is(err, ErrSyscallSpec) {
				t.Errorf("%v does not wrap ErrSyscallSpec", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(err.Error(), a) {
					t.Errorf("error %q mentions %q", err, a)
				}
			}
		})
	}
}

func TestFilterSpecErrors(t *testing.T) {
	for _, tab := range tables {
		getpid := tab.MustNr("getpid")
		_, err := (&FilterSpec{Arch: tab, Deny: []int{tab.MustNr("mount"), getpid}, Notify: []int{tab.MustNr("openat"), getpid}}).Filter()
		if err == nil || !strings.Contains(err.Error(), "getpid") || !strings.Contains(err.Error(), "both denied and supervised") {
			t.Errorf("%s: denied and notified getpid: %v", tab.Arch, err)
		}
		_, err = (&FilterSpec{Arch: tab, Notify: []int{tab.MustNr("clone3")}}).Filter()
		if err == nil || !strings.Contains(err.Error(), "clone3") {
			t.Errorf("%s: notified clone3: %v", tab.Arch, err)
		}
		// The other side: disjoint lists are fine, and clone may be
		// supervised.
		if _, err := (&FilterSpec{Arch: tab, Deny: []int{tab.MustNr("mount")}, Notify: []int{getpid, tab.MustNr("clone")}}).Filter(); err != nil {
			t.Errorf("%s: %v", tab.Arch, err)
		}
	}
}

func TestFilterShape(t *testing.T) {
	for _, tab := range tables {
		deny, _ := DenyList(tab, DefaultBlocklist, nil, nil)
		p, err := (&FilterSpec{Arch: tab, Deny: deny, Notify: nrsOf(t, tab, "openat", "clone", "socket")}).Filter()
		if err != nil {
			t.Fatal(err)
		}
		if p.Arch != tab || p.Default != filter.Allow || p.X32 != 0 {
			t.Errorf("%s: policy arch %v default %v x32 %v", tab.Arch, p.Arch.Arch, p.Default, p.X32)
		}
		if !sort.SliceIsSorted(p.Rules, func(i, j int) bool { return p.Rules[i].Nr < p.Rules[j].Nr }) {
			t.Errorf("%s: rules not sorted", tab.Arch)
		}
	}
}

// TestFilterBehaviour checks compiled filters end to end, with and without
// supervision and UDP.
func TestFilterBehaviour(t *testing.T) {
	for _, tab := range tables {
		for _, notified := range []bool{false, true} {
			for _, udp := range []bool{false, true} {
				name := tab.Arch
				if notified {
					name += "/notify"
				}
				if udp {
					name += "/udp"
				}
				t.Run(name, func(t *testing.T) {
					deny, err := DenyList(tab, DefaultBlocklist, nil, nil)
					if err != nil {
						t.Fatal(err)
					}
					spec := &FilterSpec{Arch: tab, Deny: deny, UDP: udp, ICMP: udp}
					if notified {
						spec.Notify = nrsOf(t, tab, "openat", "clone", "ioctl", "prctl", "socket", "execve")
					}
					p := compile(t, spec)
					checkBehaviour(t, tab, p, spec)
				})
			}
		}
	}
}

func checkBehaviour(t *testing.T, tab *sysnum.Table, p *prog, spec *FilterSpec) {
	nr := tab.MustNr
	notify := map[int]bool{}
	for _, n := range spec.Notify {
		notify[n] = true
	}
	base := func(name string) filter.Action {
		if notify[nr(name)] {
			return filter.Notify
		}
		return filter.Allow
	}
	eperm := filter.Errno(unix.EPERM)
	expect := func(what string, got, want filter.Action) {
		t.Helper()
		if got != want {
			t.Errorf("%s: %v, want %v", what, got, want)
		}
	}

	// clone: namespaces refused, anything else through.
	for _, f := range []uint64{unix.CLONE_NEWUSER, unix.CLONE_NEWNS, unix.CLONE_NEWPID, unix.CLONE_NEWNET,
		unix.CLONE_NEWUTS, unix.CLONE_NEWIPC, unix.CLONE_NEWCGROUP,
		unix.CLONE_NEWUSER | uint64(unix.SIGCHLD), unix.CLONE_NEWNET | unix.CLONE_VM | unix.CLONE_VFORK} {
		expect("clone flags "+hex(f), p.eval(t, nr("clone"), f), eperm)
	}
	for _, f := range []uint64{uint64(unix.SIGCHLD), 0,
		unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD | unix.CLONE_SYSVSEM | unix.CLONE_SETTLS | unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_CLEARTID,
		unix.CLONE_VM | unix.CLONE_VFORK | uint64(unix.SIGCHLD), unix.CLONE_PIDFD} {
		expect("clone flags "+hex(f), p.eval(t, nr("clone"), f), base("clone"))
	}
	// clone3's flags live in memory the filter cannot read.
	for _, f := range []uint64{0, unix.CLONE_NEWUSER} {
		expect("clone3", p.eval(t, nr("clone3"), f, 88), filter.Errno(unix.ENOSYS))
	}

	// ioctl: terminal injection and interface queries refused.
	expect("ioctl TIOCSTI", p.eval(t, nr("ioctl"), 0, unix.TIOCSTI), eperm)
	expect("ioctl TIOCSTI, high half set", p.eval(t, nr("ioctl"), 0, 1<<32|unix.TIOCSTI), eperm)
	expect("ioctl TIOCLINUX", p.eval(t, nr("ioctl"), 0, unix.TIOCLINUX), eperm)
	expect("ioctl SIOCGIFCONF", p.eval(t, nr("ioctl"), 3, unix.SIOCGIFCONF), eperm)
	for _, cmd := range deniedIoctls {
		expect("ioctl "+hex(uint64(cmd)), p.eval(t, nr("ioctl"), 1, uint64(cmd)), eperm)
	}
	for _, cmd := range []uint64{unix.TIOCGWINSZ, unix.TCGETS, unix.TIOCINQ, unix.FICLONE, unix.TIOCSTI + 1, 0} {
		expect("ioctl "+hex(cmd), p.eval(t, nr("ioctl"), 1, cmd), base("ioctl"))
	}
	// The command is the second argument, not the first.
	expect("ioctl fd=TIOCSTI", p.eval(t, nr("ioctl"), unix.TIOCSTI, unix.TCGETS), base("ioctl"))

	// prctl.
	for _, opt := range []uint64{unix.PR_SET_DUMPABLE, unix.PR_SET_SECUREBITS, unix.PR_SET_PTRACER} {
		expect("prctl "+hex(opt), p.eval(t, nr("prctl"), opt, 0), eperm)
	}
	for _, opt := range []uint64{unix.PR_SET_NAME, unix.PR_GET_DUMPABLE, unix.PR_SET_NO_NEW_PRIVS, unix.PR_SET_PDEATHSIG, unix.PR_GET_SECUREBITS} {
		expect("prctl "+hex(opt), p.eval(t, nr("prctl"), opt, unix.PR_SET_DUMPABLE), base("prctl"))
	}

	// socket.
	sock := nr("socket")
	for _, d := range []uint64{unix.AF_INET, unix.AF_INET6} {
		for _, typ := range []uint64{unix.SOCK_RAW, unix.SOCK_RAW | unix.SOCK_CLOEXEC | unix.SOCK_NONBLOCK} {
			expect("raw socket", p.eval(t, sock, d, typ, unix.IPPROTO_ICMP), eperm)
		}
		udp, ping := eperm, eperm
		if spec.UDP {
			udp = base("socket")
		}
		if spec.ICMP {
			ping = base("socket")
		}
		for _, typ := range []uint64{unix.SOCK_DGRAM, unix.SOCK_DGRAM | unix.SOCK_CLOEXEC} {
			for _, proto := range []uint64{0, unix.IPPROTO_UDP} {
				expect("datagram socket "+hex(d)+"/"+hex(typ)+"/"+hex(proto), p.eval(t, sock, d, typ, proto), udp)
			}
			for _, proto := range []uint64{unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6} {
				expect("ping socket "+hex(d)+"/"+hex(typ)+"/"+hex(proto), p.eval(t, sock, d, typ, proto), ping)
			}
		}
		expect("SEQPACKET socket "+hex(d), p.eval(t, sock, d, unix.SOCK_SEQPACKET, 0), filter.Errno(unix.EPROTONOSUPPORT))
		for _, typ := range []uint64{unix.SOCK_STREAM, unix.SOCK_STREAM | unix.SOCK_CLOEXEC, unix.SOCK_DGRAM} {
			expect("MPTCP socket "+hex(d)+"/"+hex(typ), p.eval(t, sock, d, typ, 262), filter.Errno(unix.EPROTONOSUPPORT))
		}
		for _, proto := range []uint64{0, unix.IPPROTO_TCP} {
			expect("TCP socket "+hex(d), p.eval(t, sock, d, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, proto), base("socket"))
		}
	}
	for _, d := range []uint64{unix.AF_PACKET, unix.AF_BLUETOOTH, unix.AF_VSOCK, unix.AF_ALG, unix.AF_XDP,
		unix.AF_CAN, unix.AF_KEY, unix.AF_APPLETALK, unix.AF_UNSPEC, 1 << 32} {
		expect("socket family "+hex(d), p.eval(t, sock, d, unix.SOCK_RAW, 0), filter.Errno(unix.EAFNOSUPPORT))
		expect("socket family "+hex(d), p.eval(t, sock, d, unix.SOCK_DGRAM, 0), filter.Errno(unix.EAFNOSUPPORT))
	}
	expect("netlink route", p.eval(t, sock, unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE), base("socket"))
	expect("netlink route, dgram", p.eval(t, sock, unix.AF_NETLINK, unix.SOCK_DGRAM, unix.NETLINK_ROUTE), base("socket"))
	for _, proto := range []uint64{unix.NETLINK_AUDIT, unix.NETLINK_KOBJECT_UEVENT, unix.NETLINK_NETFILTER,
		unix.NETLINK_SOCK_DIAG, unix.NETLINK_GENERIC, unix.NETLINK_XFRM, 1<<32 | unix.NETLINK_AUDIT} {
		expect("netlink "+hex(proto), p.eval(t, sock, unix.AF_NETLINK, unix.SOCK_RAW, proto), filter.Errno(unix.EAFNOSUPPORT))
	}
	for _, typ := range []uint64{unix.SOCK_STREAM, unix.SOCK_DGRAM, unix.SOCK_SEQPACKET | unix.SOCK_CLOEXEC} {
		expect("unix socket "+hex(typ), p.eval(t, sock, unix.AF_UNIX, typ, 0), base("socket"))
	}
	// The kernel reads the family as an int: high bits cannot hide it.
	expect("AF_PACKET with high half", p.eval(t, sock, 1<<32|unix.AF_PACKET, unix.SOCK_RAW, 0), filter.Errno(unix.EAFNOSUPPORT))
	expect("AF_UNIX with high half", p.eval(t, sock, 7<<32|unix.AF_UNIX, unix.SOCK_STREAM, 0), base("socket"))

	// Denied syscalls, whatever their arguments.
	for _, d := range spec.Deny {
		for _, a := range [][]uint64{nil, {1, 2, 3}, {^uint64(0)}} {
			if got := p.eval(t, d, a...); got != eperm {
				n, _ := tab.Name(d)
				t.Errorf("denied %s(%v): %v, want EPERM", n, a, got)
			}
		}
	}
	// Notified syscalls without argument rules go to the supervisor.
	for _, n := range []string{"openat", "execve"} {
		expect(n, p.eval(t, nr(n), 0, 0), base(n))
	}
	// Everything else is allowed.
	for _, n := range []string{"read", "write", "close", "getpid", "mmap", "exit_group", "clock_gettime", "wait4"} {
		expect(n, p.eval(t, nr(n), 1, 2, 3), filter.Allow)
	}
	if spec.Notify == nil {
		expect("openat", p.eval(t, nr("openat"), 0), filter.Allow)
	}
	// Foreign architectures are killed, x32 numbers refused.
	expect("foreign arch", p.evalArch(t, unix.AUDIT_ARCH_I386, nr("read")), filter.KillProcess)
	if tab.X32 {
		expect("x32 read", p.eval(t, 0x40000000|nr("read")), eperm)
	}
}

func hex(v uint64) string { return fmt.Sprintf("%#x", v) }

// TestExtraDenyThroughFilter covers a deny list with extra names, as the
// CLI builds it.
func TestExtraDenyThroughFilter(t *testing.T) {
	for _, tab := range tables {
		deny, err := DenyList(tab, DefaultBlocklist, []string{"sysv_ipc"}, []string{"getpid", "uname"})
		if err != nil {
			t.Fatal(err)
		}
		p := compile(t, &FilterSpec{Arch: tab, Deny: deny})
		eperm := filter.Errno(unix.EPERM)
		for _, n := range []string{"getpid", "uname", "mount", "clock_settime"} {
			if got := p.eval(t, tab.MustNr(n)); got != eperm {
				t.Errorf("%s %s: %v, want EPERM", tab.Arch, n, got)
			}
		}
		for _, n := range []string{"shmget", "semop", "msgsnd", "getppid"} {
			if got := p.eval(t, tab.MustNr(n)); got != filter.Allow {
				t.Errorf("%s %s: %v, want ALLOW", tab.Arch, n, got)
			}
		}
	}
}

func sysvIPC(t *testing.T) []string {
	t.Helper()
	m, ok := Group("sysv_ipc")
	if !ok {
		t.Fatal("no sysv_ipc group")
	}
	return m
}
