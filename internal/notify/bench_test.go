//go:build linux

package notify

import (
	"context"
	"log/slog"
	"syscall"
	"testing"
)

// BenchmarkDispatch is one notification through a chain of a builtin
// check and a user handler, both answering Continue: the supervisor's own
// cost per notified syscall, without the kernel round trip.
func BenchmarkDispatch(b *testing.B) {
	t := NewTable()
	cont := HandlerFunc(func(context.Context, *HandlerCtx) Action { return Continue() })
	const nr = 110
	t.Add(nr, PhaseDeny, "builtin", true, cont)
	t.AddUser(nr, cont)
	hc := notif(nr)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	inject := func(Action) syscall.Errno { return 0 }
	b.ReportAllocs()
	for b.Loop() {
		if a := t.dispatch(ctx, hc, log, inject); !a.IsContinue() {
			b.Fatal(a)
		}
	}
}
