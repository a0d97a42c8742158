//go:build linux

package tracer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Regs are a task's general-purpose registers, as PTRACE_GETREGSET
// (NT_PRSTATUS) reads them on this architecture (on amd64, Rip, Rsp, Rax …;
// on arm64, Regs[0..30], Sp, Pc, Pstate).
type Regs = unix.PtraceRegs

// Tags of the auxiliary vector (include/uapi/linux/auxvec.h), those the
// exec hooks are known to need.
const (
	AtNull        = 0  // end of the vector
	AtPhdr        = 3  // the program's ELF program headers, in memory
	AtPagesz      = 6  // the page size
	AtBase        = 7  // where the ELF interpreter (ld.so) was loaded; 0 without one
	AtEntry       = 9  // the program's entry point
	AtRandom      = 25 // address of 16 random bytes the kernel put on the stack
	AtExecfn      = 31 // address of the path string given to execve
	AtSysinfoEhdr = 33 // address of the vDSO's ELF header; absent without a vDSO
)

// AuxvEntry is one entry of an auxiliary vector.
type AuxvEntry struct {
	Tag, Value uint64
}

// Auxv is a new image's auxiliary vector, in the kernel's order, without its
// AT_NULL terminator.
type Auxv []AuxvEntry

// Get returns the value of the first entry with tag, and whether there is
// one.
func (a Auxv) Get(tag uint64) (uint64, bool) {
	for _, e := range a {
		if e.Tag == tag {
			return e.Value, true
		}
	}
	return 0, false
}

// ErrStopOver is returned by an ExecStop's methods once its hook has
// returned (or when they are called from another thread than the
// tracer's): the task runs again, and its registers and memory are no
// longer the tracer's to read or write.
var ErrStopOver = errors.New("the exec stop is over (or this is not the tracer's thread)")

// ExecStop is a process of the sandbox stopped at PTRACE_EVENT_EXEC: its
// new image is loaded and has not run its first instruction. It is valid
// only during the exec hook (Config.OnExec), which runs on the tracer's
// thread; its methods fail with ErrStopOver afterwards or from another
// thread (ptrace requests are accepted from the tracing thread only).
//
// The pid is stable during the hook: the task is a stopped tracee whose
// exit the tracer has not collected, so /proc/<PID> names it even if it is
// killed meanwhile. A hook must not block for long: no other event of the
// sandbox (fork, signal, exit) is served while it runs.
//
// Access to the image follows the kernel's ptrace-access rules, with the
// tracer's credentials: an image the kernel made undumpable (loaded from
// an execute-only file the process could not read) cannot be read or
// written, nor its exe link, auxv or maps opened, unless the tracer holds
// CAP_SYS_PTRACE. A hook that must
// check or change every image should treat such an error as a reason to
// Kill (fail closed).
type ExecStop struct {
	t      *Tracer
	pid    int
	former int
	thread int // the tracer's thread id
	mem    *os.File
	over   bool
	killed bool
}

// PID is the process: its thread-group leader's tid, which is also the
// tid of the thread that called execve, now that the exec has made it the
// leader.
func (s *ExecStop) PID() int { return s.pid }

// FormerTID is the tid the exec'ing thread had before the exec: PID for
// the leader, another tid for an exec from a non-leader thread (that tid
// no longer exists: the kernel gave the thread its leader's tid).
func (s *ExecStop) FormerTID() int { return s.former }

// Killed reports whether Kill was called.
func (s *ExecStop) Killed() bool { return s.killed }

// valid reports whether the stop can still be acted on from this thread.
func (s *ExecStop) valid() error {
	if s.over || unix.Gettid() != s.thread {
		return ErrStopOver
	}
	return nil
}

// Regs reads the registers: on amd64 the instruction pointer is the entry
// of the ELF interpreter (or of the program, for a static one) and the
// stack pointer points at argc.
func (s *ExecStop) Regs() (Regs, error) {
	var r Regs
	if err := s.valid(); err != nil {
		return r, err
	}
	if err := unix.PtraceGetRegs(s.pid, &r); err != nil {
		return r, fmt.Errorf("reading the registers of %d: %w", s.pid, err)
	}
	return r, nil
}

// SetRegs writes the registers; the task resumes with them.
func (s *ExecStop) SetRegs(r Regs) error {
	if err := s.valid(); err != nil {
		return err
	}
	if err := unix.PtraceSetRegs(s.pid, &r); err != nil {
		return fmt.Errorf("writing the registers of %d: %w", s.pid, err)
	}
	return nil
}

