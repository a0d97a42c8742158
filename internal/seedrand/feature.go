//go:build linux

package seedrand

import (
	"errors"

	"github.com/sandlock-go/sandlock/internal/fielderr"
	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/plan"
	"github.com/sandlock-go/sandlock/internal/tracer"
)

// Feature is RandomSeed as a builtin feature. Its ServeOpen answers the
// opens of the random devices from fs-deny's act phase (see fsdeny.Feature's
// Serve), where the open is resolved and done on the program's behalf.
type Feature struct {
	*Source
}

// NewFeature validates RandomSeed (nil is no feature: nil).
func NewFeature(seed *uint64, noSupervisor bool) (*Feature, error) {
	if seed == nil {
		return nil, nil
	}
	if noSupervisor {
		return nil, fielderr.New("RandomSeed", "", errors.New("needs the supervisor, which NoSupervisor turns off"))
	}
	return &Feature{Source: New(*seed, nil)}, nil
}

// Plan adds getrandom's handler (virtualize: after the checks, before the
// user's), rewrites each new image's AT_RANDOM bytes at the exec stop
// (an image whose bytes cannot be rewritten is killed before its first
// instruction), and follows the processes, whose streams follow the tree.
func (f *Feature) Plan(b *plan.Builder) error {
	f.tgid = b.Run().TGID
	b.HandleNamed("getrandom", plan.Virtualize, "random seed: getrandom", false, notify.HandlerFunc(f.getrandom))
	b.OnExec(func(st *tracer.ExecStop) {
		auxv, err := st.Auxv()
		if err == nil {
			if addr, ok := auxv.Get(tracer.AtRandom); ok {
				err = f.AtExec(st, st.PID(), addr)
			}
		}
		if err != nil {
			st.Kill("the AT_RANDOM bytes of the new image cannot be rewritten for a deterministic run: " + err.Error())
		}
	})
	b.OnProcessStart(f.ProcessStart)
	b.OnExit(f.ProcessExit)
	b.OnEnd(f.Close)
	b.Close(f.Close)
	return nil
}
