// Package policy turns a sandbox's syscall settings into the seccomp filter
// that confines it: the default blocklist, syscall groups, the argument
// filters, and the notification list the supervisor's handlers need.
package policy

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

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

// Groups are named sets of syscalls that ExtraAllowSyscalls and
// ExtraDenySyscalls accept.
var Groups = map[string][]string{
	"sysv_ipc": {"shmget", "shmat", "shmdt", "shmctl", "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop", "semctl", "semtimedop"},
}

// DefaultDeniedGroups are denied unless ExtraAllowSyscalls names them.
var DefaultDeniedGroups = []string{"sysv_ipc"}

func groupNames() string {
	names := make([]string, 0, len(Groups))
	for n := range Groups {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// ErrSyscallSpec is wrapped by every error about syscall names and groups.
var ErrSyscallSpec = errors.New("invalid syscall list")

// DenyList resolves the syscalls a sandbox denies: the blocklist,
// the default-denied groups not re-allowed, and extraDeny (names or groups).
// Unknown names, single syscalls in extraAllow and overlaps are errors.
func DenyList(arch *sysnum.Table, blocklist, extraAllow, extraDeny []string) ([]int, error) {
	var unknownAllow []string
	allowed := map[string]bool{}
	for _, g := range extraAllow {
		if _, ok := Groups[g]; !ok {
			unknownAllow = append(unknownAllow, g)
			continue
		}
		allowed[g] = true
	}
	if len(unknownAllow) > 0 {
		return nil, &FieldError{Field: "ExtraAllowSyscalls", Err: fmt.Errorf("%w: unknown syscall group name(s): %s (known groups: %s); individual syscalls cannot be re-allowed",
			ErrSyscallSpec, strings.Join(unknownAllow, ", "), groupNames())}
	}

	deny := make(map[int]bool, 96)
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
			for _, n := range Groups[g] {
				add(n)
			}
		}
	}
	var unknown, conflicts []string
	for _, d := range extraDeny {
		if members, ok := Groups[d]; ok {
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
			for _, m := range Groups[g] {
				if m == d {
					conflicts = append(conflicts, fmt.Sprintf("%s is denied but belongs to allowed group %s", d, g))
				}
			}
		}
		deny[nr] = true
	}
	if len(unknown) > 0 {
		return nil, &FieldError{Field: "ExtraDenySyscalls", Err: fmt.Errorf("%w: unknown syscall or group name(s): %s (groups: %s)", ErrSyscallSpec, strings.Join(unknown, ", "), groupNames())}
	}
	if len(conflicts) > 0 {
		return nil, &FieldError{Field: "ExtraDenySyscalls", Err: fmt.Errorf("%w: %s", ErrSyscallSpec, strings.Join(conflicts, "; "))}
	}
	out := make([]int, 0, len(deny))
	for nr := range deny {
		out = append(out, nr)
	}
	slices.Sort(out)
	return out, nil
}

// cloneNamespaceFlags are the clone flags that create namespaces.
const cloneNamespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS |
	unix.CLONE_NEWIPC | unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET

// Ioctls denied in every sandbox: pushing input into the terminal, and the
// network interface queries that reveal the host's interfaces.
var deniedIoctls = []uint32{
	unix.TIOCSTI, unix.TIOCLINUX,
	unix.SIOCGIFNAME, unix.SIOCGIFCONF, unix.SIOCGIFFLAGS, unix.SIOCGIFADDR,
	unix.SIOCGIFDSTADDR, unix.SIOCGIFBRDADDR, unix.SIOCGIFNETMASK,
	unix.SIOCGIFHWADDR, unix.SIOCGIFINDEX, unix.SIOCETHTOOL,
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
	// NoFastOpen fails sends with MSG_FASTOPEN with EOPNOTSUPP, as the
	// kernel does when fast open is off. Such a send connects without
	// passing Landlock's connect check, so where no supervisor judges it,
	// it must not happen at all.
	NoFastOpen bool
}

// cloneUntraced is CLONE_UNTRACED: a child created with it is not attached
// to the tracer, so it could outlive the sandbox.
const cloneUntraced = 0x00800000

