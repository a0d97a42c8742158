//go:build linux

package vdso

import (
	"github.com/sandlock-go/sandlock/internal/plan"
	"github.com/sandlock-go/sandlock/internal/tracer"
)

// Feature patches the vDSO of every image the sandbox execs, at the exec
// stop, before the image has run its first instruction (and so before its
// dynamic linker or runtime has looked a symbol up).
type Feature struct {
	Patch Patch
	// Patched, if set, is told where process pid's patched vDSO code lies
	// (the clock needs it to tell its stubs' own fallback syscalls).
	Patched func(pid int, base uint64, size int)

	patcher *Patcher
}

// Image is a new image at its exec stop, as the patch needs it (the
// tracer's ExecStop).
type Image interface {
	Memory
	PID() int
}

// Plan registers the exec hook. An image whose vDSO cannot be patched is
// killed before its first instruction: it would run with the real clock
// or the real getrandom.
func (f *Feature) Plan(b *plan.Builder) error {
	f.patcher = NewPatcher(f.Patch)
	b.OnExec(func(st *tracer.ExecStop) {
		auxv, err := st.Auxv()
		if err == nil {
			base, _ := auxv.Get(tracer.AtSysinfoEhdr)
			err = f.AtExec(st, base)
		}
		if err != nil {
			st.Kill("the vDSO of the new image cannot be patched for a deterministic run: " + err.Error())
		}
	})
	return nil
}

// AtExec patches the vDSO of a new image, mapped at base (its
// AT_SYSINFO_EHDR; 0 for an image without a vDSO, which then makes every
// clock read a syscall the supervisor answers). An error means the image
// would run unpatched: the caller kills it.
func (f *Feature) AtExec(img Image, base uint64) error {
	size := 0
	if base != 0 {
		var err error
		if size, err = f.patcher.Apply(img, base); err != nil {
			return err
		}
	}
	if f.Patched != nil {
		f.Patched(img.PID(), base, size)
	}
	return nil
}
