//go:build linux

package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/seccomp"
	"github.com/sandlock-go/sandlock/internal/sysnum"
)

// Config configures a Supervisor.
type Config struct {
	// Listener is the seccomp listener fd. The supervisor owns it and closes
	// it when it stops.
	Listener int
	Table    *Table
	Log      *slog.Logger
	// KillAll sends sig to every process of the sandbox (KillGroup).
	KillAll func(sig syscall.Signal)
	// SlowAfter is how long a handler chain that may block runs before
	// another receiver is started so other notifications keep flowing.
	// Zero means a millisecond.
	SlowAfter time.Duration
}

// Supervisor serves one sandbox's notifications.
//
// One receiver goroutine, locked to its OS thread, blocks in
// SECCOMP_IOCTL_NOTIF_RECV and runs each notification's handler chain
// inline: with SYNC_WAKE_UP the kernel hands the notification to it on the
// notifying task's CPU, which is what makes a round trip cost a few
// microseconds. A chain that may block (any user handler, some builtins)
// arms a watchdog; if it is still running after SlowAfter while no other
// receiver is waiting, the watchdog starts another receiver, so one slow
// answer never stalls other threads' syscalls. A receiver that finishes while
// another is waiting retires, so the pool shrinks back to one.
type Supervisor struct {
	fd        int
	table     *Table
	log       *slog.Logger
	killAll   func(syscall.Signal)
	slowAfter time.Duration
	pollFirst bool

	ctx    context.Context
	cancel context.CancelFunc

	idle   atomic.Int32 // receivers waiting in RECV
	hungUp atomic.Bool
	// active counts the receivers running or about to (a deferred answer
	// runs on one); the last one to finish closes the listener and done.
	active atomic.Int32
	// listener is a duplicate of the listener fd that the netpoller
	// watches until the first notification, or nil. It is closed (and so
	// leaves the runtime's epoll set) when the receiver starts: an fd left
	// in the epoll set would wake the netpoller's thread at every
	// notification, a thread hand-off for nothing.
	listener *os.File
	// phase is awaiting until the first receiver starts (receiving), or
	// until Finish ends a supervisor that never needed one (finished).
	phase    atomic.Int32
	deferSem chan struct{}
	done     chan struct{}

	// noDefer holds the syscalls Defer is refused on.
	noDefer map[int32]bool

	// interruptible holds the syscalls that can natively fail with EINTR;
	// continued records, per task, such a syscall whose notification was
	// answered Continue and that the task may still be in (see Restartable).
	interruptible map[int32]bool
	continuedMu   sync.Mutex
	continued     map[int32]int32 // tid → syscall number
	nContinued    atomic.Int32    // len(continued), read without the lock
}

