//go:build linux

package timeshift

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/sandlock-go/sandlock/internal/filter"
	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/sysfilter"
	"github.com/sandlock-go/sandlock/internal/sysfilter/sysfiltertest"
	"github.com/sandlock-go/sandlock/internal/sysnum"
	"github.com/sandlock-go/sandlock/internal/vdso"
)

func TestParseStart(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"2000-01-01T00:00:00Z", time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"2000-01-01T02:00:00.5+02:00", time.Date(2000, 1, 1, 0, 0, 0, 5e8, time.UTC)},
		{"946684800", time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"946684800.25", time.Date(2000, 1, 1, 0, 0, 0, 25e7, time.UTC)},
		{"0", time.Unix(0, 0)},
		{"253402300799", time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)},
	} {
		got, err := ParseStart(tc.in)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("ParseStart(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "now", "-1", "1e9", "253402300800", "1.", ".5", "1969-12-31T23:59:59Z", "2000-01-01", "2000-01-01 00:00:00"} {
		if _, err := ParseStart(in); err == nil {
			t.Errorf("ParseStart(%q) accepted", in)
		}
	}
}

// Deadlines move into the real clock's domain, exactly, and saturate
// rather than wrap or disarm.
func TestToReal(t *testing.T) {
	c := &Clock{shift: vdso.Shift{Sec: -1000, Nsec: 999_999_000}} // -999.000001 s
	for _, tc := range []struct {
		sec, nsec int64
		wantSec   int64
		wantNsec  int64
		ok        bool
	}{
		{5000, 0, 5999, 1000, true},
		{5000, 999_999_500, 6000, 500, true},
		{0, 0, 999, 1000, true},
		{math.MaxInt64 - 10, 0, math.MaxInt64, 999_999_999, true},
		{-1, 0, -1, 0, false},
		{1, 1_000_000_000, 1, 1_000_000_000, false},
		{1, -1, 1, -1, false},
	} {
		s, n, ok := c.toReal(tc.sec, tc.nsec)
		if s != tc.wantSec || n != tc.wantNsec || ok != tc.ok {
			t.Errorf("toReal(%d, %d) = %d, %d, %v; want %d, %d, %v", tc.sec, tc.nsec, s, n, ok, tc.wantSec, tc.wantNsec, tc.ok)
		}
	}
	// A clock in the future: deadlines before its start come out before
	// the epoch and become 1 ns, never 0 (which disarms a timer).
	c = &Clock{shift: vdso.Shift{Sec: 4e9, Nsec: 0}}
	if s, n, ok := c.toReal(1e9, 0); !ok || s != 0 || n != 1 {
		t.Errorf("a deadline before the start: %d, %d, %v", s, n, ok)
	}
	if s, n, ok := c.toReal(4e9, 0); !ok || s != 0 || n != 1 {
		t.Errorf("the start itself: %d, %d, %v", s, n, ok)
	}
	if s, n, ok := c.toReal(4e9+5, 7); !ok || s != 5 || n != 7 {
		t.Errorf("after the start: %d, %d, %v", s, n, ok)
	}
}

