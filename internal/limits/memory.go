//go:build linux

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
	"github.com/sandlock-go/sandlock/internal/plan"
	"github.com/sandlock-go/sandlock/internal/procfs"
	"github.com/sandlock-go/sandlock/internal/sysnum"
	"github.com/sandlock-go/sandlock/internal/tracer"
)

// Memory is a budget on the sandbox's anonymous memory, summed over its
// processes. It watches the syscalls that grow an address space (mmap, brk,
// mremap) and, at each one, reads the kernel's own count of the process's
// data segment (/proc/<pid>/statm: private writable mappings and heap,
// whether touched or not), plus, for a process that has any, the size of
// its shared mappings of anonymous memory (memfds, MAP_SHARED|MAP_ANONYMOUS)
// from /proc/<pid>/maps. An allocation that would take the sandbox over
// budget kills the process that asked (SIGKILL) and fails with ENOMEM.
//
// Because the count is the kernel's, freeing memory cannot fool it, and
// memory gained without an allocation syscall (a growing stack, mprotect
// making a reserved region writable) is counted at the process's next
// allocation. Reservations without write access (PROT_NONE, as malloc and
// language runtimes make for arenas and heaps) are not counted until made
// writable. Shared anonymous memory is counted once per object (inode),
// however many processes map it. Not counted here: file-backed shared
// mappings other than memfds, memfd contents that are not mapped, SysV
// shared memory, kernel memory, the page cache and files in tmpfs.
//
// This accounting gives the fast, precise answer (ENOMEM at the
// allocation). What it cannot see, MemorySampler catches.
type Memory struct {
	limit uint64
	tgid  func(tid int) int
	// kill kills a process for exceeding the budget; why, if not empty,
	// says why it counts as over.
	kill func(pid int, why string)
	// MapMemfd, if set, is told of every shared mapping of an fd that is
	// a memfd, before the kernel maps it (process, fd number); an error
	// refuses the mapping (ENOMEM).
	MapMemfd func(pid, fd int) error

	mu    sync.Mutex
	spans map[int]*span // thread group → its use at its last allocation
	peak  uint64
}

// span is what one process (thread group) uses.
type span struct {
	data uint64 // private writable memory (statm's data)
	// shared: its accessible shared anonymous mappings, by object (a
	// memfd or MAP_SHARED|MAP_ANONYMOUS region, by inode): an object
	// several processes map counts once.
	shared map[objKey]uint64
	brk    uint64 // the page-aligned break it last asked for; 0: unknown
	// sharedMaps: the process has or may have shared anonymous mappings,
	// so its maps must be read at each allocation.
	sharedMaps bool
}

// NewMemory returns the budget. tgid comes from the tracer; kill kills a
// process and records why.
func NewMemory(limit uint64, tgid func(int) int, kill func(pid int, why string)) *Memory {
	return &Memory{limit: limit, tgid: tgid, kill: kill, spans: make(map[int]*span)}
}

var pageSize = uint64(os.Getpagesize())

// mremapDontUnmap is MREMAP_DONTUNMAP (Linux 5.7).
const mremapDontUnmap = 4

// Register adds the allocation handlers, and forgets a process's count at
// its exec stop (only an exec that succeeded starts afresh).
func (m *Memory) Register(b *plan.Builder) {
	arch := sysnum.Native()
	for _, name := range []string{"mmap", "brk", "mremap"} {
		b.Handle(arch.MustNr(name), plan.Guard, "memory limit: "+name, true, m)
	}
	b.OnExec(func(st *tracer.ExecStop) { m.Execed(st.PID()) })
}