// Start starts serving the listener. It returns at once.
func Start(cfg Config) *Supervisor {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Supervisor{
		fd:        cfg.Listener,
		table:     cfg.Table,
		log:       cfg.Log,
		killAll:   cfg.KillAll,
		slowAfter: cfg.SlowAfter,
		ctx:       ctx,
		cancel:    cancel,
		deferSem:  make(chan struct{}, MaxDeferred),
		done:      make(chan struct{}),
		noDefer:   make(map[int32]bool),

		interruptible: make(map[int32]bool),
		continued:     make(map[int32]int32),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.slowAfter == 0 {
		s.slowAfter = time.Millisecond
	}
	// Since Linux 6.6 (the release that added SYNC_WAKE_UP) a blocked RECV
	// returns once every task using the filter is gone; before it, RECV would
	// block forever then, so poll for POLLHUP first.
	// SANDLOCK_SYNC_WAKEUP=0 leaves the flag off, to measure what it buys.
	s.pollFirst = os.Getenv("SANDLOCK_SYNC_WAKEUP") == "0" || !seccomp.SetSyncWakeUp(s.fd)
	for _, name := range []string{"execve", "execveat", "clone", "clone3", "fork", "vfork"} {
		if nr, ok := sysnum.Native().Nr(name); ok {
			s.noDefer[int32(nr)] = true
		}
	}
	for _, name := range interruptibleSyscalls {
		if nr, ok := sysnum.Native().Nr(name); ok && s.table.Has(nr) {
			s.interruptible[int32(nr)] = true
		}
	}
	// Until the first notification, the listener is watched by the runtime's
	// netpoller: a sandbox whose program never makes a notified syscall
	// costs no thread. The first one starts the receiver.
	s.listener = s.watchable()
	if s.listener == nil {
		s.phase.Store(receiving)
	}
	s.active.Add(1)
	go s.awaitFirst()
	return s
}

// Phases of a supervisor.
const (
	awaiting  = iota // only awaitFirst runs, parked in the netpoller
	receiving        // a receiver has started
	finished         // Finish came first: done is closed
)

// leave ends a receiver or deferred operation; the last one closes the
// listener and marks the supervisor done (without a goroutine waiting for
// it: one thread hand-off less at the end of every sandbox).
func (s *Supervisor) leave() {
	if s.active.Add(-1) > 0 {
		return
	}
	unix.Close(s.fd)
	close(s.done)
}

// watchable registers a duplicate of the listener with the netpoller, or
// returns nil if it cannot (then the receiver starts at once). The
// duplicate shares the listener's open file, so O_NONBLOCK is set on both:
// the kernel's NOTIF_RECV ignores it and blocks all the same.
func (s *Supervisor) watchable() *os.File {
	dup, err := unix.FcntlInt(uintptr(s.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return nil
	}
	return os.NewFile(uintptr(dup), "seccomp-listener")
}

// awaitFirst waits, without a thread of its own, until the listener has a
// notification or hangs up, then becomes the receiver. A listener that hung
// up without a notification (the program made no notified syscall) needs
// none.
func (s *Supervisor) awaitFirst() {
	if s.listener != nil {
		var revents int16
		if rc, err := s.listener.SyscallConn(); err == nil {
			rc.Read(func(fd uintptr) bool {
				pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
				n, _ := unix.Poll(pfd, 0)
				revents = pfd[0].Revents
				return n > 0
			})
		}
		// Out of the netpoller's epoll set before the first RECV.
		s.listener.Close()
		if !s.phase.CompareAndSwap(awaiting, receiving) {
			// Finish has ended the supervisor; only the listener is
			// left to close.
			unix.Close(s.fd)
			return
		}
		if revents&unix.POLLIN == 0 && revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 {
			s.hungUp.Store(true)
			s.leave()
			return
		}
	}
	s.receive()
}

// Done is closed once every task using the filter is gone, every answer has
// been sent and the listener is closed.
func (s *Supervisor) Done() <-chan struct{} { return s.done }

// Finish tells the supervisor that no task using the filter is left. If no
// receiver has ever started, nothing can be pending: Done is closed at once
// rather than when the netpoller reports the listener's hang-up (which can
// take a while on a busy runtime), and the listener is closed when it does.
// Otherwise the receivers end on their own, as they would without Finish.
func (s *Supervisor) Finish() {
	if s.phase.CompareAndSwap(awaiting, finished) {
		close(s.done)
	}
}

// Stop cancels the context handlers and deferred functions see. It does not
// wait: the supervisor ends when the last task using the filter is gone.
func (s *Supervisor) Stop() { s.cancel() }

func (s *Supervisor) receive() {
	defer s.leave()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	w := &watchdog{s: s}
	w.timer = time.AfterFunc(time.Hour, w.tick)
	w.timer.Stop()
	defer w.timer.Stop()

	var n Notif
	for {
		s.idle.Add(1)
		err := s.recv(&n)
		s.idle.Add(-1)
		if err != nil {
			if s.hungUp.Load() {
				return
			}
			continue
		}
		if s.nContinued.Load() > 0 {
			s.forgetContinued(int32(n.PID))
		}
		hc := &HandlerCtx{Notif: n, NotifFD: s.fd}
		quick := s.table.quick(n.Data.Nr)
		if !quick {
			w.start()
		}
		a := s.table.dispatch(s.ctx, hc, s.log, func(a Action) unix.Errno { return s.installFD(hc.Notif.ID, a) })
		if a.kind == actDefer {
			// The deferred function runs here, under the watchdog: if it
			// blocks, another receiver takes over the listener and this
			// one becomes the deferred answer's thread. Handing it to
			// another thread instead costs a cross-CPU wake-up on every
			// deferred answer, as much as a loopback connect itself on a
			// small VM.
			if quick {
				w.start()
			}
			a = s.runDeferred(hc, a)
			quick = false
		}
		if !quick {
			w.end()
		}
		s.answer(hc, a)
		if s.idle.Load() > 0 {
			return // another receiver is waiting; this one retires
		}
	}
}

// unstall runs when a handler chain has been running for SlowAfter: if no
// receiver is waiting for the next notification, start one. Never once the
// last receiver has gone (active is 0): the listener fd is closed then, and
// its number may already be another sandbox's listener.
func (s *Supervisor) unstall() {
	if s.idle.Load() != 0 || s.hungUp.Load() {
		return
	}
	for {
		n := s.active.Load()
		if n == 0 {
			return
		}
		if s.active.CompareAndSwap(n, n+1) {
			break
		}
	}
	go s.receive()
}

// A watchdog notices a receiver's handler chain (one that may block) that
// has run for SlowAfter, and unstalls the supervisor. It costs a chain two
// atomic increments: its timer is not set and stopped for every chain (which
// cost the receiver a tenth of a notified round trip) but ticks every
// SlowAfter while chains run, and stops after a period without any. A chain
// seen running at two consecutive ticks has run for at least SlowAfter (at
// most twice that).
type watchdog struct {
	s     *Supervisor
	timer *time.Timer
	// seq grows by one when a chain starts and when it ends: it is odd
	// while one runs.
	seq   atomic.Uint64
	armed atomic.Bool // the timer is set, or its callback runs

	mu        sync.Mutex // the callback's own state
	lastSeq   uint64     // seq at the previous tick
	unstalled uint64     // the chain (its seq) another receiver was started for
}

func (w *watchdog) start() {
	w.seq.Add(1)
	if !w.armed.Load() && w.armed.CompareAndSwap(false, true) {
		w.timer.Reset(w.s.slowAfter)
	}
}

func (w *watchdog) end() { w.seq.Add(1) }

func (w *watchdog) tick() {
	w.mu.Lock()
	defer w.mu.Unlock()
	seq := w.seq.Load()
	if seq == w.lastSeq {
		if seq&1 == 1 {
			if seq != w.unstalled {
				w.unstalled = seq
				w.s.unstall()
			}
		} else {
			// Idle for a whole period: stop ticking. A chain that
			// started meanwhile saw the timer armed and did not set it:
			// then go on ticking, unless a later one has set it again.
			w.armed.Store(false)
			if w.seq.Load() == seq || !w.armed.CompareAndSwap(false, true) {
				return
			}
		}
	}
	w.lastSeq = seq
	w.timer.Reset(w.s.slowAfter)
}

// recv reads the next notification. It returns an error when the listener
// hung up (hungUp is then set) or when a notification vanished before it
// could be read (its task died).
func (s *Supervisor) recv(n *Notif) error {
	if s.pollFirst {
		for {
			pfd := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLIN}}
			_, err := unix.Poll(pfd, -1)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				s.hungUp.Store(true)
				return err
			}
			if pfd[0].Revents&unix.POLLIN == 0 {
				s.hungUp.Store(true)
				return errHungUp
			}
			break
		}
	}
	err := seccomp.Recv(s.fd, n)
	if err == nil {
		return nil
	}
	pfd := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLIN}}
	if _, perr := unix.Poll(pfd, 0); perr != nil || pfd[0].Revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 && pfd[0].Revents&unix.POLLIN == 0 {
		s.hungUp.Store(true)
	}
	return err
}

