//go:build linux

package tracer

import (
	"runtime"
	"slices"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// fake tids lie above the largest pid_max Linux allows (2^22), so that no
// signal the bookkeeping sends can reach a real process.
const fake = 1 << 23

func TestBookkeeping(t *testing.T) {
	var started, exited [][2]int
	tr := &Tracer{
		tasks: make(map[int]task),
		trace: true,
		root:  fake + 1,
		onProcStart: func(pid, parent int) {
			started = append(started, [2]int{pid, parent})
		},
		onProcExit: func(pid int, _ *unix.Rusage) {
			exited = append(exited, [2]int{pid, 0})
		},
	}
	// The root, a thread of it, a child process and its thread.
	tr.add(fake+1, fake+1, 0, 0)
	tr.add(fake+2, fake+1, 0, 0)
	tr.add(fake+3, fake+3, fake+1, 0)
	tr.add(fake+4, fake+3, 0, 0)
	tr.add(fake+3, fake+3, fake+1, 0) // seen twice (a first stop before the fork event): once
	if tr.Processes() != 2 {
		t.Errorf("processes: %d, want 2", tr.Processes())
	}
	pids := tr.ProcessIDs()
	slices.Sort(pids)
	if !slices.Equal(pids, []int{fake + 1, fake + 3}) {
		t.Errorf("ProcessIDs: %v", pids)
	}
	if tr.TGID(fake+4) != fake+3 || !tr.Traced(fake+2) || tr.Traced(fake+9) {
		t.Error("TGID or Traced wrong")
	}
	if len(started) != 2 || started[0] != [2]int{fake + 1, 0} || started[1] != [2]int{fake + 3, fake + 1} {
		t.Errorf("process starts: %v (threads are not processes)", started)
	}

	// A thread's exit is no process's; a process's is, once.
	tr.exited(fake+4, 0, nil)
	if tr.Processes() != 2 || len(exited) != 0 || tr.Traced(fake+4) {
		t.Errorf("after a thread's exit: %d processes, exits %v", tr.Processes(), exited)
	}
	tr.exited(fake+3, 0, nil)
	if tr.Processes() != 1 || len(exited) != 1 || exited[0][0] != fake+3 {
		t.Errorf("after a process's exit: %d processes, exits %v", tr.Processes(), exited)
	}
	tr.exited(fake+3, 0, nil) // reported again: nothing more
	if len(exited) != 1 {
		t.Errorf("a second exit report counted: %v", exited)
	}
	// The root's exit takes the rest with it: everything is dying, so a
	// task still being created is killed on arrival.
	tr.exited(fake+1, 0, nil)
	if !tr.dying || tr.Processes() != 0 {
		t.Errorf("after the root's exit: dying %v, %d processes", tr.dying, tr.Processes())
	}
	tr.add(fake+5, fake+5, fake+2, 0)
	if !tr.Traced(fake + 5) {
		t.Error("a task created while dying is not followed")
	}
}

func TestIsStopSignal(t *testing.T) {
	for _, s := range []unix.Signal{unix.SIGSTOP, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU} {
		if !isStopSignal(s) {
			t.Errorf("%v is a stop signal", s)
		}
	}
	if isStopSignal(unix.SIGCONT) || isStopSignal(unix.SIGCHLD) {
		t.Error("SIGCONT or SIGCHLD taken for a stop signal")
	}
}

// hasChildren answers for the calling thread only: no before it forks, yes
// while its child lives (even many children, a list longer than one read),
// no again once they are reaped.
func TestHasChildren(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if hasChildren() {
		t.Fatal("hasChildren: true before this thread forked (no test of this package forks before)")
	}
	var pids []int
	for range 20 {
		pid, err := syscall.ForkExec("/bin/sleep", []string{"sleep", "60"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	got := hasChildren()
	for _, pid := range pids {
		unix.Kill(pid, unix.SIGKILL)
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, 0, nil)
	}
	if !got {
		t.Error("hasChildren: false on a thread with 20 children")
	}
	if hasChildren() {
		t.Error("hasChildren: true once every child is reaped")
	}
}
