package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock"
)

// listFlag is a repeatable string flag. pflag's StringArray formats its
// default with an encoding/csv writer as the flag is declared, which cost
// more of sandlock's start-up than parsing the whole command line.
type listFlag struct{ to *[]string }

func (l listFlag) String() string {
	if l.to == nil {
		return ""
	}
	return strings.Join(*l.to, ",")
}
func (l listFlag) Set(v string) error { *l.to = append(*l.to, v); return nil }
func (l listFlag) Type() string       { return "stringArray" }

// runFlags are the values of `sandlock run`'s flags.
type runFlags struct {
	read, write, deny      []string
	cwd                    string
	env                    []string
	cleanEnv               bool
	execShell              string
	interactive            bool
	timeout                uint64
	statusFD               int
	extraDeny, extraAllow  []string
	allowDegraded, disable []string
	noSupervisor, keepCaps bool

	netAllow, netDeny         []string
	netAllowBind, netDenyBind []string
	portRemap                 bool

	maxMemory                       string
	maxProcesses, maxOpenFiles      uint32
	cpu                             uint8
	cpuCores, gpu                   string
	numCPUs                         uint32
	noCoredump, noHugePages, noASLR bool

	flags *pflag.FlagSet
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
	fl.VarP(listFlag{&f.read}, "fs-read", "r", "grant read and execute beneath `PATH` (repeatable)")
	fl.VarP(listFlag{&f.write}, "fs-write", "w", "grant read and write beneath `PATH` (repeatable)")
	fl.Var(listFlag{&f.deny}, "fs-deny", "deny `PATH` and everything below it, even inside a grant (repeatable)")
	fl.StringVar(&f.cwd, "cwd", "", "working directory of the command")
	fl.Var(listFlag{&f.env}, "env", "set `KEY=VALUE` in the command's environment (repeatable)")
	fl.BoolVar(&f.cleanEnv, "clean-env", false, "start from an empty environment (keeping PATH, HOME, USER, TERM, LANG)")
	fl.StringVarP(&f.execShell, "exec-shell", "e", "", "run `CMD` with /bin/sh -c")
	fl.BoolVarP(&f.interactive, "interactive", "i", false, "interactive run (standard streams are always passed through)")
	fl.Uint64VarP(&f.timeout, "timeout", "t", 0, "kill the sandbox after `SECONDS`")
	fl.IntVar(&f.statusFD, "status-fd", -1, "write the exit status as JSON to `FD`")
	fl.Var(listFlag{&f.extraDeny}, "extra-deny-syscall", "also deny this syscall `NAME` or group (repeatable)")
	fl.Var(listFlag{&f.extraAllow}, "extra-allow-syscall", "re-allow this default-denied syscall `GROUP` (repeatable)")
	fl.Var(listFlag{&f.allowDegraded}, "allow-degraded", "enforce protection `PROT` only if the kernel has it (repeatable)")
	fl.Var(listFlag{&f.disable}, "disable", "never enforce protection `PROT` (repeatable)")
	fl.BoolVar(&f.noSupervisor, "no-supervisor", false, "Landlock and a deny-only filter, no supervisor (to run sandlock inside)")
	fl.BoolVar(&f.keepCaps, "keep-caps", false, "keep the caller's capabilities in the command")
	fl.StringVarP(&f.maxMemory, "max-memory", "m", "", "memory budget, e.g. `SIZE` 512M (K, M, G)")
	fl.Uint32VarP(&f.maxProcesses, "max-processes", "P", 0, "live processes at most, threads excluded (default 64)")
	fl.Uint32Var(&f.maxOpenFiles, "max-open-files", 0, "open files at most (RLIMIT_NOFILE)")
	fl.Uint8VarP(&f.cpu, "cpu", "c", 0, "CPU share of one core, 1-100 `PCT`")
	fl.StringVar(&f.cpuCores, "cpu-cores", "", "pin to these CPUs, e.g. `LIST` 0,2-3")
	fl.Uint32Var(&f.numCPUs, "num-cpus", 0, "CPUs the program sees (sched_getaffinity, nproc)")
	fl.StringVar(&f.gpu, "gpu", "", "GPUs to grant: all or `N,N`")
	fl.BoolVar(&f.noCoredump, "no-coredump", false, "no core dumps")
	fl.BoolVar(&f.noHugePages, "no-huge-pages", false, "no transparent huge pages")
	fl.BoolVar(&f.noASLR, "no-randomize-memory", false, "turn address-space randomization off")
	fl.Var(listFlag{&f.netAllow}, "net-allow", "allow outbound to `SPEC` [tcp://|udp://|icmp://]host[:ports] (repeatable)")
	fl.Var(listFlag{&f.netDeny}, "net-deny", "deny outbound to `SPEC`, allowing the rest (repeatable)")
	fl.Var(listFlag{&f.netAllowBind}, "net-allow-bind", "allow binding TCP `PORTS` (N, N-M, *; repeatable)")
	fl.Var(listFlag{&f.netDenyBind}, "net-deny-bind", "deny binding TCP `PORTS`, allowing the rest (repeatable)")
	fl.BoolVar(&f.portRemap, "port-remap", false, "give the sandbox its own view of bound ports")
	if err := parseFlags(fl, args, stderr); err != nil {
		return err
	}
	f.flags = fl
	return f.run(fl.Args(), stderr)
}