// Filter builds the filter policy. A syscall in both Deny and Notify is an
// error: the notification would come first and a Continue would undo the
// deny.
func (s *FilterSpec) Filter() (*filter.Policy, error) {
	arch := s.Arch
	rules := make(map[int]*filter.Rule, len(s.Deny)+len(s.Notify)+8)
	rule := func(nr int, def filter.Action) *filter.Rule {
		r, ok := rules[nr]
		if !ok {
			r = &filter.Rule{Nr: nr, Action: def}
			rules[nr] = r
		}
		return r
	}
	notify := make(map[int]bool, len(s.Notify))
	for _, nr := range s.Notify {
		notify[nr] = true
	}
	eperm := filter.Errno(unix.EPERM)
	for _, nr := range s.Deny {
		if notify[nr] {
			name, _ := arch.Name(nr)
			return nil, fmt.Errorf("syscall %s (%d) is both denied and supervised", name, nr)
		}
		rule(nr, eperm)
	}
	denied := make(map[int]bool, len(s.Deny))
	for _, nr := range s.Deny {
		denied[nr] = true
	}
	base := func(nr int) filter.Action {
		if notify[nr] {
			return filter.Notify
		}
		return filter.Allow
	}
	for nr := range notify {
		rule(nr, filter.Notify)
	}
	// argRule returns the rule to which argument filters are added, or nil
	// when the syscall is denied outright (its filters would only reopen it).
	argRule := func(name string) *filter.Rule {
		nr, ok := arch.Nr(name)
		if !ok || denied[nr] {
			return nil
		}
		return rule(nr, base(nr))
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
		r := rule(nr, base(nr))
		r.Conds = append(r.Conds, filter.Cond{
			Tests:  []filter.Test{{Arg: 0, Value: unix.CLONE_FILES}, {Arg: 0, High: true, Value: 0}},
			Action: filter.Allow,
		})
	}
	if nr, ok := arch.Nr("clone3"); ok && !denied[nr] {
		if notify[nr] {
			return nil, fmt.Errorf("clone3 cannot be supervised: it is answered ENOSYS so that its flags never escape the namespace check")
		}
		rule(nr, filter.Errno(unix.ENOSYS))
	}
	if r := argRule("ioctl"); r != nil {
		for _, cmd := range deniedIoctls {
			r.Conds = append(r.Conds, filter.Cond{Tests: []filter.Test{{Arg: 1, Value: cmd}}, Action: eperm})
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
		}
		r.Conds = append(r.Conds,
			filter.Cond{Tests: []filter.Test{domain(unix.AF_UNIX)}, Action: ok},
			filter.Cond{Tests: []filter.Test{domain(unix.AF_INET)}, Action: ok},
			filter.Cond{Tests: []filter.Test{domain(unix.AF_INET6)}, Action: ok},
			filter.Cond{Tests: []filter.Test{domain(unix.AF_NETLINK), {Arg: 2, Value: unix.NETLINK_ROUTE}}, Action: ok},
		)
	}

	if s.NoFastOpen {
		// The flags argument: sendto(fd, buf, len, flags, …),
		// sendmsg(fd, msg, flags), sendmmsg(fd, vec, n, flags).
		for name, arg := range map[string]int{"sendto": 3, "sendmsg": 2, "sendmmsg": 3} {
			if r := argRule(name); r != nil {
				r.Conds = append(r.Conds, filter.Cond{
					Tests:  []filter.Test{{Arg: arg, Op: filter.AnyBit, Value: unix.MSG_FASTOPEN}},
					Action: filter.Errno(unix.EOPNOTSUPP),
				})
			}
		}
	}

	for nr, conds := range s.NotifyExcept {
		if r, ok := rules[nr]; ok && r.Action == filter.Notify {
			for _, c := range conds {
				r.Conds = append(r.Conds, filter.Cond{Tests: c.Tests, Action: filter.Allow})
			}
		}
	}

	p := &filter.Policy{Arch: arch, Default: filter.Allow, Rules: make([]filter.Rule, 0, len(rules))}
	for _, r := range rules {
		p.Rules = append(p.Rules, *r)
	}
	slices.SortFunc(p.Rules, func(a, b filter.Rule) int { return cmp.Compare(a.Nr, b.Nr) })
	return p, nil
}
