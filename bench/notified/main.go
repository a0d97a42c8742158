//go:build linux

// Command notified runs a program in a sandbox whose supervisor answers
// every getppid with Continue from a user Handler: bench/run.sh measures it
// against bench/floor/floor.c, the least a supervisor can do, on the same loop.
//
//	notified DIR PROGRAM [ARG...]
//
// DIR is granted readable besides the system directories (the workload's
// script lives there); the program's output and exit status pass through.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/sandlock-go/sandlock"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: notified DIR PROGRAM [ARG...]")
		os.Exit(2)
	}
	read := []string{os.Args[1]}
	for _, p := range []string{"/usr", "/lib", "/lib64", "/bin", "/etc"} {
		if _, err := os.Stat(p); err == nil {
			read = append(read, p)
		}
	}
	nr, err := sandlock.SyscallNr("getppid")
	if err != nil {
		fmt.Fprintln(os.Stderr, "notified:", err)
		os.Exit(1)
	}
	h := sandlock.SyscallHandler{Syscall: int64(nr), Handler: sandlock.HandlerFunc(
		func(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action { return sandlock.Continue() })}
	sb := &sandlock.Sandbox{FSReadable: read, NoRegistry: true}
	res, err := sb.RunWithHandlers(context.Background(), os.Args[2:], h)
	if err != nil {
		fmt.Fprintln(os.Stderr, "notified:", err)
		os.Exit(1)
	}
	os.Stdout.Write(res.Stdout)
	os.Stderr.Write(res.Stderr)
	os.Exit(res.ExitCode)
}
