/*
 * The amd64 clock stubs of package vdso, in GNU assembler syntax: the
 * source of the byte table in stubs_amd64.go. TestStubTableAmd64 assembles
 * this file with gcc and checks that the table holds exactly its bytes and
 * relocations, so edit both together.
 *
 * Each stub is what the program calls in place of the vDSO function of the
 * same name. orig_* are the original vDSO functions; off_sec, off_nsec and
 * off_usec the shift, stored just before the stubs. The stubs keep the
 * System V ABI (callee-saved registers untouched, the stack 16-aligned at
 * each call) and need 24 bytes of the caller's stack.
 */
	.intel_syntax noprefix
	.text

/* int clock_gettime(clockid_t clk, struct timespec *ts): the REALTIME
 * family (0 REALTIME, 5 REALTIME_COARSE, 8 REALTIME_ALARM, 11 TAI: the
 * bits of 0x921) is shifted; every other clock, the CPU clocks' negative
 * ids included, goes straight to the original. */
	.globl clock_gettime_stub
clock_gettime_stub:
	endbr64
	cmp edi, 11
	ja 9f
	mov eax, 0x921
	bt eax, edi
	jnc 9f
	push rsi
	call orig_clock_gettime
	pop rsi
	test eax, eax
	jnz 8f
	mov rcx, [rsi+8]
	add rcx, [rip+off_nsec]
	mov rdx, [rip+off_sec]
	cmp rcx, 1000000000
	jl 1f
	sub rcx, 1000000000
	inc rdx
1:	mov [rsi+8], rcx
	add [rsi], rdx
8:	ret
9:	jmp orig_clock_gettime

/* int gettimeofday(struct timeval *tv, struct timezone *tz) */
	.globl gettimeofday_stub
gettimeofday_stub:
	endbr64
	push rdi
	call orig_gettimeofday
	pop rdi
	test eax, eax
	jnz 8f
	test rdi, rdi
	jz 8f
	mov rcx, [rdi+8]
	add rcx, [rip+off_usec]
	mov rdx, [rip+off_sec]
	cmp rcx, 1000000
	jl 1f
	sub rcx, 1000000
	inc rdx
1:	mov [rdi+8], rcx
	add [rdi], rdx
8:	ret

/* time_t time(time_t *tloc): the kernel's time() is CLOCK_REALTIME_COARSE's
 * seconds; read that clock and shift it whole, so that time() and
 * clock_gettime agree on when a second turns. */
	.globl time_stub
time_stub:
	endbr64
	push rdi
	sub rsp, 16
	mov edi, 5
	mov rsi, rsp
	call orig_clock_gettime
	test eax, eax
	jnz 9f
	mov rcx, [rsp+8]
	add rcx, [rip+off_nsec]
	mov rax, [rsp]
	add rax, [rip+off_sec]
	cmp rcx, 1000000000
	jl 1f
	inc rax
1:	add rsp, 16
	pop rdi
	test rdi, rdi
	jz 2f
	mov [rdi], rax
2:	ret
9:	add rsp, 16
	pop rdi
	jmp orig_time
