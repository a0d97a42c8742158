package sandlock

import (
	"github.com/sandlock-go/sandlock/internal/fielderr"
	"github.com/sandlock-go/sandlock/internal/landlock"
	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/session"
)

// The errors the package returns, for errors.As and errors.Is. Every error
// about a Sandbox field is a *FieldError; a failure of a step of starting
// the program (before it runs) is a *StartError; a handler registration
// error is a *SyscallError.
type (
	// FieldError is an invalid Sandbox field: Field names it, Value is the
	// offending value when one value is at fault, Err says why.
	FieldError = fielderr.FieldError
	// StartError is a step of starting the program that failed (Step,
	// e.g. "exec /bin/foo" or "landlock", and Err): nothing of the
	// program ran.
	StartError = session.StepError
)

var (
	// ErrUnsupported is wrapped by the error for a set field whose feature
	// this version does not have.
	ErrUnsupported = fielderr.ErrUnsupported
	// ErrCommandNotFound is wrapped by the error for a command that no
	// directory of the program's PATH holds.
	ErrCommandNotFound = session.ErrNotFound
	// ErrTaskGone is returned by HandlerCtx's memory helpers when the task
	// that raised the notification has died or its syscall was interrupted.
	ErrTaskGone = notify.ErrTaskGone
)

// ParseProtection parses a protection's name as the CLI's --allow-degraded
// and --disable and profiles take it ("fs-refer", "net-tcp", …).
func ParseProtection(name string) (Protection, error) { return landlock.ParseProtection(name) }
