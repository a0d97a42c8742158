package sandbox

import (
	"syscall"
	"unsafe"
)

// The runtime's fork hooks, as package syscall uses them (the runtime keeps
// them available to other packages; see go.dev/issue/67401).

//go:linkname runtime_BeforeFork syscall.runtime_BeforeFork
func runtime_BeforeFork()

//go:linkname runtime_AfterFork syscall.runtime_AfterFork
func runtime_AfterFork()

//go:linkname runtime_AfterForkInChild syscall.runtime_AfterForkInChild
func runtime_AfterForkInChild()

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
	// gate is read once before exec: the parent writes a byte when the
	// child may go on (after the tracer has seized it); EOF means abort.
	gate int
	// report receives errno as 4 bytes if anything fails; it is
	// close-on-exec, so EOF means the exec succeeded.
	report int
	// secret goes in clone's ignored parent-tid argument; the filter lets
	// a clone carrying it through without notifying (see policy).
	secret uintptr
}

// forkChild forks the calling thread. The child runs the child stage and
// never returns; the parent gets the pid.
//
// It does not use vfork, unlike syscall.ForkExec: the child waits before its
// exec for the tracer to seize it, and a vfork parent would hold its P for
// all that time, which can starve the supervisor of Ps.
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
		r1    uintptr
		errno syscall.Errno
		i     int
		buf   [4]byte
		pgrp  int32
	)
	runtime_BeforeFork()
	r1, _, errno = syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, c.secret, 0, 0, 0)
	if errno != 0 || r1 != 0 {
		runtime_AfterFork()
		return int(r1), errno
	}

	// In the child. Signals stay blocked until the terminal is ours:
	// TIOCSPGRP from a background group would raise SIGTTOU.
	if _, _, errno = syscall.RawSyscall(syscall.SYS_SETPGID, 0, 0, 0); errno != 0 {
		goto fail
	}
	if c.tty >= 0 {
		r1, _, _ = syscall.RawSyscall(syscall.SYS_GETPID, 0, 0, 0)
		pgrp = int32(r1)
		if _, _, errno = syscall.RawSyscall(syscall.SYS_IOCTL, uintptr(c.tty), uintptr(syscall.TIOCSPGRP), uintptr(unsafe.Pointer(&pgrp))); errno != 0 {
			goto fail
		}
	}
	runtime_AfterForkInChild()
	if _, _, errno = syscall.RawSyscall6(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0, 0); errno != 0 {
		goto fail
	}
	if r1, _, _ = syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0); r1 != c.ppid {
		// The parent is gone already: PDEATHSIG will never fire.
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 127, 0, 0)
	}

	// Wait until the tracer has seized this process.
	if r1, _, errno = syscall.RawSyscall(syscall.SYS_READ, uintptr(c.gate), uintptr(unsafe.Pointer(&buf[0])), 1); errno != 0 || r1 != 1 {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 127, 0, 0)
	}

	// Move the descriptors into place: first above every fd involved (so
	// that no source is overwritten), then down to 0, 1, 2, … without
	// close-on-exec. Every other fd is close-on-exec already.
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
	if c.dir != nil {
		if _, _, errno = syscall.RawSyscall(syscall.SYS_CHDIR, uintptr(unsafe.Pointer(c.dir)), 0, 0); errno != 0 {
			goto fail
		}
	}
	_, _, errno = syscall.RawSyscall(syscall.SYS_EXECVE,
		uintptr(unsafe.Pointer(c.path)),
		uintptr(unsafe.Pointer(&c.argv[0])),
		uintptr(unsafe.Pointer(&c.envv[0])))

fail:
	buf[0], buf[1], buf[2], buf[3] = byte(errno), byte(errno>>8), byte(errno>>16), byte(errno>>24)
	syscall.RawSyscall(syscall.SYS_WRITE, uintptr(c.report), uintptr(unsafe.Pointer(&buf[0])), 4)
	for {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 127, 0, 0)
	}
}
