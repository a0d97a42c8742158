//go:build linux

// Package sysfilter turns a sandbox's syscall settings into the seccomp filter
// that confines it: the default blocklist, syscall groups, the argument
// filters, and the notification list the supervisor's handlers need.
package sysfilter

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/fielderr"
	"github.com/sandlock-go/sandlock/internal/filter"
	"github.com/sandlock-go/sandlock/internal/sysnum"
)

// DefaultBlocklist is denied with EPERM in every sandbox: syscalls that
// reach outside the sandbox (mounts, namespaces, modules, other processes'
// memory, the host clock, kernel keyrings, io_uring's unfiltered syscall
// path) or that change what confinement means (personality).
var DefaultBlocklist = []string{
	"mount", "umount2", "pivot_root", "swapon", "swapoff", "reboot",
	"sethostname", "setdomainname", "kexec_load", "kexec_file_load",
	"init_module", "finit_module", "delete_module", "unshare", "setns",
	"perf_event_open", "bpf", "userfaultfd", "keyctl", "add_key",
	"request_key", "ptrace", "process_vm_readv", "process_vm_writev",
	"open_by_handle_at", "name_to_handle_at", "ioperm", "iopl", "quotactl",
	"acct", "lookup_dcookie", "nfsservctl", "io_uring_setup",
	"io_uring_enter", "io_uring_register", "personality",
	// The host clock: upstream leaves these open, so a sandbox running as
	// root could set the machine's time.
	"clock_settime", "settimeofday", "adjtimex", "clock_adjtime",
	// The new mount API reaches the same places as mount(2).
	"fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree",
	"mount_setattr",
}

// NoSupervisorBlocklist replaces DefaultBlocklist in a sandbox without a
// supervisor: a program meant to run a supervised sandbox itself needs
// ptrace, process_vm_*, and seccomp listeners, and what it could do with
// namespaces or mounts is still bounded by Landlock (which refuses mounts
// to confined tasks), NO_NEW_PRIVS and the empty capability sets.
var NoSupervisorBlocklist = []string{
	"swapon", "swapoff", "reboot", "kexec_load", "kexec_file_load",
	"init_module", "finit_module", "delete_module", "perf_event_open", "bpf",
	"ioperm", "iopl", "io_uring_setup", "io_uring_enter", "io_uring_register",
	"clock_settime", "settimeofday", "adjtimex", "clock_adjtime",
}

// groups are the named sets of syscalls that ExtraAllowSyscalls and
// ExtraDenySyscalls accept, sorted by name. (A slice, not a map: a
// package-level map is built at every start of the CLI.)
var groups = [...]struct {
	name    string
	members []string
}{
	{"sysv_ipc", []string{"shmget", "shmat", "shmdt", "shmctl", "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop", "semctl", "semtimedop"}},
}

// Group returns the members of the named syscall group.
func Group(name string) ([]string, bool) {
	for _, g := range groups {
		if g.name == name {
			return g.members, true
		}
	}
	return nil, false
}

// DefaultDeniedGroups are denied unless ExtraAllowSyscalls names them.
var DefaultDeniedGroups = []string{"sysv_ipc"}

func groupNames() string {
	names := make([]string, len(groups))
	for i, g := range groups {
		names[i] = g.name
	}
	return strings.Join(names, ", ")
}

// ErrSyscallSpec is wrapped by every error about syscall names and groups.
var ErrSyscallSpec = errors.New("invalid syscall list")

