//go:build linux

// Package timeshift gives a sandbox a wall clock of its own (TimeStart,
// --time-start): the REALTIME family of clocks (CLOCK_REALTIME, _COARSE,
// _ALARM and CLOCK_TAI) starts at a chosen instant and runs at the normal
// rate. MONOTONIC, BOOTTIME and the CPU clocks are left alone, so timeouts,
// elapsed times and Python's time.monotonic stay right.
//
// The clock is reached three ways, and each is shifted exactly once:
//
//   - through the vDSO, where nearly every read happens: package vdso's
//     stubs, written into each new image at the exec stop, add the shift
//     (see Clock.Patch). A read stays a function call.
//   - by a raw syscall (a static binary, syscall(2), a vDSO that falls
//     back): clock_gettime on a REALTIME-family clock id (the filter tests
//     the id, so other clocks are never notified), gettimeofday and time
//     are answered by the supervisor, real time plus the shift. A call made
//     from inside the process's vDSO is the stubs' own fallback, which the
//     stub shifts on its way out: it runs as it is. The instruction pointer
//     is a register, and the vDSO's place is known from the exec stop.
//   - as an absolute deadline, which the kernel compares with the real
//     clock: clock_nanosleep with TIMER_ABSTIME, timerfd_settime and
//     timer_settime with the absolute flag, futex waits on the realtime
//     clock (FUTEX_WAIT_BITSET, FUTEX_WAIT_REQUEUE_PI and FUTEX_LOCK_PI2
//     with FUTEX_CLOCK_REALTIME; FUTEX_LOCK_PI, whose timeout is always
//     realtime), futex_waitv and futex_wait on CLOCK_REALTIME, mq_timedsend and
//     mq_timedreceive. The filter sends exactly these calls to the tracer
//     (SECCOMP_RET_TRACE: it tests the clock id, the flags and that a
//     timeout is given, so a relative timeout, a monotonic deadline and the
//     uncontended futex path never stop); at the stop the deadline is
//     copied, moved into the real clock's domain, written below the
//     thread's stack pointer (past the red zone) and the argument register
//     pointed at the copy. The kernel then blocks natively, with its own
//     signal and restart semantics; at the syscall's exit the register is
//     put back. The program's own struct is never written, so a loop that
//     reuses it (pthread_cond_timedwait, a periodic clock_nanosleep) cannot
//     drift, and a restarted call converts the program's value afresh.
//     This is a matter of timing, not of security: a program racing its own
//     deadline only fools itself.
//
// Not shifted: timestamps the kernel writes itself (file times, socket
// timestamps, the kernel log, /proc/stat's boot time), and a program that
// reads the vDSO's data page or calls the original vDSO functions by
// address. Setting the clock is denied by the filter in every sandbox.
package timeshift

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/vdso"
)

// Clock ids of the REALTIME family (include/uapi/linux/time.h).
const (
	clockRealtime       = 0
	clockRealtimeCoarse = 5
	clockRealtimeAlarm  = 8
	clockTAI            = 11
)

// family are the clock ids that are shifted.
var family = []uint32{clockRealtime, clockRealtimeCoarse, clockRealtimeAlarm, clockTAI}

// Shifted reports whether clock id is of the REALTIME family.
func Shifted(id int32) bool {
	switch id {
	case clockRealtime, clockRealtimeCoarse, clockRealtimeAlarm, clockTAI:
		return true
	}
	return false
}

