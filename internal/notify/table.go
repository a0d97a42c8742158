package notify

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"syscall"
)

// entry is one handler in a syscall's chain.
type entry struct {
	h    Handler
	name string
	// quick marks a builtin that never blocks; a chain of quick handlers is
	// run without arming the slow-handler watchdog.
	quick bool
	user  bool
}

// Table maps syscall numbers to ordered chains of handlers. It is built
// before the sandbox starts and read-only afterwards.
type Table struct {
	chains map[int32][]entry
}

// NewTable returns an empty table.
func NewTable() *Table { return &Table{chains: make(map[int32][]entry)} }

// AddBuiltin appends a builtin handler to nr's chain. quick promises that
// the handler never blocks for long.
func (t *Table) AddBuiltin(nr int, name string, quick bool, h Handler) {
	t.chains[int32(nr)] = append(t.chains[int32(nr)], entry{h: h, name: name, quick: quick})
}

// AddUser appends a user handler to nr's chain. Builtins must all be added
// before any user handler, so that every builtin of a chain runs first.
func (t *Table) AddUser(nr int, h Handler) {
	t.chains[int32(nr)] = append(t.chains[int32(nr)], entry{h: h, name: fmt.Sprintf("user handler #%d", len(t.chains[int32(nr)])), user: true})
}

// Syscalls returns every syscall number that has a chain, sorted: the
// notification list of the BPF filter.
func (t *Table) Syscalls() []int {
	out := make([]int, 0, len(t.chains))
	for nr := range t.chains {
		out = append(out, int(nr))
	}
	sort.Ints(out)
	return out
}

// Has reports whether nr has a chain.
func (t *Table) Has(nr int) bool { _, ok := t.chains[int32(nr)]; return ok }

// dispatch runs nr's chain until a handler answers something other than
// Continue. A panicking handler fails the syscall with EPERM: a handler that
// could not decide must not let the syscall through.
func (t *Table) dispatch(ctx context.Context, hc *HandlerCtx, log *slog.Logger) Action {
	for _, e := range t.chains[hc.Notif.Data.Nr] {
		a := callHandler(ctx, e, hc, log)
		if a.kind != actContinue {
			return a
		}
	}
	return Continue()
}

// quick reports whether every handler of nr's chain is quick.
func (t *Table) quick(nr int32) bool {
	for _, e := range t.chains[nr] {
		if !e.quick {
			return false
		}
	}
	return true
}

func callHandler(ctx context.Context, e entry, hc *HandlerCtx, log *slog.Logger) (a Action) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("sandlock: handler panicked; failing the syscall with EPERM",
				"handler", e.name, "syscall", hc.Notif.Data.Nr, "pid", hc.Notif.PID,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			a = Errno(syscall.EPERM)
		}
	}()
	return e.h.Handle(ctx, hc)
}
