//go:build linux

package notify

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeMem is a synthetic address space: pages from base on, each mapped (a
// byte slice of pageSize) or not (nil); everything else is unmapped. Its
// read mimics process_vm_readv on one page-bounded range: all of it, or
// EFAULT. It records every call and reports calls that break scanCString's
// promises.
type fakeMem struct {
	base  uint64
	pages [][]byte
	calls []fakeRead
}

type fakeRead struct {
	at uint64
	n  int
}

func (m *fakeMem) page(a uint64) []byte {
	if a < m.base {
		return nil
	}
	i := (a - m.base) / pageSize
	if i >= uint64(len(m.pages)) {
		return nil
	}
	return m.pages[i]
}

func (m *fakeMem) byteAt(a uint64) (byte, bool) {
	p := m.page(a)
	if p == nil {
		return 0, false
	}
	return p[a%pageSize], true
}

func (m *fakeMem) read(at uint64, buf []byte) (int, error) {
	m.calls = append(m.calls, fakeRead{at, len(buf)})
	if len(buf) == 0 || at%pageSize+uint64(len(buf)) > pageSize {
		// Crossing a page boundary: a real read could then fault on the
		// next page although the string ended before it. Refuse loudly.
		return 0, fmt.Errorf("read of %d bytes at %#x crosses a page boundary or is empty", len(buf), at)
	}
	p := m.page(at)
	if p == nil {
		return 0, unix.EFAULT
	}
	off := at % pageSize
	return copy(buf, p[off:off+uint64(len(buf))]), nil
}

// refCString is the byte-at-a-time reference: the bytes up to the first
// NUL or max; an error iff an unmapped byte (or the end of the address
// space) comes first. last is the address of the last byte that had to be
// looked at (the NUL, the max-th byte, or the faulting one).
func refCString(m *fakeMem, addr uint64, max int) (s string, terminated bool, fault bool, last uint64) {
	var out []byte
	for i := 0; i < max; i++ {
		a := addr + uint64(i)
		if a < addr {
			return "", false, true, a - 1 // ran off the end: the last byte was the top one
		}
		b, ok := m.byteAt(a)
		if !ok {
			return "", false, true, a
		}
		if b == 0 {
			return string(out), true, false, a
		}
		out = append(out, b)
	}
	return string(out), false, false, addr + uint64(max) - 1
}

// check runs scanCString on m and compares it with the reference.
func (m *fakeMem) check(t *testing.T, addr uint64, max int) {
	t.Helper()
	m.calls = nil
	s, term, err := scanCString(addr, max, m.read)
	ws, wterm, wfault, last := refCString(m, addr, max)
	desc := fmt.Sprintf("addr %#x (base %#x, %d pages, mapped %v), max %d", addr, m.base, len(m.pages), m.mapped(), max)
	if wfault {
		if err == nil || !errors.Is(err, unix.EFAULT) {
			t.Fatalf("%s: got %q, %v, %v; want an EFAULT error", desc, trunc(s), term, err)
		}
		if s != "" || term {
			t.Errorf("%s: an error came with %q, terminated %v", desc, trunc(s), term)
		}
	} else if err != nil || s != ws || term != wterm {
		t.Fatalf("%s: got %q, %v, %v; want %q, %v, nil", desc, trunc(s), term, err, trunc(ws), wterm)
	}
	if max <= 0 {
		if len(m.calls) != 0 {
			t.Errorf("%s: %d reads for max %d", desc, len(m.calls), max)
		}
		return
	}
	for _, c := range m.calls {
		if c.n <= 0 || c.at%pageSize+uint64(c.n) > pageSize {
			t.Errorf("%s: read of %d bytes at %#x is not within one page", desc, c.n, c.at)
		}
		if c.at > last {
			t.Errorf("%s: read at %#x, past the last byte needed (%#x)", desc, c.at, last)
		}
		if c.at-addr+uint64(c.n) > uint64(max) {
			t.Errorf("%s: read of %d bytes at %#x goes past max", desc, c.n, c.at)
		}
	}
	// One read per page touched, no more.
	if pagesTouched := (last/pageSize - addr/pageSize) + 1; uint64(len(m.calls)) > pagesTouched {
		t.Errorf("%s: %d reads for %d pages", desc, len(m.calls), pagesTouched)
	}
}

func (m *fakeMem) mapped() string {
	var b strings.Builder
	for _, p := range m.pages {
		if p == nil {
			b.WriteByte('-')
		} else {
			b.WriteByte('M')
		}
	}
	return b.String()
}

func trunc(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%s…(%d bytes)", s[:40], len(s))
	}
	return s
}

