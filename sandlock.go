// Package sandlock confines a program with Landlock (filesystem, TCP, IPC
// scoping), a seccomp-bpf syscall blocklist and a seccomp user-notification
// supervisor, without root, containers or cgo.
//
//	sb := &sandlock.Sandbox{
//	    FSReadable: []string{"/usr", "/lib", "/lib64", "/bin", "/etc"},
//	    FSWritable: []string{"/tmp"},
//	}
//	res, err := sb.Run(context.Background(), "echo", "hello")
//
// The exported surface follows the upstream Sandlock Go SDK
// (github.com/multikernel/sandlock/go), so a program written against it
// builds against this package by changing the import path. In addition,
// user Handlers can answer any syscall in the same supervisor as the
// builtin features (see RunWithHandlers and docs/extension-handlers.md).
//
// A Sandbox is plain configuration with no runtime state: it may be reused
// and shared by goroutines. Every run validates it first and starts nothing
// if any field is wrong.
package sandlock

import (
	"errors"
	"log/slog"
	"strings"

	"github.com/sandlock-go/sandlock/internal/landlock"
)

// Sandbox is the policy a program runs under. Every field is optional; an
// unset field means no access (filesystem, network) or the default limit.
type Sandbox struct {
	// Filesystem (Landlock).
	FSReadable []string // paths the program may read and execute, with everything below
	FSWritable []string // paths the program may also write, create in and delete from
	FSDenied   []string // paths denied even inside a readable or writable path

	// ProcView is what the program sees of /proc: served (the default when
	// a grant covers /proc: its own processes and synthetic files, the
	// rest refused), none (/proc refused), or host (the host's /proc as
	// the grants allow it, every process of the machine included). See
	// ProcView's constants.
	ProcView ProcView

	Workdir string            // copy-on-write root (not supported yet)
	Cwd     string            // the program's working directory
	Chroot  string            // supervisor-mediated root (not supported yet)
	FSMount map[string]string // virtual path → host directory under Chroot (not supported yet)

	// Protection opt-out. By default every Landlock protection is enforced
	// strictly and a kernel without it is an error. AllowDegraded enforces
	// the listed ones where the kernel has them and skips them otherwise;
	// Disable never enforces them. Disable wins over AllowDegraded.
	AllowDegraded []Protection
	Disable       []Protection

	// Network. With none of these set, the program can neither connect nor
	// bind TCP, nor create UDP or ICMP sockets. A rule is
	// [tcp://|udp://|icmp://]target[:ports]: no scheme means TCP and UDP;
	// target is a hostname (NetAllow only, resolved once at start), an IP,
	// a CIDR, or * / empty for any; ports are p, p,q or * (none: all); IPv6
	// with a port goes in brackets. NetAllow and NetDeny are exclusive, as
	// are NetAllowBind (default deny) and NetDenyBind (default allow), whose
	// entries are TCP ports, lo-hi ranges or *. A refused destination fails
	// with ECONNREFUSED, a refused bind with EACCES.
	NetAllow     []string
	NetDeny      []string
	NetAllowBind []string
	NetDenyBind  []string
	PortRemap    bool // not supported yet

	// HTTP ACL (not supported yet).
	HTTPAllow   []string
	HTTPDeny    []string
	HTTPPorts   []int
	HTTPCAFile  string
	HTTPKeyFile string

	// Resource limits.
	MaxMemory    string   // budget on the sandbox's anonymous memory, memfds and SysV shm, all processes together (not files, page cache, tmpfs files), "512M" (K, M, G: 1024-based); "" = none
	MaxDisk      string   // copy-on-write disk quota (not supported yet)
	MaxProcesses uint32   // processes at once, until each is reaped (zombies count), threads excluded; 0 = 64
	MaxCPU       uint8    // share of one core, 1–100 percent, for all processes together; 0 = no throttle
	MaxOpenFiles uint32   // RLIMIT_NOFILE in the program, clamped to the caller's; 0 = inherit
	CPUCores     []uint32 // pin to these CPUs (sched_setaffinity)
	NumCPUs      uint32   // CPUs sched_getaffinity reports (what nproc prints); 0 = the real ones
	GPUDevices   []uint32 // GPUs to grant: nil none, empty all, else these indices

	// Syscall filtering on top of the default blocklist. ExtraAllowSyscalls
	// takes group names ("sysv_ipc") only; ExtraDenySyscalls takes syscall
	// names and groups.
	ExtraAllowSyscalls []string
	ExtraDenySyscalls  []string

	// Determinism. RandomSeed makes every source of randomness (getrandom,
	// /dev/urandom and /dev/random, AT_RANDOM) a stream derived from the
	// seed and the process's place in the sandbox's process tree.
	// TimeStart starts the wall clock (the REALTIME family; MONOTONIC and
	// the CPU clocks are untouched) at an instant, RFC 3339 or Unix
	// seconds, from which it runs at the normal rate (amd64 only for now).
	// DeterministicDirs lists directories sorted by name.
	RandomSeed        *uint64
	TimeStart         string
	NoRandomizeMemory bool // turn address-space randomization off (personality)
	NoHugePages       bool // no transparent huge pages (PR_SET_THP_DISABLE)
	DeterministicDirs bool

	// Environment. CleanEnv starts from an empty environment but for PATH,
	// HOME, USER, TERM and LANG; Env sets or overrides variables.
	CleanEnv bool
	Env      map[string]string

	// Identity and process knobs.
	UID        *int // (not supported yet)
	GID        *int // (not supported yet)
	NoCoredump bool // no core dumps (RLIMIT_CORE = 0)

	// Copy-on-write branch handling (not supported yet).
	FSStorage string
	OnExit    BranchAction
	OnError   BranchAction

	// Name is the name the run is registered under, in the user's runtime
	// directory /dev/shm/sandlock-<uid>/ (what `sandlock ps`, `inspect`
	// and `kill` take): at most 64 bytes, no '/' or NUL, neither "." nor
	// "..". Empty generates sandbox-<pid>-<n>. A name a running sandbox of
	// the same user holds is an error wrapping ErrNameInUse.
	Name string

	// NoRegistry runs the sandbox unregistered: no runtime directory entry,
	// no control socket, nothing for ps, inspect or kill to find. For
	// callers that run many short sandboxes and want none of that start-up
	// cost.
	NoRegistry bool

	// PolicyFn receives syscall events and decides on them (not supported
	// yet).
	PolicyFn PolicyFunc

	// Handlers are user syscall handlers, run in the supervisor after the
	// builtin handlers of their syscall, by every entry point (Run, Spawn,
	// Popen…; RunWithHandlers adds its own after these). They are validated
	// before anything starts; see SyscallHandler.
	Handlers []SyscallHandler

	// Logger receives the run's log records (a handler's panic, a process
	// killed by a limit…); nil means slog's default logger.
	Logger *slog.Logger

	// KeepCaps keeps the caller's capabilities in the program. By default a
	// program started by a privileged caller runs with every capability set
	// empty, so uid 0 inside cannot bypass file permissions or reach other
	// users' processes.
	KeepCaps bool

	// NoSupervisor confines with Landlock and a deny-only seccomp filter and
	// runs no supervisor, so the program can itself run a supervised
	// sandbox. Features that need the supervisor (FSDenied, handlers) are
	// then errors, and only the program's process group is followed.
	NoSupervisor bool
}

