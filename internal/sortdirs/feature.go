//go:build linux

package sortdirs

import (
	"context"
	"errors"

	"github.com/sandlock-go/sandlock/internal/fielderr"
	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/plan"
)

// Feature is DeterministicDirs as a builtin feature.
type Feature struct {
	l *Lister
}

// NewFeature validates DeterministicDirs (false is no feature: nil).
func NewFeature(on, noSupervisor bool) (*Feature, error) {
	if !on {
		return nil, nil
	}
	if noSupervisor {
		return nil, fielderr.New("DeterministicDirs", "", errors.New("needs the supervisor, which NoSupervisor turns off"))
	}
	return &Feature{}, nil
}

// Plan adds the directory reads' handlers in the act phase: they read on
// the program's behalf once every user handler said Continue.
func (f *Feature) Plan(b *plan.Builder) error {
	f.l = New(b.Run().TGID)
	b.HandleNamed("getdents64", plan.Act, "sorted directories: getdents64", false, notify.HandlerFunc(func(_ context.Context, hc *notify.HandlerCtx) notify.Action {
		return f.l.getdents(hc, dirent64)
	}))
	b.HandleNamed("getdents", plan.Act, "sorted directories: getdents", false, notify.HandlerFunc(func(_ context.Context, hc *notify.HandlerCtx) notify.Action {
		return f.l.getdents(hc, direntLegacy)
	}))
	b.OnExit(f.l.ProcessExit)
	b.Close(f.l.Close)
	return nil
}