// filled returns a mapped page of c, with a NUL at each of nuls.
func filled(c byte, nuls ...int) []byte {
	p := bytes.Repeat([]byte{c}, int(pageSize))
	for _, i := range nuls {
		p[i] = 0
	}
	return p
}

func TestScanCString(t *testing.T) {
	ps := int(pageSize)
	const base = 0x7f0000000000
	last := base + uint64(ps) - 1 // the last byte of the first page

	t.Run("NUL at the end of a page before an unmapped one", func(t *testing.T) {
		m := &fakeMem{base: base, pages: [][]byte{filled('a', ps-1), nil}}
		for _, start := range []uint64{base, last - 10, last - 1, last} {
			m.check(t, start, 4096)
			m.check(t, start, 1<<20)
		}
		m.calls = nil
		s, term, err := scanCString(last-3, 100, m.read)
		if s != "aaa" || !term || err != nil || len(m.calls) != 1 {
			t.Errorf("got %q, %v, %v in %d reads; want \"aaa\", true, nil in 1", s, term, err, len(m.calls))
		}
	})

	t.Run("no NUL before an unmapped page", func(t *testing.T) {
		m := &fakeMem{base: base, pages: [][]byte{filled('a'), nil}}
		m.check(t, base+100, 2*ps)
		_, _, err := scanCString(base+100, 2*ps, m.read)
		if !errors.Is(err, unix.EFAULT) {
			t.Errorf("err %v, want EFAULT", err)
		}
	})

	t.Run("max reached exactly at the page end", func(t *testing.T) {
		m := &fakeMem{base: base, pages: [][]byte{filled('a'), nil}}
		m.calls = nil
		s, term, err := scanCString(last-9, 10, m.read)
		if s != "aaaaaaaaaa" || term || err != nil {
			t.Errorf("got %q, %v, %v; want 10 bytes, false, nil", s, term, err)
		}
		if len(m.calls) != 1 {
			t.Errorf("%d reads, want 1 (the unmapped page must not be touched)", len(m.calls))
		}
		m.check(t, last-9, 10)
		m.check(t, last-9, 11)
	})

	t.Run("string across mapped pages", func(t *testing.T) {
		m := &fakeMem{base: base, pages: [][]byte{filled('a'), filled('b'), filled('c', 17), nil}}
		m.check(t, base+5, 1<<20)
		m.check(t, base, 3*ps)
		m.check(t, base+uint64(ps)-1, 2)
		s, term, err := scanCString(base+uint64(ps)-2, 4, m.read)
		if s != "aabb" || term || err != nil {
			t.Errorf("got %q, %v, %v", s, term, err)
		}
	})

	t.Run("start in an unmapped page", func(t *testing.T) {
		m := &fakeMem{base: base, pages: [][]byte{nil, filled('a', 3)}}
		m.check(t, base+10, 100)
		m.check(t, base-1, 100)
		m.check(t, base+2*uint64(ps), 100)
	})

	t.Run("empty string and max <= 0", func(t *testing.T) {
		m := &fakeMem{base: base, pages: [][]byte{filled('a', 0)}}
		s, term, err := scanCString(base, 10, m.read)
		if s != "" || !term || err != nil {
			t.Errorf("empty string: %q, %v, %v", s, term, err)
		}
		for _, max := range []int{0, -1, -1 << 30} {
			m.check(t, base, max)
		}
	})

	t.Run("end of the address space", func(t *testing.T) {
		top := -uint64(2 * ps) // the last two pages
		m := &fakeMem{base: top, pages: [][]byte{filled('a'), filled('b')}}
		m.check(t, top+10, 3*ps)
		m.check(t, ^uint64(0), 2)
		m.check(t, ^uint64(0)-4, 5)
		_, _, err := scanCString(^uint64(0)-4, 6, m.read)
		if !errors.Is(err, unix.EFAULT) {
			t.Errorf("a string running off the address space: %v, want EFAULT", err)
		}
		m = &fakeMem{base: top, pages: [][]byte{filled('a'), filled('b', ps-1)}}
		m.check(t, top+10, 3*ps)
	})

	t.Run("partial read", func(t *testing.T) {
		// process_vm_readv reports the bytes it read before a fault: a NUL
		// among them ends the string, without them it is an error.
		for _, tc := range []struct {
			data string
			want string
			term bool
		}{{"ab\x00", "ab", true}, {"abc", "", false}} {
			var calls int
			read := func(at uint64, buf []byte) (int, error) {
				calls++
				return copy(buf, tc.data), unix.EFAULT
			}
			s, term, err := scanCString(base, 100, read)
			if s != tc.want || term != tc.term || (err == nil) != tc.term || calls != 1 {
				t.Errorf("partial read %q: got %q, %v, %v in %d calls", tc.data, s, term, err, calls)
			}
		}
	})
}

