// Command confine restricts itself with sandlock.Confine and then runs a
// command, which inherits the restriction (Landlock is irreversible and
// passes to every child): the simplest way to confine a program that needs
// no supervisor.
//
//	CGO_ENABLED=0 go build ./examples/confine
//	./confine -r /usr -r /lib -r /lib64 -r /bin -w /tmp -- sh -c 'ls /tmp; cat /etc/hostname'
//
// Confine needs a binary built without cgo: it restricts every thread of
// the process, which the Go runtime can only do for threads it created.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/sandlock-go/sandlock"
)

// list is a repeatable string flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	var read, write list
	flag.Var(&read, "r", "grant read and execute beneath `PATH` (repeatable)")
	flag.Var(&write, "w", "grant read and write beneath `PATH` (repeatable)")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: confine [-r PATH]... [-w PATH]... -- COMMAND [ARGS...]")
		os.Exit(2)
	}
	if err := sandlock.Confine(&sandlock.Sandbox{FSReadable: read, FSWritable: write}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	path, err := exec.LookPath(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "confine:", err)
		os.Exit(127)
	}
	err = syscall.Exec(path, flag.Args(), os.Environ())
	fmt.Fprintln(os.Stderr, "confine:", err)
	os.Exit(126)
}
