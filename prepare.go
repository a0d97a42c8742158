//go:build linux

package sandlock

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/fielderr"
	"github.com/sandlock-go/sandlock/internal/landlock"
	"github.com/sandlock-go/sandlock/internal/plan"
	"github.com/sandlock-go/sandlock/internal/registry"
	"github.com/sandlock-go/sandlock/internal/session"
	"github.com/sandlock-go/sandlock/internal/sysfilter"
	"github.com/sandlock-go/sandlock/internal/sysnum"
)

// prepared is a validated run, ready to start.
type prepared struct {
	spec    session.Spec
	session *session.Session
	builder *plan.Builder
	named   *registration // nil with NoRegistry
	grants  []string      // readable and writable paths, for error hints
	cow     *workdirPlan  // the copy-on-write workdir (issue 18, workdir.go), or nil
}

// abandon frees a run that will not start.
func (p *prepared) abandon() {
	p.release()
	p.session.Abandon()
}

// release frees what prepare acquired: everything the features hold, the
// helper pools, the ruleset (the registry entry goes with them, once the
// run has ended).
func (p *prepared) release() {
	if p.builder != nil {
		p.builder.Release()
	}
}

func field(name, value string, err error) error {
	return &fielderr.FieldError{Field: name, Value: value, Err: err}
}

// unsupported rejects every field whose feature does not exist yet: a set
// field is never silently ignored.
func (s *Sandbox) unsupported() error {
	checks := []struct {
		name string
		set  bool
	}{
		{"Chroot", s.Chroot != ""},
		{"FSMount", len(s.FSMount) > 0},
		{"PortRemap", s.PortRemap},
		{"HTTPAllow", len(s.HTTPAllow) > 0},
		{"HTTPDeny", len(s.HTTPDeny) > 0},
		{"HTTPPorts", len(s.HTTPPorts) > 0},
		{"HTTPCAFile", s.HTTPCAFile != ""},
		{"HTTPKeyFile", s.HTTPKeyFile != ""},
		{"UID", s.UID != nil},
		{"GID", s.GID != nil},
		{"PolicyFn", s.PolicyFn != nil},
	}
	for _, c := range checks {
		if c.set {
			return fielderr.Unsupported(c.name)
		}
	}
	return nil
}

// checkStrings rejects NUL bytes in the command and in every string field,
// with ErrInvalidString itself (upstream's callers compare it with ==), and
// malformed Env names.
func (s *Sandbox) checkStrings(cmd []string) error {
	for _, list := range [][]string{
		cmd, s.FSReadable, s.FSWritable, s.FSDenied, s.NetAllow, s.NetDeny, s.NetAllowBind, s.NetDenyBind,
		s.HTTPAllow, s.HTTPDeny, s.ExtraAllowSyscalls, s.ExtraDenySyscalls,
		{s.Workdir, s.Cwd, s.Chroot, s.HTTPCAFile, s.HTTPKeyFile, s.MaxMemory, s.MaxDisk, s.TimeStart, s.FSStorage, s.Name},
	} {
		for _, v := range list {
			if strings.IndexByte(v, 0) >= 0 {
				return ErrInvalidString
			}
		}
	}
	for k, v := range s.FSMount {
		if strings.IndexByte(k, 0) >= 0 || strings.IndexByte(v, 0) >= 0 {
			return ErrInvalidString
		}
	}
	for k, v := range s.Env {
		if strings.IndexByte(k, 0) >= 0 || strings.IndexByte(v, 0) >= 0 {
			return ErrInvalidString
		}
		if k == "" || strings.IndexByte(k, '=') >= 0 {
			return field("Env", k, errors.New("variable names must be non-empty and hold no '='"))
		}
	}
	return nil
}

