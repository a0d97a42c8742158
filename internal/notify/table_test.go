//go:build linux

package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// recorder builds handlers that record their calls in order.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) h(name string, a Action) Handler {
	return HandlerFunc(func(ctx context.Context, hc *HandlerCtx) Action {
		r.mu.Lock()
		r.calls = append(r.calls, name)
		r.mu.Unlock()
		return a
	})
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.calls
	r.calls = nil
	return out
}

func notif(nr int32) *HandlerCtx {
	return &HandlerCtx{Notif: Notif{ID: 1, PID: 2, Data: NotifData{Nr: nr}}, NotifFD: -1}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(new(bytes.Buffer), nil)) }

func TestDispatchOrder(t *testing.T) {
	var r recorder
	tab := NewTable()
	tab.Add(5, PhaseDeny, "b1", true, r.h("b1", Continue()))
	tab.Add(5, PhaseDeny, "b2", false, r.h("b2", Continue()))
	tab.AddUser(5, r.h("u1", Continue()))
	tab.AddUser(5, r.h("u2", Continue()))
	tab.AddUser(5, r.h("u3", Continue()))

	a := tab.dispatch(context.Background(), notif(5), discard(), noInject)
	if !a.IsContinue() {
		t.Errorf("all handlers said Continue, dispatch answered %v", a)
	}
	if got, want := r.take(), []string{"b1", "b2", "u1", "u2", "u3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("called %v, want %v", got, want)
	}

	// Another syscall's chain is untouched; a syscall with none answers
	// Continue without calling anything.
	if a := tab.dispatch(context.Background(), notif(6), discard(), noInject); !a.IsContinue() {
		t.Errorf("empty chain answered %v", a)
	}
	if got := r.take(); len(got) != 0 {
		t.Errorf("empty chain called %v", got)
	}
}

func TestDispatchShortCircuit(t *testing.T) {
	answers := []struct {
		name string
		a    Action
		want string
	}{
		{"Errno", Errno(syscall.EACCES), "Errno(permission denied)"},
		{"Errno(0) is EPERM", Errno(0), "Errno(operation not permitted)"},
		{"ReturnValue", ReturnValue(42), "ReturnValue"},
		{"InjectBytes", InjectBytes([]byte("x")), "InjectBytes"},
		{"KillGroup", KillGroup(syscall.SIGKILL), "KillGroup"},
		{"Defer", Defer(func(context.Context) Action { return Continue() }), "Defer"},
	}
	for _, c := range answers {
		t.Run(c.name, func(t *testing.T) {
			for pos := 0; pos < 4; pos++ {
				// pos 0, 1: a builtin answers; 2, 3: a user handler does.
				var r recorder
				tab := NewTable()
				names := []string{"b1", "b2", "u1", "u2"}
				for i, n := range names {
					a := Continue()
					if i == pos {
						a = c.a
					}
					if i < 2 {
						tab.Add(7, PhaseDeny, n, true, r.h(n, a))
					} else {
						tab.AddUser(7, r.h(n, a))
					}
				}
				got := tab.dispatch(context.Background(), notif(7), discard(), noInject)
				if got.String() != c.want || got.kind != c.a.kind {
					t.Errorf("answer from %s: dispatch answered %v, want %v", names[pos], got, c.want)
				}
				if c.a.kind == actReturn && got.val != 42 {
					t.Errorf("ReturnValue lost its value: %d", got.val)
				}
				if calls, want := r.take(), names[:pos+1]; !reflect.DeepEqual(calls, want) {
					t.Errorf("answer from %s: called %v, want %v", names[pos], calls, want)
				}
			}
		})
	}
}

// TestDispatchBuiltinWins: a user handler never sees a notification a
// builtin answered, and cannot override the answer.
func TestDispatchBuiltinWins(t *testing.T) {
	var r recorder
	tab := NewTable()
	denyOdd := HandlerFunc(func(ctx context.Context, hc *HandlerCtx) Action {
		r.mu.Lock()
		r.calls = append(r.calls, "builtin")
		r.mu.Unlock()
		if hc.Notif.Data.Args[0]%2 == 1 {
			return Errno(syscall.EACCES)
		}
		return Continue()
	})
	tab.Add(257, PhaseDeny, "deny odd", false, denyOdd)
	tab.AddUser(257, r.h("user", ReturnValue(3)))
	for arg := uint64(0); arg < 4; arg++ {
		hc := notif(257)
		hc.Notif.Data.Args[0] = arg
		a := tab.dispatch(context.Background(), hc, discard(), noInject)
		calls := r.take()
		if arg%2 == 1 {
			if a.ErrnoOf() != syscall.EACCES || !reflect.DeepEqual(calls, []string{"builtin"}) {
				t.Errorf("arg %d: answered %v after %v; want EACCES from the builtin alone", arg, a, calls)
			}
		} else if a.kind != actReturn || a.val != 3 || !reflect.DeepEqual(calls, []string{"builtin", "user"}) {
			t.Errorf("arg %d: answered %v after %v; want the user's ReturnValue(3)", arg, a, calls)
		}
	}
}

