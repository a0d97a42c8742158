//go:build linux

package session

import (
	"slices"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/sysnum"
)

// The runtime's fork hooks, as package syscall uses them (the runtime keeps
// them available to other packages; see go.dev/issue/67401).

//go:linkname runtime_BeforeFork syscall.runtime_BeforeFork
func runtime_BeforeFork()

//go:linkname runtime_AfterFork syscall.runtime_AfterFork
func runtime_AfterFork()

//go:linkname runtime_AfterForkInChild syscall.runtime_AfterForkInChild
func runtime_AfterForkInChild()

// Steps of the child stage, as reported to the parent.
const (
	stepReady uint32 = iota // not a failure: the listener's fd (fork mode)
	stepSetpgid
	stepTTY
	stepPdeathsig
	stepCloseRange
	stepKnobs
	stepNoNewPrivs
	stepCapabilities
	stepLandlock
	stepSeccomp
	stepFDs
	stepChdir
	stepOpenFiles
	stepExec
)

var stepNames = [...]string{"ready", "setpgid", "tcsetpgrp", "pdeathsig", "close_range", "process knobs",
	"no_new_privs", "capabilities", "landlock", "seccomp", "fds", "chdir", "max open files", "exec"}

// childStage is everything the child needs, prepared before the clone so
// that the child allocates nothing and calls nothing but raw syscalls.
type childStage struct {
	path *byte
	argv []*byte
	envv []*byte
	dir  *byte // nil: stay in the current directory
	// fds are the descriptors that become 0, 1, 2, …; -1 closes the slot.
	fds []int
	// high is a free fd number above every fd involved, for shuffling.
	high int
	// tty, if >= 0, gets the child's process group as its foreground.
	tty int
	// ppid is the cloning process, to detect its death before PDEATHSIG
	// was armed.
	ppid uintptr

	noRandomize bool         // personality(ADDR_NO_RANDOMIZE)
	noTHP       bool         // PR_SET_THP_DISABLE
	noCore      bool         // RLIMIT_CORE = 0
	cpus        *unix.CPUSet // sched_setaffinity
	nofile      *unix.Rlimit // RLIMIT_NOFILE, set last
	zeroRlimit  *unix.Rlimit

	dropCaps   bool
	boundingOK bool // the parent has CAP_SETPCAP: the bounding set can be emptied
	lastCap    int
	capHdr     *unix.CapUserHeader
	capData    *[2]unix.CapUserData // zeros

	ruleset int // Landlock ruleset fd, or -1
	filter  *unix.SockFprog
	listen  bool

	// vfork selects the vfork mode: the child shares the parent's memory
	// and fd table and the parent is suspended until the child's exec.
	// Only for a child whose steps after its filter cannot be notified
	// (nobody could serve them while the parent waits) and that changes
	// nothing of the shared memory map (PR_SET_THP_DISABLE is the map's).
	vfork bool

	// Fork mode. report carries 8-byte records {step, value} to the
	// parent: with a listener, first {stepReady, listener fd}; then a
	// failure {step, errno} if any. It is close-on-exec, so EOF means the
	// exec succeeded. gate is read once before exec: the parent writes a
	// byte when the child may go on; EOF means abort.
	report int
	gate   int

	// Vfork mode, written by the child and read by the parent once the
	// clone returns (the child has exec'd or exited by then).
	listener int    // the seccomp listener's fd in the shared table, or -1
	failStep uint32 // the step that failed, or stepReady for none
	failErr  uint32 // its errno
}

// vforkFlags share the parent's memory and fd table with the child and
// suspend the parent until the child execs or exits. Sharing memory spares
// a copy of the supervisor's page tables and the copy-on-write faults that
// would follow in a process full of running threads; sharing the fd table
// puts the child's seccomp listener straight into the supervisor's table.
// The child unshares the table before it touches any descriptor.
const vforkFlags = unix.CLONE_VM | unix.CLONE_VFORK | unix.CLONE_FILES | uintptr(unix.SIGCHLD)

// rawVfork is clone(flags) for a child that runs on the caller's stack
// while the caller is suspended (assembly: the return address must not
// live on the stack the child uses).
func rawVfork(flags uintptr) (pid uintptr, errno syscall.Errno)

