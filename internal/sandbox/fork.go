package sandbox

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The runtime's fork hooks, as package syscall uses them (the runtime keeps
// them available to other packages; see go.dev/issue/67401).

//go:linkname runtime_BeforeFork syscall.runtime_BeforeFork
func runtime_BeforeFork()

//go:linkname runtime_AfterFork syscall.runtime_AfterFork
func runtime_AfterFork()

//go:linkname runtime_AfterForkInChild syscall.runtime_AfterForkInChild
func runtime_AfterForkInChild()

// Steps of the child stage, as reported on the report pipe.
const (
	stepReady uint32 = iota // not a failure: the value is the listener fd
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

// childStage is everything the forked child needs, prepared before the fork
// so that the child allocates nothing and calls nothing but raw syscalls.
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
	// ppid is the forking process, to detect its death before PDEATHSIG
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

	// report carries 8-byte records {step, value} to the parent: with a
	// listener, first {stepReady, listener fd}; then a failure {step,
	// errno} if any. It is close-on-exec, so EOF means the exec succeeded.
	report int
	// gate is read once before exec: the parent writes a byte when the
	// child may go on (after the tracer has seized it); EOF means abort.
	gate int
}

// forkChild forks the calling thread. The child confines itself and execs
// the program; the parent gets the pid.
//
// It does not use vfork, unlike syscall.ForkExec: the child waits before its
// exec for the tracer, which is the forking thread, to seize it.
//
// Nothing the child runs after the fork may grow the stack, allocate or
// touch the runtime: it calls only raw syscalls (assembly, no stack check)
// and runtime_AfterForkInChild (nosplit), and declares every variable up
// front.
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
	r1, _, errno = syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
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

	// Only the descriptors asked for survive the exec.
	step = stepCloseRange
	if _, _, errno = syscall.RawSyscall(unix.SYS_CLOSE_RANGE, 3, ^uintptr(0), unix.CLOSE_RANGE_CLOEXEC); errno != 0 {
		goto fail
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

	// The listener will take the lowest free fd; tell the parent which,
	// before the filter is in place (once it is, even this write could be
	// a notified syscall with nobody serving the listener yet). Without a
	// listener the parent waits for nothing but the exec.
	if c.listen {
		step = stepSeccomp
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
	}
	step = stepSeccomp
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
	if c.listen && r1 != listener {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 127, 0, 0)
	}

	// Wait until the tracer has seized this process and the supervisor
	// holds the listener.
	if r1, _, errno = syscall.RawSyscall(syscall.SYS_READ, uintptr(c.gate), uintptr(unsafe.Pointer(&rec[0])), 1); errno != 0 || r1 != 1 {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 127, 0, 0)
	}

	// Move the descriptors into place: first above every fd involved (so
	// that no source is overwritten), then down to 0, 1, 2, … without
	// close-on-exec.
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
	value = uint32(errno)
	rec[0], rec[1], rec[2], rec[3] = byte(step), byte(step>>8), byte(step>>16), byte(step>>24)
	rec[4], rec[5], rec[6], rec[7] = byte(value), byte(value>>8), byte(value>>16), byte(value>>24)
	syscall.RawSyscall(syscall.SYS_WRITE, uintptr(c.report), uintptr(unsafe.Pointer(&rec[0])), 8)
	for {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 127, 0, 0)
	}
}

// addrNoRandomize is personality's ADDR_NO_RANDOMIZE.
const addrNoRandomize = 0x0040000

// ChildStageSyscalls are the syscalls the child stage makes after its
// seccomp filter is in place and before exec. Denying one of them would keep
// every program from starting.
var ChildStageSyscalls = []string{"read", "write", "dup3", "close", "prlimit64", "chdir", "execve", "exit_group"}
