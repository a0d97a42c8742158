package limits

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/sysnum"
)

// Memory is a budget on the sandbox's private writable memory, summed over
// its processes. It watches the syscalls that grow an address space (mmap,
// brk, mremap) and, at each one, reads the kernel's own count of the
// process's data segment (/proc/<pid>/statm: private writable mappings and
// heap, whether touched or not). An allocation that would take the sandbox
// over budget kills the process that asked (SIGKILL) and fails with ENOMEM.
//
// Because the count is the kernel's, freeing memory cannot fool it, and
// memory gained without an allocation syscall (a growing stack, mprotect
// making a reserved region writable) is counted at the process's next
// allocation. Not counted: file-backed shared mappings other than memfds,
// kernel memory, the page cache and files in tmpfs.
type Memory struct {
	limit uint64
	tgid  func(tid int) int
	// kill kills a process for exceeding the budget.
	kill func(pid int)

	mu    sync.Mutex
	spans map[int]uint64 // thread group → data size at its last allocation
	peak  uint64
}

// NewMemory returns the budget. tgid comes from the tracer; kill kills a
// process and records why.
func NewMemory(limit uint64, tgid func(int) int, kill func(pid int)) *Memory {
	return &Memory{limit: limit, tgid: tgid, kill: kill, spans: make(map[int]uint64)}
}

var pageSize = uint64(os.Getpagesize())

// Register adds the allocation handlers.
func (m *Memory) Register(t *notify.Table) {
	arch := sysnum.Native()
	for _, name := range []string{"mmap", "brk", "mremap"} {
		t.AddBuiltin(arch.MustNr(name), "memory limit: "+name, true, m)
	}
	for _, name := range []string{"execve", "execveat"} {
		t.AddBuiltin(arch.MustNr(name), "memory limit: exec", true, notify.HandlerFunc(m.exec))
	}
}

// Handle judges one allocation.
func (m *Memory) Handle(ctx context.Context, hc *notify.HandlerCtx) notify.Action {
	args := hc.Notif.Data.Args
	arch := sysnum.Native()
	var grow uint64
	switch int(hc.Notif.Data.Nr) {
	case arch.MustNr("mmap"):
		grow = m.mmapSize(hc)
	case arch.MustNr("mremap"):
		if args[2] > args[1] {
			grow = args[2] - args[1]
		}
	case arch.MustNr("brk"):
		// The growth is known only once the kernel has moved the break;
		// it shows in the data size at the next allocation.
	}
	tid := int(hc.Notif.PID)
	g := m.tgid(tid)
	data, ok := dataSize(tid)
	if notify.TaskAlive(hc) != nil {
		return notify.Continue()
	}
	m.mu.Lock()
	if ok {
		m.spans[g] = data
	}
	var total uint64
	for _, s := range m.spans {
		total += s
	}
	over := total+grow > m.limit
	if !over {
		m.peak = max(m.peak, total+grow)
	}
	m.mu.Unlock()
	if over {
		m.kill(g)
		return notify.Errno(unix.ENOMEM)
	}
	return notify.Continue()
}

// mmapSize is what an mmap adds to the data size: private writable or
// anonymous mappings, and shared mappings of memfds (anonymous memory by
// another name).
func (m *Memory) mmapSize(hc *notify.HandlerCtx) uint64 {
	args := hc.Notif.Data.Args
	length := (args[1] + pageSize - 1) &^ (pageSize - 1)
	prot, flags, fd := args[2], args[3], int32(args[4])
	if flags&unix.MAP_ANONYMOUS != 0 {
		return length
	}
	if flags&unix.MAP_SHARED == 0 && prot&unix.PROT_WRITE != 0 {
		return length // private copy-on-write of a file
	}
	if fd >= 0 {
		link, err := os.Readlink("/proc/" + strconv.Itoa(int(hc.Notif.PID)) + "/fd/" + strconv.Itoa(int(fd)))
		if err == nil && strings.HasPrefix(link, "/memfd:") {
			return length
		}
	}
	return 0
}

// exec forgets a process's address space: the new program starts afresh.
func (m *Memory) exec(ctx context.Context, hc *notify.HandlerCtx) notify.Action {
	g := m.tgid(int(hc.Notif.PID))
	m.mu.Lock()
	delete(m.spans, g)
	m.mu.Unlock()
	return notify.Continue()
}

// Exited forgets a process that has exited.
func (m *Memory) Exited(tgid int) {
	m.mu.Lock()
	delete(m.spans, tgid)
	m.mu.Unlock()
}

// Peak returns the largest total seen under the budget.
func (m *Memory) Peak() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peak
}

// dataSize reads a task's data size, in bytes, from /proc/<tid>/statm.
func dataSize(tid int) (uint64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/statm")
	if err != nil {
		return 0, false
	}
	f := bytes.Fields(b)
	if len(f) < 6 {
		return 0, false
	}
	pages, err := strconv.ParseUint(string(f[5]), 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * pageSize, true
}
