//go:build linux

// Package vdso rewrites a process's vDSO, the small shared library the
// kernel maps into every image, so that deterministic runs (issue 15) reach
// the program even where it never makes a syscall:
//
//   - the wall clock: clock_gettime, gettimeofday and time are redirected
//     to stubs that call the original function and add a fixed offset to
//     the REALTIME family (CLOCK_REALTIME, _COARSE, _ALARM, CLOCK_TAI), so
//     a clock read stays a function call of a few nanoseconds;
//   - randomness: getrandom is hidden, so that C libraries and the Go
//     runtime fall back to the getrandom syscall, which the supervisor
//     answers.
//
// The stubs are machine code kept as byte tables per architecture (see
// stubs_amd64.go and testdata/stubs_amd64.S), placed in the unused tail of
// the vDSO's last page, after everything the image holds (its section
// headers come last). The dynamic symbols are redirected by rewriting their
// st_value; hidden symbols become undefined (st_shndx SHN_UNDEF, st_value
// 0), which every dynamic linker and the Go runtime's own vDSO parser skip.
// Nothing of the original code changes: a caller that resolved a symbol
// before the patch (the supervisor's own runtime, in the in-process tests)
// keeps calling the original.
//
// The patch is applied by the tracer at the exec stop, before the new image
// has run its first instruction and so before its dynamic linker or runtime
// has looked any symbol up; the process gets a private copy of the pages
// written (a debugger's breakpoint works the same way). It is a timing and
// reproducibility device, not a security boundary: a program can find the
// original functions, or read the clock's data page itself, and so only
// fool itself.
package vdso

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
)

// ELF constants (elf.h) the parser needs.
const (
	emX8664   = 62
	emAArch64 = 183

	ptLoad    = 1
	shtDynsym = 11

	shnUndef = 0
	sttFunc  = 2
)

// ErrUnsupportedArch is returned for a clock shift on an architecture whose
// stubs are not written yet.
var ErrUnsupportedArch = errors.New("the vDSO clock stubs are not written for this architecture yet")

// symbol is one entry of the image's dynamic symbol table.
type symbol struct {
	name  string
	value uint64
	off   int // where its Elf64_Sym lies in the image
	info  byte
	shndx uint16
}

// image is a parsed vDSO.
type image struct {
	b       []byte
	machine uint16
	syms    []symbol
	// free is the first byte after everything the image holds, and size
	// its page-rounded size, the extent of the mapping: [free, size) is
	// the tail the stubs may use.
	free, size int
}

var le = binary.LittleEndian

// pageSize is the size of the pages the kernel maps the vDSO in.
var pageSize = os.Getpagesize()

// Size returns the size of the vDSO mapping whose ELF header (at least 64
// bytes) is hdr: its content, page-rounded.
func Size(hdr []byte) (int, error) {
	if len(hdr) < 64 || string(hdr[:4]) != "\x7fELF" {
		return 0, errors.New("vdso: not an ELF image")
	}
	if hdr[4] != 2 || hdr[5] != 1 {
		return 0, errors.New("vdso: not a 64-bit little-endian ELF image")
	}
	shoff, shentsize, shnum := le.Uint64(hdr[40:]), uint64(le.Uint16(hdr[58:])), uint64(le.Uint16(hdr[60:]))
	phoff, phentsize, phnum := le.Uint64(hdr[32:]), uint64(le.Uint16(hdr[54:])), uint64(le.Uint16(hdr[56:]))
	end := max(shoff+shentsize*shnum, phoff+phentsize*phnum)
	if shoff > 1<<20 || phoff > 1<<20 || end > 1<<20 {
		return 0, errors.New("vdso: implausible header")
	}
	return roundUp(int(end)), nil
}

func roundUp(n int) int { return (n + pageSize - 1) &^ (pageSize - 1) }

