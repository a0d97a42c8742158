// Package fielderr is the error about one setting of a sandbox, which
// every feature returns when it validates its settings: the library names
// the Sandbox field, the CLI the flag, a profile the key and its line.
package fielderr

import (
	"errors"
	"fmt"
)

// FieldError is an invalid Sandbox field. The CLI names the flag instead of
// the field (see cmd/sandlock).
type FieldError struct {
	Field string // the Sandbox field, e.g. "FSReadable"
	Value string // the offending value, if one value is at fault
	Err   error
}

func (e *FieldError) Error() string {
	if e.Err == ErrUnsupported {
		return fmt.Sprintf("sandlock: %s %v", e.Field, e.Err)
	}
	if e.Value != "" {
		return fmt.Sprintf("sandlock: %s %q: %v", e.Field, e.Value, e.Err)
	}
	return fmt.Sprintf("sandlock: %s: %v", e.Field, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

// ErrUnsupported is wrapped by errors about fields whose feature does not
// exist yet.
var ErrUnsupported = errors.New("is not supported yet")

// Unsupported is the error for a set field whose feature does not exist yet.
func Unsupported(field string) error {
	return &FieldError{Field: field, Err: ErrUnsupported}
}

// New returns the error for a field, with the offending value if one value
// is at fault.
func New(field, value string, err error) error {
	return &FieldError{Field: field, Value: value, Err: err}
}