// Handle judges one allocation.
func (m *Memory) Handle(ctx context.Context, hc *notify.HandlerCtx) notify.Action {
	args := hc.Notif.Data.Args
	arch := sysnum.Native()
	tid := int(hc.Notif.PID)
	g := m.tgid(tid)
	m.mu.Lock()
	sp := m.spans[g]
	readMaps := sp == nil || sp.sharedMaps // a new process may have inherited some
	var lastBrk uint64
	if sp != nil {
		lastBrk = sp.brk
	}
	m.mu.Unlock()

	var grow, newBrk uint64
	shared := false // the allocation is shared anonymous memory
	var object objKey
	switch int(hc.Notif.Data.Nr) {
	case arch.MustNr("mmap"):
		grow, shared = mmapSize(tid, args)
		if shared && args[3]&unix.MAP_ANONYMOUS == 0 {
			fd := int(int32(args[4]))
			if grow > 0 {
				object = fdObject(tid, fd)
			}
			if m.MapMemfd != nil && m.MapMemfd(g, fd) != nil {
				return notify.Errno(unix.ENOMEM)
			}
		}
	case arch.MustNr("mremap"):
		switch {
		case args[3]&mremapDontUnmap != 0:
			// The old range stays mapped (empty, to be faulted in
			// afresh): the new one is all growth.
			grow = pageAlign(args[2])
		case args[2] > args[1]:
			grow = args[2] - args[1]
		}
	case arch.MustNr("brk"):
		if args[0] == 0 {
			return notify.Continue() // asks where the break is
		}
		// The break is where the process last moved it; the first time,
		// read it from the kernel.
		cur, ok := lastBrk, lastBrk != 0
		if !ok {
			cur, ok = heapEnd(tid)
		}
		if ok {
			grow = brkGrowth(cur, args[0])
			newBrk = pageAlign(args[0])
		}
		if ok && grow == 0 && sp != nil {
			// A shrinking heap needs no judging (malloc trims often).
			m.mu.Lock()
			if m.spans[g] == sp {
				sp.brk = newBrk
			}
			m.mu.Unlock()
			return notify.Continue()
		}
	}
	data, ok := dataSize(tid)
	var sharedObjs map[objKey]uint64
	hasShared := false
	mapsOK := true
	if ok && readMaps {
		sharedObjs, hasShared, mapsOK = sharedAnonObjects(tid)
		ok = mapsOK
	}
	if notify.TaskAlive(hc) != nil {
		return notify.Continue()
	}
	if !mapsOK {
		// The process is alive but its maps cannot be read (it made
		// itself undumpable): what it maps cannot be counted, so it
		// counts as over the budget.
		m.kill(g, "cannot read /proc/"+strconv.Itoa(tid)+"/maps (an undumpable process?): its memory cannot be counted, so it counts as over the budget")
		return notify.Errno(unix.ENOMEM)
	}
	m.mu.Lock()
	if sp = m.spans[g]; sp == nil {
		sp = &span{}
		m.spans[g] = sp
	}
	if ok {
		sp.data = data
		if readMaps {
			sp.shared = sharedObjs
			sp.sharedMaps = hasShared
		}
	}
	if shared {
		sp.sharedMaps = true
	}
	if newBrk != 0 {
		sp.brk = newBrk
	}
	total, objects := m.usedLocked()
	if object != (objKey{}) {
		// Mapping a memfd already counted adds only what goes beyond.
		grow -= min(grow, objects[object])
	}
	over := total+grow > m.limit || total+grow < total
	if !over {
		m.peak = max(m.peak, total+grow)
		if !shared {
			// The growth let through counts for this process until its
			// next allocation reads its size again: another process's
			// allocation meanwhile must see it. (A shared mapping is
			// counted by its object at the next read of the maps.)
			sp.data += grow
		}
	}
	m.mu.Unlock()
	if over {
		m.kill(g, "")
		return notify.Errno(unix.ENOMEM)
	}
	return notify.Continue()
}

// mmapSize is what an mmap(addr, length, prot, flags, fd, off) of task tid
// adds: private writable mappings (anonymous, or copy-on-write of a file)
// to the data size, and shared mappings of anonymous memory (memfds,
// MAP_SHARED|MAP_ANONYMOUS) to the shared size.
func mmapSize(tid int, args [6]uint64) (grow uint64, shared bool) {
	length := pageAlign(args[1])
	prot, flags, fd := args[2], args[3], int32(args[4])
	switch flags & (unix.MAP_SHARED | unix.MAP_PRIVATE | unix.MAP_SHARED_VALIDATE) {
	case unix.MAP_PRIVATE:
		if prot&unix.PROT_WRITE != 0 {
			return length, false
		}
		return 0, false
	}
	anon := flags&unix.MAP_ANONYMOUS != 0
	if !anon && fd >= 0 {
		link, err := os.Readlink("/proc/" + strconv.Itoa(tid) + "/fd/" + strconv.Itoa(int(fd)))
		anon = err == nil && strings.HasPrefix(link, "/memfd:")
	}
	if !anon {
		return 0, false
	}
	if prot&(unix.PROT_READ|unix.PROT_WRITE|unix.PROT_EXEC) == 0 {
		// Inaccessible until mprotect: counted from then on, at the
		// process's next allocation.
		return 0, true
	}
	return length, true
}

