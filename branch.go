package sandlock

import "fmt"

// BranchError is a copy-on-write branch that could not be committed,
// aborted or kept as the run's end asked: the workdir is as a commit
// interrupted at that point leaves it (each file old or new), and the
// branch stays in Dir for RecoverWorkdir.
type BranchError struct {
	Action string // "commit", "abort" or "keep"
	Dir    string
	Err    error
}

func (e *BranchError) Error() string {
	return fmt.Sprintf("sandlock: %s of the copy-on-write branch %s failed: %v", e.Action, e.Dir, e.Err)
}

func (e *BranchError) Unwrap() error { return e.Err }

// BranchReport is what RecoverWorkdir found of one branch.
type BranchReport struct {
	Dir   string // the branch's directory
	State string // committed (an interrupted commit, completed), kept, left (by a run that did not end), running, removed
	Err   error
}
