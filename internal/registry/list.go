//go:build linux

package registry

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Info describes a live sandbox of the registry.
type Info struct {
	Name       string
	Pid        int       // the program: the leader of the sandbox's process group
	Supervisor int       // the process that runs the sandbox and serves its control socket
	Started    time.Time // when the program started
	Mode       string    // the entry's mode file ("learn" …), or ""
}

// List returns the user's live sandboxes, sorted by name, and removes the
// stale entries it meets. An entry still being set up is left out.
func List() ([]Info, error) {
	base, err := OpenBase(false)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer base.Close()
	dup, err := unix.Openat(base.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("runtime directory %s: %w", base.Path, err)
	}
	f := os.NewFile(uintptr(dup), base.Path)
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("runtime directory %s: %w", base.Path, err)
	}
	var out []Info
	for _, name := range names {
		if CheckName(name) != nil {
			// Not a sandbox's name: a claim in progress, or its leftover.
			if strings.HasPrefix(name, ".new-") {
				removeIfStale(base, name)
			}
			continue
		}
		if info, ok := look(base, name); ok {
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// look reads a live entry, removing it if it is stale.
func look(base *Base, name string) (Info, bool) {
	held, _, err := probe(base, name)
	if err != nil || !held {
		return Info{}, false
	}
	dir, err := unix.Openat(base.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return Info{}, false
	}
	defer unix.Close(dir)
	child, supervisor, ok := readPids(dir)
	if !ok {
		return Info{}, false // claimed, not started yet
	}
	info := Info{Name: name, Pid: child, Supervisor: supervisor}
	var st unix.Stat_t
	if unix.Fstatat(dir, pidFile, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
		info.Started = time.Unix(st.Mtim.Unix())
	}
	if fd, err := unix.Openat(dir, modeFile, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err == nil {
		var buf [64]byte
		n, _ := unix.Read(fd, buf[:])
		unix.Close(fd)
		if n > 0 {
			info.Mode = strings.TrimSpace(string(buf[:n]))
		}
	}
	return info, true
}

// probe reports whether a supervisor holds the entry, removing it if not.
// A listing takes the lock shared, so that listings never get in each
// other's way; only a stale entry is then locked exclusively, to remove.
func probe(base *Base, name string) (held bool, pid int, err error) {
	dir, err := unix.Openat(base.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, 0, err
	}
	lock, err := unix.Openat(dir, lockFile, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	unix.Close(dir)
	if err != nil {
		return removeIfStale(base, name)
	}
	err = unix.Flock(lock, unix.LOCK_SH|unix.LOCK_NB)
	unix.Close(lock)
	if err == unix.EWOULDBLOCK {
		return true, 0, nil
	}
	return removeIfStale(base, name)
}

// ErrNotRunning is the error for an entry whose supervisor is gone.
var ErrNotRunning = errors.New("is not running")

// KillWait bounds how long Kill waits for a sandbox to end, after its
// supervisor accepted the request, before it uses signals.
var KillWait = 10 * time.Second

// Kill ends the named sandbox. It asks the supervisor first, so that the
// run ends through its normal path (with its on-error handling), and waits
// until the supervisor has let the name go, which it does once nothing of
// the sandbox is left. If the supervisor does not answer, or the sandbox
// does not end, it kills the supervisor and the sandbox's process group
// with SIGKILL, but only once it has checked that they are the processes
// the entry names: the supervisor must be the process serving the entry's
// control socket, and the program a child of it leading its own group.
// Pids are pinned with pidfds throughout. forced reports that signals
// were used.
func Kill(name string) (info Info, forced bool, err error) {
	if err := CheckName(name); err != nil {
		return Info{}, false, err
	}
	base, err := OpenBase(false)
	if errors.Is(err, os.ErrNotExist) {
		return Info{}, false, fmt.Errorf("%w named %q", ErrNotFound, name)
	}
	if err != nil {
		return Info{}, false, err
	}
	defer base.Close()
	dir, err := unix.Openat(base.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT {
		return Info{}, false, fmt.Errorf("%w named %q", ErrNotFound, name)
	}
	if err != nil {
		return Info{}, false, fmt.Errorf("sandbox %q: %w", name, os.NewSyscallError("open", err))
	}
	defer unix.Close(dir)
	info.Name = name
	info.Pid, info.Supervisor, _ = readPids(dir)
	lock, err := unix.Openat(dir, lockFile, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil && err != unix.ENOENT {
		return info, false, fmt.Errorf("sandbox %q: %w", name, os.NewSyscallError("open lock", err))
	}
	if lock >= 0 {
		defer unix.Close(lock)
		if unix.Flock(lock, unix.LOCK_SH|unix.LOCK_NB) == nil {
			unix.Flock(lock, unix.LOCK_UN)
			removeIfStale(base, name)
			return info, false, fmt.Errorf("sandbox %q %w (its supervisor died; its entry is removed)", name, ErrNotRunning)
		}
	} else if info.Supervisor == 0 || !pidAlive(info.Supervisor) {
		removeIfStale(base, name)
		return info, false, fmt.Errorf("sandbox %q %w", name, ErrNotRunning)
	}
	if info.Supervisor == 0 {
		return info, false, fmt.Errorf("sandbox %q is still starting: try again", name)
	}
	if _, err := askDir(dir, name, "kill"); err == nil && released(dir, lock, info.Supervisor, KillWait) {
		removeIfStale(base, name)
		return info, false, nil
	}
	// The supervisor did not do it: signals, once verified.
	if err := forceKill(dir, name, info); err != nil {
		return info, true, err
	}
	if !released(dir, lock, info.Supervisor, KillWait) {
		return info, true, fmt.Errorf("sandbox %q: its supervisor (pid %d) did not die", name, info.Supervisor)
	}
	removeIfStale(base, name)
	return info, true, nil
}

// released waits until the supervisor has let the entry go: its lock is
// free (or, for an entry without one, its pid is gone).
func released(dir, lock, supervisor int, wait time.Duration) bool {
	deadline := time.Now().Add(wait)
	for {
		if lock >= 0 {
			if unix.Flock(lock, unix.LOCK_SH|unix.LOCK_NB) == nil {
				unix.Flock(lock, unix.LOCK_UN)
				return true
			}
		} else if !pidAlive(supervisor) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// forceKill SIGKILLs a sandbox whose supervisor did not end it. The
// supervisor is verified by the control socket: the process that listens
// on it must be the pid the entry names (a connection succeeds even to a
// stopped process). The program's group is killed only if the program is
// still a child of that supervisor leading its own group. Each pid is held
// by a pidfd from before the check until the signal, so a recycled pid is
// never signalled.
func forceKill(dir int, name string, info Info) error {
	sup, err := unix.PidfdOpen(info.Supervisor, 0)
	if err == unix.ESRCH {
		return nil // gone already
	}
	if err != nil {
		return fmt.Errorf("sandbox %q: pidfd_open: %w", name, err)
	}
	defer unix.Close(sup)
	c, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sandbox %q: %w", name, err)
	}
	err = unix.Connect(c, &unix.SockaddrUnix{Name: procPath(dir, sockFile)})
	var cred *unix.Ucred
	if err == nil {
		cred, err = unix.GetsockoptUcred(c, unix.SOL_SOCKET, unix.SO_PEERCRED)
	}
	unix.Close(c)
	if err != nil {
		if unix.PidfdSendSignal(sup, 0, nil, 0) == unix.ESRCH {
			return nil
		}
		return fmt.Errorf("sandbox %q: cannot verify its supervisor (pid %d) through its control socket (%v): not signalling it", name, info.Supervisor, err)
	}
	if int(cred.Pid) != info.Supervisor || (cred.Uid != uint32(os.Geteuid()) && cred.Uid != 0) {
		return fmt.Errorf("sandbox %q: its control socket is served by pid %d, not by the registered supervisor %d: not signalling", name, cred.Pid, info.Supervisor)
	}
	if unix.PidfdSendSignal(sup, 0, nil, 0) != nil {
		return nil // it died meanwhile
	}
	// Its descendants, held by pidfds: the kernel SIGKILLs the traced ones
	// only after the supervisor has let go of its files (and so of the
	// entry's lock); waiting for each is what makes "nothing is left" true
	// when Kill returns.
	procs := descendants(info.Supervisor)
	defer func() {
		for _, fd := range procs {
			unix.Close(fd)
		}
	}()
	if info.Pid > 0 {
		if child, err := unix.PidfdOpen(info.Pid, 0); err == nil {
			ppid, pgrp, ok := parentAndGroup(info.Pid)
			if ok && ppid == info.Supervisor && pgrp == info.Pid && unix.PidfdSendSignal(child, 0, nil, 0) == nil {
				unix.Kill(-info.Pid, unix.SIGKILL)
			}
			unix.Close(child)
		}
	}
	// The supervisor traces every process of the sandbox with
	// PTRACE_O_EXITKILL: its death takes them all down.
	if err := unix.PidfdSendSignal(sup, unix.SIGKILL, nil, 0); err != nil && err != unix.ESRCH {
		return fmt.Errorf("sandbox %q: killing its supervisor: %w", name, err)
	}
	for _, fd := range procs {
		unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
	}
	if !exited(append(procs, sup), KillWait) {
		return fmt.Errorf("sandbox %q: processes of the sandbox are still alive after SIGKILL", name)
	}
	return nil
}

// descendants returns pidfds of the processes below pid, walking the
// children of each of their threads. An orphan of the sandbox comes back
// to the supervisor when it is a child subreaper, as the CLI is.
func descendants(pid int) []int {
	var fds []int
	seen := map[int]bool{pid: true}
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(p) + "/task")
		for _, t := range tasks {
			b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/task/" + t.Name() + "/children")
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				c, err := strconv.Atoi(f)
				if err != nil || seen[c] {
					continue
				}
				seen[c] = true
				fd, err := unix.PidfdOpen(c, 0)
				if err != nil {
					continue
				}
				// Still a child of p, or the pid was recycled meanwhile.
				if ppid, _, ok := parentAndGroup(c); !ok || ppid != p {
					unix.Close(fd)
					continue
				}
				fds = append(fds, fd)
				queue = append(queue, c)
			}
		}
	}
	return fds
}

// exited waits until every process of the pidfds has exited.
func exited(pidfds []int, wait time.Duration) bool {
	deadline := time.Now().Add(wait)
	for {
		fds := make([]unix.PollFd, 0, len(pidfds))
		for _, fd := range pidfds {
			fds = append(fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		n, err := unix.Poll(fds, int(min(left, 100*time.Millisecond)/time.Millisecond)+1)
		if err != nil && err != unix.EINTR {
			return false
		}
		if n == 0 {
			continue
		}
		var rest []int
		for i, f := range fds {
			if f.Revents == 0 {
				rest = append(rest, pidfds[i])
			}
		}
		if len(rest) == 0 {
			return true
		}
		pidfds = rest
	}
}

// parentAndGroup reads a process's parent and process group from
// /proc/<pid>/stat.
func parentAndGroup(pid int) (ppid, pgrp int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// The command name, in parentheses, may hold anything: the fields
	// follow its last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 {
		return 0, 0, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgrp, err2 := strconv.Atoi(f[2])
	return ppid, pgrp, err1 == nil && err2 == nil
}