// The filter traces exactly the waits for an absolute time of a shifted
// clock, and notifies clock_gettime exactly for the shifted clocks.
func TestFilterConditions(t *testing.T) {
	for _, arch := range []*sysnum.Table{sysnum.AMD64, sysnum.ARM64} {
		cgt := arch.MustNr("clock_gettime")
		spec := &sysfilter.FilterSpec{Arch: arch, Notify: []int{cgt}, Trace: Traced(arch), NotifyExcept: map[int][]filter.Cond{cgt: unshiftedIDs()}}
		p := sysfiltertest.Compile(t, spec)
		tr := filter.Trace(TraceData)
		nr := arch.MustNr
		ptr := uint64(0x7ffd_0000_1000)
		for _, tc := range []struct {
			what string
			nr   int
			args []uint64
			want filter.Action
		}{
			{"clock_gettime REALTIME", cgt, []uint64{0, ptr}, filter.Notify},
			{"clock_gettime REALTIME_COARSE", cgt, []uint64{5, ptr}, filter.Notify},
			{"clock_gettime REALTIME_ALARM", cgt, []uint64{8, ptr}, filter.Notify},
			{"clock_gettime TAI", cgt, []uint64{11, ptr}, filter.Notify},
			{"clock_gettime MONOTONIC", cgt, []uint64{1, ptr}, filter.Allow},
			{"clock_gettime BOOTTIME", cgt, []uint64{7, ptr}, filter.Allow},
			{"clock_gettime clock 15", cgt, []uint64{15, ptr}, filter.Allow},
			{"clock_gettime clock 16", cgt, []uint64{16, ptr}, filter.Allow},
			{"clock_gettime process CPU clock", cgt, []uint64{0xfffffffa, ptr}, filter.Allow},
			{"clock_gettime REALTIME with the high half set", cgt, []uint64{1 << 32, ptr}, filter.Notify},

			{"clock_nanosleep REALTIME ABSTIME", nr("clock_nanosleep"), []uint64{0, 1, ptr, 0}, tr},
			{"clock_nanosleep TAI ABSTIME", nr("clock_nanosleep"), []uint64{11, 1, ptr, 0}, tr},
			{"clock_nanosleep REALTIME_ALARM ABSTIME", nr("clock_nanosleep"), []uint64{8, 1, ptr, 0}, tr},
			{"clock_nanosleep REALTIME relative", nr("clock_nanosleep"), []uint64{0, 0, ptr, ptr}, filter.Allow},
			{"clock_nanosleep MONOTONIC ABSTIME", nr("clock_nanosleep"), []uint64{1, 1, ptr, 0}, filter.Allow},
			{"clock_nanosleep BOOTTIME ABSTIME", nr("clock_nanosleep"), []uint64{7, 1, ptr, 0}, filter.Allow},

			{"timerfd_settime ABSTIME", nr("timerfd_settime"), []uint64{3, 1, ptr, 0}, tr},
			{"timerfd_settime ABSTIME|CANCEL_ON_SET", nr("timerfd_settime"), []uint64{3, 3, ptr, 0}, tr},
			{"timerfd_settime relative", nr("timerfd_settime"), []uint64{3, 0, ptr, 0}, filter.Allow},
			{"timer_settime ABSTIME", nr("timer_settime"), []uint64{0, 1, ptr, 0}, tr},
			{"timer_settime relative", nr("timer_settime"), []uint64{0, 0, ptr, 0}, filter.Allow},

			{"futex WAIT_BITSET|CLOCK_REALTIME", nr("futex"), []uint64{ptr, 0x109, 0, ptr}, tr},
			{"futex WAIT_BITSET|CLOCK_REALTIME|PRIVATE", nr("futex"), []uint64{ptr, 0x189, 0, ptr}, tr},
			{"futex WAIT_BITSET|CLOCK_REALTIME, no timeout", nr("futex"), []uint64{ptr, 0x189, 0, 0}, filter.Allow},
			{"futex WAIT_BITSET|CLOCK_REALTIME, timeout above 4 GiB only", nr("futex"), []uint64{ptr, 0x189, 0, 1 << 40}, tr},
			{"futex WAIT_BITSET (monotonic)", nr("futex"), []uint64{ptr, 0x89, 0, ptr}, filter.Allow},
			{"futex WAIT|CLOCK_REALTIME (relative)", nr("futex"), []uint64{ptr, 0x180, 0, ptr}, filter.Allow},
			{"futex WAIT", nr("futex"), []uint64{ptr, 0x80, 0, ptr}, filter.Allow},
			{"futex WAKE", nr("futex"), []uint64{ptr, 0x81, 1, 0}, filter.Allow},
			{"futex WAIT_REQUEUE_PI|CLOCK_REALTIME", nr("futex"), []uint64{ptr, 0x18b, 0, ptr, ptr}, tr},
			{"futex WAIT_REQUEUE_PI (monotonic)", nr("futex"), []uint64{ptr, 0x8b, 0, ptr, ptr}, filter.Allow},
			{"futex LOCK_PI", nr("futex"), []uint64{ptr, 0x86, 0, ptr}, tr},
			{"futex LOCK_PI, no timeout", nr("futex"), []uint64{ptr, 0x86, 0, 0}, filter.Allow},
			{"futex LOCK_PI2|CLOCK_REALTIME", nr("futex"), []uint64{ptr, 0x18d, 0, ptr}, tr},
			{"futex LOCK_PI2 (monotonic)", nr("futex"), []uint64{ptr, 0x8d, 0, ptr}, filter.Allow},
			{"futex UNLOCK_PI", nr("futex"), []uint64{ptr, 0x87, 0, 0}, filter.Allow},
			{"futex with an unknown high bit", nr("futex"), []uint64{ptr, 0x10109, 0, ptr}, filter.Allow},

			{"futex_waitv REALTIME", nr("futex_waitv"), []uint64{ptr, 1, 0, ptr, 0}, tr},
			{"futex_waitv MONOTONIC", nr("futex_waitv"), []uint64{ptr, 1, 0, ptr, 1}, filter.Allow},
			{"futex_waitv REALTIME, no timeout", nr("futex_waitv"), []uint64{ptr, 1, 0, 0, 0}, filter.Allow},
			{"futex_wait REALTIME", nr("futex_wait"), []uint64{ptr, 0, 0xffffffff, 2, ptr, 0}, tr},
			{"futex_wait MONOTONIC", nr("futex_wait"), []uint64{ptr, 0, 0xffffffff, 2, ptr, 1}, filter.Allow},
			{"futex_wait REALTIME, no timeout", nr("futex_wait"), []uint64{ptr, 0, 0xffffffff, 2, 0, 0}, filter.Allow},
			{"mq_timedsend with a timeout", nr("mq_timedsend"), []uint64{3, ptr, 1, 0, ptr}, tr},
			{"mq_timedsend without", nr("mq_timedsend"), []uint64{3, ptr, 1, 0, 0}, filter.Allow},
			{"mq_timedreceive with a timeout", nr("mq_timedreceive"), []uint64{3, ptr, 16, 0, ptr}, tr},
			{"nanosleep", nr("nanosleep"), []uint64{ptr, 0}, filter.Allow},
		} {
			if got := p.Eval(t, tc.nr, tc.args...); got != tc.want {
				t.Errorf("%s: %s: %v, want %v", arch.Arch, tc.what, got, tc.want)
			}
		}
	}
}

