//go:build linux

// Command openat-audit runs a command in a sandbox and prints an audit line,
// "pid path flags", for every openat(2) the command makes: a tamper-proof
// trail, since the command cannot bypass the supervisor that writes it.
//
//	go run ./examples/openat-audit -- cat /etc/hostname
//	go run ./examples/openat-audit -r /usr -r /etc -w /tmp -- sh -c 'ls /tmp'
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock"
)

// list is a repeatable string flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

// auditor prints one line per openat. Handlers run concurrently, so the
// output is serialized with a mutex.
type auditor struct {
	mu  sync.Mutex
	out *os.File
}

func (a *auditor) Handle(ctx context.Context, hc *sandlock.HandlerCtx) sandlock.Action {
	args := hc.Notif.Data.Args
	path, err := hc.ReadCString(args[1], unix.PathMax)
	if err != nil {
		path = fmt.Sprintf("<unreadable: %v>", err)
	}
	a.mu.Lock()
	fmt.Fprintf(a.out, "%d %q %s\n", hc.Notif.PID, path, openFlags(args[2]))
	a.mu.Unlock()
	// An audit only watches: the kernel performs the open, with Landlock
	// and every builtin check still in force.
	return sandlock.Continue()
}

// openFlags renders open(2) flags.
func openFlags(f uint64) string {
	var parts []string
	switch f & unix.O_ACCMODE {
	case unix.O_RDONLY:
		parts = append(parts, "O_RDONLY")
	case unix.O_WRONLY:
		parts = append(parts, "O_WRONLY")
	case unix.O_RDWR:
		parts = append(parts, "O_RDWR")
	}
	for _, fl := range []struct {
		bit  uint64
		name string
	}{
		{unix.O_CREAT, "O_CREAT"}, {unix.O_EXCL, "O_EXCL"}, {unix.O_TRUNC, "O_TRUNC"},
		{unix.O_APPEND, "O_APPEND"}, {unix.O_DIRECTORY, "O_DIRECTORY"}, {unix.O_NOFOLLOW, "O_NOFOLLOW"},
		{unix.O_CLOEXEC, "O_CLOEXEC"}, {unix.O_PATH, "O_PATH"}, {unix.O_NONBLOCK, "O_NONBLOCK"},
	} {
		if f&fl.bit != 0 {
			parts = append(parts, fl.name)
		}
	}
	return strings.Join(parts, "|")
}

func main() {
	var read, write list
	flag.Var(&read, "r", "grant read access beneath `PATH` (repeatable; default /usr /lib /lib64 /bin /etc)")
	flag.Var(&write, "w", "grant write access beneath `PATH` (repeatable)")
	flag.Parse()
	cmd := flag.Args()
	if len(cmd) == 0 {
		fmt.Fprintln(os.Stderr, "usage: openat-audit [-r PATH] [-w PATH] -- COMMAND [ARGS...]")
		os.Exit(2)
	}
	if len(read) == 0 {
		for _, p := range []string{"/usr", "/lib", "/lib64", "/bin", "/etc"} {
			if _, err := os.Stat(p); err == nil {
				read = append(read, p)
			}
		}
	}
	nr, err := sandlock.SyscallNr("openat")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sb := &sandlock.Sandbox{FSReadable: read, FSWritable: write}
	code, err := sb.RunInteractiveWithHandlers(context.Background(), cmd,
		sandlock.SyscallHandler{Syscall: int64(nr), Handler: &auditor{out: os.Stderr}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(127)
	}
	os.Exit(code)
}