// forkChild clones the calling thread. The child confines itself and execs
// the program; the parent gets the pid (in vfork mode once the child has
// exec'd or exited).
//
// Nothing the child runs may grow the stack, allocate or touch the runtime:
// it calls only raw syscalls (no stack check) and runtime_AfterForkInChild
// (nosplit), declares every variable up front, and writes to memory only
// its own locals and, in vfork mode, c's result fields.
//
//go:noinline
//go:norace
//go:nocheckptr
func forkChild(c *childStage) (pid int, err syscall.Errno) {
	var (
		r1       uintptr
		errno    syscall.Errno
		i        int
		step     uint32
		value    uint32
		rec      [8]byte
		pgrp     int32
		listener uintptr
		flags    uintptr
	)
	runtime_BeforeFork()
	if c.vfork {
		r1, errno = rawVfork(vforkFlags)
	} else {
		r1, _, errno = syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	}
	if errno != 0 || r1 != 0 {
		runtime_AfterFork()
		return int(r1), errno
	}

	// In the child. Signals stay blocked until the terminal is ours:
	// TIOCSPGRP from a background group would raise SIGTTOU.
	step = stepSetpgid
	if _, _, errno = syscall.RawSyscall(syscall.SYS_SETPGID, 0, 0, 0); errno != 0 {
		goto fail
	}
	if c.tty >= 0 {
		step = stepTTY
		r1, _, _ = syscall.RawSyscall(syscall.SYS_GETPID, 0, 0, 0)
		pgrp = int32(r1)
		if _, _, errno = syscall.RawSyscall(syscall.SYS_IOCTL, uintptr(c.tty), uintptr(syscall.TIOCSPGRP), uintptr(unsafe.Pointer(&pgrp))); errno != 0 {
			goto fail
		}
	}
	runtime_AfterForkInChild()

	step = stepPdeathsig
	if _, _, errno = syscall.RawSyscall6(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0, 0); errno != 0 {
		goto fail
	}
	if r1, _, _ = syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0); r1 != c.ppid {
		// The parent is gone already: PDEATHSIG will never fire.
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 127, 0, 0)
	}

	// Process knobs, before the filter (personality is on its deny list).
	step = stepKnobs
	if c.noRandomize {
		r1, _, _ = syscall.RawSyscall(syscall.SYS_PERSONALITY, 0xffffffff, 0, 0)
		if _, _, errno = syscall.RawSyscall(syscall.SYS_PERSONALITY, r1|addrNoRandomize, 0, 0); errno != 0 {
			goto fail
		}
	}
	if c.noTHP {
		if _, _, errno = syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_SET_THP_DISABLE, 1, 0, 0, 0, 0); errno != 0 {
			goto fail
		}
	}
	if c.noCore {
		if _, _, errno = syscall.RawSyscall6(syscall.SYS_PRLIMIT64, 0, unix.RLIMIT_CORE, uintptr(unsafe.Pointer(c.zeroRlimit)), 0, 0, 0); errno != 0 {
			goto fail
		}
	}
	if c.cpus != nil {
		if _, _, errno = syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, 0, unsafe.Sizeof(*c.cpus), uintptr(unsafe.Pointer(c.cpus))); errno != 0 {
			goto fail
		}
	}

	step = stepNoNewPrivs
	if _, _, errno = syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0); errno != 0 {
		goto fail
	}
	if c.dropCaps {
		step = stepCapabilities
		if _, _, errno = syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0); errno != 0 && errno != syscall.EINVAL {
			goto fail
		}
		if c.boundingOK {
			for i = 0; i <= c.lastCap; i++ {
				if _, _, errno = syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(i), 0, 0, 0, 0); errno != 0 && errno != syscall.EINVAL {
					goto fail
				}
			}
		}
		if _, _, errno = syscall.RawSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(c.capHdr)), uintptr(unsafe.Pointer(&c.capData[0])), 0); errno != 0 {
			goto fail
		}
	}
	if c.ruleset >= 0 {
		step = stepLandlock
		if _, _, errno = syscall.RawSyscall(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(c.ruleset), 0, 0); errno != 0 {
			goto fail
		}
	}

	// Fork mode: the listener will take the lowest free fd; tell the
	// parent which, before the filter is in place (once it is, even this
	// write could be a notified syscall with nobody serving the listener
	// yet).
	step = stepSeccomp
	if c.listen && !c.vfork {
		if listener, _, errno = syscall.RawSyscall(syscall.SYS_FCNTL, uintptr(c.report), syscall.F_DUPFD_CLOEXEC, 0); errno != 0 {
			goto fail
		}
		syscall.RawSyscall(syscall.SYS_CLOSE, listener, 0, 0)
		step, value = stepReady, uint32(listener)
		rec[0], rec[1], rec[2], rec[3] = byte(step), byte(step>>8), byte(step>>16), byte(step>>24)
		rec[4], rec[5], rec[6], rec[7] = byte(value), byte(value>>8), byte(value>>16), byte(value>>24)
		if r1, _, errno = syscall.RawSyscall(syscall.SYS_WRITE, uintptr(c.report), uintptr(unsafe.Pointer(&rec[0])), 8); errno != 0 || r1 != 8 {
			syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 127, 0, 0)
		}
		step = stepSeccomp
	}
	flags = 0
	if c.listen {
		flags = unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
	}
	r1, _, errno = syscall.RawSyscall(unix.SYS_SECCOMP, 1 /* SECCOMP_SET_MODE_FILTER */, flags, uintptr(unsafe.Pointer(c.filter)))
	if errno == syscall.EINVAL && c.listen {
		// Before Linux 5.19 there is no WAIT_KILLABLE_RECV.
		r1, _, errno = syscall.RawSyscall(unix.SYS_SECCOMP, 1, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, uintptr(unsafe.Pointer(c.filter)))
	}
	if errno != 0 {
		goto fail
	}

	step = stepFDs
	if c.vfork {
		// The listener is now in the supervisor's fd table too. From here
		// on, a private table (the filter lets exactly this unshare
		// through).
		if c.listen {
			c.listener = int(r1)
		}
		if _, _, errno = syscall.RawSyscall(syscall.SYS_UNSHARE, syscall.CLONE_FILES, 0, 0); errno != 0 {
			goto fail
		}
	} else {
		if c.listen && r1 != listener {
			syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 127, 0, 0)
		}
		// Wait until the tracer has seized this process and the
		// supervisor holds the listener.
		if r1, _, errno = syscall.RawSyscall(syscall.SYS_READ, uintptr(c.gate), uintptr(unsafe.Pointer(&rec[0])), 1); errno != 0 || r1 != 1 {
			syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 127, 0, 0)
		}
	}

	// Only the descriptors asked for survive the exec: every other one
	// is marked close-on-exec, and the requested ones are moved first
	// above every fd involved (so that no source is overwritten), then
	// down to 0, 1, 2, … without close-on-exec.
	step = stepCloseRange
	if _, _, errno = syscall.RawSyscall(unix.SYS_CLOSE_RANGE, 3, ^uintptr(0), unix.CLOSE_RANGE_CLOEXEC); errno != 0 {
		goto fail
	}
	step = stepFDs
	for i = 0; i < len(c.fds); i++ {
		if c.fds[i] < 0 {
			continue
		}
		if _, _, errno = syscall.RawSyscall(syscall.SYS_DUP3, uintptr(c.fds[i]), uintptr(c.high+i), syscall.O_CLOEXEC); errno != 0 {
			goto fail
		}
	}
	for i = 0; i < len(c.fds); i++ {
		if c.fds[i] < 0 {
			syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(i), 0, 0)
			continue
		}
		if _, _, errno = syscall.RawSyscall(syscall.SYS_DUP3, uintptr(c.high+i), uintptr(i), 0); errno != 0 {
			goto fail
		}
	}
	if c.nofile != nil {
		// Last: the steps before needed fds above the limit.
		step = stepOpenFiles
		if _, _, errno = syscall.RawSyscall6(syscall.SYS_PRLIMIT64, 0, unix.RLIMIT_NOFILE, uintptr(unsafe.Pointer(c.nofile)), 0, 0, 0); errno != 0 {
			goto fail
		}
	}
	if c.dir != nil {
		step = stepChdir
		if _, _, errno = syscall.RawSyscall(syscall.SYS_CHDIR, uintptr(unsafe.Pointer(c.dir)), 0, 0); errno != 0 {
			goto fail
		}
	}
	step = stepExec
	_, _, errno = syscall.RawSyscall(syscall.SYS_EXECVE,
		uintptr(unsafe.Pointer(c.path)),
		uintptr(unsafe.Pointer(&c.argv[0])),
		uintptr(unsafe.Pointer(&c.envv[0])))