// Auxv reads the new image's auxiliary vector (/proc/PID/auxv): where the
// vDSO is (AtSysinfoEhdr), where the 16 AT_RANDOM bytes are (AtRandom), the
// entry point, the interpreter's base, …
func (s *ExecStop) Auxv() (Auxv, error) {
	if err := s.valid(); err != nil {
		return nil, err
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(s.pid) + "/auxv")
	if err != nil {
		return nil, fmt.Errorf("reading the auxiliary vector of %d: %w", s.pid, err)
	}
	const word = int(unsafe.Sizeof(uintptr(0)))
	var out Auxv
	for i := 0; i+2*word <= len(b); i += 2 * word {
		var tag, val uint64
		if word == 8 {
			tag, val = binary.NativeEndian.Uint64(b[i:]), binary.NativeEndian.Uint64(b[i+word:])
		} else {
			tag, val = uint64(binary.NativeEndian.Uint32(b[i:])), uint64(binary.NativeEndian.Uint32(b[i+word:]))
		}
		if tag == AtNull {
			break
		}
		out = append(out, AuxvEntry{Tag: tag, Value: val})
	}
	return out, nil
}

// memFile opens /proc/PID/mem once per stop.
func (s *ExecStop) memFile() (*os.File, error) {
	if s.mem != nil {
		return s.mem, nil
	}
	f, err := os.OpenFile("/proc/"+strconv.Itoa(s.pid)+"/mem", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	s.mem = f
	return f, nil
}

// ReadMem fills b with the memory at addr, through /proc/PID/mem (or, where
// that cannot be opened, e.g. under Yama's ptrace_scope 1 for a process
// reparented away from sandlock, PTRACE_PEEKDATA). A range that runs into
// unmapped memory is an error.
func (s *ExecStop) ReadMem(addr uint64, b []byte) error {
	if err := s.valid(); err != nil {
		return err
	}
	f, err := s.memFile()
	if err != nil {
		if !errors.Is(err, os.ErrPermission) {
			return fmt.Errorf("reading the memory of %d: %w", s.pid, err)
		}
		// PTRACE_PEEKDATA's own check is the tracer's relation, not the
		// open's ptrace-attach check.
		n, perr := unix.PtracePeekData(s.pid, uintptr(addr), b)
		if perr == nil && n < len(b) {
			perr = io.ErrUnexpectedEOF
		}
		if perr != nil {
			return fmt.Errorf("reading %d bytes at %#x of %d: %w (and %w)", len(b), addr, s.pid, perr, err)
		}
		return nil
	}
	if _, err := f.ReadAt(b, int64(addr)); err != nil {
		return fmt.Errorf("reading %d bytes at %#x of %d: %w", len(b), addr, s.pid, err)
	}
	return nil
}

// WriteMem writes b at addr, through /proc/PID/mem (or PTRACE_POKEDATA, see
// ReadMem). Like a debugger's, the write reaches read-only mappings too
// (text, the vDSO): the kernel gives the process a private copy of the
// page.
func (s *ExecStop) WriteMem(addr uint64, b []byte) error {
	if err := s.valid(); err != nil {
		return err
	}
	f, err := s.memFile()
	if err != nil {
		if !errors.Is(err, os.ErrPermission) {
			return fmt.Errorf("writing the memory of %d: %w", s.pid, err)
		}
		n, perr := unix.PtracePokeData(s.pid, uintptr(addr), b)
		if perr == nil && n < len(b) {
			perr = io.ErrShortWrite
		}
		if perr != nil {
			return fmt.Errorf("writing %d bytes at %#x of %d: %w (and %w)", len(b), addr, s.pid, perr, err)
		}
		return nil
	}
	if _, err := f.WriteAt(b, int64(addr)); err != nil {
		return fmt.Errorf("writing %d bytes at %#x of %d: %w", len(b), addr, s.pid, err)
	}
	return nil
}

// Exe opens the file the new image was loaded from (the target of
// /proc/PID/exe: for a #! script, the interpreter the kernel finally ran)
// as an O_PATH descriptor, close-on-exec. The caller owns it.
func (s *ExecStop) Exe() (int, error) {
	if err := s.valid(); err != nil {
		return -1, err
	}
	fd, err := unix.Open("/proc/"+strconv.Itoa(s.pid)+"/exe", unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening /proc/%d/exe: %w", s.pid, err)
	}
	return fd, nil
}

// Kill SIGKILLs the process before its first instruction: the new image
// never runs. The reason goes to the sandbox's kill record (and its log)
// first. Hooks registered after the one that kills are not called. It may
// be called more than once; the first reason stands.
func (s *ExecStop) Kill(reason string) {
	if s.killed {
		return
	}
	s.killed = true
	if s.t != nil && s.t.recordKill != nil {
		s.t.recordKill(s.pid, reason)
	}
	// Fatal even in a ptrace-stop: the task dies on its way back to user
	// space, before the image's first instruction.
	unix.Kill(s.pid, unix.SIGKILL)
}

// end makes the stop unusable once the hook has returned.
func (s *ExecStop) end() {
	s.over = true
	if s.mem != nil {
		s.mem.Close()
		s.mem = nil
	}
}
