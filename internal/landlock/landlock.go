//go:build linux

// Package landlock builds Landlock rulesets and applies them to one thread
// (the thread that forks the sandboxed program) or to every thread of the
// process (Confine).
//
// It talks to the kernel through golang.org/x/sys/unix directly rather than
// through go-landlock: sandlock must restrict a single locked OS thread (not
// the whole process), decide per protection whether a missing kernel feature
// is an error, a silent skip or never wanted, and narrow the rights of rules
// on non-directory paths; those are the three things go-landlock's API leaves
// out, and the kernel interface itself is three small syscalls.
package landlock

import (
	"errors"
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const ruleNetPort = 2 // LANDLOCK_RULE_NET_PORT

// Probe returns what the running kernel's Landlock offers: its ABI (an
// error says why Landlock is unavailable) and the errata it has fixed (none
// on a kernel older than the errata query).
func Probe() (Kernel, error) {
	abi, err := ABI()
	if err != nil {
		return Kernel{}, err
	}
	k := Kernel{ABI: abi}
	if v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_ERRATA); errno == 0 {
		k.Errata = uint64(v)
	}
	return k, nil
}

// ABI returns the running kernel's Landlock ABI version. It returns an error
// saying why when Landlock is unavailable (not built in, or disabled at boot).
func ABI() (int, error) {
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	switch errno {
	case 0:
		return int(v), nil
	case unix.ENOSYS:
		return 0, errors.New("landlock: not supported by this kernel (ENOSYS)")
	case unix.EOPNOTSUPP:
		return 0, errors.New("landlock: supported by this kernel but disabled at boot (EOPNOTSUPP; add landlock to the lsm= list)")
	default:
		return 0, fmt.Errorf("landlock: probing the ABI: %w", errno)
	}
}

// PathRule grants Access beneath Path (or on Path itself, for a file).
type PathRule struct {
	Path   string
	Access uint64
	// Optional skips a path that does not exist instead of failing.
	Optional bool
}

// DefaultDevices are the device files every sandbox may use without a
// grant, as bubblewrap's --dev gives them: they carry no data and reach
// nothing, yet everyday programs fail without them (a shell opens /dev/null
// for a background job, git refuses to run, CPython's tests hang). They are
// granted as files, never /dev itself; any other device needs a grant.
var DefaultDevices = []PathRule{
	{Path: "/dev/null", Access: deviceRW, Optional: true},
	{Path: "/dev/zero", Access: deviceRW, Optional: true},
	{Path: "/dev/full", Access: deviceRW, Optional: true},
	{Path: "/dev/random", Access: FSReadFile, Optional: true},
	{Path: "/dev/urandom", Access: FSReadFile, Optional: true},
}

// deviceRW is read and write, truncation (a shell's "> /dev/null") and
// ioctls (isatty) on a device file.
const deviceRW = FSReadFile | FSWriteFile | FSTruncate | FSIoctlDev

// PortRule grants Access on a TCP port.
type PortRule struct {
	Port   uint16
	Access uint64
}

// Config describes a ruleset. Everything handled and not granted is denied.
type Config struct {
	ABI        int
	HandledFS  uint64
	HandledNet uint64
	Scoped     uint64
	Paths      []PathRule
	Ports      []PortRule
	// ReadsEverywhere: the path rules are a read grant on "/" with trees
	// carved out of it (the host view's /proc and parts of /sys): the
	// built ruleset's Grants report reading as allowed everywhere (see
	// Grants.Everything).
	ReadsEverywhere bool
}

// rulesetAttr is struct landlock_ruleset_attr as of ABI 6; the size passed to
// the kernel is cut to what the running ABI knows, since the kernel refuses
// fields it does not know unless they are zero.
type rulesetAttr struct {
	handledFS  uint64
	handledNet uint64
	scoped     uint64
}

type pathBeneathAttr struct {
	allowed  uint64
	parentFD int32
}

type netPortAttr struct {
	allowed uint64
	port    uint64
}

// PathError reports a grant on a path that cannot be opened.
type PathError struct {
	Path string
	Err  error
}

func (e *PathError) Error() string { return fmt.Sprintf("%s: %v", e.Path, e.Err) }
func (e *PathError) Unwrap() error { return e.Err }

// Ruleset is a built ruleset, ready to restrict threads.
type Ruleset struct {
	fd     int
	grants Grants
}

// NewRuleset returns a ruleset not built yet: its users may hold it while
// the configuration is still being planned; BuildInto then makes it.
func NewRuleset() *Ruleset { return &Ruleset{fd: -1} }

// Build creates the ruleset and adds every rule. Rules on paths that do not
// exist are errors naming the path.
func (c *Config) Build() (*Ruleset, error) {
	rs := NewRuleset()
	if err := c.BuildInto(rs); err != nil {
		return nil, err
	}
	return rs, nil
}

