//go:build linux

package main

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// endDescendants kills and reaps every process left of a run without the
// tracer. Such a run follows only the program's process group, so a
// descendant that called setsid would outlive it; but sandlock is a child
// subreaper (see main), so every orphan of the run became sandlock's own
// child, and sandlock has no other children. Killing a child orphans its
// own children to sandlock in turn, so the loop goes on until sandlock has
// no child at all.
func endDescendants() {
	var ws unix.WaitStatus
	for {
		for _, pid := range children() {
			unix.Kill(pid, unix.SIGKILL)
		}
		if _, err := unix.Wait4(-1, &ws, unix.WALL, nil); err == unix.ECHILD {
			return
		}
	}
}

// children lists the children of every thread of this process (an orphan
// is re-parented to one of them).
func children() []int {
	var out []int
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				out = append(out, pid)
			}
		}
	}
	return out
}