// sandbox builds the library's Sandbox from the flags.
func (f *runFlags) sandbox() (*sandlock.Sandbox, error) {
	sb := &sandlock.Sandbox{
		FSReadable:         f.read,
		FSWritable:         f.write,
		FSDenied:           f.deny,
		Cwd:                f.cwd,
		CleanEnv:           f.cleanEnv,
		ExtraDenySyscalls:  f.extraDeny,
		ExtraAllowSyscalls: f.extraAllow,
		KeepCaps:           f.keepCaps,
		NoSupervisor:       f.noSupervisor,
		NetAllow:           f.netAllow,
		NetDeny:            f.netDeny,
		NetAllowBind:       f.netAllowBind,
		NetDenyBind:        f.netDenyBind,
		PortRemap:          f.portRemap,
	}
	for _, kv := range f.env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			// A policy error (exit 1), as in upstream and as the library
			// treats a bad Env: the flag was given its value.
			return nil, fmt.Errorf("--env %q: expected KEY=VALUE", kv)
		}
		if sb.Env == nil {
			sb.Env = map[string]string{}
		}
		sb.Env[k] = v
	}
	for _, p := range f.allowDegraded {
		prot, err := sandlock.ParseProtection(p)
		if err != nil {
			return nil, fmt.Errorf("--allow-degraded %q: %v", p, err)
		}
		sb.AllowDegraded = append(sb.AllowDegraded, prot)
	}
	for _, p := range f.disable {
		prot, err := sandlock.ParseProtection(p)
		if err != nil {
			return nil, fmt.Errorf("--disable %q: %v", p, err)
		}
		sb.Disable = append(sb.Disable, prot)
	}
	if f.statusFD >= 0 {
		if _, err := unix.FcntlInt(uintptr(f.statusFD), unix.F_GETFD, 0); err != nil {
			return nil, fmt.Errorf("--status-fd %d: not an open file descriptor", f.statusFD)
		}
	}
	if err := f.limits(sb); err != nil {
		return nil, err
	}
	return sb, nil
}

// limits fills the resource-limit fields, checking what only the flags can
// get wrong (zero where the library reads zero as "unset").
func (f *runFlags) limits(sb *sandlock.Sandbox) error {
	sb.MaxMemory = f.maxMemory
	sb.NoCoredump, sb.NoHugePages, sb.NoRandomizeMemory = f.noCoredump, f.noHugePages, f.noASLR
	if f.set("max-memory") && f.maxMemory == "" {
		return errors.New(`--max-memory "": empty size (omit the flag for no limit)`)
	}
	if f.noSupervisor {
		// Said here in the CLI's terms; the library names its fields.
		for _, name := range []string{"max-memory", "max-processes", "num-cpus"} {
			if f.set(name) {
				return fmt.Errorf("--%s needs the supervisor, which --no-supervisor turns off", name)
			}
		}
	}
	if f.set("max-processes") && f.maxProcesses == 0 {
		return errors.New("--max-processes 0: must be at least 1")
	}
	sb.MaxProcesses = f.maxProcesses
	if f.set("max-open-files") && f.maxOpenFiles == 0 {
		return errors.New("--max-open-files 0: must be at least 1 (omit the flag to keep the inherited limit)")
	}
	sb.MaxOpenFiles = f.maxOpenFiles
	if f.set("cpu") && (f.cpu == 0 || f.cpu > 100) {
		return fmt.Errorf("--cpu %d: must be a percentage of one core, from 1 to 100", f.cpu)
	}
	sb.MaxCPU = f.cpu
	if f.set("num-cpus") && f.numCPUs == 0 {
		return errors.New("--num-cpus 0: must be at least 1")
	}
	sb.NumCPUs = f.numCPUs
	if f.cpuCores != "" {
		cores, err := parseList(f.cpuCores, true)
		if err != nil {
			return fmt.Errorf("--cpu-cores %q: %v", f.cpuCores, err)
		}
		sb.CPUCores = cores
	}
	if f.set("gpu") {
		if f.gpu == "all" {
			sb.GPUDevices = []uint32{}
		} else {
			ids, err := parseList(f.gpu, false)
			if err != nil {
				return fmt.Errorf("--gpu %q: %v (want all, or indices such as 0,1)", f.gpu, err)
			}
			sb.GPUDevices = ids
		}
	}
	return nil
}

// parseList parses "0,2,3", and with ranges "0-3,6".
func parseList(s string, ranges bool) ([]uint32, error) {
	var out []uint32
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		if isRange && !ranges {
			return nil, fmt.Errorf("%q: ranges are not allowed here", part)
		}
		a, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("%q: not a number", part)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
				return nil, fmt.Errorf("%q: not a range low-high", part)
			}
		}
		for i := a; i <= b; i++ {
			out = append(out, uint32(i))
		}
	}
	return out, nil
}

func (f *runFlags) run(args []string, stderr io.Writer) error {
	if f.execShell != "" {
		args = []string{"/bin/sh", "-c", f.execShell}
	}
	if len(args) == 0 {
		return usageError{errors.New("run: no command given (sandlock run [flags] -- COMMAND [ARGS...])")}
	}
	sb, err := f.sandbox()
	if err != nil {
		return err
	}

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
		return err
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
	res, _ := proc.Wait()
	close(ended)
	proc.Close()
	if f.noSupervisor {
		endDescendants()
	}

	code := res.ShellCode()
	if timedOut.Load() {
		code = exitTimeout
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
