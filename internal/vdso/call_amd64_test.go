//go:build linux

package vdso

// callC calls the C function at fn with two integer arguments. Pointers
// passed as uintptr escape to the heap: callC's large frame may grow (and
// move) the goroutine's stack on the way in.
//
//go:uintptrescapes
func callC(fn, a, b uintptr) uintptr