// DenyList resolves the syscalls a sandbox denies, in ascending order: the
// blocklist, the default-denied groups not re-allowed, and extraDeny (names
// or groups). Unknown names, single syscalls in extraAllow and overlaps are
// errors.
func DenyList(arch *sysnum.Table, blocklist, extraAllow, extraDeny []string) ([]int, error) {
	var unknownAllow []string
	var allowed map[string]bool
	for _, g := range extraAllow {
		if _, ok := Group(g); !ok {
			unknownAllow = append(unknownAllow, g)
			continue
		}
		if allowed == nil {
			allowed = map[string]bool{}
		}
		allowed[g] = true
	}
	if len(unknownAllow) > 0 {
		return nil, &fielderr.FieldError{Field: "ExtraAllowSyscalls", Err: fmt.Errorf("%w: unknown syscall group name(s): %s (known groups: %s); individual syscalls cannot be re-allowed",
			ErrSyscallSpec, strings.Join(unknownAllow, ", "), groupNames())}
	}

	deny := make([]bool, arch.Size())
	add := func(name string) {
		if nr, ok := arch.Nr(name); ok {
			deny[nr] = true
		}
	}
	for _, n := range blocklist {
		add(n)
	}
	for _, g := range DefaultDeniedGroups {
		if !allowed[g] {
			members, _ := Group(g)
			for _, n := range members {
				add(n)
			}
		}
	}
	var unknown, conflicts []string
	for _, d := range extraDeny {
		if members, ok := Group(d); ok {
			if allowed[d] {
				conflicts = append(conflicts, fmt.Sprintf("group %s is both allowed and denied", d))
				continue
			}
			for _, n := range members {
				add(n)
			}
			continue
		}
		nr, ok := arch.Nr(d)
		if !ok {
			unknown = append(unknown, d)
			continue
		}
		for g := range allowed {
			members, _ := Group(g)
			for _, m := range members {
				if m == d {
					conflicts = append(conflicts, fmt.Sprintf("%s is denied but belongs to allowed group %s", d, g))
				}
			}
		}
		deny[nr] = true
	}
	if len(unknown) > 0 {
		return nil, &fielderr.FieldError{Field: "ExtraDenySyscalls", Err: fmt.Errorf("%w: unknown syscall or group name(s): %s (groups: %s)", ErrSyscallSpec, strings.Join(unknown, ", "), groupNames())}
	}
	if len(conflicts) > 0 {
		return nil, &fielderr.FieldError{Field: "ExtraDenySyscalls", Err: fmt.Errorf("%w: %s", ErrSyscallSpec, strings.Join(conflicts, "; "))}
	}
	out := make([]int, 0, len(blocklist)+16)
	for nr, d := range deny {
		if d {
			out = append(out, nr)
		}
	}
	return out, nil
}

// cloneNamespaceFlags are the clone flags that create namespaces.
const cloneNamespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS |
	unix.CLONE_NEWIPC | unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET

// Ioctls denied in every sandbox: pushing input into the terminal (the
// network interface queries are deniedIoctlBlocks).
var deniedIoctls = []uint32{unix.TIOCSTI, unix.TIOCLINUX}

// ioctlBlock is the ioctl commands c with c&mask == value.
type ioctlBlock struct{ mask, value uint32 }

// deniedIoctlBlocks are the socket ioctls that name a network interface
// (struct ifreq's ifr_name) or read the host's network tables, denied in
// every sandbox: any of them answers for a name the program guesses ("eth0",
// "wlan0", "docker0") whether the host has that interface (SIOCGIFMTU,
// SIOCGIFTXQLEN, SIOCGIFMETRIC and SIOCGIFMAP answer without privilege),
// and the setters change it for a program that kept CAP_NET_ADMIN. The
// blocks cover 0x8910-0x894a (interface get and set — SIOCGIFCONF,
// SIOCGIFNAME, SIOCGIFINDEX, SIOCGIFADDR, SIOCGIFHWADDR… —, multicast lists,
// bridging, ethtool, MII, WAN), 0x8950-0x897f (ARP, RARP, the device map),
// 0x8980-0x89bf (DLCI, VLAN, bonding, bridges, hardware timestamps),
// 0x89f0-0x89ff (device-private) and 0x8b00-0x8bff (wireless extensions).
// Left through: the commands on the socket itself (0x8901-0x8908: owner,
// OOB mark, timestamps; SIOCOUTQNSD 0x894b; SIOCGSKNS 0x894c, which needs
// CAP_NET_ADMIN), the routing ioctls 0x890b-0x890d (which need it too), and
// the protocol-private ones (0x89e0-0x89ef, the socket's own protocol).
var deniedIoctlBlocks = []ioctlBlock{
	{0xfff0, 0x8910}, {0xffe0, 0x8920}, {0xfff8, 0x8940}, {0xffff, 0x8948}, {0xffff, 0x8949}, {0xffff, 0x894a},
	{0xfff0, 0x8950}, {0xffe0, 0x8960},
	{0xffc0, 0x8980},
	{0xfff0, 0x89f0},
	{0xff00, 0x8b00},
}

