package sandlock

import (
	"errors"
	"runtime"
	"time"

	"github.com/sandlock-go/sandlock/internal/filter"
	"github.com/sandlock-go/sandlock/internal/policy"
	"github.com/sandlock-go/sandlock/internal/seedrand"
	"github.com/sandlock-go/sandlock/internal/sortdirs"
	"github.com/sandlock-go/sandlock/internal/sysnum"
	"github.com/sandlock-go/sandlock/internal/timeshift"
	"github.com/sandlock-go/sandlock/internal/vdso"
)

// determinism is the deterministic-run features of issue 15, validated:
// the shifted wall clock (TimeStart), seeded randomness (RandomSeed) and
// sorted directory listings (DeterministicDirs). Each part is nil when its
// field is unset: then nothing of it is trapped and no exec stop is taken.
type determinism struct {
	start  time.Time
	clock  *timeshift.Clock
	random *seedrand.Source
	dirs   *sortdirs.Lister
	// vdso patches each new image's vDSO at the exec stop: the clock stubs,
	// getrandom hidden.
	vdso *vdso.Patcher
}

// determinism validates the determinism fields.
func (s *Sandbox) determinism() (*determinism, error) {
	d := &determinism{}
	if s.TimeStart != "" {
		t, err := timeshift.ParseStart(s.TimeStart)
		if err != nil {
			return nil, field("TimeStart", s.TimeStart, err)
		}
		if !timeshift.Supported {
			return nil, field("TimeStart", s.TimeStart, errors.New("not supported on "+runtime.GOARCH+" yet (its vDSO stubs are not written)"))
		}
		d.start = t
	}
	if s.NoSupervisor {
		for _, f := range []struct {
			name string
			set  bool
		}{{"TimeStart", s.TimeStart != ""}, {"RandomSeed", s.RandomSeed != nil}, {"DeterministicDirs", s.DeterministicDirs}} {
			if f.set {
				return nil, field(f.name, "", errors.New("needs the supervisor, which NoSupervisor turns off"))
			}
		}
	}
	return d, nil
}

// active reports whether any determinism feature is on.
func (d *determinism) active() bool {
	return d.clock != nil || d.random != nil || d.dirs != nil
}

// build creates the features for a run's session, once the fields are
// valid. The clock starts counting from the start instant here.
func (d *determinism) build(s *Sandbox, p *prepared) {
	sess := p.session
	if !d.start.IsZero() {
		d.clock = timeshift.New(d.start, sess.TGID)
	}
	if s.RandomSeed != nil {
		d.random = seedrand.New(*s.RandomSeed, sess.TGID)
	}
	if s.DeterministicDirs {
		d.dirs = sortdirs.New(sess.TGID)
	}
	var patch vdso.Patch
	if d.clock != nil {
		sh := d.clock.Shift()
		patch.Clock = &sh
	}
	patch.HideGetrandom = d.random != nil
	if patch.Clock != nil || patch.HideGetrandom {
		d.vdso = vdso.NewPatcher(patch)
	}
}

// register adds the features' handlers, tracer hooks and filter
// conditions. userSyscalls are the syscalls user handlers see: those are
// notified whole.
func (d *determinism) register(p *prepared, fs *policy.FilterSpec, userSyscalls map[int]bool) {
	sess, arch := p.session, sysnum.Native()
	if d.clock != nil {
		d.clock.Register(sess.Table, arch)
		for nr, conds := range timeshift.Notified(arch) {
			if conds != nil && !userSyscalls[nr] {
				if fs.NotifyWhen == nil {
					fs.NotifyWhen = map[int][]filter.Cond{}
				}
				fs.NotifyWhen[nr] = conds
			}
		}
		fs.Trace = timeshift.Traced(arch)
		sess.OnSeccomp(d.clock.OnSeccomp)
		sess.OnProcessStart(d.clock.ProcessStart)
		sess.OnExit(d.clock.ProcessExit)
	}
	if d.random != nil {
		d.random.Register(sess.Table, arch)
		sess.OnProcessStart(d.random.ProcessStart)
		sess.OnExit(d.random.ProcessExit)
		sess.OnEnd(d.random.Close)
	}
	if d.dirs != nil {
		d.dirs.Register(sess.Table, arch)
		sess.OnExit(d.dirs.ProcessExit)
		sess.OnEnd(d.dirs.Close)
	}
}
