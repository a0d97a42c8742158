//go:build linux

package pidgate_test

import (
	"context"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/filter"
	"github.com/sandlock-go/sandlock/internal/landlock"
	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/pidgate"
	"github.com/sandlock-go/sandlock/internal/plan"
	"github.com/sandlock-go/sandlock/internal/session"
	"github.com/sandlock-go/sandlock/internal/sysfilter"
	"github.com/sandlock-go/sandlock/internal/sysfilter/sysfiltertest"
	"github.com/sandlock-go/sandlock/internal/sysnum"
)

// pidCall is a syscall naming a process, and what the filter must answer.
type pidCall struct {
	name string
	args []uint64
	want filter.Action
}

// high32 sets bits above a C int: the kernel ignores them, and so must the
// filter.
const high32 = 1 << 32

// supervisedPidCalls are the answers of a supervised sandbox's filter: the
// caller itself by its registers passes, everything else goes to the gate.
var supervisedPidCalls = []pidCall{
	{"prlimit64", []uint64{0, unix.RLIMIT_CPU, 0x1000, 0}, filter.Allow},
	{"prlimit64", []uint64{high32, unix.RLIMIT_CPU, 0x1000, 0}, filter.Allow},
	{"prlimit64", []uint64{1234, unix.RLIMIT_CPU, 0x1000, 0}, filter.Notify},
	{"prlimit64", []uint64{high32 | 1234, unix.RLIMIT_CPU, 0x1000, 0}, filter.Notify},
	{"prlimit64", []uint64{1234, unix.RLIMIT_CPU, 0, 0x1000}, filter.Notify}, // reads are judged too
	{"sched_setaffinity", []uint64{0, 128, 0x1000}, filter.Allow},
	{"sched_setaffinity", []uint64{1, 128, 0x1000}, filter.Notify},
	{"sched_getaffinity", []uint64{0, 128, 0x1000}, filter.Allow},
	{"sched_getaffinity", []uint64{7, 128, 0x1000}, filter.Notify},
	{"sched_setattr", []uint64{0xffffffff, 0x1000, 0}, filter.Notify}, // -1
	{"getsid", []uint64{0}, filter.Allow},
	{"getsid", []uint64{99}, filter.Notify},
	{"pidfd_open", []uint64{0, 0}, filter.Notify},
	{"pidfd_open", []uint64{99, 0}, filter.Notify},
	{"setpriority", []uint64{unix.PRIO_PROCESS, 0, 5}, filter.Allow},
	{"setpriority", []uint64{high32 | unix.PRIO_PROCESS, high32, 5}, filter.Allow},
	{"setpriority", []uint64{unix.PRIO_PROCESS, 99, 5}, filter.Notify},
	{"setpriority", []uint64{unix.PRIO_PGRP, 0, 5}, filter.Notify},
	{"setpriority", []uint64{unix.PRIO_USER, 0, 5}, filter.Notify},
	{"getpriority", []uint64{unix.PRIO_PROCESS, 0}, filter.Allow},
	{"getpriority", []uint64{unix.PRIO_USER, 0}, filter.Notify},
	{"ioprio_set", []uint64{1, 0, 3 << 13}, filter.Allow}, // IOPRIO_WHO_PROCESS
	{"ioprio_set", []uint64{0, 0, 3 << 13}, filter.Notify},
	{"ioprio_set", []uint64{2, 0, 3 << 13}, filter.Notify}, // IOPRIO_WHO_PGRP
	{"ioprio_get", []uint64{1, 0}, filter.Allow},
	{"ioprio_get", []uint64{3, 0}, filter.Notify},
	{"setpgid", []uint64{0, 0}, filter.Allow},
	{"setpgid", []uint64{55, high32}, filter.Allow},
	{"setpgid", []uint64{0, 55}, filter.Notify},
	// The ptrace-checked ones stay Landlock's.
	{"kcmp", []uint64{1, 2, 0, 0, 0}, filter.Allow},
	{"get_robust_list", []uint64{1, 0x1000, 0x2000}, filter.Allow},
}