// postures resolves AllowDegraded and Disable.
func (s *Sandbox) postures() (landlock.Postures, error) {
	var ps landlock.Postures
	for _, p := range s.AllowDegraded {
		if err := ps.Set(p, landlock.Degradable); err != nil {
			return ps, field("AllowDegraded", p.String(), err)
		}
	}
	for _, p := range s.Disable {
		if err := ps.Set(p, landlock.Disabled); err != nil {
			return ps, field("Disable", p.String(), err)
		}
	}
	return ps, nil
}

// landlockConfig validates the filesystem grants and builds the ruleset
// configuration for this kernel.
func (s *Sandbox) landlockConfig(k landlock.Kernel) (*landlock.Config, error) {
	ps, err := s.postures()
	if err != nil {
		return nil, err
	}
	status, err := ps.Resolve(k)
	if err != nil {
		return nil, &fielderr.FieldError{Field: "AllowDegraded", Err: err}
	}
	handledFS, handledNet, scoped := landlock.Masks(k.ABI, status)
	cfg := &landlock.Config{ABI: k.ABI, HandledFS: handledFS, HandledNet: handledNet, Scoped: scoped}
	cfg.Paths = make([]landlock.PathRule, 0, len(s.FSReadable)+len(s.FSWritable)+len(landlock.DefaultDevices))
	for _, p := range s.FSReadable {
		cfg.Paths = append(cfg.Paths, landlock.PathRule{Path: p, Access: landlock.FSRead})
	}
	for _, p := range s.FSWritable {
		cfg.Paths = append(cfg.Paths, landlock.PathRule{Path: p, Access: handledFS})
	}
	cfg.Paths = append(cfg.Paths, landlock.DefaultDevices...)
	return cfg, nil
}

// testSession is nil outside the tests: export_test.go sets it, so that a
// test can register session hooks (an exec hook, …) on the runs of a
// Sandbox of its own.
var testSession func(s *Sandbox, sess *session.Session)

// rulesetError names the field of a ruleset that could not be built: a
// grant that does not exist (or cannot be opened) is an error naming its
// field and path.
func (s *Sandbox) rulesetError(err error) error {
	var pe *landlock.PathError
	if errors.As(err, &pe) {
		name := "FSReadable"
		if slices.Contains(s.FSWritable, pe.Path) && !slices.Contains(s.FSReadable, pe.Path) {
			name = "FSWritable"
		}
		return field(name, pe.Path, pe.Err)
	}
	return fmt.Errorf("sandlock: %w", err)
}

// environ builds the program's environment: the caller's (only the basic
// variables with CleanEnv), then extra (from the limits), then Env; a later
// value of a name replaces an earlier one in place. The order is otherwise
// the caller's. (No map: this runs on every start, and a map with its
// hashing and sorting cost several times the rest.)
func (s *Sandbox) environ(extra map[string]string) []string {
	env := os.Environ() // a copy, filtered in place
	out := env[:0]
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if s.CleanEnv {
			switch k {
			case "PATH", "HOME", "USER", "TERM", "LANG":
			default:
				continue
			}
		}
		out = setEnv(out, k, kv)
	}
	for k, v := range extra {
		out = setEnv(out, k, k+"="+v)
	}
	for k, v := range s.Env {
		out = setEnv(out, k, k+"="+v)
	}
	return out
}

// setEnv puts kv, the entry for name k, into env: over an entry for the
// same name, or at the end.
func setEnv(env []string, k, kv string) []string {
	for i, e := range env {
		if len(e) > len(k) && e[len(k)] == '=' && e[:len(k)] == k {
			env[i] = kv
			return env
		}
	}
	return append(env, kv)
}

