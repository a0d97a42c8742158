package notify

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"syscall"
)

// stage orders a chain: builtin checks, then user handlers, then builtins
// that act on the task's behalf once everyone before them said Continue.
type stage uint8

const (
	stageBuiltin stage = iota
	stageUser
	stageFinal
)

// entry is one handler in a syscall's chain.
type entry struct {
	h     Handler
	name  string
	stage stage
	// quick marks a builtin that never blocks; a chain of quick handlers is
	// run without arming the slow-handler watchdog.
	quick bool
}

// Table maps syscall numbers to ordered chains of handlers. It is built
// before the sandbox starts and read-only afterwards.
type Table struct {
	chains map[int32][]entry
}

// add inserts e after every entry of its stage or an earlier one.
func (t *Table) add(nr int, e entry) {
	c := t.chains[int32(nr)]
	i := len(c)
	for i > 0 && c[i-1].stage > e.stage {
		i--
	}
	c = append(c, entry{})
	copy(c[i+1:], c[i:])
	c[i] = e
	t.chains[int32(nr)] = c
}

// NewTable returns an empty table.
func NewTable() *Table { return &Table{chains: make(map[int32][]entry)} }

// AddBuiltin adds a builtin handler to nr's chain, after the builtins
// already there and before every user handler. quick promises that the
// handler never blocks for long.
func (t *Table) AddBuiltin(nr int, name string, quick bool, h Handler) {
	t.add(nr, entry{h: h, name: name, stage: stageBuiltin, quick: quick})
}

// AddUser adds a user handler to nr's chain, after the builtins and the
// user handlers already there.
func (t *Table) AddUser(nr int, h Handler) {
	t.add(nr, entry{h: h, name: fmt.Sprintf("user handler for syscall %d", nr), stage: stageUser})
}

// AddFinal adds a builtin that runs after every user handler, when all of
// them said Continue: it answers in place of the kernel, typically by doing
// the syscall on the task's behalf. A builtin that must both be checked
// before user handlers and then act registers twice.
func (t *Table) AddFinal(nr int, name string, quick bool, h Handler) {
	t.add(nr, entry{h: h, name: name, stage: stageFinal, quick: quick})
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

// Len returns the number of handlers in nr's chain.
func (t *Table) Len(nr int) int { return len(t.chains[int32(nr)]) }

// dispatch runs nr's chain until a handler answers something other than
// Continue. InjectFD installs its fd through injectFD at once and then goes
// on like Continue, so the handlers after it, final ones included, still
// decide; if the injection fails, the syscall fails. A panicking handler
// fails the syscall with EPERM: a handler that could not decide must not let
// the syscall through.
func (t *Table) dispatch(ctx context.Context, hc *HandlerCtx, log *slog.Logger, injectFD func(Action) syscall.Errno) Action {
	for _, e := range t.chains[hc.Notif.Data.Nr] {
		a := callHandler(ctx, e, hc, log)
		switch a.kind {
		case actContinue:
		case actInjectFD:
			if errno := injectFD(a); errno != 0 {
				return Errno(errno)
			}
		default:
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