// gateSpec returns a supervised filter spec made by the pid gate's
// feature, plus a user handler on each of user.
func gateSpec(t *testing.T, user ...string) *sysfilter.FilterSpec {
	t.Helper()
	arch := sysnum.Native()
	deny, err := sysfilter.DenyList(arch, sysfilter.DefaultBlocklist, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	sess := session.NewSession(nil)
	t.Cleanup(sess.Abandon)
	fs := &sysfilter.FilterSpec{Arch: arch, Deny: deny}
	b := plan.NewBuilder(sess, &landlock.Config{}, fs, func(int) bool { return false }, true, false)
	if err := b.Plan([]plan.Feature{pidgate.Feature{}}); err != nil {
		t.Fatal(err)
	}
	for _, name := range user {
		b.Table().AddUser(arch.MustNr(name), notify.HandlerFunc(func(context.Context, *notify.HandlerCtx) notify.Action {
			return notify.Continue()
		}))
	}
	if err := b.Finish(); err != nil {
		t.Fatal(err)
	}
	fs.Notify = b.Table().Syscalls()
	return fs
}

func TestPidGateFilter(t *testing.T) {
	arch := sysnum.Native()
	p := sysfiltertest.Compile(t, gateSpec(t))
	for _, c := range supervisedPidCalls {
		if got := p.Eval(t, arch.MustNr(c.name), c.args...); got != c.want {
			t.Errorf("%s%v: %v, want %v", c.name, c.args, got, c.want)
		}
	}
}

func TestPidGateFilterWithOtherHandlers(t *testing.T) {
	// A syscall another handler serves reaches the supervisor every time,
	// the caller's own calls included.
	arch := sysnum.Native()
	p := sysfiltertest.Compile(t, gateSpec(t, "sched_getaffinity", "setpriority"))
	for _, c := range []pidCall{
		{"sched_getaffinity", []uint64{0, 128, 0x1000}, filter.Notify},
		{"setpriority", []uint64{unix.PRIO_PROCESS, 0, 5}, filter.Notify},
		{"sched_setaffinity", []uint64{0, 128, 0x1000}, filter.Allow},
		{"getpriority", []uint64{unix.PRIO_PROCESS, 0}, filter.Allow},
	} {
		if got := p.Eval(t, arch.MustNr(c.name), c.args...); got != c.want {
			t.Errorf("%s%v: %v, want %v", c.name, c.args, got, c.want)
		}
	}
}

func TestPidSelfOnlyFilter(t *testing.T) {
	// Without a supervisor: changes to another process fail, reads and
	// the caller's own calls pass, a denied syscall keeps its deny.
	arch := sysnum.Native()
	deny, err := sysfilter.DenyList(arch, sysfilter.NoSupervisorBlocklist, nil, []string{"sched_setparam"})
	if err != nil {
		t.Fatal(err)
	}
	denied := func(nr int) bool {
		for _, d := range deny {
			if d == nr {
				return true
			}
		}
		return false
	}
	p := sysfiltertest.Compile(t, &sysfilter.FilterSpec{Arch: arch, Deny: deny, SelfOnly: pidgate.SelfOnly(denied)})
	esrch, eperm := filter.Errno(unix.ESRCH), filter.Errno(unix.EPERM)
	for _, c := range []pidCall{
		{"prlimit64", []uint64{0, unix.RLIMIT_CPU, 0x1000, 0}, filter.Allow},
		{"prlimit64", []uint64{high32, unix.RLIMIT_CPU, 0x1000, 0}, filter.Allow},
		{"prlimit64", []uint64{1234, unix.RLIMIT_CPU, 0x1000, 0}, esrch},
		{"prlimit64", []uint64{1234, unix.RLIMIT_CPU, high32, 0}, esrch},
		{"prlimit64", []uint64{1234, unix.RLIMIT_CPU, 0, 0x1000}, filter.Allow}, // a read
		{"sched_setaffinity", []uint64{1, 128, 0x1000}, esrch},
		{"sched_setaffinity", []uint64{0, 128, 0x1000}, filter.Allow},
		{"sched_getaffinity", []uint64{1, 128, 0x1000}, filter.Allow},
		{"sched_setparam", []uint64{0, 0x1000}, eperm}, // denied
		{"setpriority", []uint64{unix.PRIO_PROCESS, 0, 5}, filter.Allow},
		{"setpriority", []uint64{unix.PRIO_USER, 0, 5}, esrch},
		{"getpriority", []uint64{unix.PRIO_USER, 0}, filter.Allow},
		{"ioprio_set", []uint64{1, 0, 3 << 13}, filter.Allow},
		{"ioprio_set", []uint64{1, 44, 3 << 13}, esrch},
		{"setpgid", []uint64{0, 0}, filter.Allow},
		{"setpgid", []uint64{0, 55}, eperm},
		{"pidfd_open", []uint64{55, 0}, filter.Allow},
	} {
		if got := p.Eval(t, arch.MustNr(c.name), c.args...); got != c.want {
			t.Errorf("%s%v: %v, want %v", c.name, c.args, got, c.want)
		}
	}
	// A syscall both restricted and supervised is a contradiction.
	s := &sysfilter.FilterSpec{Arch: arch, Notify: []int{arch.MustNr("prlimit64")}, SelfOnly: pidgate.SelfOnly(func(int) bool { return false })}
	if _, err := s.Filter(); err == nil {
		t.Error("Filter accepted prlimit64 both supervised and restricted")
	}
}