// logger is where the run logs: Logger, or slog's default logger.
func (s *Sandbox) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// prepare validates the sandbox and the command and builds everything the
// run needs: the feature list (builtins.go) planned into the ruleset, the
// filter and the handler table. Nothing has started when it returns an
// error; ctx cancels what preparing may wait for (a hostname rule's DNS
// lookup).
func (s *Sandbox) prepare(ctx context.Context, cmd []string, handlers []SyscallHandler) (_ *prepared, err error) {
	if len(cmd) == 0 {
		return nil, errors.New("sandlock: empty command")
	}
	if err := s.checkStrings(cmd); err != nil {
		return nil, err
	}
	if err := s.unsupported(); err != nil {
		return nil, err
	}
	if s.Name != "" {
		if err := registry.CheckName(s.Name); err != nil {
			return nil, field("Name", s.Name, err)
		}
	}
	if s.NoSupervisor && len(handlers) > 0 {
		return nil, errors.New("sandlock: syscall handlers need the supervisor, which NoSupervisor turns off")
	}
	if s.Cwd != "" {
		if st, err := os.Stat(s.Cwd); err != nil {
			return nil, field("Cwd", s.Cwd, errors.Unwrap(err))
		} else if !st.IsDir() {
			return nil, field("Cwd", s.Cwd, unix.ENOTDIR)
		}
	}

	arch := sysnum.Native()
	blocklist := sysfilter.DefaultBlocklist
	if s.NoSupervisor {
		blocklist = sysfilter.NoSupervisorBlocklist
	}
	deny, err := sysfilter.DenyList(arch, blocklist, s.ExtraAllowSyscalls, s.ExtraDenySyscalls)
	if err != nil {
		return nil, err
	}
	// deny is sorted.
	denied := func(nr int) bool { _, ok := slices.BinarySearch(deny, nr); return ok }
	for _, name := range session.ChildStageSyscalls {
		if nr, ok := arch.Nr(name); ok && denied(nr) {
			return nil, field("ExtraDenySyscalls", name, errors.New("cannot be denied: sandlock's child stage makes it between fork and exec, so the program could never start"))
		}
	}
	clone3, _ := arch.Nr("clone3")
	for _, h := range handlers {
		if _, err := CheckSyscall(h.Syscall); err != nil {
			return nil, err
		}
		if denied(int(h.Syscall)) || int(h.Syscall) == clone3 {
			return nil, &SyscallError{Nr: h.Syscall, Err: ErrDeniedSyscall}
		}
		if h.Handler == nil {
			return nil, &SyscallError{Nr: h.Syscall, Err: errors.New("nil Handler")}
		}
	}

	kernel, err := landlock.Probe()
	if err != nil {
		return nil, fmt.Errorf("sandlock: %w", err)
	}
	llcfg, err := s.landlockConfig(kernel)
	if err != nil {
		return nil, err
	}
	features, named, err := s.builtins(ctx)
	if err != nil {
		return nil, err
	}

	// The session starts the tracer's thread, which then comes up while the
	// rest is built.
	p := &prepared{session: session.NewSession(s.logger()), named: named}
	defer func() {
		if err != nil {
			p.abandon()
		}
	}()
	fs := &sysfilter.FilterSpec{Arch: arch, Deny: deny}
	b := plan.NewBuilder(p.session, llcfg, fs, denied, !s.NoSupervisor, s.KeepCaps)
	p.builder = b
	if err := b.Plan(features); err != nil {
		return nil, err
	}
	p.cow = workdirOf(features) // copy-on-write workdir (issue 18): its branch is finished when the run ends
	if testSession != nil {
		testSession(s, p.session) // tests only (export_test.go)
	}

	env := s.environ(b.Env)
	path, err := session.LookPath(cmd[0], env)
	if err != nil {
		return nil, &session.StepError{Step: "exec " + cmd[0], Err: err}
	}
	p.grants = append(append([]string(nil), s.FSReadable...), s.FSWritable...)
	if err := b.BuildRuleset(); err != nil {
		return nil, s.rulesetError(err)
	}
	for _, h := range handlers {
		p.session.Table.AddUser(int(h.Syscall), h.Handler)
	}
	if err := b.Finish(); err != nil {
		return nil, err
	}
	if !s.NoSupervisor {
		// A syscall the policy denies needs no builtin's judgement: the
		// kernel refuses it outright. (A user handler on one was refused
		// above.) ioctl, when only some of its commands are watched, is
		// notified for those alone.
		// socket likewise when only netlink-route sockets are (issue 16,
		// internal/netview).
		ioctl, socket := arch.MustNr("ioctl"), arch.MustNr("socket")
		fs.Notify = slices.DeleteFunc(p.session.Table.Syscalls(), func(nr int) bool {
			return denied(nr) || (fs.NotifyIoctls != nil && nr == ioctl) || (fs.NotifyNetlinkRoute && nr == socket)
		})
	}
	fp, err := fs.Filter()
	if err != nil {
		return nil, fmt.Errorf("sandlock: %w", err)
	}
	prog, err := fp.Compile()
	if err != nil {
		return nil, fmt.Errorf("sandlock: %w", err)
	}

	p.spec = session.Spec{
		Path:       path,
		Argv:       cmd,
		Env:        env,
		Dir:        p.cow.startDir(s.Cwd), // copy-on-write workdir (issue 18): the program starts in it
		Ruleset:    b.Ruleset(),
		Filter:     prog,
		KeepCaps:   s.KeepCaps,
		Supervised: !s.NoSupervisor,
		Knobs:      b.Knobs,
	}
	// The child stage's prlimit64 names itself (pid 0): when the filter
	// lets exactly that through, it is no reason to leave the vfork mode.
	if nr, ok := arch.Nr("prlimit64"); ok && len(fs.NotifyExcept[nr]) > 0 {
		p.spec.SelfUnnotified = []int{nr}
	}
	if named != nil {
		named.program = append([]string{path}, cmd[1:]...)
	}
	return p, nil
}

