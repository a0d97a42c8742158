package sandlock

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/sandlock-go/sandlock/internal/fielderr"
)

// A Setting is one setting of a Sandbox as `sandlock run` and profiles
// write it. Settings returns the table of all of them: each row gives a
// setting's flag, the Sandbox field it sets and its profile key, and one
// parser serves the flag and the key, so the three never disagree.
type Setting struct {
	Field string // the Sandbox field it sets ("MaxMemory"); "" for the command ([program] exec, args) and for settings not built yet
	Flag  string // the `sandlock run` flag, without dashes ("max-memory"); "" if none
	Short string // the flag's one-letter form ("m"), or ""
	Key   string // the profile key as section.key ("limits.memory"); "" if none
	Usage string // the flag's help; a `word` in backquotes names its value
	Type  string // the flag's value type as pflag names it: "bool", "string", "stringArray" (repeatable), "uint8", "uint32", "uint64"

	kind kind
	old  []string // upstream's flat names of the key, for "did you mean"
	set  func(p *Profile, v string) error
	get  func(p *Profile) any // the key's value, nil when unset
}

// kind is how a setting's value is written.
type kind uint8

const (
	kBool     kind = iota
	kString        // one string
	kList          // repeatable; key: array of strings
	kUint8         // key: integer
	kUint32        // key: integer
	kUint64        // key: integer
	kCPUs          // "0,2-3"; key: array of integers
	kGPUs          // "all" or "0,1"; key: array of integers, [] for all
	kPorts         // repeatable "8080", "9000-9005", "*"; key: array of integers and strings
	kEnv           // repeatable KEY=VALUE; key: table of strings
	kPortList      // repeatable port number; key: array of integers
)

var kindTypes = [...]string{
	kBool: "bool", kString: "string", kList: "stringArray", kUint8: "uint8", kUint32: "uint32", kUint64: "uint64",
	kCPUs: "string", kGPUs: "string", kPorts: "stringArray", kEnv: "stringArray", kPortList: "stringArray",
}

// numeric reports whether values are numbers (written unquoted in errors).
func (k kind) numeric() bool { return k == kUint8 || k == kUint32 || k == kUint64 || k == kPortList }

// Check checks the syntax of a flag's value: that a number is one, of the
// setting's size. What the value means is checked when it is set.
func (s Setting) Check(value string) error {
	bits := 0
	switch s.kind {
	case kBool:
		_, err := strconv.ParseBool(value)
		return err
	case kUint8:
		bits = 8
	case kPortList:
		bits = 16
	case kUint32:
		bits = 32
	case kUint64:
		bits = 64
	default:
		return nil
	}
	if _, err := strconv.ParseUint(value, 0, bits); err != nil {
		return fmt.Errorf("not a number from 0 to %d", uint64(1)<<bits-1)
	}
	return nil
}

// uint parses a value Check accepted.
func parseUint(v string, bits int) uint64 {
	n, _ := strconv.ParseUint(v, 0, bits)
	return n
}

// omitError is a value that means "unset", which must be written by
// leaving the setting out.
type omitError struct{ msg, hint string }

func (e *omitError) Error() string { return e.msg + " (omit it " + e.hint + ")" }

// unsupported is the error of a setting whose feature is not built yet
// and which has no field to hold it until then.
var unsupported = fielderr.ErrUnsupported

// Settings returns the table of settings, in profile order: by section,
// then by key, as upstream writes them, then the flags without a key.
func Settings() []Setting {
	out := make([]Setting, len(settings))
	copy(out, settings)
	return out
}

// sections are the profile's sections, in upstream's order.
var sections = []string{"config", "determinism", "program", "filesystem", "network", "http", "syscalls", "limits"}

// Helpers that make a row's set and get from a field.

func str(f func(*Sandbox) *string) (func(*Profile, string) error, func(*Profile) any) {
	return func(p *Profile, v string) error { *f(&p.Sandbox) = v; return nil },
		func(p *Profile) any {
			if v := *f(&p.Sandbox); v != "" {
				return v
			}
			return nil
		}
}

func list(f func(*Sandbox) *[]string) (func(*Profile, string) error, func(*Profile) any) {
	return func(p *Profile, v string) error { l := f(&p.Sandbox); *l = append(*l, v); return nil },
		func(p *Profile) any {
			if v := *f(&p.Sandbox); len(v) > 0 {
				return append([]string(nil), v...)
			}
			return nil
		}
}

