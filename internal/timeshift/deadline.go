//go:build linux

package timeshift

import (
	"bytes"
	"encoding/binary"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/filter"
	"github.com/sandlock-go/sandlock/internal/sysnum"
)

// TraceData is the filter's data on this package's trace conditions, by
// which the tracer's hook knows its stops.
const TraceData = 1

// Flags and operations of the deadline syscalls.
const (
	timerAbstime       = 1     // TIMER_ABSTIME, TFD_TIMER_ABSTIME
	futexClockRealtime = 0x100 // FUTEX_CLOCK_REALTIME
	futexPrivate       = 0x80  // FUTEX_PRIVATE_FLAG
	futexLockPI        = 6
	futexWaitBitset    = 9
	futexWaitRequeuePI = 11
	futexLockPI2       = 13
)

// A deadline syscall: which argument points at the deadline, and what it
// is.
type deadline struct {
	arg int
	// itimer: a struct itimerspec, whose it_value (the second timespec) is
	// the deadline; else a struct timespec.
	itimer bool
	// clockOf, if set, tells whether the call's timer runs on a shifted
	// clock (it is a property of the timer, not of the call).
	clockOf func(tid int, args [6]uint64) bool
}

// deadlines are the syscalls the filter traces, by name.
var deadlines = map[string]deadline{
	"clock_nanosleep": {arg: 2},
	"futex":           {arg: 3},
	"futex_waitv":     {arg: 3},
	"futex_wait":      {arg: 4},
	"mq_timedsend":    {arg: 4},
	"mq_timedreceive": {arg: 4},
	"timerfd_settime": {arg: 2, itimer: true, clockOf: timerfdShifted},
	"timer_settime":   {arg: 2, itimer: true, clockOf: posixTimerShifted},
}

// Traced returns the filter's trace conditions: exactly the calls that
// wait for an absolute time of a shifted clock. A relative timeout, a
// deadline on another clock, a call without a timeout and every futex
// operation that is not a timed realtime wait keep running unstopped.
func Traced(arch *sysnum.Table) map[int][]filter.Cond {
	tr := filter.Trace(TraceData)
	nonNull := func(arg int, pre ...filter.Test) []filter.Cond {
		// A pointer is not NULL when either half has a bit set.
		lo := append(append([]filter.Test(nil), pre...), filter.Test{Arg: arg, Op: filter.AnyBit, Value: 0xffffffff})
		hi := append(append([]filter.Test(nil), pre...), filter.Test{Arg: arg, High: true, Op: filter.AnyBit, Value: 0xffffffff})
		return []filter.Cond{{Tests: lo, Action: tr}, {Tests: hi, Action: tr}}
	}
	abs := filter.Test{Arg: 1, Op: filter.AnyBit, Value: timerAbstime}
	out := map[int][]filter.Cond{}
	add := func(name string, conds []filter.Cond) {
		if nr, ok := arch.Nr(name); ok {
			out[nr] = append(out[nr], conds...)
		}
	}
	for _, id := range family {
		add("clock_nanosleep", []filter.Cond{{Tests: []filter.Test{{Arg: 0, Value: id}, abs}, Action: tr}})
	}
	// Which clock a timer runs on is found at the stop.
	add("timerfd_settime", []filter.Cond{{Tests: []filter.Test{abs}, Action: tr}})
	add("timer_settime", []filter.Cond{{Tests: []filter.Test{abs}, Action: tr}})
	// futex: the command with FUTEX_CLOCK_REALTIME, whatever
	// FUTEX_PRIVATE_FLAG says (any other bit makes the kernel refuse the
	// call); FUTEX_LOCK_PI's timeout is always realtime.
	for _, op := range []uint32{futexWaitBitset | futexClockRealtime, futexWaitRequeuePI | futexClockRealtime, futexLockPI2 | futexClockRealtime} {
		add("futex", nonNull(3, filter.Test{Arg: 1, Mask: ^uint32(futexPrivate), Value: op}))
	}
	add("futex", nonNull(3, filter.Test{Arg: 1, Mask: ^uint32(futexPrivate | futexClockRealtime), Value: futexLockPI}))
	add("futex_waitv", nonNull(3, filter.Test{Arg: 4, Value: clockRealtime}))
	// futex_wait (futex2, Linux 6.7): its timeout, like futex_waitv's, is
	// always absolute, on the clock its last argument names.
	add("futex_wait", nonNull(4, filter.Test{Arg: 5, Value: clockRealtime}))
	add("mq_timedsend", nonNull(4))
	add("mq_timedreceive", nonNull(4))
	return out
}