var errHungUp = errors.New("seccomp listener hung up")

// answer sends a's answer to the notification.
func (s *Supervisor) answer(hc *HandlerCtx, a Action) {
	id := hc.Notif.ID
	switch a.kind {
	case actContinue:
		if s.interruptible[hc.Notif.Data.Nr] {
			s.rememberContinued(int32(hc.Notif.PID), hc.Notif.Data.Nr)
		}
		s.send(&seccomp.Resp{ID: id, Flags: seccomp.FlagContinue})
	case actErrno:
		s.send(&seccomp.Resp{ID: id, Error: -int32(a.errno)})
	case actReturn:
		s.send(&seccomp.Resp{ID: id, Val: a.val})
	case actKillGroup:
		if s.killAll != nil {
			s.killAll(a.sig)
		}
		s.send(&seccomp.Resp{ID: id, Error: -int32(unix.EPERM)})
	case actInjectFD:
		// Only a deferred function's answer gets here; in a chain, dispatch
		// installs the fd and goes on.
		if errno := s.installFD(id, a); errno != 0 {
			if errno != unix.ENOENT {
				s.send(&seccomp.Resp{ID: id, Error: -int32(errno)})
			}
			return
		}
		s.send(&seccomp.Resp{ID: id, Flags: seccomp.FlagContinue})
	case actInjectSend:
		defer a.release()
		s.injectSend(id, a.file, a.fdFlags, a.onInject)
	case actInjectBytes:
		f, err := SealedMemfd(a.content)
		if err != nil {
			s.log.Warn("sandlock: building injected file", "err", err)
			s.send(&seccomp.Resp{ID: id, Error: -int32(unix.EIO)})
			return
		}
		defer f.Close()
		s.injectSend(id, f, unix.O_CLOEXEC, nil)
	default: // a Defer never gets here (receive runs it)
		s.send(&seccomp.Resp{ID: id, Error: -int32(unix.EPERM)})
	}
}