// Execed forgets a process's address space once its exec has succeeded
// (at the exec stop): the new program starts afresh. An exec that fails
// leaves the old image, and its count, in place: forgetting it at the
// execve call would let the other processes allocate as if it held
// nothing until its next allocation.
func (m *Memory) Execed(tgid int) {
	m.mu.Lock()
	delete(m.spans, tgid)
	m.mu.Unlock()
}

// Exited forgets a process that has exited.
func (m *Memory) Exited(tgid int) {
	m.mu.Lock()
	delete(m.spans, tgid)
	m.mu.Unlock()
}

// usedLocked sums what every process used at its last allocation, each
// shared object once, and returns the sum with the shared objects' sizes.
func (m *Memory) usedLocked() (uint64, map[objKey]uint64) {
	var total uint64
	objects := make(map[objKey]uint64)
	for _, s := range m.spans {
		total += s.data
		for k, n := range s.shared {
			objects[k] = max(objects[k], n)
		}
	}
	for _, n := range objects {
		total += n
	}
	return total, objects
}

// Used returns what the sandbox used at its processes' last allocations,
// as the budget counts it (for the /proc view's meminfo).
func (m *Memory) Used() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	total, _ := m.usedLocked()
	return total
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

// fdObject names the memfd behind fd number fd of task tid, or the zero
// key.
func fdObject(tid, fd int) objKey {
	var st unix.Stat_t
	if fd < 0 || unix.Stat("/proc/"+strconv.Itoa(tid)+"/fd/"+strconv.Itoa(fd), &st) != nil {
		return objKey{}
	}
	return objKey{major: unix.Major(st.Dev), minor: unix.Minor(st.Dev), ino: st.Ino}
}

// sharedAnonSize sums a task's accessible shared mappings of anonymous
// memory; see sharedAnonObjects.
func sharedAnonSize(tid int) (total uint64, found, ok bool) {
	objs, found, ok := sharedAnonObjects(tid)
	for _, n := range objs {
		total += n
	}
	return total, found, ok
}

// sharedAnonObjects sums a task's accessible shared mappings of anonymous
// memory from /proc/<tid>/maps, by object: memfds and
// MAP_SHARED|MAP_ANONYMOUS (which the kernel shows as /dev/zero, deleted).
// found reports whether it has any such mapping, accessible or not.
func sharedAnonObjects(tid int) (objs map[objKey]uint64, found, ok bool) {
	err := procfs.Maps(tid, func(m procfs.Mapping) bool {
		if !m.Shared() || (!strings.HasPrefix(m.Path, "/memfd:") && m.Path != "/dev/zero (deleted)") {
			return true
		}
		found = true
		if !m.Accessible() {
			return true // inaccessible until mprotect
		}
		if k, ok := mappingKey(m); ok {
			if objs == nil {
				objs = make(map[objKey]uint64)
			}
			objs[k] += m.Size()
		}
		return true
	})
	return objs, found, err == nil
}

// brkGrowth is what brk(addr) adds to a heap whose page-aligned break is
// cur.
func brkGrowth(cur, addr uint64) uint64 {
	if want := pageAlign(addr); want > cur {
		return want - cur
	}
	return 0
}

// pageAlign rounds n up to a whole page (saturating).
func pageAlign(n uint64) uint64 {
	if a := (n + pageSize - 1) &^ (pageSize - 1); a >= n {
		return a
	}
	return n
}

// heapEnd returns the page-aligned current break of a task: the end of its
// [heap] mapping, or before there is one, where the heap starts.
func heapEnd(tid int) (uint64, bool) {
	var end uint64
	found := false
	if procfs.Maps(tid, func(m procfs.Mapping) bool {
		if m.Path == "[heap]" {
			end, found = m.End, true
		}
		return !found
	}) != nil {
		return 0, false
	}
	if found {
		return end, true
	}
	// No heap mapping yet: the break is still where the heap starts.
	b, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/stat")
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	// Fields from the state (field 3) on; start_brk is field 47.
	fields := bytes.Fields(b[i+1:])
	if len(fields) < 47-2 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(fields[47-3]), 10, 64)
	return n, err == nil && n != 0
}