// byNr maps this architecture's deadline syscalls by number.
var byNr = func() map[int]deadline {
	out := map[int]deadline{}
	for name, d := range deadlines {
		if nr, ok := sysnum.Native().Nr(name); ok {
			out[nr] = d
		}
	}
	return out
}()

// scratchBelow is how far below the stack pointer the converted deadline
// is written: past amd64's 128-byte red zone, which a leaf function may be
// using. What lies below the red zone is free by the ABI: the kernel itself
// writes a signal's frame there whenever it delivers one.
const scratchBelow = 256

// OnSeccomp serves a trace stop on the tracer's thread: it moves the
// deadline of the stopped call into the real clock's domain, into scratch
// memory, and returns what puts the argument register back at the
// syscall's exit. Anything it cannot read or write leaves the call as it
// is: the kernel then answers it as it would answer the program.
func (c *Clock) OnSeccomp(tid int, data uint16) (atExit func()) {
	if data != TraceData {
		return nil
	}
	r, err := getRegs(tid)
	if err != nil {
		return nil
	}
	d, ok := byNr[syscallNr(r)]
	if !ok {
		return nil
	}
	var args [6]uint64
	for i := range args {
		args[i] = arg(r, i)
	}
	ptr := args[d.arg]
	if ptr == 0 || (d.clockOf != nil && !d.clockOf(tid, args)) {
		return nil
	}
	size := 16
	if d.itimer {
		size = 32
	}
	b := make([]byte, size)
	if !readMem(tid, ptr, b) {
		return nil
	}
	ts := b[size-16:]
	sec, nsec := int64(binary.NativeEndian.Uint64(ts)), int64(binary.NativeEndian.Uint64(ts[8:]))
	if d.itimer && sec == 0 && nsec == 0 {
		return nil // disarms: no deadline
	}
	sec, nsec, ok = c.toReal(sec, nsec)
	if !ok {
		return nil
	}
	binary.NativeEndian.PutUint64(ts, uint64(sec))
	binary.NativeEndian.PutUint64(ts[8:], uint64(nsec))
	scratch := (stackPointer(r) - scratchBelow - uint64(size)) &^ 15
	if !writeMem(tid, scratch, b) {
		return nil
	}
	setArg(r, d.arg, scratch)
	if setRegs(tid, r) != nil {
		return nil
	}
	return func() {
		if r, err := getRegs(tid); err == nil && arg(r, d.arg) == scratch {
			setArg(r, d.arg, ptr)
			setRegs(tid, r)
		}
	}
}

// timerfdShifted reports whether the timerfd in argument 0 counts a
// shifted clock (its fdinfo says which).
func timerfdShifted(tid int, args [6]uint64) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/fdinfo/" + strconv.FormatUint(uint64(uint32(args[0])), 10))
	if err != nil {
		return false
	}
	id, ok := field(b, "clockid:")
	return ok && Shifted(int32(id))
}

// posixTimerShifted reports whether the POSIX timer in argument 0 counts
// a shifted clock.
func posixTimerShifted(tid int, args [6]uint64) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/timers")
	if err != nil {
		return false
	}
	id, ok := timerClock(b, int64(int32(args[0])))
	return ok && Shifted(int32(id))
}

// timerClock finds the clock of timer id in the text of /proc/PID/timers,
// which lists each timer's "ID:" and, a few lines later, its "ClockID:".
func timerClock(b []byte, id int64) (int64, bool) {
	current := int64(-1)
	for _, line := range bytes.Split(b, []byte("\n")) {
		if n, ok := field(line, "ID:"); ok {
			current = n
		} else if n, ok := field(line, "ClockID:"); ok && current == id {
			return n, true
		}
	}
	return 0, false
}

// field reads the number after key at a line's start in /proc text.
func field(b []byte, key string) (int64, bool) {
	for _, line := range bytes.Split(b, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte(key)); ok {
			n, err := strconv.ParseInt(string(bytes.TrimSpace(rest)), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

func readMem(pid int, addr uint64, b []byte) bool {
	n, err := unix.ProcessVMReadv(pid, []unix.Iovec{{Base: &b[0], Len: uint64(len(b))}}, []unix.RemoteIovec{{Base: uintptr(addr), Len: len(b)}}, 0)
	return err == nil && n == len(b)
}

func writeMem(pid int, addr uint64, b []byte) bool {
	n, err := unix.ProcessVMWritev(pid, []unix.Iovec{{Base: &b[0], Len: uint64(len(b))}}, []unix.RemoteIovec{{Base: uintptr(addr), Len: len(b)}}, 0)
	return err == nil && n == len(b)
}
