//go:build linux

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
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock"
)

func main() {
	// Orphans of the sandbox are re-parented to sandlock rather than to
	// init, so that sandlock reaps them and leaves no zombie behind.
	unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	slog.SetDefault(slog.New(newLineHandler(os.Stderr, slog.LevelWarn)))
	c := Main(os.Args[1:], os.Stdout, os.Stderr)
	os.Exit(c)
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

// command is one subcommand of the CLI.
type command struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"run", "run a command in a sandbox", runMain},
		{"ps", "list the running sandboxes", psMain},
		{"inspect", "print a running sandbox's policy", inspectMain},
		{"kill", "end a running sandbox", killMain},
		{"profile", "list, show or delete profiles", profileMain},
		{"check", "report what this kernel supports", checkMain},
		{"cow", "recover a copy-on-write workdir's branches (cow recover PATH)", cowMain},
	}
}

// Main runs the CLI and returns its exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	var err error
	switch name := args[0]; name {
	case "-h", "--help", "help":
		usage(stdout)
		return 0
	default:
		cmds := commands()
		if i := slices.IndexFunc(cmds, func(c command) bool { return c.name == name }); i >= 0 {
			err = cmds[i].run(args[1:], stdout, stderr)
		} else {
			err = usageError{fmt.Errorf("unknown command %q (run sandlock --help for the list)", name)}
		}
	}
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, message(err))
	var ue usageError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case isStepError(err):
		return exitSetup
	}
	return exitPolicy
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "sandlock runs programs confined by Landlock, seccomp and a syscall supervisor.")
	fmt.Fprintln(w, "\nUsage: sandlock COMMAND [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'sandlock COMMAND --help' for a command's flags.")
}

// parseFlags parses a subcommand's flags; errors are usage errors.
func parseFlags(fs *pflag.FlagSet, args []string, out io.Writer) error {
	fs.SetOutput(out)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	return nil
}

func isStepError(err error) bool {
	var se *sandlock.StartError
	return errors.As(err, &se)
}

// source names where the value of a Sandbox field came from: the flag or
// the profile key the user wrote, else the field's flag, else the field.
func source(prof *sandlock.Profile, field, value string) string {
	if prof != nil {
		if s := prof.Source(field, value); s != "" {
			return s
		}
	}
	for _, s := range sandlock.Settings() {
		if s.Field == field && s.Flag != "" {
			return "--" + s.Flag
		}
	}
	return field
}

// explain renders an error about a field as one "sandlock: …" line naming
// what the user wrote; other errors pass unchanged.
func explain(prof *sandlock.Profile, err error) error {
	var fe *sandlock.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	name := source(prof, fe.Field, fe.Value)
	if fe.Value != "" {
		return fmt.Errorf("sandlock: %s %q: %v", name, fe.Value, fe.Err)
	}
	return fmt.Errorf("sandlock: %s: %v", name, fe.Err)
}

// message renders an error as one "sandlock: …" line.
func message(err error) string {
	msg := explain(nil, err).Error()
	if !strings.HasPrefix(msg, "sandlock:") {
		msg = "sandlock: " + msg
	}
	return msg
}
