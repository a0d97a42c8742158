package sandlock

import (
	"errors"
	"time"
)

// ErrNameInUse is wrapped by the error for a Name that a running sandbox
// of the same user holds.
var ErrNameInUse = errors.New("sandbox name in use")

// Instance is a running sandbox of the calling user, as the registry
// holds it.
type Instance struct {
	Name       string
	Pid        int       // the program: the leader of the sandbox's process group
	Supervisor int       // the process that runs the sandbox and serves its control socket
	Started    time.Time // when the program started
	Status     string    // "running", or the mode the entry records
	Command    []string  // the program's command line, while its first process lives
}
