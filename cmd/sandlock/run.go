//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock"
)

// runFlags are the values of `sandlock run`'s own flags. The flags that
// set the sandbox come from sandlock.Settings and are queued, in the order
// given, to be applied over the profile once it is loaded.
type runFlags struct {
	execShell   string
	interactive bool
	timeout     uint64
	statusFD    int
	profile     string
	profileFile string

	queued []queued
	flags  *pflag.FlagSet
}

// queued is one setting flag as given.
type queued struct {
	setting sandlock.Setting
	value   string
}

// settingFlag is the pflag.Value of a setting's flag: Set checks the
// value's syntax (a bad number is a usage error, as with pflag's own
// types) and queues it. (pflag's StringArray formats its default with an
// encoding/csv writer as the flag is declared, which cost more of
// sandlock's start-up than parsing the whole command line.)
type settingFlag struct {
	setting sandlock.Setting
	queue   *[]queued
}

func (v settingFlag) String() string { return "" }
func (v settingFlag) Type() string   { return v.setting.Type }
func (v settingFlag) Set(s string) error {
	if err := v.setting.Check(s); err != nil {
		return err
	}
	*v.queue = append(*v.queue, queued{v.setting, s})
	return nil
}

// set reports whether a flag was given.
func (f *runFlags) set(name string) bool { return f.flags != nil && f.flags.Changed(name) }

// runMain is `sandlock run`.
func runMain(args []string, stdout, stderr io.Writer) error {
	var f runFlags
	fl := pflag.NewFlagSet("sandlock run", pflag.ContinueOnError)
	fl.Usage = func() {
		fmt.Fprintln(fl.Output(), "Usage: sandlock run [flags] -- COMMAND [ARGS...]\n\nFlags:")
		fl.PrintDefaults()
	}
	fl.SetInterspersed(false)
	for _, s := range sandlock.Settings() {
		if s.Flag == "" {
			continue
		}
		flag := fl.VarPF(settingFlag{s, &f.queued}, s.Flag, s.Short, s.Usage)
		if s.Type == "bool" {
			flag.NoOptDefVal = "true"
		}
	}
	fl.StringVarP(&f.execShell, "exec-shell", "e", "", "run `CMD` with /bin/sh -c")
	fl.BoolVarP(&f.interactive, "interactive", "i", false, "interactive run (standard streams are always passed through)")
	fl.Uint64VarP(&f.timeout, "timeout", "t", 0, "kill the sandbox after `SECONDS`")
	fl.IntVar(&f.statusFD, "status-fd", -1, "write the exit status as JSON to `FD`")
	fl.StringVarP(&f.profile, "profile", "p", "", "load the profile `NAME` (see sandlock profile list)")
	fl.StringVar(&f.profileFile, "profile-file", "", "load the profile at `PATH`")
	if err := parseFlags(fl, args, stderr); err != nil {
		return err
	}
	f.flags = fl
	return f.run(fl.Args(), stderr)
}

// load reads the profile, if one was asked for.
func (f *runFlags) load() (*sandlock.Profile, error) {
	switch {
	case f.set("profile") && f.set("profile-file"):
		return nil, usageError{errors.New("-p/--profile and --profile-file cannot be used together")}
	case f.set("profile"):
		return sandlock.LoadProfile(f.profile)
	case f.set("profile-file"):
		data, err := os.ReadFile(f.profileFile)
		if err != nil {
			return nil, fmt.Errorf("--profile-file: %w", err)
		}
		return sandlock.ParseProfile(f.profileFile, data)
	}
	return &sandlock.Profile{}, nil
}

// sandbox applies the setting flags over the profile.
func (f *runFlags) sandbox(prof *sandlock.Profile) error {
	for _, q := range f.queued {
		if err := prof.Set(q.setting, q.value); err != nil {
			return err
		}
	}
	if f.statusFD >= 0 {
		if _, err := unix.FcntlInt(uintptr(f.statusFD), unix.F_GETFD, 0); err != nil {
			return fmt.Errorf("--status-fd %d: not an open file descriptor", f.statusFD)
		}
	}
	sb := &prof.Sandbox
	if prof.DryRun {
		// Copy-on-write workdir (issue 18): a dry run discards its branch.
		if sb.Workdir == "" {
			return errors.New("sandlock: --dry-run requires --workdir")
		}
		sb.OnExit, sb.OnError = sandlock.BranchActionAbort, sandlock.BranchActionAbort
	}
	if sb.Workdir == "" {
		// Copy-on-write workdir (issue 18): its settings alone are an error.
		for _, c := range []struct {
			field string
			set   bool
		}{{"FSStorage", sb.FSStorage != ""}, {"MaxDisk", sb.MaxDisk != ""}, {"OnExit", sb.OnExit != sandlock.BranchActionDefault}, {"OnError", sb.OnError != sandlock.BranchActionDefault}} {
			if c.set {
				return fmt.Errorf("sandlock: %s needs %s (a copy-on-write workdir)", source(prof, c.field, ""), source(prof, "Workdir", ""))
			}
		}
	}
	if sb.NoSupervisor {
		// Said in the terms the user wrote, before the library names its
		// fields.
		for _, c := range []struct {
			field string
			set   bool
		}{{"MaxMemory", sb.MaxMemory != ""}, {"MaxProcesses", sb.MaxProcesses != 0}, {"NumCPUs", sb.NumCPUs != 0}, {"Workdir", sb.Workdir != ""}} {
			if c.set {
				return fmt.Errorf("%s needs the supervisor, which %s turns off", source(prof, c.field, ""), source(prof, "NoSupervisor", ""))
			}
		}
	}
	return nil
}