// TestDispatchArguments: every handler gets the dispatch's context and the
// same HandlerCtx.
func TestDispatchArguments(t *testing.T) {
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "v")
	hc := notif(9)
	tab := NewTable()
	n := 0
	check := HandlerFunc(func(c context.Context, h *HandlerCtx) Action {
		n++
		if c.Value(key{}) != "v" || h != hc {
			t.Errorf("handler %d got ctx %v, hc %p; want the dispatch's (%p)", n, c, h, hc)
		}
		return Continue()
	})
	tab.Add(9, PhaseDeny, "b", true, check)
	tab.AddUser(9, check)
	tab.dispatch(ctx, hc, discard(), noInject)
	if n != 2 {
		t.Errorf("%d handlers called, want 2", n)
	}
}

func TestTableSyscalls(t *testing.T) {
	tab := NewTable()
	if got := tab.Syscalls(); len(got) != 0 {
		t.Errorf("empty table: %v", got)
	}
	h := HandlerFunc(func(context.Context, *HandlerCtx) Action { return Continue() })
	tab.Add(300, PhaseDeny, "a", true, h)
	tab.Add(5, PhaseDeny, "b", true, h)
	tab.Add(5, PhaseDeny, "c", false, h)
	tab.AddUser(5, h)
	tab.AddUser(42, h)
	tab.AddUser(42, h)
	tab.AddUser(0, h)
	tab.Add(300, PhaseDeny, "d", true, h)
	if got, want := tab.Syscalls(), []int{0, 5, 42, 300}; !reflect.DeepEqual(got, want) {
		t.Errorf("Syscalls() = %v, want %v", got, want)
	}
	for _, nr := range []int{0, 5, 42, 300} {
		if !tab.Has(nr) {
			t.Errorf("Has(%d) = false", nr)
		}
	}
	for _, nr := range []int{1, 6, 299, 301} {
		if tab.Has(nr) {
			t.Errorf("Has(%d) = true", nr)
		}
	}
}

func TestTableQuick(t *testing.T) {
	h := HandlerFunc(func(context.Context, *HandlerCtx) Action { return Continue() })
	tab := NewTable()
	tab.Add(1, PhaseDeny, "quick", true, h)
	tab.Add(1, PhaseDeny, "quick too", true, h)
	tab.Add(2, PhaseDeny, "quick", true, h)
	tab.Add(2, PhaseDeny, "slow", false, h)
	tab.Add(3, PhaseDeny, "slow", false, h)
	tab.Add(4, PhaseDeny, "quick", true, h)
	tab.AddUser(4, h)
	tab.AddUser(5, h)
	for nr, want := range map[int32]bool{1: true, 2: false, 3: false, 4: false, 5: false} {
		if got := tab.quick(nr); got != want {
			t.Errorf("quick(%d) = %v, want %v", nr, got, want)
		}
	}
}

// lockedBuffer is a bytes.Buffer safe for the logger's concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestDispatchPanic(t *testing.T) {
	values := []struct {
		name string
		v    any
		want string
	}{
		{"string", "kaboom-string", "kaboom-string"},
		{"error", errors.New("kaboom-error"), "kaboom-error"},
		{"int", 31337, "31337"},
		{"nil", nil, "nil"}, // panic(nil) is a *runtime.PanicNilError since Go 1.21
	}
	for _, c := range values {
		t.Run(c.name, func(t *testing.T) {
			for _, user := range []bool{false, true} {
				var r recorder
				var buf lockedBuffer
				log := slog.New(slog.NewTextHandler(&buf, nil))
				tab := NewTable()
				boom := HandlerFunc(func(context.Context, *HandlerCtx) Action {
					r.mu.Lock()
					r.calls = append(r.calls, "boom")
					r.mu.Unlock()
					panic(c.v)
				})
				tab.Add(11, PhaseDeny, "first", true, r.h("first", Continue()))
				if user {
					tab.AddUser(11, boom)
				} else {
					tab.Add(11, PhaseDeny, "boom builtin", false, boom)
				}
				tab.AddUser(11, r.h("after", ReturnValue(1)))

				a := tab.dispatch(context.Background(), notif(11), log, noInject)
				if a.ErrnoOf() != syscall.EPERM {
					t.Errorf("user=%v: a panicking handler answered %v, want EPERM", user, a)
				}
				if calls := r.take(); !reflect.DeepEqual(calls, []string{"first", "boom"}) {
					t.Errorf("user=%v: called %v; the chain must stop at the panic", user, calls)
				}
				l := buf.String()
				for _, want := range []string{"level=ERROR", "panicked", c.want, "stack=", "goroutine ", "table_test.go", "syscall=11"} {
					if !strings.Contains(l, want) {
						t.Errorf("user=%v: log lacks %q:\n%s", user, want, l)
					}
				}
				name := "boom builtin"
				if user {
					name = "user handler"
				}
				if !strings.Contains(l, name) {
					t.Errorf("user=%v: log does not name the handler (%q):\n%s", user, name, l)
				}
			}
		})
	}
}