// ParseStart parses a start instant: RFC 3339 (fractions of a second
// allowed), or Unix seconds (an integer or a decimal fraction). It must
// lie in 1970 … 9999.
func ParseStart(s string) (time.Time, error) {
	var t time.Time
	if sec, frac, hasFrac := strings.Cut(s, "."); isNumber(sec) && (!hasFrac || isNumber(frac)) {
		n, err := strconv.ParseInt(sec, 10, 64)
		if err != nil || n > 253402300799 {
			return t, errors.New("out of range (1970 … 9999)")
		}
		ns := int64(0)
		if hasFrac {
			f := (frac + "000000000")[:9]
			ns, _ = strconv.ParseInt(f, 10, 64)
		}
		return time.Unix(n, ns).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return t, errors.New("want RFC 3339 (2000-01-01T00:00:00Z) or Unix seconds")
	}
	if t.Unix() < 0 || t.Year() > 9999 {
		return t, errors.New("out of range (1970 … 9999)")
	}
	return t, nil
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Clock is a sandbox's shifted wall clock. Its methods are safe for
// concurrent use.
type Clock struct {
	shift vdso.Shift
	// TGID returns the process of a task.
	tgid func(tid int) int

	mu sync.Mutex
	// vdsos is where each process's vDSO code lies, from its exec stop.
	vdsos map[int]span
}

// span is an address range [lo, hi).
type span struct{ lo, hi uint64 }

// New returns a clock that reads start now, and runs from there. tgid
// gives a task's process (the tracer knows; the feature sets it at Plan).
func New(start time.Time, tgid func(tid int) int) *Clock {
	// In seconds and nanoseconds: thousands of years do not fit a
	// time.Duration.
	now := time.Now()
	return &Clock{
		shift: vdso.NewShift(start.Unix()-now.Unix(), int64(start.Nanosecond()-now.Nanosecond())),
		tgid:  tgid,
		vdsos: make(map[int]span),
	}
}

// Shift returns the offset added to the REALTIME family.
func (c *Clock) Shift() vdso.Shift { return c.shift }

// SetVDSO records that process pid's vDSO code lies at [base, base+size):
// a clock syscall made from there is the stubs' own fallback. Called at
// the exec stop, once the vDSO is patched.
func (c *Clock) SetVDSO(pid int, base uint64, size int) {
	c.mu.Lock()
	c.vdsos[pid] = span{base, base + uint64(size)}
	c.mu.Unlock()
}

// ProcessStart gives a new process its parent's vDSO (a fork copies the
// address space; a vfork child runs in its parent's).
func (c *Clock) ProcessStart(pid, parent int) {
	c.mu.Lock()
	if s, ok := c.vdsos[parent]; ok {
		c.vdsos[pid] = s
	}
	c.mu.Unlock()
}

// ProcessExit forgets an exited process.
func (c *Clock) ProcessExit(pid int) {
	c.mu.Lock()
	delete(c.vdsos, pid)
	c.mu.Unlock()
}

// fromVDSO reports whether the notified syscall was made from the
// process's vDSO.
func (c *Clock) fromVDSO(hc *notify.HandlerCtx) bool {
	ip := hc.Notif.Data.InstructionPointer
	pid := c.tgid(int(hc.Notif.PID))
	c.mu.Lock()
	s, ok := c.vdsos[pid]
	c.mu.Unlock()
	return ok && ip >= s.lo && ip < s.hi
}

// now returns clock id's real time plus the shift, in nanoseconds.
func (c *Clock) now(id int32) (sec, nsec int64, err error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(id, &ts); err != nil {
		return 0, 0, err
	}
	sec, nsec = ts.Sec+c.shift.Sec, ts.Nsec+c.shift.Nsec
	if nsec >= 1e9 {
		sec, nsec = sec+1, nsec-1e9
	}
	return sec, nsec, nil
}

// fault is a write of the answer that failed: EFAULT, as the kernel's
// copy_to_user.
func fault(err error) notify.Action {
	if errors.Is(err, notify.ErrTaskGone) {
		return notify.Errno(unix.ESRCH) // nobody is waiting for it
	}
	return notify.Errno(unix.EFAULT)
}

func (c *Clock) clockGettime(_ context.Context, hc *notify.HandlerCtx) notify.Action {
	id := int32(hc.Notif.Data.Args[0])
	if !Shifted(id) || c.fromVDSO(hc) {
		return notify.Continue()
	}
	sec, nsec, err := c.now(id)
	if err != nil {
		var e unix.Errno
		if errors.As(err, &e) {
			return notify.Errno(e)
		}
		return notify.Errno(unix.EINVAL)
	}
	var b [16]byte
	binary.NativeEndian.PutUint64(b[:], uint64(sec))
	binary.NativeEndian.PutUint64(b[8:], uint64(nsec))
	if err := hc.WriteMem(hc.Notif.Data.Args[1], b[:]); err != nil {
		return fault(err)
	}
	return notify.ReturnValue(0)
}

func (c *Clock) gettimeofday(_ context.Context, hc *notify.HandlerCtx) notify.Action {
	if c.fromVDSO(hc) {
		return notify.Continue()
	}
	tv, tz := hc.Notif.Data.Args[0], hc.Notif.Data.Args[1]
	if tz != 0 {
		// The kernel's timezone (sys_tz), as settimeofday set it.
		var zone [8]byte
		if _, _, e := unix.RawSyscall(unix.SYS_GETTIMEOFDAY, 0, uintptr(unsafe.Pointer(&zone[0])), 0); e != 0 {
			return notify.Errno(e)
		}
		if err := hc.WriteMem(tz, zone[:]); err != nil {
			return fault(err)
		}
	}
	if tv != 0 {
		sec, nsec, err := c.now(clockRealtime)
		if err != nil {
			return notify.Errno(unix.EINVAL)
		}
		var b [16]byte
		binary.NativeEndian.PutUint64(b[:], uint64(sec))
		binary.NativeEndian.PutUint64(b[8:], uint64(nsec/1000))
		if err := hc.WriteMem(tv, b[:]); err != nil {
			return fault(err)
		}
	}
	return notify.ReturnValue(0)
}

func (c *Clock) time(_ context.Context, hc *notify.HandlerCtx) notify.Action {
	if c.fromVDSO(hc) {
		return notify.Continue()
	}
	// The kernel's time() is the coarse clock's second.
	sec, _, err := c.now(clockRealtimeCoarse)
	if err != nil {
		return notify.Errno(unix.EINVAL)
	}
	if tloc := hc.Notif.Data.Args[0]; tloc != 0 {
		var b [8]byte
		binary.NativeEndian.PutUint64(b[:], uint64(sec))
		if err := hc.WriteMem(tloc, b[:]); err != nil {
			return fault(err)
		}
	}
	return notify.ReturnValue(sec)
}

// toReal moves an absolute time of the shifted clock into the real one's
// domain, saturating: a result before the epoch becomes one nanosecond
// past it (already due, and never the zero that disarms a timer). ok is
// false for a timespec the kernel would refuse, which is left as it is.
func (c *Clock) toReal(sec, nsec int64) (int64, int64, bool) {
	if sec < 0 || nsec < 0 || nsec >= 1e9 {
		return sec, nsec, false
	}
	s, n := sec-c.shift.Sec, nsec-c.shift.Nsec
	if n < 0 {
		s, n = s-1, n+1e9
	}
	switch {
	case c.shift.Sec < 0 && s < sec: // overflowed upwards
		return math.MaxInt64, 999_999_999, true
	case s < 0 || (s == 0 && n == 0):
		return 0, 1, true
	}
	return s, n, true
}