// parse reads a vDSO image: its dynamic symbols and where its content ends.
// b is kept (and later patched) as it is.
func parse(b []byte) (*image, error) {
	size, err := Size(b)
	if err != nil {
		return nil, err
	}
	if len(b) < size {
		return nil, fmt.Errorf("vdso: image of %d bytes, its headers need %d", len(b), size)
	}
	im := &image{b: b[:size], machine: le.Uint16(b[18:]), size: size}
	in := func(off, n uint64) bool { return off <= uint64(size) && n <= uint64(size)-off }

	// Everything the image holds: program headers' file ranges, sections'
	// file ranges (but NOBITS), and both header tables.
	phoff, phentsize, phnum := le.Uint64(b[32:]), int(le.Uint16(b[54:])), int(le.Uint16(b[56:]))
	shoff, shentsize, shnum := le.Uint64(b[40:]), int(le.Uint16(b[58:])), int(le.Uint16(b[60:]))
	if phentsize < 56 || shentsize < 64 || !in(phoff, uint64(phentsize*phnum)) || !in(shoff, uint64(shentsize*shnum)) {
		return nil, errors.New("vdso: malformed header tables")
	}
	free := max(phoff+uint64(phentsize*phnum), shoff+uint64(shentsize*shnum), 64)
	for i := 0; i < phnum; i++ {
		ph := b[int(phoff)+i*phentsize:]
		off, filesz := le.Uint64(ph[8:]), le.Uint64(ph[32:])
		if !in(off, filesz) {
			return nil, errors.New("vdso: a segment lies outside the image")
		}
		if le.Uint32(ph) == ptLoad && le.Uint64(ph[16:]) != off {
			// The kernel links its vDSO at 0: an address is an offset.
			return nil, errors.New("vdso: a segment's address is not its offset")
		}
		free = max(free, off+filesz)
	}
	const shtNobits = 8
	var dynsym, dynstr []byte
	var dynsymOff uint64
	for i := 0; i < shnum; i++ {
		sh := b[int(shoff)+i*shentsize:]
		typ, off, sz := le.Uint32(sh[4:]), le.Uint64(sh[24:]), le.Uint64(sh[32:])
		if typ == shtNobits || typ == 0 {
			continue
		}
		if !in(off, sz) {
			return nil, errors.New("vdso: a section lies outside the image")
		}
		free = max(free, off+sz)
		if typ != shtDynsym {
			continue
		}
		link := int(le.Uint32(sh[40:]))
		if link >= shnum {
			return nil, errors.New("vdso: bad string table link")
		}
		str := b[int(shoff)+link*shentsize:]
		soff, ssz := le.Uint64(str[24:]), le.Uint64(str[32:])
		if !in(soff, ssz) {
			return nil, errors.New("vdso: the string table lies outside the image")
		}
		dynsym, dynsymOff, dynstr = b[off:off+sz], off, b[soff:soff+ssz]
	}
	if dynsym == nil {
		return nil, errors.New("vdso: no dynamic symbol table")
	}
	const symSize = 24
	for i := 0; i+symSize <= len(dynsym); i += symSize {
		s := dynsym[i:]
		nameOff := int(le.Uint32(s))
		if nameOff >= len(dynstr) {
			return nil, errors.New("vdso: a symbol name lies outside the string table")
		}
		name := dynstr[nameOff:]
		if j := bytes.IndexByte(name, 0); j >= 0 {
			name = name[:j]
		}
		im.syms = append(im.syms, symbol{
			name: string(name), info: s[4], shndx: le.Uint16(s[6:]), value: le.Uint64(s[8:]),
			off: int(dynsymOff) + i,
		})
	}
	im.free = int(free+15) &^ 15
	return im, nil
}

// lookup returns the defined function symbol name.
func (im *image) lookup(name string) (symbol, bool) {
	for _, s := range im.syms {
		if s.name == name && s.shndx != shnUndef && s.info&0xf == sttFunc {
			return s, true
		}
	}
	return symbol{}, false
}

// retarget points every defined function symbol whose value is from (the
// function and its aliases: clock_gettime and __vdso_clock_gettime) at to.
func (im *image) retarget(from, to uint64) int {
	n := 0
	for _, s := range im.syms {
		if s.value == from && s.shndx != shnUndef && s.info&0xf == sttFunc {
			le.PutUint64(im.b[s.off+8:], to)
			n++
		}
	}
	return n
}

// hide makes every symbol whose value is from (a function and its aliases)
// undefined: dynamic linkers and the Go runtime then find no such function.
func (im *image) hide(from uint64) {
	for _, s := range im.syms {
		if s.value == from && s.shndx != shnUndef && s.info&0xf == sttFunc {
			le.PutUint16(im.b[s.off+6:], shnUndef)
			le.PutUint64(im.b[s.off+8:], 0)
		}
	}
}

// alloc reserves n bytes of the tail, 16-aligned, and returns their offset.
// The tail must still be zero: the kernel pads the image with zeros, and
// anything else means this is not a pristine vDSO.
func (im *image) alloc(n int) (int, error) {
	at := im.free
	if at+n > im.size {
		return 0, fmt.Errorf("vdso: %d bytes of stubs do not fit in the %d bytes left after the image", n, im.size-at)
	}
	for _, c := range im.b[at : at+n] {
		if c != 0 {
			return 0, errors.New("vdso: the tail of the image is not free (patched already?)")
		}
	}
	im.free = (at + n + 15) &^ 15
	return at, nil
}