// prctl options denied in every sandbox: becoming undumpable would hide the
// task from the supervisor's /proc and pidfd_getfd access, securebits could
// undo the capability drop, and PR_SET_PTRACER would open it to ptrace.
var deniedPrctls = []uint32{unix.PR_SET_DUMPABLE, unix.PR_SET_SECUREBITS, unix.PR_SET_PTRACER}

// ipprotoMPTCP is IPPROTO_MPTCP. Landlock's TCP rules cover neither it nor
// SCTP, so both are refused as if the kernel lacked them (programs such as
// Go's net package then fall back to TCP).
const ipprotoMPTCP = 262

// FilterSpec is what the filter needs to know beyond the deny list.
type FilterSpec struct {
	Arch *sysnum.Table
	// Deny is denied with EPERM.
	Deny []int
	// Notify goes to the supervisor (every syscall with a handler chain).
	Notify []int
	// UDP lets inet datagram sockets other than ping sockets be created.
	UDP bool
	// ICMP lets ping sockets (SOCK_DGRAM, IPPROTO_ICMP/ICMPV6) be created.
	ICMP bool
	// NotifyExcept lets a notified syscall through without notification
	// when one of its conditions holds (the condition's action is ignored).
	NotifyExcept map[int][]filter.Cond
	// NotifyNetlinkRoute sends socket(AF_NETLINK, …, NETLINK_ROUTE) to the
	// supervisor when socket itself is not notified (the interface view
	// answers it); every other socket keeps its verdict.
	NotifyNetlinkRoute bool
	// NotifyIoctls sends these ioctl commands to the supervisor when ioctl
	// itself is not notified; every other command keeps its verdict.
	NotifyIoctls []uint32
	// NoFastOpen fails sends with MSG_FASTOPEN with EOPNOTSUPP, as the
	// kernel does when fast open is off. Such a send connects without
	// passing Landlock's connect check, so where no supervisor judges it,
	// it must not happen at all.
	NoFastOpen bool
	// SelfOnly are rules for a sandbox without a supervisor: each lets its
	// syscall through when one of its conditions holds (their actions are
	// ignored) and answers every other call with its Action. A syscall
	// that is also denied keeps its deny.
	SelfOnly []filter.Rule
	// Trace sends the calls of a syscall for which one of its conditions
	// holds to the tracer with the condition's action (filter.Trace); the
	// others keep their verdict. A denied syscall stays denied, and a
	// notified one is notified whole, untraced: the kernel lets a traced
	// call through without consulting the filter again, so tracing it would
	// take it past its handlers.
	Trace map[int][]filter.Cond
}

// argRules are the syscalls Filter gives argument filters (or, for clone3,
// a fixed answer).
var argRules = []string{"clone", "unshare", "clone3", "ioctl", "prctl", "socket"}

// fastOpenSends are the sends that can carry MSG_FASTOPEN, with the position
// of their flags argument: sendto(fd, buf, len, flags, …), sendmsg(fd, msg,
// flags), sendmmsg(fd, vec, n, flags). NoFastOpen gives them filters.
var fastOpenSends = []struct {
	name     string
	flagsArg int
}{{"sendto", 3}, {"sendmsg", 2}, {"sendmmsg", 3}}

// cloneUntraced is CLONE_UNTRACED: a child created with it is not attached
// to the tracer, so it could outlive the sandbox.
const cloneUntraced = 0x00800000