fail:
	if c.vfork {
		c.failStep, c.failErr = step, uint32(errno)
	} else {
		value = uint32(errno)
		rec[0], rec[1], rec[2], rec[3] = byte(step), byte(step>>8), byte(step>>16), byte(step>>24)
		rec[4], rec[5], rec[6], rec[7] = byte(value), byte(value>>8), byte(value>>16), byte(value>>24)
		syscall.RawSyscall(syscall.SYS_WRITE, uintptr(c.report), uintptr(unsafe.Pointer(&rec[0])), 8)
	}
	for {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 127, 0, 0)
	}
}

// addrNoRandomize is personality's ADDR_NO_RANDOMIZE.
const addrNoRandomize = 0x0040000

// ChildStageSyscalls are the syscalls the child stage makes after its
// seccomp filter is in place and before exec. Denying one of them would keep
// every program from starting. (It also calls unshare(CLONE_FILES), which
// the filter lets through whatever the deny lists say.)
var ChildStageSyscalls = []string{"read", "write", "close_range", "dup3", "close", "prlimit64", "chdir", "execve", "exit_group"}

// vforkSafe reports whether a child whose filter notifies these syscalls
// can use the vfork mode: none of its steps after the filter may wait for
// the supervisor, which cannot serve while the parent thread is suspended
// (and, holding its scheduler P, may leave no other to serve on).
// selfUnnotified are notified syscalls that the filter lets through when
// they name the caller itself, as the child stage's calls all do.
func vforkSafe(notified, selfUnnotified []int) bool {
	arch := sysnum.Native()
	for _, name := range []string{"close_range", "dup3", "close", "prlimit64", "chdir", "execve", "exit_group"} {
		if nr, ok := arch.Nr(name); ok && slices.Contains(notified, nr) && !slices.Contains(selfUnnotified, nr) {
			return false
		}
	}
	return true
}