// Shift is an offset added to the REALTIME family of clocks. It is a whole
// number of microseconds, so that gettimeofday (microseconds) and
// clock_gettime (nanoseconds) agree to the digit: Nsec is in [0, 1e9) and a
// multiple of 1000; Sec may be negative.
type Shift struct {
	Sec  int64
	Nsec int64
}

// NewShift returns the Shift of sec seconds and nsec nanoseconds (any
// sign: nsec may be outside [0, 1e9)), truncated to microseconds towards
// minus infinity.
func NewShift(sec, nsec int64) Shift {
	sec, nsec = sec+nsec/1e9, nsec%1e9
	if nsec < 0 {
		sec, nsec = sec-1, nsec+1e9
	}
	return Shift{Sec: sec, Nsec: nsec - nsec%1000}
}

// Nanoseconds returns the shift as a count of nanoseconds.
func (s Shift) Nanoseconds() int64 { return s.Sec*1e9 + s.Nsec }

// Patch says what to change in a vDSO.
type Patch struct {
	// Clock, if set, shifts the REALTIME family of clocks.
	Clock *Shift
	// HideGetrandom makes getrandom unresolvable, so that callers make the
	// syscall instead.
	HideGetrandom bool
}

// Apply returns a patched copy of the vDSO image orig (its whole mapping).
func (p Patch) Apply(orig []byte) ([]byte, error) {
	im, err := parse(bytes.Clone(orig))
	if err != nil {
		return nil, err
	}
	if p.Clock != nil {
		if err := im.shiftClock(*p.Clock); err != nil {
			return nil, err
		}
	}
	if p.HideGetrandom {
		for _, name := range []string{"__vdso_getrandom", "__kernel_getrandom"} {
			if s, ok := im.lookup(name); ok {
				im.hide(s.value)
			}
		}
	}
	return im.b, nil
}

// shiftClock adds the stubs of the image's architecture.
func (im *image) shiftClock(sh Shift) error {
	if sh.Nsec < 0 || sh.Nsec >= 1e9 || sh.Nsec%1000 != 0 {
		return fmt.Errorf("vdso: malformed shift %+v", sh)
	}
	var st *stubSet
	switch im.machine {
	case emX8664:
		st = &amd64Stubs
	default:
		return ErrUnsupportedArch
	}
	return st.install(im, sh)
}

// Memory is a stopped process's memory, as the tracer reaches it: writes
// succeed on read-only mappings.
type Memory interface {
	ReadMem(addr uint64, b []byte) error
	WriteMem(addr uint64, b []byte) error
}

// Patcher applies one Patch to the vDSO of each image a sandbox execs. The
// kernel maps the same vDSO into every process of one architecture, so the
// patched image is computed once and then only compared and written.
type Patcher struct {
	patch Patch

	mu            sync.Mutex
	orig, patched []byte // the last original seen and its patched copy
}

// NewPatcher returns a Patcher for p.
func NewPatcher(p Patch) *Patcher { return &Patcher{patch: p} }

// Apply patches the vDSO mapped at base in mem, and returns the size of the
// mapping: [base, base+size) holds the vDSO's code (the stubs' included).
func (pp *Patcher) Apply(mem Memory, base uint64) (int, error) {
	hdr := make([]byte, 64)
	if err := mem.ReadMem(base, hdr); err != nil {
		return 0, fmt.Errorf("vdso: reading its header: %w", err)
	}
	size, err := Size(hdr)
	if err != nil {
		return 0, err
	}
	cur := make([]byte, size)
	if err := mem.ReadMem(base, cur); err != nil {
		return 0, fmt.Errorf("vdso: reading it: %w", err)
	}
	pp.mu.Lock()
	patched := pp.patched
	if !bytes.Equal(cur, pp.orig) {
		if patched, err = pp.patch.Apply(cur); err != nil {
			pp.mu.Unlock()
			return 0, err
		}
		pp.orig, pp.patched = cur, patched
	}
	pp.mu.Unlock()
	// Only the pages that change are written: each one written becomes a
	// private copy of the process.
	for off := 0; off < size; off += pageSize {
		end := min(off+pageSize, size)
		if bytes.Equal(cur[off:end], patched[off:end]) {
			continue
		}
		if err := mem.WriteMem(base+uint64(off), patched[off:end]); err != nil {
			return 0, fmt.Errorf("vdso: writing it: %w", err)
		}
	}
	return size, nil
}