// execHint explains an exec that Landlock refused: which needed path is
// outside every grant.
func (p *prepared) execHint(err error) error {
	var se *session.StepError
	if !errors.As(err, &se) || !errors.Is(err, unix.EACCES) || !strings.HasPrefix(se.Step, "exec") {
		return err
	}
	need := []string{p.spec.Path}
	if interp := elfInterp(p.spec.Path); interp != "" {
		need = append(need, interp)
	}
	for _, n := range need {
		if !underAny(n, p.grants) {
			return fmt.Errorf("%w (%s is outside every readable path: grant it with -r %s)", err, n, filepath.Dir(n))
		}
	}
	return err
}

// elfInterp returns the program interpreter (PT_INTERP) of a 64-bit
// little-endian ELF file, or "" if it has none or is not one. (debug/elf
// would do, at the price of start-up time for every run.)
func elfInterp(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var hdr [64]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil || string(hdr[:4]) != "\x7fELF" || hdr[4] != 2 || hdr[5] != 1 {
		return ""
	}
	le := binary.LittleEndian
	phoff, phentsize, phnum := le.Uint64(hdr[32:]), int64(le.Uint16(hdr[54:])), int64(le.Uint16(hdr[56:]))
	if phentsize < 56 {
		return ""
	}
	ph := make([]byte, 56)
	for i := int64(0); i < min(phnum, 64); i++ {
		if _, err := f.ReadAt(ph, int64(phoff)+i*phentsize); err != nil {
			return ""
		}
		const ptInterp = 3
		if le.Uint32(ph) != ptInterp {
			continue
		}
		off, size := le.Uint64(ph[8:]), le.Uint64(ph[32:])
		if size == 0 || size > unix.PathMax {
			return ""
		}
		b := make([]byte, size)
		if _, err := f.ReadAt(b, int64(off)); err != nil {
			return ""
		}
		return strings.TrimRight(string(b), "\x00")
	}
	return ""
}

// underAny reports whether path is one of roots or below one, following
// symlinks as the kernel would.
func underAny(path string, roots []string) bool {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	for _, r := range roots {
		if real, err := filepath.EvalSymlinks(r); err == nil {
			r = real
		}
		if r == "/" || path == r || strings.HasPrefix(path, strings.TrimSuffix(r, "/")+"/") {
			return true
		}
	}
	return false
}
