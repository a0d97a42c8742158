package session

import "errors"

// StepError is a failure of the child stage, before the program runs.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return e.Step + ": " + e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }

// ErrNotFound is returned by LookPath when no directory of PATH has the file.
var ErrNotFound = errors.New("command not found")
