package notify

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"syscall"
)

// Phase orders the handlers of one syscall's chain: every handler of an
// earlier phase runs before any of a later one, and within a phase they run
// in the order they were added (the order of the feature list). Dispatch
// stops at the first answer other than Continue, so an earlier phase can
// always refuse before a later one is asked.
type Phase uint8

const (
	// PhaseGuard holds and counts: the fork hold until the tracer has the
	// root, the pid gate, the process and memory limits.
	PhaseGuard Phase = iota
	// PhaseTranslate says what a path means: a chroot, then a
	// copy-on-write workdir.
	PhaseTranslate
	// PhaseDeny refuses: fs-deny, the judgment of what Landlock does not
	// cover, the network rules.
	PhaseDeny
	// PhaseVirtualize answers with what the program should see: /proc and
	// hostname views, the hosts file, seeded randomness. After deny, so
	// that a virtual file can never override a deny.
	PhaseVirtualize
	// PhaseUser is the user's handlers, which see a call only once every
	// builtin before them said Continue.
	PhaseUser
	// PhaseAct does the call on the program's behalf, once everyone
	// before said Continue (so that the kernel never resolves again what
	// was checked).
	PhaseAct
)

var phaseNames = [...]string{"guard", "translate", "deny", "virtualize", "user", "act"}

func (p Phase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return fmt.Sprintf("phase(%d)", uint8(p))
}

// entry is one handler in a syscall's chain.
type entry struct {
	h     Handler
	name  string
	phase Phase
	// quick marks a builtin that never blocks; a chain of quick handlers is
	// run without arming the slow-handler watchdog.
	quick bool
}

// Table maps syscall numbers to ordered chains of handlers. It is built
// before the sandbox starts and read-only afterwards.
type Table struct {
	chains map[int32][]entry
}

// NewTable returns an empty table.
func NewTable() *Table { return &Table{chains: make(map[int32][]entry)} }

// Add adds h to nr's chain at phase p, after the handlers already there
// of that phase or an earlier one. quick promises that the handler never
// blocks for long. name says who it is, in logs.
func (t *Table) Add(nr int, p Phase, name string, quick bool, h Handler) {
	c := t.chains[int32(nr)]
	i := len(c)
	for i > 0 && c[i-1].phase > p {
		i--
	}
	c = append(c, entry{})
	copy(c[i+1:], c[i:])
	c[i] = entry{h: h, name: name, phase: p, quick: quick}
	t.chains[int32(nr)] = c
}

// AddUser adds a user handler to nr's chain (PhaseUser).
func (t *Table) AddUser(nr int, h Handler) {
	t.Add(nr, PhaseUser, fmt.Sprintf("user handler for syscall %d", nr), false, h)
}

// Names lists nr's chain as "phase: name", in dispatch order (for tests
// and logs).
func (t *Table) Names(nr int) []string {
	var out []string
	for _, e := range t.chains[int32(nr)] {
		out = append(out, e.phase.String()+": "+e.name)
	}
	return out
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