func (f *runFlags) run(args []string, stderr io.Writer) error {
	prof, err := f.load()
	if err != nil {
		return err
	}
	switch {
	case f.execShell != "":
		args = []string{"/bin/sh", "-c", f.execShell}
	case len(args) == 0 && len(prof.Program) > 0:
		// A trailing command overrides the profile's.
		args = prof.Program
	}
	if len(args) == 0 {
		if f.set("profile") || f.set("profile-file") {
			return usageError{errors.New("run: no command given (no trailing command, and no [program] exec in the profile)")}
		}
		return usageError{errors.New("run: no command given (sandlock run [flags] -- COMMAND [ARGS...])")}
	}
	if err := f.sandbox(prof); err != nil {
		return err
	}
	sb := &prof.Sandbox

	// Catch the signals to forward. signal.Notify waits for the runtime to
	// start a thread, which would cost more than the rest of the start-up;
	// here it overlaps with the sandbox's start, and is done before the
	// program runs (Spawn takes longer). A signal that comes before it
	// kills sandlock, and the tracer's thread with it, so the kernel kills
	// the sandbox too. (The CLI exits right after the run; there is no
	// signal.Stop.)
	sigs := make(chan os.Signal, 4)
	catching := make(chan struct{})
	go func() {
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
		close(catching)
	}()
	proc, err := sb.Spawn(args...)
	if err != nil {
		return explain(prof, err)
	}
	<-catching
	// This goroutine forwards signals and enforces the timeout while this
	// one waits: the end of the sandbox then wakes the waiter directly.
	var timedOut atomic.Bool
	ended := make(chan struct{})
	go func() {
		var timeout <-chan time.Time
		if f.timeout > 0 {
			t := time.NewTimer(time.Duration(f.timeout) * time.Second)
			defer t.Stop()
			timeout = t.C
		}
		forwarded := map[os.Signal]bool{}
		for {
			select {
			case <-ended:
				return
			case <-timeout:
				timedOut.Store(true)
				fmt.Fprintf(stderr, "sandlock: timeout after %ds\n", f.timeout)
				proc.Kill()
			case s := <-sigs:
				// The first signal of a kind reaches every process of the
				// sandbox; a second one kills the sandbox.
				if forwarded[s] {
					proc.Kill()
					continue
				}
				forwarded[s] = true
				proc.Signal(s.(syscall.Signal))
			}
		}
	}()
	// The copy-on-write branch (issue 18) is committed, aborted or kept
	// before Wait returns, so the status below describes the final
	// workdir.
	res, werr := proc.Wait()
	close(ended)
	proc.Close()
	if sb.NoSupervisor {
		endDescendants()
	}

	code := res.ShellCode()
	if timedOut.Load() {
		code = exitTimeout
	}
	if werr != nil {
		fmt.Fprintln(stderr, message(werr))
		if code == 0 {
			code = exitPolicy
		}
	}
	if prof.DryRun {
		printChanges(stderr, proc.Changes())
	}

	if f.statusFD >= 0 {
		status := fmt.Sprintf("{\"exit_code\":%d}\n", res.ExitCode)
		if sig := res.ShellCode() - 128; sig > 0 && res.ExitCode < 0 {
			status = fmt.Sprintf("{\"exit_code\":-1,\"signal\":%d}\n", sig)
		}
		syscall.Write(f.statusFD, []byte(status))
	}
	if code == 0 {
		return nil
	}
	return exitError{code}
}

// printChanges prints a dry run's changes as upstream does, on standard
// error: a header, then "K  path" per change, sorted.
func printChanges(w io.Writer, changes []sandlock.Change) {
	if len(changes) == 0 {
		fmt.Fprintln(w, "sandlock: dry-run: no filesystem changes")
		return
	}
	fmt.Fprintln(w, "sandlock: dry-run: filesystem changes:")
	for _, c := range changes {
		fmt.Fprintf(w, "%c  %s\n", c.Kind, c.Path)
	}
}
