//go:build linux

package vdso

import (
	"fmt"
	"math"
)

// A stubSet is one architecture's clock stubs: machine code with holes
// (fixups) that installing fills in with PC-relative offsets to the
// original functions and to the shift.
type stubSet struct {
	code    []byte
	entries []stubEntry
	fixups  []fixup
	// rel32 writes a fixup's value; nil means a signed 32-bit
	// little-endian displacement (amd64's rel32 and RIP-relative disp32).
	rel32 func(code []byte, at int, value int64) error
}

// stubEntry is a stub that takes the place of a vDSO function.
type stubEntry struct {
	replaces string // the vDSO symbol (its aliases follow it)
	at       int    // the stub's offset in code
}

// target is what a fixup refers to.
type target uint8

const (
	origClockGettime target = iota
	origGettimeofday
	origTime
	offSec  // int64: the shift's seconds
	offNsec // int64: the shift's nanoseconds, in [0, 1e9)
	offUsec // int64: the same in microseconds
)

// fixup is a hole in the code: the value target + addend - (the hole's
// own address) goes there.
type fixup struct {
	at     int
	to     target
	addend int64
}

// dataSize is the shift's block before the stubs: off_sec, off_nsec,
// off_usec, padded to 16 bytes.
const dataSize = 32

// install places the data block and the stubs in the image's tail, fills
// the fixups and points the functions' symbols at the stubs.
func (st *stubSet) install(im *image, sh Shift) error {
	origName := map[target]string{
		origClockGettime: "__vdso_clock_gettime",
		origGettimeofday: "__vdso_gettimeofday",
		origTime:         "__vdso_time",
	}
	addr := map[target]int64{}
	for t, name := range origName {
		if s, ok := im.lookup(name); ok {
			addr[t] = int64(s.value)
		}
	}
	data, err := im.alloc(dataSize + len(st.code))
	if err != nil {
		return err
	}
	le.PutUint64(im.b[data:], uint64(sh.Sec))
	le.PutUint64(im.b[data+8:], uint64(sh.Nsec))
	le.PutUint64(im.b[data+16:], uint64(sh.Nsec/1000))
	addr[offSec], addr[offNsec], addr[offUsec] = int64(data), int64(data+8), int64(data+16)

	base := data + dataSize
	code := im.b[base : base+len(st.code)]
	copy(code, st.code)
	// A stub whose original function this vDSO lacks is left out: its
	// fixups are not filled and no symbol points at it.
	missing := map[target]bool{}
	for t := range origName {
		if _, ok := addr[t]; !ok {
			missing[t] = true
		}
	}
	usable := func(e stubEntry) bool {
		for _, f := range st.fixups {
			if f.at >= e.at && f.at < st.end(e) && missing[f.to] {
				return false
			}
		}
		return true
	}
	for _, f := range st.fixups {
		to, ok := addr[f.to]
		if !ok {
			continue
		}
		v := to + f.addend - int64(base+f.at)
		if st.rel32 != nil {
			if err := st.rel32(code, f.at, v); err != nil {
				return err
			}
			continue
		}
		if v < math.MinInt32 || v > math.MaxInt32 {
			return fmt.Errorf("vdso: fixup at %#x out of range", f.at)
		}
		le.PutUint32(code[f.at:], uint32(int32(v)))
	}
	for _, e := range st.entries {
		orig, ok := im.lookup(e.replaces)
		if !ok || !usable(e) {
			continue
		}
		im.retarget(orig.value, uint64(base+e.at))
	}
	return nil
}

// end is where stub e's code ends: at the next stub, or the code's end.
func (st *stubSet) end(e stubEntry) int {
	end := len(st.code)
	for _, o := range st.entries {
		if o.at > e.at && o.at < end {
			end = o.at
		}
	}
	return end
}
