package fsdeny

import (
	"errors"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/confine"
	"github.com/sandlock-go/sandlock/internal/landlock"
)

// opener runs filesystem operations on the sandbox's behalf, on OS threads
// confined like the sandboxed program: NO_NEW_PRIVS, no capabilities (unless
// the sandbox keeps them) and the same Landlock ruleset. An operation the
// program could not do itself fails here the same way, so doing it on the
// program's behalf grants nothing.
//
// Operations can block (opening a FIFO waits for the other end), so the
// pool grows when every thread is busy and shrinks back after idleTimeout.
type opener struct {
	ruleset  *landlock.Ruleset
	keepCaps bool
	work     chan func()
	mu       sync.Mutex
	closed   bool
	wg       sync.WaitGroup
	stop     chan struct{}
}

const idleTimeout = 2 * time.Second

var errClosed = errors.New("fsdeny: sandbox is shutting down")

func newOpener(rs *landlock.Ruleset, keepCaps bool) *opener {
	return &opener{ruleset: rs, keepCaps: keepCaps, work: make(chan func()), stop: make(chan struct{})}
}

// do runs fn on a confined thread and waits for it.
func (o *opener) do(fn func()) error {
	done := make(chan struct{})
	job := func() { defer close(done); fn() }
	select {
	case o.work <- job:
	default:
		o.mu.Lock()
		if o.closed {
			o.mu.Unlock()
			return errClosed
		}
		o.wg.Add(1)
		o.mu.Unlock()
		errc := make(chan error, 1)
		confine.OnFreshThread(func() { o.worker(job, errc) })
		if err := <-errc; err != nil {
			return err
		}
	}
	<-done
	return nil
}

// close stops idle workers; it does not wait for busy ones.
func (o *opener) close() {
	o.mu.Lock()
	if !o.closed {
		o.closed = true
		close(o.stop)
	}
	o.mu.Unlock()
}

func (o *opener) worker(first func(), errc chan<- error) {
	defer o.wg.Done()
	if err := o.confine(); err != nil {
		errc <- err
		return
	}
	errc <- nil
	first()
	timer := time.NewTimer(idleTimeout)
	defer timer.Stop()
	for {
		select {
		case job := <-o.work:
			job()
			timer.Reset(idleTimeout)
		case <-timer.C:
			return
		case <-o.stop:
			return
		}
	}
}

func (o *opener) confine() error {
	// A private cwd/umask: files are created with the task's umask, applied
	// by the caller, without touching the umask of the rest of the process.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return err
	}
	unix.Umask(0)
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return err
	}
	if !o.keepCaps {
		if err := confine.DropCapabilities(); err != nil {
			return err
		}
	}
	if o.ruleset != nil {
		return o.ruleset.RestrictThread()
	}
	return nil
}