// BuildInto builds the configuration into rs, which NewRuleset made.
func (c *Config) BuildInto(rs *Ruleset) error {
	built, err := c.build()
	if err != nil {
		return err
	}
	*rs = *built
	return nil
}

func (c *Config) build() (*Ruleset, error) {
	attr := rulesetAttr{handledFS: c.HandledFS, handledNet: c.HandledNet, scoped: c.Scoped}
	size := unsafe.Sizeof(attr)
	switch {
	case c.ABI < 4:
		size = 8
		if attr.handledNet != 0 {
			return nil, fmt.Errorf("landlock: network rules need ABI 4, kernel has %d", c.ABI)
		}
		if attr.scoped != 0 {
			return nil, fmt.Errorf("landlock: IPC scoping needs ABI 6, kernel has %d", c.ABI)
		}
	case c.ABI < 6:
		size = 16
		if attr.scoped != 0 {
			return nil, fmt.Errorf("landlock: IPC scoping needs ABI 6, kernel has %d", c.ABI)
		}
	}
	fd, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), size, 0)
	if errno != 0 {
		return nil, fmt.Errorf("landlock: creating ruleset: %w", errno)
	}
	rs := &Ruleset{fd: int(fd)}
	rs.grants.readAll = c.ReadsEverywhere
	link := make([]byte, unix.PathMax) // one buffer for every rule's canonical path
	for _, p := range c.Paths {
		if err := rs.addPath(p, c.HandledFS, link); err != nil {
			rs.Close()
			return nil, err
		}
	}
	for _, p := range c.Ports {
		attr := netPortAttr{allowed: p.Access & c.HandledNet, port: uint64(p.Port)}
		if attr.allowed == 0 {
			continue
		}
		if _, _, errno := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(rs.fd), ruleNetPort, uintptr(unsafe.Pointer(&attr)), 0, 0, 0); errno != 0 {
			rs.Close()
			return nil, fmt.Errorf("landlock: port %d: %w", p.Port, errno)
		}
	}
	return rs, nil
}

func (rs *Ruleset) addPath(p PathRule, handled uint64, link []byte) error {
	access := p.Access & handled
	// Grants are mostly directories: opening as one tells them apart from
	// files without a stat. A rule of file rights only (the default
	// devices) means the same on either, and is opened as it is.
	var fd int
	var err error = unix.ENOTDIR
	if access&^fsFileRights != 0 {
		fd, err = unix.Open(p.Path, unix.O_PATH|unix.O_CLOEXEC|unix.O_DIRECTORY, 0)
	}
	if err == unix.ENOTDIR {
		fd, err = unix.Open(p.Path, unix.O_PATH|unix.O_CLOEXEC, 0)
		access &= fsFileRights
	}
	if err == unix.ENOENT && p.Optional {
		return nil
	}
	if err != nil {
		return &PathError{Path: p.Path, Err: err}
	}
	defer unix.Close(fd)
	if access == 0 {
		return nil
	}
	attr := pathBeneathAttr{allowed: access, parentFD: int32(fd)}
	if _, _, errno := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(rs.fd), unix.LANDLOCK_RULE_PATH_BENEATH, uintptr(unsafe.Pointer(&attr)), 0, 0, 0); errno != 0 {
		return &PathError{Path: p.Path, Err: fmt.Errorf("adding landlock rule: %w", errno)}
	}
	rs.grants.add(fd, access, link)
	return nil
}

// Grants returns the ruleset's path rules in canonical form.
func (rs *Ruleset) Grants() Grants { return rs.grants }

// RestrictThread confines the calling OS thread (only it) with the ruleset.
// The caller must have locked the goroutine to its thread and set
// PR_SET_NO_NEW_PRIVS on it.
func (rs *Ruleset) RestrictThread() error {
	if _, _, errno := unix.RawSyscall(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(rs.fd), 0, 0); errno != 0 {
		return fmt.Errorf("landlock: restrict_self: %w", errno)
	}
	return nil
}

// RestrictProcess confines every thread of the calling process: it sets
// PR_SET_NO_NEW_PRIVS and restricts each thread with the ruleset. It needs a
// binary built without cgo (syscall.AllThreadsSyscall).
func (rs *Ruleset) RestrictProcess() error {
	if _, _, errno := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); errno != 0 {
		return fmt.Errorf("landlock: PR_SET_NO_NEW_PRIVS on all threads: %w", errno)
	}
	if _, _, errno := syscall.AllThreadsSyscall(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(rs.fd), 0, 0); errno != 0 {
		return fmt.Errorf("landlock: restrict_self on all threads: %w", errno)
	}
	return nil
}

// Close releases the ruleset fd. Threads already restricted stay restricted.
func (rs *Ruleset) Close() error {
	if rs.fd < 0 {
		return nil
	}
	err := unix.Close(rs.fd)
	rs.fd = -1
	return err
}

// FD returns the ruleset's descriptor, for a forked child to restrict itself
// with (landlock_restrict_self).
func (rs *Ruleset) FD() int { return rs.fd }