// ProcView is what a sandboxed program sees of /proc.
//
// Served and none carve /proc out of the Landlock grants, whatever they
// say, together with the parts of /sys that describe the host
// (/sys/firmware, /sys/kernel/security, /sys/kernel/debug,
// /sys/kernel/tracing, /sys/class/net), and leave /sys readable at most.
type ProcView string

const (
	// ProcViewDefault is ProcViewServed when a grant covers /proc or one
	// of the refused parts of /sys, ProcViewNone otherwise; with
	// NoSupervisor, ProcViewHost.
	ProcViewDefault ProcView = ""
	// ProcViewServed: the supervisor opens every /proc path the program
	// opens and shows the sandbox's own processes only (listings of /proc
	// included), synthetic files where the sandbox differs from the host
	// (cpuinfo and stat with NumCPUs, meminfo with MaxMemory, loadavg,
	// mounts, net/dev, the hostname), and refuses the rest of the host
	// (kallsyms, kcore, kmsg, keys, other processes…). Only what a grant
	// covers under /proc is shown, and only the processes' own entries may
	// be written. Needs the supervisor.
	ProcViewServed ProcView = "served"
	// ProcViewNone: every open under /proc fails with EACCES, and nothing
	// is sent to the supervisor for it.
	ProcViewNone ProcView = "none"
	// ProcViewHost: /proc is granted through Landlock like any path,
	// showing every process of the machine to a sandbox that may read it.
	// For programs that need the host's view; it leaks the host.
	ProcViewHost ProcView = "host"
)

