//go:build linux

package timeshift

import (
	"errors"
	"runtime"

	"github.com/sandlock-go/sandlock/internal/fielderr"
	"github.com/sandlock-go/sandlock/internal/filter"
	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/plan"
)

// Feature is TimeStart as a builtin feature.
type Feature struct {
	*Clock
}

// NewFeature validates TimeStart (RFC 3339 or Unix seconds; "" is no
// feature: nil) and starts the clock's count: the program's wall clock
// reads start now.
func NewFeature(timeStart string, noSupervisor bool) (*Feature, error) {
	if timeStart == "" {
		return nil, nil
	}
	start, err := ParseStart(timeStart)
	if err != nil {
		return nil, fielderr.New("TimeStart", timeStart, err)
	}
	if !Supported {
		return nil, fielderr.New("TimeStart", timeStart, errors.New("not supported on "+runtime.GOARCH+" yet (its vDSO stubs are not written)"))
	}
	if noSupervisor {
		return nil, fielderr.New("TimeStart", "", errors.New("needs the supervisor, which NoSupervisor turns off"))
	}
	return &Feature{Clock: New(start, nil)}, nil
}

// Plan adds the clock syscalls' handlers (virtualize: after the checks,
// before the user's), narrows their notification to the REALTIME family,
// has the filter trace the absolute deadlines, and follows the processes
// (whose vDSO the exec stop places, see package vdso's feature).
func (f *Feature) Plan(b *plan.Builder) error {
	f.tgid = b.Run().TGID
	for _, h := range []struct {
		name string
		fn   notify.HandlerFunc
	}{{"clock_gettime", f.clockGettime}, {"gettimeofday", f.gettimeofday}, {"time", f.time}} {
		b.HandleNamed(h.name, plan.Virtualize, "time shift: "+h.name, true, h.fn)
	}
	if nr, ok := b.Arch.Nr("clock_gettime"); ok {
		b.NotifyExcept(nr, 1, unshiftedIDs()...)
	}
	b.Filter.Trace = Traced(b.Arch)
	b.OnSeccomp(f.OnSeccomp)
	b.OnProcessStart(f.ProcessStart)
	b.OnExit(f.ProcessExit)
	return nil
}

// unshiftedIDs are the conditions under which clock_gettime names a clock
// outside the REALTIME family: an id of 16 or more, or a negative one (the
// CPU clocks of a process or thread, the clocks of a descriptor), or one of
// the others below 16. Those calls run in the kernel, unless another
// handler watches clock_gettime.
func unshiftedIDs() []filter.Cond {
	conds := []filter.Cond{{Tests: []filter.Test{{Arg: 0, Op: filter.AnyBit, Value: 0xfffffff0}}}}
	for id := uint32(0); id < 16; id++ {
		if !Shifted(int32(id)) {
			conds = append(conds, filter.Cond{Tests: []filter.Test{{Arg: 0, Value: id}}})
		}
	}
	return conds
}