// installFD does InjectFD's installation and returns 0, or the errno to fail
// the syscall with (ENOENT: the task is gone).
func (s *Supervisor) installFD(id uint64, a Action) unix.Errno {
	defer a.release()
	src, err := fileFD(a.file)
	if err == nil {
		_, err = seccomp.AddFD(s.fd, id, src, a.targetFD, 0, false)
	}
	if err == nil {
		return 0
	}
	return injectErrno(err)
}

func (s *Supervisor) injectSend(id uint64, f *os.File, flags uint32, onInject func(int)) {
	src, err := fileFD(f)
	if err != nil {
		s.injectFailed(id, err)
		return
	}
	if onInject == nil {
		if _, err := seccomp.AddFD(s.fd, id, src, -1, flags, true); err != nil {
			s.injectFailed(id, err)
		}
		return
	}
	// Install without answering, report the number, then answer: the task
	// cannot use the fd before onInject has run.
	childFD, err := seccomp.AddFD(s.fd, id, src, -1, flags, false)
	if err != nil {
		s.injectFailed(id, err)
		return
	}
	if !s.reportInjected(id, onInject, childFD) {
		s.send(&seccomp.Resp{ID: id, Error: -int32(unix.EPERM)})
		return
	}
	s.send(&seccomp.Resp{ID: id, Val: int64(childFD)})
}

// reportInjected runs an InjectFDSendTracked callback, which is user code:
// a panic in it is recovered and logged like a handler's, and the syscall
// then fails with EPERM (the fd stays installed in the task, unnamed).
func (s *Supervisor) reportInjected(id uint64, onInject func(int), childFD int) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("sandlock: InjectFDSendTracked callback panicked; failing the syscall with EPERM",
				"id", id, "fd", childFD, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			ok = false
		}
	}()
	onInject(childFD)
	return true
}

// injectFailed fails the syscall whose fd could not be installed: an
// injection that did not happen must never turn into a Continue.
func (s *Supervisor) injectFailed(id uint64, err error) {
	if errno := injectErrno(err); errno != unix.ENOENT {
		s.send(&seccomp.Resp{ID: id, Error: -int32(errno)})
	}
}

// injectErrno is the errno a failed injection fails the syscall with:
// ENOENT when the task is gone (nothing to answer), the task's own EMFILE or
// EBADF, else EIO.
func injectErrno(err error) unix.Errno {
	var e unix.Errno
	if errors.As(err, &e) && (e == unix.ENOENT || e == unix.EMFILE || e == unix.EBADF) {
		return e
	}
	return unix.EIO
}

func (s *Supervisor) send(r *seccomp.Resp) {
	if err := seccomp.Send(s.fd, r); err != nil && !errors.Is(err, unix.ENOENT) {
		s.log.Debug("sandlock: answering notification", "id", r.ID, "err", err)
	}
}

// runDeferred runs a Defer's function on the calling receiver and returns
// its answer. At most MaxDeferred run at once (beyond: EAGAIN); the exec
// and fork family are refused (EPERM); a function that defers again fails
// the syscall with EIO.
func (s *Supervisor) runDeferred(hc *HandlerCtx, a Action) Action {
	if s.noDefer[hc.Notif.Data.Nr] {
		return Errno(unix.EPERM)
	}
	select {
	case s.deferSem <- struct{}{}:
	default:
		return Errno(unix.EAGAIN)
	}
	defer func() { <-s.deferSem }()
	next := callDeferred(s.ctx, a.deferred, hc, s.log)
	if next.kind == actDefer {
		next = Errno(unix.EIO)
	}
	return next
}