// Filter builds the filter policy. A syscall in both Deny and Notify is an
// error: the notification would come first and a Continue would undo the
// deny.
func (s *FilterSpec) Filter() (*filter.Policy, error) {
	arch := s.Arch
	// What is known of each syscall number, and where its rule is. The
	// rules are made in number order, so they need no sorting: first every
	// syscall that gets one is marked.
	const (
		isDenied = 1 << iota
		isNotified
		hasArgs // argument filters may be added
		isTraced
	)
	size := arch.Size()
	for _, nrs := range [][]int{s.Deny, s.Notify} {
		for _, nr := range nrs {
			if nr < 0 {
				return nil, fmt.Errorf("syscall number %d out of range", nr)
			}
			size = max(size, nr+1)
		}
	}
	flags := make([]uint8, size)
	for _, nr := range s.Notify {
		flags[nr] |= isNotified
	}
	for _, nr := range s.Deny {
		if flags[nr]&isNotified != 0 {
			name, _ := arch.Name(nr)
			return nil, fmt.Errorf("syscall %s (%d) is both denied and supervised", name, nr)
		}
		flags[nr] |= isDenied
	}
	for nr := range s.Trace {
		if nr < 0 || nr >= size {
			return nil, fmt.Errorf("syscall number %d out of range", nr)
		}
		flags[nr] |= isTraced
	}
	mark := func(name string) {
		if nr, ok := arch.Nr(name); ok {
			flags[nr] |= hasArgs
		}
	}
	for _, name := range argRules {
		mark(name)
	}
	if s.NoFastOpen {
		for _, send := range fastOpenSends {
			mark(send.name)
		}
	}
	for _, r := range s.SelfOnly {
		if r.Nr < 0 || r.Nr >= size {
			return nil, fmt.Errorf("syscall number %d out of range", r.Nr)
		}
		if flags[r.Nr]&isNotified != 0 {
			name, _ := arch.Name(r.Nr)
			return nil, fmt.Errorf("syscall %s (%d) is both supervised and restricted to the caller by the filter", name, r.Nr)
		}
		flags[r.Nr] |= hasArgs
	}
	eperm := filter.Errno(unix.EPERM)
	p := &filter.Policy{Arch: arch, Default: filter.Allow}
	index := make([]int32, size) // 1 + the rule's position in p.Rules; 0 for none
	for nr, f := range flags {
		if f == 0 {
			continue
		}
		// The action before any argument filter.
		act := filter.Allow
		switch {
		case f&isDenied != 0:
			act = eperm
		case f&isNotified != 0:
			act = filter.Notify
		}
		p.Rules = append(p.Rules, filter.Rule{Nr: nr, Action: act})
		index[nr] = int32(len(p.Rules))
	}
	rule := func(nr int) *filter.Rule { return &p.Rules[index[nr]-1] }
	// argRule returns the rule to which argument filters are added, or nil
	// when the syscall is denied outright (its filters would only reopen it).
	argRule := func(name string) *filter.Rule {
		nr, ok := arch.Nr(name)
		if !ok || flags[nr]&isDenied != 0 {
			return nil
		}
		return rule(nr)
	}

	// clone: no new namespaces. clone3 keeps its flags in memory BPF cannot
	// read, and reading them in the supervisor would race with the task
	// rewriting them; failing it with ENOSYS makes libc fall back to clone.
	if r := argRule("clone"); r != nil {
		r.Conds = append(r.Conds, filter.Cond{
			Tests:  []filter.Test{{Arg: 0, Op: filter.AnyBit, Value: cloneNamespaceFlags | cloneUntraced}},
			Action: eperm,
		})
	}
	// The child stage unshares its fd table (shared with the supervisor
	// until then) after its filter is in place: exactly that unshare goes
	// through whatever the deny lists say. A private fd table grants
	// nothing.
	if nr, ok := arch.Nr("unshare"); ok {
		r := rule(nr)
		r.Conds = append(r.Conds, filter.Cond{
			Tests:  []filter.Test{{Arg: 0, Value: unix.CLONE_FILES}, {Arg: 0, High: true, Value: 0}},
			Action: filter.Allow,
		})
	}
	if nr, ok := arch.Nr("clone3"); ok && flags[nr]&isDenied == 0 {
		if flags[nr]&isNotified != 0 {
			return nil, fmt.Errorf("clone3 cannot be supervised: it is answered ENOSYS so that its flags never escape the namespace check")
		}
		rule(nr).Action = filter.Errno(unix.ENOSYS)
	}
	if r := argRule("ioctl"); r != nil {
		for _, cmd := range deniedIoctls {
			r.Conds = append(r.Conds, filter.Cond{Tests: []filter.Test{{Arg: 1, Value: cmd}}, Action: eperm})
		}
		for _, b := range deniedIoctlBlocks {
			// The high 16 bits too: an ioctl number with a direction or
			// size is another command.
			r.Conds = append(r.Conds, filter.Cond{Tests: []filter.Test{{Arg: 1, Mask: 0xffff0000 | b.mask, Value: b.value}}, Action: eperm})
		}
		if r.Action != filter.Notify {
			for _, cmd := range s.NotifyIoctls {
				r.Conds = append(r.Conds, filter.Cond{Tests: []filter.Test{{Arg: 1, Value: cmd}}, Action: filter.Notify})
			}
		}
	}
	if r := argRule("prctl"); r != nil {
		for _, opt := range deniedPrctls {
			r.Conds = append(r.Conds, filter.Cond{Tests: []filter.Test{{Arg: 0, Value: opt}}, Action: eperm})
		}
	}
	if r := argRule("socket"); r != nil {
		ok := r.Action
		r.Action = filter.Errno(unix.EAFNOSUPPORT)
		domain := func(d uint32) filter.Test { return filter.Test{Arg: 0, Value: d} }
		sockType := func(t uint32) filter.Test { return filter.Test{Arg: 1, Mask: 0xf, Value: t} }
		// Each family's conditions begin with its domain test, which the
		// compiler then emits once for all of them.
		for _, d := range []uint32{unix.AF_INET, unix.AF_INET6} {
			r.Conds = append(r.Conds,
				filter.Cond{Tests: []filter.Test{domain(d), sockType(unix.SOCK_RAW)}, Action: eperm},
				filter.Cond{Tests: []filter.Test{domain(d), {Arg: 2, Value: ipprotoMPTCP}}, Action: filter.Errno(unix.EPROTONOSUPPORT)},
				filter.Cond{Tests: []filter.Test{domain(d), {Arg: 2, Value: unix.IPPROTO_SCTP}}, Action: filter.Errno(unix.EPROTONOSUPPORT)},
			)
			// SCTP's one-to-many style: TCP rules do not cover it either.
			r.Conds = append(r.Conds, filter.Cond{Tests: []filter.Test{domain(d), sockType(unix.SOCK_SEQPACKET)}, Action: filter.Errno(unix.EPROTONOSUPPORT)})
			ping := filter.Action(eperm)
			if s.ICMP {
				ping = ok
			}
			for _, p := range []uint32{unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6} {
				r.Conds = append(r.Conds, filter.Cond{Tests: []filter.Test{domain(d), sockType(unix.SOCK_DGRAM), {Arg: 2, Value: p}}, Action: ping})
			}
			if !s.UDP {
				r.Conds = append(r.Conds, filter.Cond{Tests: []filter.Test{domain(d), sockType(unix.SOCK_DGRAM)}, Action: eperm})
			}
			r.Conds = append(r.Conds, filter.Cond{Tests: []filter.Test{domain(d)}, Action: ok})
		}
		netlink := ok
		if s.NotifyNetlinkRoute {
			netlink = filter.Notify
		}
		r.Conds = append(r.Conds,
			filter.Cond{Tests: []filter.Test{domain(unix.AF_UNIX)}, Action: ok},
			filter.Cond{Tests: []filter.Test{domain(unix.AF_NETLINK), {Arg: 2, Value: unix.NETLINK_ROUTE}}, Action: netlink},
		)
	}

	if s.NoFastOpen {
		for _, send := range fastOpenSends {
			if r := argRule(send.name); r != nil {
				r.Conds = append(r.Conds, filter.Cond{
					Tests:  []filter.Test{{Arg: send.flagsArg, Op: filter.AnyBit, Value: unix.MSG_FASTOPEN}},
					Action: filter.Errno(unix.EOPNOTSUPP),
				})
			}
		}
	}

	for _, sr := range s.SelfOnly {
		if flags[sr.Nr]&isDenied != 0 {
			continue
		}
		r := rule(sr.Nr)
		for _, c := range sr.Conds {
			r.Conds = append(r.Conds, filter.Cond{Tests: c.Tests, Action: r.Action})
		}
		r.Action = sr.Action
	}

	for nr, conds := range s.Trace {
		if flags[nr]&(isDenied|isNotified) != 0 {
			continue
		}
		r := rule(nr)
		for _, c := range conds {
			if uint32(c.Action)&unix.SECCOMP_RET_ACTION_FULL != unix.SECCOMP_RET_TRACE {
				return nil, fmt.Errorf("syscall %d: a trace condition's action is %v", nr, c.Action)
			}
			r.Conds = append(r.Conds, c)
		}
	}

	for nr, conds := range s.NotifyExcept {
		if nr < 0 || nr >= size || index[nr] == 0 {
			continue
		}
		if r := &p.Rules[index[nr]-1]; r.Action == filter.Notify {
			for _, c := range conds {
				r.Conds = append(r.Conds, filter.Cond{Tests: c.Tests, Action: filter.Allow})
			}
		}
	}
	return p, nil
}