// fakeFromFuzz builds an address space of 1 to 6 pages from layout: for
// each page a flags byte (bit 0: mapped; bit 1: one NUL at the position
// given by the next two bytes; bit 2: bytes of the layout itself as the
// contents) and two position bytes. top puts the pages at the end of the
// address space.
func fakeFromFuzz(layout []byte, top bool) *fakeMem {
	get := func(i int) byte {
		if len(layout) == 0 {
			return 0
		}
		return layout[i%len(layout)]
	}
	n := 1 + int(get(0))%6
	m := &fakeMem{base: 0x7f0000000000}
	if top {
		m.base = -uint64(n) * pageSize
	}
	for i := 0; i < n; i++ {
		flags := get(1 + 3*i)
		if flags&1 == 0 {
			m.pages = append(m.pages, nil)
			continue
		}
		p := filled('a' + byte(i))
		if flags&4 != 0 && len(layout) > 0 {
			for j := range p {
				p[j] = layout[(j+i)%len(layout)]
			}
		}
		if flags&2 != 0 {
			pos := int(binary.LittleEndian.Uint16([]byte{get(2 + 3*i), get(3 + 3*i)}))
			p[pos%len(p)] = 0
		}
		m.pages = append(m.pages, p)
	}
	return m
}

func FuzzScanCString(f *testing.F) {
	ps := uint32(pageSize)
	// Seeds: NUL at a page's last byte before an unmapped page, a string
	// across pages, unmapped starts, the top of the address space.
	f.Add([]byte{1, 3, 0xff, 0x0f, 0}, uint32(ps-20), int32(8192), false)
	f.Add([]byte{2, 1, 0, 0, 3, 5, 0, 0}, uint32(100), int32(1<<20), false)
	f.Add([]byte{2, 0, 0, 0, 1, 0, 0}, uint32(10), int32(100), true)
	f.Add([]byte{1, 1, 0, 0, 1}, uint32(ps-10), int32(10), false)
	f.Add([]byte{3, 5, 1, 2, 7, 0, 0x10, 0}, uint32(ps+7), int32(3*ps), true)
	f.Add([]byte{}, uint32(0), int32(0), false)
	f.Fuzz(func(t *testing.T, layout []byte, offset uint32, max int32, top bool) {
		m := fakeFromFuzz(layout, top)
		span := uint64(len(m.pages)+1) * pageSize
		addr := m.base + uint64(offset)%span // may lie past the pages (unmapped, or wrapped to 0)
		limit := int32(span) + 64
		mx := int(max % limit)
		m.check(t, addr, mx)
	})
}