func callDeferred(ctx context.Context, fn func(context.Context) Action, hc *HandlerCtx, log *slog.Logger) (a Action) {
	return callHandler(ctx, entry{name: "deferred function", h: HandlerFunc(func(ctx context.Context, _ *HandlerCtx) Action {
		return fn(ctx)
	})}, hc, log)
}

// fileFD returns f's descriptor without switching it to blocking mode, as
// (*os.File).Fd would.
func fileFD(f *os.File) (int, error) {
	if f == nil {
		return -1, errors.New("sandlock: inject of a nil file")
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if err := rc.Control(func(u uintptr) { fd = int(u) }); err != nil {
		return -1, err
	}
	return fd, nil
}

// SealedMemfd returns a rewound memfd holding content, sealed so that
// nobody can write, grow or shrink it, or change the seals: what
// InjectBytes injects, for a handler that injects it with InjectFDSend and
// flags of its own.
func SealedMemfd(content []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate("sandlock", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "sandlock-memfd")
	for off := 0; off < len(content); {
		n, err := unix.Write(fd, content[off:])
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("writing memfd: %w", err)
		}
		off += n
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_WRITE|unix.F_SEAL_GROW|unix.F_SEAL_SHRINK|unix.F_SEAL_SEAL); err != nil {
		f.Close()
		return nil, fmt.Errorf("sealing memfd: %w", err)
	}
	if _, err := unix.Seek(fd, 0, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("rewinding memfd: %w", err)
	}
	return f, nil
}

// interruptibleSyscalls can natively fail with EINTR (a blocking wait that
// a signal interrupts): for them a -ERESTARTSYS may come from the syscall
// itself after a Continue, and must then stay what the kernel made it.
var interruptibleSyscalls = []string{
	"read", "readv", "pread64", "preadv", "preadv2", "write", "writev", "pwrite64", "pwritev", "pwritev2",
	"open", "openat", "openat2", "creat", "connect", "accept", "accept4",
	"recvfrom", "recvmsg", "recvmmsg", "sendto", "sendmsg", "sendmmsg", "sendfile", "splice", "tee", "vmsplice",
	"copy_file_range", "wait4", "waitid", "nanosleep", "clock_nanosleep", "pause", "rt_sigsuspend",
	"rt_sigtimedwait", "select", "pselect6", "poll", "ppoll", "epoll_wait", "epoll_pwait", "epoll_pwait2",
	"futex", "futex_waitv", "flock", "fcntl", "ioctl", "msgrcv", "msgsnd", "semop", "semtimedop",
	"mq_timedsend", "mq_timedreceive", "io_getevents", "io_pgetevents", "getrandom", "fallocate",
}

// maxContinued bounds the continued records: a thread that exits leaves its
// record behind. Past the bound the records are dropped, which at worst
// restarts a blocking syscall a signal interrupted instead of failing it
// with EINTR.
const maxContinued = 4096

func (s *Supervisor) rememberContinued(tid, nr int32) {
	s.continuedMu.Lock()
	if len(s.continued) >= maxContinued {
		clear(s.continued)
	}
	s.continued[tid] = nr
	s.nContinued.Store(int32(len(s.continued)))
	s.continuedMu.Unlock()
}

// forgetContinued drops tid's record: it made a new notified syscall, so it
// is no longer in the one that was continued.
func (s *Supervisor) forgetContinued(tid int32) {
	s.continuedMu.Lock()
	delete(s.continued, tid)
	s.nContinued.Store(int32(len(s.continued)))
	s.continuedMu.Unlock()
}

// Restartable reports whether tid's syscall nr, about to fail with EINTR
// because a signal interrupted it, was interrupted while its notification
// waited to be received, and should therefore be restarted: the native
// syscall would not have been interrupted there. (Once received, the wait
// for the answer is killable only.) A notified syscall that can natively
// fail with EINTR and was answered Continue is running in the kernel, and
// its EINTR is the kernel's own. The record of that Continue is kept until
// the task's next notification, so an interruptible syscall interrupted
// before its notification was received, right after the same syscall was
// continued, still fails with EINTR: a narrow case, kept on the side of
// native behaviour for blocking syscalls.
func (s *Supervisor) Restartable(tid, nr int) bool {
	if !s.table.Has(nr) {
		return false
	}
	if !s.interruptible[int32(nr)] {
		return true
	}
	s.continuedMu.Lock()
	last, ok := s.continued[int32(tid)]
	s.continuedMu.Unlock()
	return !ok || last != int32(nr)
}