func flag(f func(*Sandbox) *bool) (func(*Profile, string) error, func(*Profile) any) {
	return func(p *Profile, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return errors.New("want true or false")
			}
			*f(&p.Sandbox) = b
			return nil
		},
		func(p *Profile) any {
			if *f(&p.Sandbox) {
				return true
			}
			return nil
		}
}

// atLeastOne is a uint32 setting where 0 would mean "unset".
func atLeastOne(f func(*Sandbox) *uint32) (func(*Profile, string) error, func(*Profile) any) {
	return func(p *Profile, v string) error {
			n := parseUint(v, 32)
			if n == 0 {
				return errors.New("must be at least 1")
			}
			*f(&p.Sandbox) = uint32(n)
			return nil
		},
		func(p *Profile) any {
			if n := *f(&p.Sandbox); n != 0 {
				return int64(n)
			}
			return nil
		}
}

func ports(f func(*Sandbox) *[]string) (func(*Profile, string) error, func(*Profile) any) {
	set, _ := list(f)
	return set, func(p *Profile) any {
		v := *f(&p.Sandbox)
		if len(v) == 0 {
			return nil
		}
		// Upstream writes a port as an integer, a range or * as a string.
		out := make([]any, len(v))
		for i, e := range v {
			if n, err := strconv.ParseUint(e, 10, 16); err == nil && strconv.FormatUint(n, 10) == e {
				out[i] = int64(n)
			} else {
				out[i] = e
			}
		}
		return out
	}
}

func protections(f func(*Sandbox) *[]Protection) (func(*Profile, string) error, func(*Profile) any) {
	return func(p *Profile, v string) error {
			prot, err := ParseProtection(v)
			if err != nil {
				return err
			}
			l := f(&p.Sandbox)
			*l = append(*l, prot)
			return nil
		},
		func(p *Profile) any {
			v := *f(&p.Sandbox)
			if len(v) == 0 {
				return nil
			}
			out := make([]string, len(v))
			for i, prot := range v {
				out[i] = prot.String()
			}
			return out
		}
}

func branchAction(f func(*Sandbox) *BranchAction) (func(*Profile, string) error, func(*Profile) any) {
	names := []string{BranchActionCommit: "commit", BranchActionAbort: "abort", BranchActionKeep: "keep"}
	return func(p *Profile, v string) error {
			for a, n := range names {
				if n != "" && n == v {
					*f(&p.Sandbox) = BranchAction(a)
					return nil
				}
			}
			return errors.New("want commit, abort or keep")
		},
		func(p *Profile) any {
			if a := *f(&p.Sandbox); a != BranchActionDefault && int(a) < len(names) {
				return names[a]
			}
			return nil
		}
}

func cpuList(f func(*Sandbox) *[]uint32, gpu bool) (func(*Profile, string) error, func(*Profile) any) {
	return func(p *Profile, v string) error {
			switch {
			case gpu && v == "all":
				*f(&p.Sandbox) = []uint32{}
				return nil
			case !gpu && v == "":
				*f(&p.Sandbox) = nil // no pinning
				return nil
			}
			ids, err := parseList(v, !gpu)
			if err != nil {
				if gpu {
					return fmt.Errorf("%v (want all, or indices such as 0,1)", err)
				}
				return err
			}
			*f(&p.Sandbox) = ids
			return nil
		},
		func(p *Profile) any {
			v := *f(&p.Sandbox)
			if v == nil || (!gpu && len(v) == 0) {
				return nil
			}
			out := make([]int64, len(v))
			for i, c := range v {
				out[i] = int64(c)
			}
			return out
		}
}

func id(f func(*Sandbox) **int) (func(*Profile, string) error, func(*Profile) any) {
	return func(p *Profile, v string) error {
			n, err := strconv.ParseUint(v, 10, 31)
			if err != nil {
				return errors.New("not a user or group id")
			}
			i := int(n)
			*f(&p.Sandbox) = &i
			return nil
		},
		func(p *Profile) any {
			if v := *f(&p.Sandbox); v != nil {
				return int64(*v)
			}
			return nil
		}
}

// notBuilt is a setting whose feature does not exist yet and has no field.
func notBuilt() (func(*Profile, string) error, func(*Profile) any) {
	return func(*Profile, string) error { return unsupported }, func(*Profile) any { return nil }
}

