//go:build linux

#include "textflag.h"

// func callC(fn, a, b uintptr) uintptr calls the C function fn(a, b) with
// the System V ABI, on a stack inside this function's own 4 KiB frame (so
// the goroutine's stack has room for it whatever the C code needs).
TEXT ·callC(SB), 0, $4096-32
	MOVQ fn+0(FP), AX
	MOVQ a+8(FP), DI
	MOVQ b+16(FP), SI
	LEAQ ret+24(FP), R13 // callee-saved in C: where the result goes
	MOVQ SP, R12         // callee-saved in C: the Go stack pointer
	MOVQ SP, BX
	ADDQ $4080, BX
	ANDQ $~15, BX
	MOVQ BX, SP
	CALL AX
	MOVQ R12, SP
	MOVQ AX, (R13)
	RET
