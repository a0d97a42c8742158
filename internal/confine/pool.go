//go:build linux

package confine

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/landlock"
)

// Pool runs operations on a sandbox's behalf (opening a file, connecting a
// socket) on OS threads confined like the sandboxed program: NO_NEW_PRIVS,
// no capabilities (unless the sandbox keeps them), the same Landlock
// ruleset, and a private cwd and umask (0: callers apply the program's). An
// operation the program could not do itself fails here the same way, so
// doing it on the program's behalf grants nothing.
//
// Operations can block (opening a FIFO waits for the other end, a connect
// for the peer), so the pool grows when every thread is busy and shrinks
// back after idleTimeout.
type Pool struct {
	ruleset  *landlock.Ruleset
	keepCaps bool
	work     chan func()
	mu       sync.Mutex
	closed   bool
	wg       sync.WaitGroup
	stop     chan struct{}
}

const (
	idleTimeout  = 2 * time.Second
	unblockRetry = 50 * time.Millisecond
)

// ErrPoolClosed is returned by Do once the sandbox is shutting down.
var ErrPoolClosed = errors.New("sandlock: sandbox is shutting down")

// NewPool returns a pool whose threads are confined by rs.
func NewPool(rs *landlock.Ruleset, keepCaps bool) *Pool {
	return &Pool{ruleset: rs, keepCaps: keepCaps, work: make(chan func()), stop: make(chan struct{})}
}

// Do runs fn on a confined thread and waits for it.
func (o *Pool) Do(fn func()) error {
	done := make(chan struct{})
	job := func() { defer close(done); fn() }
	select {
	case o.work <- job:
	default:
		o.mu.Lock()
		if o.closed {
			o.mu.Unlock()
			return ErrPoolClosed
		}
		o.wg.Add(1)
		o.mu.Unlock()
		errc := make(chan error, 1)
		OnFreshThread(func() { o.worker(job, errc) })
		if err := <-errc; err != nil {
			return err
		}
	}
	<-done
	return nil
}

// DoContext runs fn like Do, for an operation that can block for as long as
// someone else decides (a FIFO waiting for its other end, a connect waiting
// for the peer). If ctx ends first, unblock is called to make fn return (by
// completing or breaking what it waits on), again every unblockRetry in
// case fn had not reached its wait yet, and DoContext still waits for fn: a
// thread is never left behind blocked.
func (o *Pool) DoContext(ctx context.Context, fn func(), unblock func()) error {
	var err error
	Interruptible(ctx, func() { err = o.Do(fn) }, unblock)
	return err
}

// Interruptible runs fn on the calling goroutine. If ctx ends first, unblock
// is called, and again every unblockRetry until fn returns; Interruptible
// returns once fn has returned and unblock will not be called again (so
// that what unblock acts on, such as an fd number, may be released then).
// Nothing runs beside fn unless ctx ends: a context.AfterFunc, not a
// goroutine per call (a goroutine is a thread wake-up here).
func Interruptible(ctx context.Context, fn func(), unblock func()) {
	if ctx.Done() == nil {
		fn()
		return
	}
	finished := make(chan struct{})
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(interrupted)
		tick := time.NewTicker(unblockRetry)
		defer tick.Stop()
		for {
			unblock()
			select {
			case <-finished:
				return
			case <-tick.C:
			}
		}
	})
	fn()
	close(finished)
	if !stop() {
		<-interrupted
	}
}

// Close stops idle workers; it does not wait for busy ones.
func (o *Pool) Close() {
	o.mu.Lock()
	if !o.closed {
		o.closed = true
		close(o.stop)
	}
	o.mu.Unlock()
}

func (o *Pool) worker(first func(), errc chan<- error) {
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

func (o *Pool) confine() error {
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
		if err := DropCapabilities(); err != nil {
			return err
		}
	}
	if o.ruleset != nil {
		return o.ruleset.RestrictThread()
	}
	return nil
}