// row builds a table row.
func row(field, flag, short, key string, k kind, usage string, sg func() (func(*Profile, string) error, func(*Profile) any), old ...string) Setting {
	set, get := sg()
	return Setting{Field: field, Flag: flag, Short: short, Key: key, Usage: usage, Type: kindTypes[k], kind: k, old: old, set: set, get: get}
}

// settings is the table. Its order is the profile's: sections in upstream's
// order, keys in each as upstream writes them (ours after), then the flags
// without a key. Keys marked "ours" are not in upstream's schema.
var settings = []Setting{
	// [config]
	row("HTTPCAFile", "http-ca", "", "config.http_ca", kString, "CA certificate `PATH` (PEM) for HTTPS interception",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return str(func(s *Sandbox) *string { return &s.HTTPCAFile })
		}),
	row("HTTPKeyFile", "http-key", "", "config.http_key", kString, "CA private key `PATH` (PEM) for HTTPS interception",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return str(func(s *Sandbox) *string { return &s.HTTPKeyFile })
		}),
	row("", "http-inject-ca", "", "config.http_inject_ca", kList, "add the interception CA to the trust bundle at `PATH` (repeatable)", notBuilt),
	row("", "http-ca-out", "", "config.http_ca_out", kString, "write the interception CA certificate to `PATH`", notBuilt),
	row("FSStorage", "fs-storage", "", "config.fs_storage", kString, "where copy-on-write branches are kept (`PATH`)",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return str(func(s *Sandbox) *string { return &s.FSStorage })
		}),
	row("Workdir", "workdir", "", "config.workdir", kString, "copy-on-write root `PATH`",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return str(func(s *Sandbox) *string { return &s.Workdir })
		}),
	// ours
	row("AllowDegraded", "allow-degraded", "", "config.allow_degraded", kList, "enforce protection `PROT` only if the kernel has it (repeatable)",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return protections(func(s *Sandbox) *[]Protection { return &s.AllowDegraded })
		}),
	row("Disable", "disable", "", "config.disable", kList, "never enforce protection `PROT` (repeatable)",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return protections(func(s *Sandbox) *[]Protection { return &s.Disable })
		}),

	// [determinism]
	row("RandomSeed", "random-seed", "", "determinism.random_seed", kUint64, "seed for the program's randomness (getrandom, /dev/urandom)",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return func(p *Profile, v string) error { n := parseUint(v, 64); p.Sandbox.RandomSeed = &n; return nil },
				func(p *Profile) any {
					if p.Sandbox.RandomSeed == nil {
						return nil
					}
					if n := *p.Sandbox.RandomSeed; n <= 1<<63-1 {
						return int64(n)
					}
					// TOML integers are signed 64-bit.
					return strconv.FormatUint(*p.Sandbox.RandomSeed, 10)
				}
		}),
	row("TimeStart", "time-start", "", "determinism.time_start", kString, "start the program's clock at `TIME` (RFC 3339 or Unix seconds)",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return str(func(s *Sandbox) *string { return &s.TimeStart })
		}),
	row("DeterministicDirs", "deterministic-dirs", "", "determinism.deterministic_dirs", kBool, "list directories in sorted order",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return flag(func(s *Sandbox) *bool { return &s.DeterministicDirs })
		}),
	row("NoRandomizeMemory", "no-randomize-memory", "", "determinism.no_randomize_memory", kBool, "turn address-space randomization off",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return flag(func(s *Sandbox) *bool { return &s.NoRandomizeMemory })
		}),

	// [program]
	row("", "", "", "program.exec", kString, "",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return func(p *Profile, v string) error {
					if v == "" {
						return errors.New("empty command")
					}
					if len(p.Program) == 0 {
						p.Program = []string{v}
					} else {
						p.Program[0] = v
					}
					return nil
				},
				func(p *Profile) any {
					if len(p.Program) > 0 {
						return p.Program[0]
					}
					return nil
				}
		}),
	row("", "", "", "program.args", kList, "",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return func(p *Profile, v string) error {
					if len(p.Program) == 0 {
						p.Program = []string{""} // exec may come later
					}
					p.Program = append(p.Program, v)
					return nil
				},
				func(p *Profile) any {
					if len(p.Program) > 1 {
						return append([]string(nil), p.Program[1:]...)
					}
					return nil
				}
		}),
	row("Env", "env", "", "program.env", kEnv, "set `KEY=VALUE` in the command's environment (repeatable)",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return func(p *Profile, v string) error {
					k, val, ok := strings.Cut(v, "=")
					if !ok || k == "" {
						return errors.New("expected KEY=VALUE")
					}
					if p.Sandbox.Env == nil {
						p.Sandbox.Env = map[string]string{}
					}
					p.Sandbox.Env[k] = val
					return nil
				},
				func(p *Profile) any {
					if len(p.Sandbox.Env) == 0 {
						return nil
					}
					m := make(map[string]string, len(p.Sandbox.Env))
					for k, v := range p.Sandbox.Env {
						m[k] = v
					}
					return m
				}
		}),
	row("Cwd", "cwd", "", "program.cwd", kString, "working directory of the command",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return str(func(s *Sandbox) *string { return &s.Cwd })
		}),
	row("UID", "", "", "program.uid", kUint32, "",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return id(func(s *Sandbox) **int { return &s.UID })
		}),
	row("GID", "", "", "program.gid", kUint32, "",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return id(func(s *Sandbox) **int { return &s.GID })
		}),
	row("CleanEnv", "clean-env", "", "program.clean_env", kBool, "start from an empty environment (keeping PATH, HOME, USER, TERM, LANG)",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return flag(func(s *Sandbox) *bool { return &s.CleanEnv })
		}),
	row("NoCoredump", "no-coredump", "", "program.no_coredump", kBool, "no core dumps",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return flag(func(s *Sandbox) *bool { return &s.NoCoredump })
		}),
	row("NoHugePages", "no-huge-pages", "", "program.no_huge_pages", kBool, "no transparent huge pages",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return flag(func(s *Sandbox) *bool { return &s.NoHugePages })
		}),
	// In upstream's schema documentation, not in its parser.
	row("NoSupervisor", "no-supervisor", "", "program.no_supervisor", kBool, "Landlock and a deny-only filter, no supervisor (to run sandlock inside)",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return flag(func(s *Sandbox) *bool { return &s.NoSupervisor })
		}),
	// ours
	row("KeepCaps", "keep-caps", "", "program.keep_caps", kBool, "keep the caller's capabilities in the command",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return flag(func(s *Sandbox) *bool { return &s.KeepCaps })
		}),

	// [filesystem]
	row("FSReadable", "fs-read", "r", "filesystem.read", kList, "grant read and execute beneath `PATH` (repeatable)",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return list(func(s *Sandbox) *[]string { return &s.FSReadable })
		}, "fs_readable"),
	row("FSWritable", "fs-write", "w", "filesystem.write", kList, "grant read and write beneath `PATH` (repeatable)",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return list(func(s *Sandbox) *[]string { return &s.FSWritable })
		}, "fs_writable"),
	row("FSDenied", "fs-deny", "", "filesystem.deny", kList, "deny `PATH` and everything below it, even inside a grant (repeatable)",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return list(func(s *Sandbox) *[]string { return &s.FSDenied })
		}, "fs_denied"),
	row("Chroot", "chroot", "", "filesystem.chroot", kString, "run under `PATH` as the root directory",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return str(func(s *Sandbox) *string { return &s.Chroot })
		}),
	row("FSMount", "fs-mount", "", "filesystem.mount", kList, "map host directory HOST at VIRTUAL under --chroot (`VIRTUAL:HOST[:ro]`, repeatable)",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return func(p *Profile, v string) error {
					virt, host, ok := strings.Cut(v, ":")
					if !ok || virt == "" || host == "" || host == ":ro" || host == ":rw" {
						return errors.New("expected VIRTUAL:HOST[:ro]")
					}
					// A read-only mount keeps its ":ro" in the field.
					host = strings.TrimSuffix(host, ":rw")
					if p.Sandbox.FSMount == nil {
						p.Sandbox.FSMount = map[string]string{}
					}
					p.Sandbox.FSMount[virt] = host
					return nil
				},
				func(p *Profile) any {
					if len(p.Sandbox.FSMount) == 0 {
						return nil
					}
					out := make([]string, 0, len(p.Sandbox.FSMount))
					for v, h := range p.Sandbox.FSMount {
						out = append(out, v+":"+h)
					}
					sort.Strings(out)
					return out
				}
		}, "fs_mount"),
	row("OnExit", "on-exit", "", "filesystem.on_exit", kString, "copy-on-write branch on success: `ACTION` commit, abort or keep",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return branchAction(func(s *Sandbox) *BranchAction { return &s.OnExit })
		}),
	row("OnError", "on-error", "", "filesystem.on_error", kString, "copy-on-write branch on failure: `ACTION` commit, abort or keep",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return branchAction(func(s *Sandbox) *BranchAction { return &s.OnError })
		}),
	// ours
	row("ProcView", "proc", "", "filesystem.proc", kString, "what the program sees of /proc: `MODE` served (its own processes), none, or host (every process of the machine)",
		func() (func(*Profile, string) error, func(*Profile) any) {
			set, get := str(func(s *Sandbox) *string { return (*string)(&s.ProcView) })
			return func(p *Profile, v string) error {
				switch ProcView(v) {
				case ProcViewServed, ProcViewNone, ProcViewHost:
					return set(p, v)
				}
				return errors.New("want served, none or host")
			}, get
		}),

	// [network]
	row("NetAllowBind", "net-allow-bind", "", "network.allow_bind", kPorts, "allow binding TCP `PORTS` (N, N-M, *; repeatable)",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return ports(func(s *Sandbox) *[]string { return &s.NetAllowBind })
		}, "net_allow_bind", "net_bind"),
	row("NetDenyBind", "net-deny-bind", "", "network.deny_bind", kPorts, "deny binding TCP `PORTS`, allowing the rest (repeatable)",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return ports(func(s *Sandbox) *[]string { return &s.NetDenyBind })
		}, "net_deny_bind"),
	row("NetAllow", "net-allow", "", "network.allow", kList, "allow outbound to `SPEC` [tcp://|udp://|icmp://]host[:ports] (repeatable)",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return list(func(s *Sandbox) *[]string { return &s.NetAllow })
		}, "net_allow", "net_connect"),
	row("NetDeny", "net-deny", "", "network.deny", kList, "deny outbound to `SPEC`, allowing the rest (repeatable)",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return list(func(s *Sandbox) *[]string { return &s.NetDeny })
		}, "net_deny"),
	row("PortRemap", "port-remap", "", "network.port_remap", kBool, "give the sandbox its own view of bound ports",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return flag(func(s *Sandbox) *bool { return &s.PortRemap })
		}),

	// [http]
	row("HTTPPorts", "http-port", "", "http.ports", kPortList, "intercept HTTP on TCP `PORT` (repeatable)",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return func(p *Profile, v string) error {
					n := parseUint(v, 16)
					if n == 0 {
						return errors.New("port 0 is not valid")
					}
					p.Sandbox.HTTPPorts = append(p.Sandbox.HTTPPorts, int(n))
					return nil
				},
				func(p *Profile) any {
					if len(p.Sandbox.HTTPPorts) == 0 {
						return nil
					}
					out := make([]int64, len(p.Sandbox.HTTPPorts))
					for i, n := range p.Sandbox.HTTPPorts {
						out[i] = int64(n)
					}
					return out
				}
		}, "http_ports"),
	row("HTTPAllow", "http-allow", "", "http.allow", kList, "allow HTTP requests matching `RULE` \"METHOD host/path\" (repeatable)",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return list(func(s *Sandbox) *[]string { return &s.HTTPAllow })
		}, "http_allow"),
	row("HTTPDeny", "http-deny", "", "http.deny", kList, "deny HTTP requests matching `RULE` (repeatable)",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return list(func(s *Sandbox) *[]string { return &s.HTTPDeny })
		}, "http_deny"),

	// [syscalls]
	row("ExtraAllowSyscalls", "extra-allow-syscall", "", "syscalls.extra_allow", kList, "re-allow this default-denied syscall `GROUP` (repeatable)",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return list(func(s *Sandbox) *[]string { return &s.ExtraAllowSyscalls })
		}, "extra_allow_syscalls"),
	row("ExtraDenySyscalls", "extra-deny-syscall", "", "syscalls.extra_deny", kList, "also deny this syscall `NAME` or group (repeatable)",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return list(func(s *Sandbox) *[]string { return &s.ExtraDenySyscalls })
		}, "extra_deny_syscalls"),

	// [limits]
	row("MaxMemory", "max-memory", "m", "limits.memory", kString, "memory budget, e.g. `SIZE` 512M (K, M, G)",
		func() (func(*Profile, string) error, func(*Profile) any) {
			set, get := str(func(s *Sandbox) *string { return &s.MaxMemory })
			return func(p *Profile, v string) error {
				if v == "" {
					return &omitError{"empty size", "for no limit"}
				}
				return set(p, v)
			}, get
		}, "max_memory"),
	row("MaxProcesses", "max-processes", "P", "limits.processes", kUint32, "live processes at most, threads excluded (default 64)",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return atLeastOne(func(s *Sandbox) *uint32 { return &s.MaxProcesses })
		}, "max_processes"),
	row("MaxOpenFiles", "max-open-files", "", "limits.open_files", kUint32, "open files at most (RLIMIT_NOFILE)",
		func() (func(*Profile, string) error, func(*Profile) any) {
			set, get := atLeastOne(func(s *Sandbox) *uint32 { return &s.MaxOpenFiles })
			return func(p *Profile, v string) error {
				if parseUint(v, 32) == 0 {
					return &omitError{"must be at least 1", "to keep the inherited limit"}
				}
				return set(p, v)
			}, get
		}, "max_open_files"),
	row("MaxCPU", "cpu", "c", "limits.cpu", kUint8, "CPU share of one core, 1-100 `PCT`",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return func(p *Profile, v string) error {
					n := parseUint(v, 8)
					if n == 0 || n > 100 {
						return errors.New("must be a percentage of one core, from 1 to 100")
					}
					p.Sandbox.MaxCPU = uint8(n)
					return nil
				},
				func(p *Profile) any {
					if p.Sandbox.MaxCPU != 0 {
						return int64(p.Sandbox.MaxCPU)
					}
					return nil
				}
		}, "max_cpu"),
	row("MaxDisk", "max-disk", "", "limits.disk", kString, "copy-on-write disk quota, e.g. `SIZE` 1G",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return str(func(s *Sandbox) *string { return &s.MaxDisk })
		}, "max_disk"),
	row("GPUDevices", "gpu", "", "limits.gpu_devices", kGPUs, "GPUs to grant: all or `N,N`",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return cpuList(func(s *Sandbox) *[]uint32 { return &s.GPUDevices }, true)
		}),
	row("CPUCores", "cpu-cores", "", "limits.cpu_cores", kCPUs, "pin to these CPUs, e.g. `LIST` 0,2-3",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return cpuList(func(s *Sandbox) *[]uint32 { return &s.CPUCores }, false)
		}),
	row("NumCPUs", "num-cpus", "", "limits.num_cpus", kUint32, "CPUs the program sees (sched_getaffinity, nproc)",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return atLeastOne(func(s *Sandbox) *uint32 { return &s.NumCPUs })
		}),

	// Flags without a key.
	row("Name", "name", "", "", kString, "register the sandbox as `NAME` (for ps, inspect, kill; default sandbox-<pid>-<n>)",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return str(func(s *Sandbox) *string { return &s.Name })
		}),
	row("NoRegistry", "no-registry", "", "", kBool, "do not register the sandbox (invisible to ps, inspect and kill)",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return flag(func(s *Sandbox) *bool { return &s.NoRegistry })
		}),
	row("UID", "user", "", "", kString, "run as `UID:GID` in a user namespace",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return func(p *Profile, v string) error {
				u, g, ok := strings.Cut(v, ":")
				setU, _ := id(func(s *Sandbox) **int { return &s.UID })
				setG, _ := id(func(s *Sandbox) **int { return &s.GID })
				if !ok || setU(p, u) != nil || setG(p, g) != nil {
					return errors.New("expected UID:GID")
				}
				return nil
			}, func(*Profile) any { return nil }
		}),
	row("", "credential", "", "", kList, "load a secret for --http-auth: `NAME=SOURCE` (env:VAR, file:PATH, fd:N; repeatable)", notBuilt),
	row("", "http-auth", "", "", kList, "attach a credential to matching requests: `RULE` (repeatable)", notBuilt),
	row("", "dry-run", "", "", kBool, "run on the copy-on-write --workdir, print the changes and discard them",
		func() (func(*Profile, string) error, func(*Profile) any) {
			return func(p *Profile, v string) error {
					b, err := strconv.ParseBool(v)
					if err != nil {
						return errors.New("want true or false")
					}
					p.DryRun = b
					return nil
				},
				func(*Profile) any { return nil }
		}),
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

// settingFor returns the row of a flag (long name) or key (section.key).
func settingFor(flag, key string) (Setting, bool) {
	for _, s := range settings {
		if (flag != "" && s.Flag == flag) || (key != "" && s.Key == key) {
			return s, true
		}
	}
	return Setting{}, false
}
