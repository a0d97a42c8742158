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
	"github.com/sandlock-go/sandlock/bench/internal/grants"
)

func main() {
	grants.Args("notified")
	read := grants.Readable(os.Args[1])
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