func TestField(t *testing.T) {
	timers := []byte("ID: 0\nsignal: 14/0000000000000000\nnotify: signal/pid.7\nClockID: 1\nID: 3\nsignal: 34/0000000000000000\nnotify: signal/pid.7\nClockID: 0\n")
	clock := func(id int64) (int64, bool) { return timerClock(timers, id) }
	if n, ok := clock(0); !ok || n != 1 {
		t.Errorf("timer 0: %d %v", n, ok)
	}
	if n, ok := clock(3); !ok || n != 0 {
		t.Errorf("timer 3: %d %v", n, ok)
	}
	if _, ok := clock(1); ok {
		t.Error("timer 1 found")
	}
	if n, ok := field([]byte("pos:\t0\nflags:\t02\nclockid: 11\n"), "clockid:"); !ok || n != 11 {
		t.Errorf("fdinfo clockid: %d %v", n, ok)
	}
}

// A clock syscall made from inside the process's vDSO is the stubs' own
// fallback, which the stub shifts: it is told apart by its instruction
// pointer, for the process and for the children that inherit its memory.
func TestFromVDSO(t *testing.T) {
	c := New(time.Unix(946684800, 0), func(tid int) int { return tid / 10 * 10 }) // threads 101, 102 … of process 100
	hc := func(tid uint32, ip uint64) *notify.HandlerCtx {
		h := &notify.HandlerCtx{}
		h.Notif.PID, h.Notif.Data.InstructionPointer = tid, ip
		return h
	}
	const base = 0x7fff_0000_0000
	c.SetVDSO(100, base, 8192)
	c.ProcessStart(200, 100) // a fork: the same vDSO
	for _, tc := range []struct {
		tid  uint32
		ip   uint64
		want bool
	}{
		{100, base + 0xbff, true},
		{101, base + 0x1000, true},
		{100, base - 1, false},
		{100, base + 8192, false},
		{200, base + 0xbff, true},
		{300, base + 0xbff, false}, // a process whose vDSO is not known
	} {
		if got := c.fromVDSO(hc(tc.tid, tc.ip)); got != tc.want {
			t.Errorf("task %d at %#x: %v", tc.tid, tc.ip, got)
		}
	}
	c.SetVDSO(200, 0, 0) // execs an image without a vDSO
	c.ProcessExit(100)
	if c.fromVDSO(hc(100, base+0xbff)) || c.fromVDSO(hc(200, base+0xbff)) {
		t.Error("a vDSO outlived its image")
	}
}

// FuzzParseStart: any --time-start value is an instant in 1970 … 9999 or
// an error, never a panic; an accepted instant printed as Unix seconds
// (nanoseconds included) is read back as the same instant.
func FuzzParseStart(f *testing.F) {
	for _, s := range []string{"2000-01-01T00:00:00Z", "946684800", "946684800.5", "2100-01-01T12:00:00.123456789+02:00", "", ".", "1.", "99999999999999999999", "-1", "1969-12-31T23:59:59Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseStart(s)
		if err != nil {
			return
		}
		if got.Unix() < 0 || got.Year() > 9999 {
			t.Fatalf("ParseStart(%q) = %v: out of 1970 … 9999", s, got)
		}
		back, err := ParseStart(fmt.Sprintf("%d.%09d", got.Unix(), got.Nanosecond()))
		if err != nil || !back.Equal(got) {
			t.Fatalf("ParseStart(%q) = %v; as Unix seconds it reads back as %v, %v", s, got, back, err)
		}
	})
}
