// The runtime's cgroup-aware GOMAXPROCS keeps the cgroup's CPU limit files
// open for the whole run, on the lowest free fds (3 and 4 in a process
// started with only the standard streams). They would make an fd the caller
// did not pass, such as a closed --status-fd, look open, and sandlock would
// then write the status into the runtime's file. Sandlock does not need
// the feature: with it off the runtime closes those files during start-up.
//
//go:debug containermaxprocs=0

// Command sandlock runs a program confined by Landlock, seccomp and a
// notification supervisor. Its flags follow upstream Sandlock's CLI.
//
//	sandlock run -r /usr -r /lib -w /tmp -- python3 script.py
//	sandlock check
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/policy"
	"github.com/sandlock-go/sandlock/internal/sandbox"
)

func init() {
	// Keep the main goroutine on the main thread: sandlock confines and
	// discards other threads, and the main thread can never be discarded.
	runtime.LockOSThread()
}

func main() {
	// Orphans of the sandbox are re-parented to sandlock rather than to
	// init, so that sandlock reaps them and leaves no zombie behind.
	unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes besides the program's own.
const (
	exitPolicy  = 1   // a policy error: bad path, rule, conflicting flags
	exitUsage   = 2   // unknown flag, missing value
	exitTimeout = 124 // --timeout expired
	exitSetup   = 127 // the child stage failed before the program ran
)

// usageError marks command-line errors (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitError carries an exit code out of a command.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// Main runs the CLI and returns its exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:           "sandlock",
		Short:         "Run programs confined by Landlock, seccomp and a syscall supervisor",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(runCommand(stderr), checkCommand(stdout))
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintln(stderr, message(err))
	var ue usageError
	switch {
	case errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "accepts "):
		return exitUsage
	case isStepError(err):
		return exitSetup
	}
	return exitPolicy
}

func isStepError(err error) bool {
	var se *sandbox.StepError
	return errors.As(err, &se)
}

// flagOf names the run flag behind each Sandbox field.
var flagOf = map[string]string{
	"FSReadable":         "--fs-read",
	"FSWritable":         "--fs-write",
	"FSDenied":           "--fs-deny",
	"Cwd":                "--cwd",
	"Env":                "--env",
	"ExtraAllowSyscalls": "--extra-allow-syscall",
	"ExtraDenySyscalls":  "--extra-deny-syscall",
	"AllowDegraded":      "--allow-degraded",
	"Disable":            "--disable",
}

// message renders an error as one "sandlock: …" line, naming the flag
// rather than the library's field.
func message(err error) string {
	var fe *policy.FieldError
	if errors.As(err, &fe) {
		name := fe.Field
		if f, ok := flagOf[name]; ok {
			name = f
		}
		if fe.Value != "" {
			return fmt.Sprintf("sandlock: %s %q: %v", name, fe.Value, fe.Err)
		}
		return fmt.Sprintf("sandlock: %s: %v", name, fe.Err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "sandlock:") {
		msg = "sandlock: " + msg
	}
	return msg
}
