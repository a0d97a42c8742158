//go:build linux

// Command landlocked applies to itself only the Landlock filesystem rules
// sandlock would build for the same grants (sandlock.Confine: no seccomp
// filter, no supervisor, no tracer) and execs a program in its place:
// bench/run.sh measures the open loop against it, the least any sandbox
// that confines the filesystem with Landlock pays on that loop.
//
//	landlocked DIR PROGRAM [ARG...]
//
// DIR is granted readable besides the system directories (the workload's
// script lives there).
package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"github.com/sandlock-go/sandlock"
	"github.com/sandlock-go/sandlock/bench/internal/grants"
)

func main() {
	grants.Args("landlocked")
	prog, err := exec.LookPath(os.Args[2])
	if err == nil {
		err = sandlock.Confine(&sandlock.Sandbox{FSReadable: grants.Readable(os.Args[1])})
	}
	if err == nil {
		err = syscall.Exec(prog, os.Args[2:], os.Environ())
	}
	fmt.Fprintln(os.Stderr, "landlocked:", err)
	os.Exit(127)
}