// Protection is a Landlock protection whose enforcement AllowDegraded and
// Disable relax.
type Protection = landlock.Protection

// The protections, with the Landlock ABI each needs.
const (
	ProtectionFSRefer                 = landlock.ProtectionFSRefer                 // ABI 2
	ProtectionFSTruncate              = landlock.ProtectionFSTruncate              // ABI 3
	ProtectionNetTCP                  = landlock.ProtectionNetTCP                  // ABI 4
	ProtectionFSIoctlDev              = landlock.ProtectionFSIoctlDev              // ABI 5
	ProtectionSignalScope             = landlock.ProtectionSignalScope             // ABI 6
	ProtectionAbstractUnixSocketScope = landlock.ProtectionAbstractUnixSocketScope // ABI 6
)

// BranchAction is what happens to a copy-on-write branch when the sandbox
// exits.
type BranchAction uint8

const (
	BranchActionDefault BranchAction = iota // commit on success, abort on error
	BranchActionCommit                      // merge the writes
	BranchActionAbort                       // discard the writes
	BranchActionKeep                        // leave the branch for the caller
)

// ExitReason is why a sandboxed program ended.
type ExitReason uint32

const (
	ReasonExited   ExitReason = 0 // exited with Result.ExitCode
	ReasonSignaled ExitReason = 1 // died of the catchable signal Result.Signal
	ReasonKilled   ExitReason = 2 // killed with SIGKILL: by Kill, a cancelled context, or anyone else
	ReasonTimeout  ExitReason = 3 // killed by sandlock when the context's deadline passed
	// ReasonMemoryLimit: killed by sandlock for exceeding MaxMemory. Ours:
	// upstream reports such a kill as ReasonKilled.
	ReasonMemoryLimit ExitReason = 4
)

func (r ExitReason) String() string {
	switch r {
	case ReasonExited:
		return "exited"
	case ReasonSignaled:
		return "signaled"
	case ReasonKilled:
		return "killed"
	case ReasonTimeout:
		return "timeout"
	case ReasonMemoryLimit:
		return "memory limit"
	}
	return "unknown"
}

// Result is the outcome of a run.
type Result struct {
	ExitCode int        // exit code, or -1 if the program did not exit normally
	Reason   ExitReason // why it ended
	Signal   int        // the signal it died of for ReasonSignaled, else -1 (SIGKILL carries none)
	Success  bool       // exited with code 0
	Stdout   []byte     // captured standard output (Run)
	Stderr   []byte     // captured standard error (Run)

	termSignal int // the signal the program died of, SIGKILL included, for ShellCode
}

// StdioMode is how Popen wires one standard stream.
type StdioMode uint32

const (
	StdioInherit StdioMode = 0 // share the caller's stream
	StdioPiped   StdioMode = 1 // a pipe whose other end is on the Process
	StdioNull    StdioMode = 2 // /dev/null
)

// Stdio selects Popen's wiring of the three standard streams.
type Stdio struct {
	Stdin  StdioMode
	Stdout StdioMode
	Stderr StdioMode
}

// ChangeKind classifies a filesystem change found by a dry run.
type ChangeKind byte

const (
	ChangeAdded    ChangeKind = 'A'
	ChangeModified ChangeKind = 'M'
	ChangeDeleted  ChangeKind = 'D'
)

