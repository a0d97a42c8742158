// Package notify is the seccomp user-notification supervisor: it reads
// notifications from a listener, runs each through the chain of Handlers
// registered for its syscall, and sends the answer.
//
// Builtin features and user extensions are both Handlers in one dispatch
// Table; the supervisor loop knows nothing of any feature.
package notify

import (
	"context"
	"errors"

	"github.com/sandlock-go/sandlock/internal/seccomp"
)

// Notif is the kernel's notification (struct seccomp_notif), copied.
type Notif = seccomp.Notif

// NotifData is the syscall a notification is about (struct seccomp_data).
type NotifData = seccomp.NotifData

// A Handler answers notifications for the syscalls it is registered on.
//
// Handle is called once per notification, concurrently from several
// goroutines (the supervisor serves notifications in parallel so that a slow
// answer to one thread never stalls another's syscall), so implementations
// must be safe for concurrent use, like an http.Handler. ctx is cancelled
// when the sandbox ends. Returning Continue passes the notification on; any
// other Action ends the chain and becomes the answer.
type Handler interface {
	Handle(ctx context.Context, hc *HandlerCtx) Action
}

// HandlerFunc adapts an ordinary function to Handler.
type HandlerFunc func(ctx context.Context, hc *HandlerCtx) Action

// Handle calls f(ctx, hc).
func (f HandlerFunc) Handle(ctx context.Context, hc *HandlerCtx) Action { return f(ctx, hc) }

// HandlerCtx is what a handler knows of one notification.
type HandlerCtx struct {
	// Notif is the kernel's notification: its id, the task's pid (thread
	// id) and the syscall with its raw arguments.
	Notif Notif
	// NotifFD is the supervisor's listener, for SECCOMP_IOCTL_* requests of
	// the handler's own.
	NotifFD int
}

// ErrTaskGone is returned by the child-memory helpers when the task that
// raised the notification has died or its syscall was interrupted, so the
// memory read may belong to another process.
var ErrTaskGone = seccomp.ErrGone

// ErrNullPointer is returned for a NULL address.
var ErrNullPointer = errors.New("sandlock: NULL pointer")