// TestCallDeferredPanic: a deferred function's panic is recovered the same
// way.
func TestCallDeferredPanic(t *testing.T) {
	var buf lockedBuffer
	a := callDeferred(context.Background(), func(context.Context) Action { panic("deferred-kaboom") }, notif(3), slog.New(slog.NewTextHandler(&buf, nil)))
	if a.ErrnoOf() != syscall.EPERM {
		t.Errorf("answered %v, want EPERM", a)
	}
	if l := buf.String(); !strings.Contains(l, "deferred-kaboom") || !strings.Contains(l, "deferred function") || !strings.Contains(l, "goroutine ") {
		t.Errorf("log: %s", l)
	}
	a = callDeferred(context.Background(), func(context.Context) Action { return ReturnValue(9) }, notif(3), discard())
	if a.kind != actReturn || a.val != 9 {
		t.Errorf("answered %v, want ReturnValue(9)", a)
	}
}

func TestActions(t *testing.T) {
	if !(Action{}).IsContinue() || !Continue().IsContinue() {
		t.Error("the zero Action and Continue() must be Continue")
	}
	for _, a := range []Action{Errno(syscall.EIO), ReturnValue(0), InjectFD(nil, 3), InjectFDSend(nil, 0),
		InjectFDSendTracked(nil, 0, func(int) {}), InjectBytes(nil), KillGroup(syscall.SIGTERM), Defer(nil)} {
		if a.IsContinue() {
			t.Errorf("%v is Continue", a)
		}
		if a.String() == "Action(?)" || a.String() == "Continue" {
			t.Errorf("%#v has String %q", a.kind, a.String())
		}
	}
	if e := Errno(0).ErrnoOf(); e != syscall.EPERM {
		t.Errorf("Errno(0) is %v, want EPERM", e)
	}
	if e := ReturnValue(5).ErrnoOf(); e != 0 {
		t.Errorf("ReturnValue(5).ErrnoOf() = %v", e)
	}
	if s := fmt.Sprint(Errno(syscall.ENOENT)); !strings.Contains(s, "no such file") {
		t.Errorf("Errno(ENOENT) prints %q", s)
	}
}

// noInject stands in for the supervisor's fd installation.
func noInject(Action) syscall.Errno { return 0 }

// TestFinalsRunAfterUsers: a final builtin runs after every user handler,
// whatever the order of registration, and only if all of them continued;
// InjectFD installs its fd and goes on with the chain.
func TestFinalsRunAfterUsers(t *testing.T) {
	var r recorder
	tab := NewTable()
	tab.Add(9, PhaseAct, "final", true, r.h("final", ReturnValue(7)))
	tab.AddUser(9, r.h("user", Continue()))
	tab.Add(9, PhaseDeny, "check", true, r.h("check", Continue()))
	var injected []int
	inject := func(a Action) syscall.Errno { injected = append(injected, a.targetFD); return 0 }
	got := tab.dispatch(context.Background(), notif(9), discard(), inject)
	if got.kind != actReturn || got.val != 7 {
		t.Errorf("answer %v, want the final's ReturnValue(7)", got)
	}
	if calls := r.take(); !reflect.DeepEqual(calls, []string{"check", "user", "final"}) {
		t.Errorf("called %v, want check, user, final", calls)
	}

	tab = NewTable()
	tab.AddUser(10, r.h("user", InjectFD(nil, 42)))
	tab.Add(10, PhaseAct, "final", true, r.h("final", Continue()))
	if got := tab.dispatch(context.Background(), notif(10), discard(), inject); !got.IsContinue() {
		t.Errorf("InjectFD then Continue answered %v", got)
	}
	if calls := r.take(); !reflect.DeepEqual(calls, []string{"user", "final"}) || !reflect.DeepEqual(injected, []int{42}) {
		t.Errorf("called %v, injected %v: InjectFD must install, then go on", calls, injected)
	}
	// A failed installation fails the syscall and ends the chain.
	failing := func(Action) syscall.Errno { return syscall.EMFILE }
	if got := tab.dispatch(context.Background(), notif(10), discard(), failing); got.ErrnoOf() != syscall.EMFILE {
		t.Errorf("failed InjectFD answered %v, want EMFILE", got)
	}
	if calls := r.take(); !reflect.DeepEqual(calls, []string{"user"}) {
		t.Errorf("called %v after a failed InjectFD", calls)
	}
}