// Change is one filesystem change found by a dry run.
type Change struct {
	Kind ChangeKind
	Path string // relative to the working directory
}

// DryRunResult is a dry run's Result and the changes it discarded.
type DryRunResult struct {
	Result
	Changes []Change
}

// SyscallCategory groups the syscalls a PolicyFn sees.
type SyscallCategory uint8

const (
	CategoryFile SyscallCategory = iota
	CategoryNetwork
	CategoryProcess
	CategoryMemory
)

func (c SyscallCategory) String() string {
	switch c {
	case CategoryFile:
		return "file"
	case CategoryNetwork:
		return "network"
	case CategoryProcess:
		return "process"
	case CategoryMemory:
		return "memory"
	}
	return "unknown"
}

// SyscallEvent is a syscall reported to a PolicyFn.
type SyscallEvent struct {
	Syscall   string
	Category  SyscallCategory
	PID       uint32
	ParentPID uint32
	Host      string
	Port      uint16
	Denied    bool
	Argv      []string
}

// ArgvContains reports whether an argv element contains sub.
func (e SyscallEvent) ArgvContains(sub string) bool {
	for _, a := range e.Argv {
		if strings.Contains(a, sub) {
			return true
		}
	}
	return false
}

// PolicyDecision is a PolicyFn's verdict: DecisionAllow, DecisionDeny,
// DecisionAudit, or a positive errno to deny with.
type PolicyDecision int32

const (
	DecisionAllow PolicyDecision = 0
	DecisionDeny  PolicyDecision = -1
	DecisionAudit PolicyDecision = -2
)

// Allow allows the syscall.
func Allow() PolicyDecision { return DecisionAllow }

// Deny denies the syscall with EPERM.
func Deny() PolicyDecision { return DecisionDeny }

// Audit allows the syscall and flags it.
func Audit() PolicyDecision { return DecisionAudit }

// DenyWith denies the syscall with errno (EPERM if errno is not positive).
func DenyWith(errno int) PolicyDecision {
	if errno <= 0 {
		return DecisionDeny
	}
	return PolicyDecision(errno)
}

// PolicyFunc decides on syscall events (PolicyFn).
type PolicyFunc func(event SyscallEvent, ctx *PolicyContext) PolicyDecision

// PolicyContext lets a PolicyFunc change the live policy. PolicyFn is not
// supported yet, so no PolicyContext is ever handed out and every method
// reports ErrPolicyFnUnsupported.
type PolicyContext struct{ _ struct{} }

// ErrPolicyFnUnsupported is returned by PolicyContext methods.
var ErrPolicyFnUnsupported = errors.New("sandlock: PolicyFn is not supported yet")

func (c *PolicyContext) RestrictNetwork(ips []string) error { return ErrPolicyFnUnsupported }
func (c *PolicyContext) GrantNetwork(ips []string) error    { return ErrPolicyFnUnsupported }
func (c *PolicyContext) RestrictMaxMemory(bytes uint64)     {}
func (c *PolicyContext) RestrictMaxProcesses(n uint32)      {}
func (c *PolicyContext) RestrictPIDNetwork(pid uint32, ips []string) error {
	return ErrPolicyFnUnsupported
}
func (c *PolicyContext) DenyPath(path string) error  { return ErrPolicyFnUnsupported }
func (c *PolicyContext) AllowPath(path string) error { return ErrPolicyFnUnsupported }

// ErrInvalidString is returned when a string argument or field holds a NUL
// byte, which no path, name or argument can contain.
var ErrInvalidString = errors.New("sandlock: string contains NUL byte")

// ErrNotRunning is returned by Process methods when the process has already
// been waited for.
var ErrNotRunning = errors.New("sandlock: process is not running")

// ShellCode is the exit status a shell would report: the exit code, or 128+N
// for a program that died of signal N.
func (r *Result) ShellCode() int {
	switch {
	case r.ExitCode >= 0:
		return r.ExitCode
	case r.termSignal > 0:
		return 128 + r.termSignal
	case r.Signal > 0:
		return 128 + r.Signal
	}
	return 1
}
