//go:build linux

// Package procview is what a sandboxed program sees of the host through
// its files: /proc, its hostname, and the synthetic files that stand in for
// host files (/etc/hosts under hostname rules, /etc/hostname under a name).
//
// /proc is never granted through Landlock while it is served: the grants
// are carved around it (Carve), so the kernel refuses every open below it
// whatever the path, and the open family is sent to the supervisor. For
// each open, the supervisor resolves the path the way the kernel would for
// the task (package taskpath: dirfd, cwd, symlinks, "..", the task's own
// magic links) to an O_PATH pin and decides on what it reached, never on
// the string: a procfs object is judged here — refused, replaced by a
// synthetic file, or reopened on the program's behalf through the pin — and
// so is an object that a synthetic file stands in for, or a directory the
// carve left without its own rule. Anything else is answered Continue, and
// the kernel opens it under Landlock's rules, which cannot reach /proc for
// any value the path's memory could take: a sibling thread rewriting the
// path, or a symlink swapped after the resolution, gains nothing.
//
// Listings of /proc show only the sandbox's processes. The directory is
// read on the program's behalf: every getdents of a sandbox that may open
// /proc is done by the supervisor on a duplicate of the program's
// descriptor (pidfd_getfd, which shares the file position), filtered when
// the duplicate is a procfs root — a decision on the object the supervisor
// holds, which a dup2 racing the syscall cannot change.
package procview

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/confine"
	"github.com/sandlock-go/sandlock/internal/landlock"
	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/plan"
	"github.com/sandlock-go/sandlock/internal/procfs"
	"github.com/sandlock-go/sandlock/internal/taskpath"
)

// Config is what the view shows.
type Config struct {
	// Proc serves /proc: every procfs object an open reaches is judged
	// here. Without it procfs objects are left to Landlock (the host's
	// /proc as granted, or none).
	Proc bool
	// ProcGrants are the grants that covered something under /proc
	// (Carved.Proc): a real entry is shown only under one, and written
	// only under a writable one, in a process directory.
	ProcGrants []landlock.PathRule
	// Hollow are the directories the carve left without a rule of their
	// own (Carved.Hollow): they are opened for reading on the program's
	// behalf.
	Hollow []string
	// HostFiles are synthetic files that replace host files, by host path,
	// whatever the grants. An open that reaches the host file (its inode,
	// or a new file at its path) gets the synthetic one instead; a write
	// open is refused.
	HostFiles map[string]func() []byte
	// Mounted are the host files among HostFiles shown as mounts in
	// mounts and mountinfo (as a container runtime shows /etc/hosts).
	Mounted []string

	// Nodename returns the sandbox's hostname (uname's nodename, and
	// /proc/sys/kernel/hostname); nil leaves uname alone.
	Nodename func() string
	// NumCPUs, if not 0, is how many CPUs the program sees in
	// /proc/cpuinfo, /proc/stat and, when granted,
	// /sys/devices/system/cpu/{online,possible,present}.
	NumCPUs int
	// Memory, if set, returns the memory budget and what the sandbox uses:
	// /proc/meminfo shows the budget as the machine's memory.
	Memory func() (limit, used uint64)
	// Processes lists the sandbox's processes (/proc/loadavg).
	Processes func() []int
	// Reach are the canonical paths the grants reach (Carved.Reach) and
	// Refused the trees no grant reaches (Refused): mounts and mountinfo
	// show the mounts in between.
	Reach   []string
	Refused []string

	// Files are more synthetic files below /proc, by path relative to it
	// ("sys/kernel/random/uuid", "uptime"), made at each open for the
	// opening thread group: a hook for other features (deterministic time
	// and randomness).
	Files map[string]func(tgid int) []byte
	// BootTime, if set, replaces /proc/stat's btime (a hook for a
	// sandbox clock that starts elsewhere).
	BootTime func() int64

	// Visible reports whether a pid is a task of the sandbox (the
	// tracer's); TGID returns a task's thread group.
	Visible func(pid int) bool
	TGID    func(tid int) int
	// Pool reopens what the view shows on the program's behalf: threads
	// with NO_NEW_PRIVS, no capabilities (unless KeepCaps) and no Landlock
	// domain, since the carved ruleset grants none of it; the view is the
	// judge.
	Pool     *confine.Pool
	KeepCaps bool
}

type fileID struct{ dev, ino uint64 }

// hostFile is a host file a synthetic file stands in for.
type hostFile struct {
	path string
	id   fileID // zero when the file does not exist
	// parent and name locate a file that does not exist (yet).
	parent fileID
	name   string
	gen    func() []byte
}

// View serves the handlers.
type View struct {
	cfg      Config
	paths    *taskpath.Resolver
	access   *taskpath.ProcAccess
	host     []hostFile
	hollow   map[fileID]bool
	procRoot bool // a grant covers /proc itself: it may be listed
	load     loadAvg

	// cross opens other processes' entries once a process has nested a
	// Landlock domain (see crossPool), made on first use.
	crossOnce  sync.Once
	cross      *confine.Pool
	crossRules *landlock.Ruleset
	crossErr   error
}

// New prepares the view: the identities of the host files and of the
// hollow directories are read now.
func New(cfg Config) *View {
	// The walk runs on the supervisor's own thread, with its own rights:
	// the view only classifies what a path reaches, and every object it
	// serves is judged by what it is, never by the path — an object the
	// program could not reach through some directory it may not search is
	// one it may open by its /proc path, or a synthetic file. Sparing the
	// program's rights spares two capset calls and a thread, on every open.
	direct := func(fn func()) error { fn(); return nil }
	v := &View{cfg: cfg, paths: taskpath.NewOn(direct), access: taskpath.NewProcAccess(), hollow: map[fileID]bool{}}
	files := map[string]func() []byte{}
	for p, gen := range cfg.HostFiles {
		files[p] = gen
	}
	if cfg.Proc && cfg.NumCPUs > 0 {
		// glibc's get_nprocs (sysconf, Python's os.cpu_count) reads these
		// before /proc/stat.
		list := cpuList(cfg.NumCPUs)
		for _, f := range []string{"online", "possible", "present"} {
			p := "/sys/devices/system/cpu/" + f
			if underAny(p, cfg.Reach) && !underAny(p, cfg.Refused) {
				files[p] = func() []byte { return list }
			}
		}
	}
	for p, gen := range files {
		h := hostFile{path: p, gen: gen}
		var st unix.Stat_t
		if unix.Stat(p, &st) == nil {
			h.id = fileID{st.Dev, st.Ino}
		} else {
			dir, name := p[:strings.LastIndexByte(p, '/')], p[strings.LastIndexByte(p, '/')+1:]
			if dir == "" {
				dir = "/"
			}
			if unix.Stat(dir, &st) != nil {
				continue
			}
			h.parent, h.name = fileID{st.Dev, st.Ino}, name
		}
		v.host = append(v.host, h)
	}
	for _, d := range cfg.Hollow {
		var st unix.Stat_t
		if unix.Stat(d, &st) == nil {
			v.hollow[fileID{st.Dev, st.Ino}] = true
		}
	}
	for _, g := range cfg.ProcGrants {
		if g.Path == "/proc" && g.Access&landlock.FSReadDir != 0 {
			v.procRoot = true
		}
	}
	return v
}

// Serves reports whether the view needs the open family.
func (v *View) Serves() bool { return v.cfg.Proc || len(v.host) > 0 || len(v.hollow) > 0 }

// register adds the handlers, in the virtualize phase (after the
// denials, so that a synthetic file never overrides a deny; before user
// handlers): the open family when there is anything to serve, getdents
// when /proc may be listed, uname when there is a hostname.
func (v *View) register(b *plan.Builder) {
	add := func(name string, quick bool, h notify.HandlerFunc) {
		b.HandleNamed(name, plan.Virtualize, "host view: "+name, quick, h)
	}
	a := func(hc *notify.HandlerCtx, i int) uint64 { return hc.Notif.Data.Args[i] }
	if v.Serves() {
		add("open", false, func(_ context.Context, hc *notify.HandlerCtx) notify.Action {
			return v.open(hc, taskpath.AtFDCWD, a(hc, 0), a(hc, 1), 0)
		})
		add("creat", false, func(_ context.Context, hc *notify.HandlerCtx) notify.Action {
			return v.open(hc, taskpath.AtFDCWD, a(hc, 0), unix.O_CREAT|unix.O_WRONLY|unix.O_TRUNC, 0)
		})
		add("openat", false, func(_ context.Context, hc *notify.HandlerCtx) notify.Action {
			return v.open(hc, a(hc, 0), a(hc, 1), a(hc, 2), 0)
		})
		add("openat2", false, v.openat2)
	}
	if v.cfg.Proc && v.procRoot {
		add("getdents64", false, func(_ context.Context, hc *notify.HandlerCtx) notify.Action { return v.getdents(hc, true) })
		add("getdents", false, func(_ context.Context, hc *notify.HandlerCtx) notify.Action { return v.getdents(hc, false) })
	}
	if v.cfg.Proc {
		add("landlock_restrict_self", true, v.access.NestedDomain)
	}
	if v.cfg.Nodename != nil {
		add("uname", true, v.uname)
	}
}

// openat2 reads the flags from struct open_how. A lookup with RESOLVE_*
// flags is left to the kernel (and to Landlock, which refuses /proc).
func (v *View) openat2(_ context.Context, hc *notify.HandlerCtx) notify.Action {
	args := hc.Notif.Data.Args
	var how unix.OpenHow
	if args[3] < uint64(unsafe.Sizeof(how)) {
		return notify.Continue() // the kernel answers EINVAL
	}
	b, err := hc.ReadMem(args[2], int(unsafe.Sizeof(how)))
	if err != nil {
		return notify.Continue()
	}
	how = *(*unix.OpenHow)(unsafe.Pointer(&b[0]))
	if how.Resolve != 0 {
		return notify.Continue()
	}
	return v.open(hc, args[0], args[1], how.Flags, 0)
}

// open serves one open: Continue unless the path reaches something the
// view shows. Every Continue is safe whatever the program does next (see
// the package comment): the decision to serve is on the pinned object.
func (v *View) open(hc *notify.HandlerCtx, dirfd, pathAddr, flags, _ uint64) notify.Action {
	fl := int(flags)
	if fl&unix.O_PATH != 0 || fl&unix.O_TMPFILE == unix.O_TMPFILE {
		// O_PATH reads nothing, and the kernel refuses to inject it; an
		// anonymous file is created, not reached.
		return notify.Continue()
	}
	path, err := notify.ReadPath(hc, pathAddr)
	if err != nil || path == "" {
		return notify.Continue() // the kernel answers as it would
	}
	pin, err := v.paths.Resolve(hc, dirfd, path, fl&unix.O_NOFOLLOW != 0)
	if err != nil {
		if err == unix.ENOENT {
			return v.openMissing(hc, dirfd, path, fl)
		}
		return notify.Continue()
	}
	defer unix.Close(pin)
	return v.serve(hc, pin, fl)
}

// serve decides on the object an open reached.
func (v *View) serve(hc *notify.HandlerCtx, pin, fl int) notify.Action {
	var sfs unix.Statfs_t
	if unix.Fstatfs(pin, &sfs) != nil {
		return notify.Continue()
	}
	if sfs.Type == unix.PROC_SUPER_MAGIC {
		if !v.cfg.Proc {
			return notify.Continue()
		}
		return v.proc(hc, pin, fl)
	}
	if len(v.host) == 0 && len(v.hollow) == 0 {
		return notify.Continue()
	}
	var st unix.Stat_t
	if unix.Fstat(pin, &st) != nil {
		return notify.Continue()
	}
	id := fileID{st.Dev, st.Ino}
	for i := range v.host {
		h := &v.host[i]
		if h.id == id || (h.id.dev == id.dev && h.id.ino != 0 && pathIs(pin, h.path)) {
			return synthetic(h.gen(), fl)
		}
	}
	if v.hollow[id] {
		return v.openHollow(pin, fl)
	}
	return notify.Continue()
}

// pathIs reports whether pin is at path (a host file replaced by a new
// inode since the view was made).
func pathIs(pin int, path string) bool {
	p, err := taskpath.FDPath(pin)
	return err == nil && p == path
}

// openMissing serves an open of a path that does not resolve, when a
// synthetic file stands in for a host file that does not exist.
func (v *View) openMissing(hc *notify.HandlerCtx, dirfd uint64, path string, fl int) notify.Action {
	missing := false
	for _, h := range v.host {
		missing = missing || h.name != ""
	}
	if !missing {
		return notify.Continue()
	}
	pfd, name, err := v.paths.Parent(hc, dirfd, path)
	if err != nil {
		return notify.Continue()
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if unix.Fstat(pfd, &st) != nil {
		return notify.Continue()
	}
	for _, h := range v.host {
		if h.name != "" && h.name == name && h.parent == (fileID{st.Dev, st.Ino}) {
			return synthetic(h.gen(), fl)
		}
	}
	return notify.Continue()
}

// synthetic answers an open with content: read-only, not a directory.
func synthetic(content []byte, fl int) notify.Action {
	if fl&unix.O_ACCMODE != unix.O_RDONLY || fl&unix.O_TRUNC != 0 {
		return notify.Errno(unix.EACCES)
	}
	if fl&unix.O_CREAT != 0 && fl&unix.O_EXCL != 0 {
		return notify.Errno(unix.EEXIST)
	}
	if fl&unix.O_DIRECTORY != 0 {
		return notify.Errno(unix.ENOTDIR)
	}
	f, err := notify.SealedMemfd(content)
	if err != nil {
		return notify.Errno(unix.EIO)
	}
	var fdFlags uint32
	if fl&unix.O_CLOEXEC != 0 {
		fdFlags = unix.O_CLOEXEC
	}
	return notify.InjectFDSend(f, fdFlags)
}

// openHollow opens, for reading, a directory the carve left without a rule
// of its own: its grant covered it, and its entries keep their own rules.
func (v *View) openHollow(pin, fl int) notify.Action {
	if fl&unix.O_ACCMODE != unix.O_RDONLY {
		return notify.Errno(unix.EISDIR)
	}
	if fl&unix.O_CREAT != 0 && fl&unix.O_EXCL != 0 {
		return notify.Errno(unix.EEXIST)
	}
	return v.reopen(v.cfg.Pool, pin, fl)
}

// reopen opens the pinned object with the task's flags on pool and
// injects it.
func (v *View) reopen(pool *confine.Pool, pin, fl int) notify.Action {
	var st unix.Stat_t
	if err := unix.Fstat(pin, &st); err != nil {
		return taskpath.ErrAction(err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return notify.Errno(unix.ELOOP) // O_NOFOLLOW on a symlink
	}
	fd, err := taskpath.Reopen(pool, pin, fl&^(unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW), 0)
	if err != nil {
		return taskpath.ErrAction(err)
	}
	defer unix.Close(fd)
	return taskpath.Inject(fd, fl)
}

// proc judges a procfs object.
func (v *View) proc(hc *notify.HandlerCtx, pin, fl int) notify.Action {
	p, err := taskpath.FDPath(pin)
	if err != nil {
		return notify.Errno(unix.EACCES)
	}
	rel, ok := procRel(p)
	if !ok {
		return notify.Errno(unix.EACCES) // a procfs mounted elsewhere
	}
	tid := int(hc.Notif.PID)
	tgid := v.cfg.TGID(tid)
	write := fl&unix.O_ACCMODE != unix.O_RDONLY || fl&unix.O_TRUNC != 0
	if !v.granted(rel, write, tgid, tid) {
		return notify.Errno(unix.EACCES)
	}
	e := v.classify(rel, tgid)
	switch {
	case e.refused:
		return notify.Errno(unix.EACCES)
	case e.gen != nil:
		return synthetic(e.gen(), fl)
	case write && e.pid == 0:
		// Outside the processes' own directories /proc holds the host's
		// settings (sysctls), which root without capabilities could
		// still write.
		return notify.Errno(unix.EACCES)
	case fl&unix.O_CREAT != 0 && fl&unix.O_EXCL != 0:
		return notify.Errno(unix.EEXIST)
	case e.pid != 0 && v.cfg.TGID(e.pid) != tgid && !v.access.CrossProcess():
		// Another process's entry, where the kernel's ptrace checks
		// would not treat the pool's threads as the program.
		pool, err := v.crossPool()
		if err != nil {
			return notify.Errno(unix.EACCES)
		}
		return v.reopen(pool, pin, fl)
	}
	return v.reopen(v.cfg.Pool, pin, fl)
}

// crossPool returns threads in a Landlock domain of their own that grants
// every file (the view judges files), for the entries of other processes
// of the sandbox once taskpath.ProcAccess says the pool's threads would
// not be refused what the program is: a domain that is not an ancestor of
// the sandbox's is refused ptrace access to its processes by Landlock, as
// a process of the sandbox that nested a domain of its own is, so the
// entries that need that access (environ, maps, fd/…) are refused and the
// others (status, stat, cmdline) opened. (With Yama, the program would
// reach its own descendants' entries natively; they are refused too.)
func (v *View) crossPool() (*confine.Pool, error) {
	v.crossOnce.Do(func() {
		var abi int
		if abi, v.crossErr = landlock.ABI(); v.crossErr != nil {
			return
		}
		handled := landlock.HandledFS(abi)
		cfg := &landlock.Config{ABI: abi, HandledFS: handled, Paths: []landlock.PathRule{{Path: "/", Access: handled}}}
		if v.crossRules, v.crossErr = cfg.Build(); v.crossErr != nil {
			return
		}
		v.cross = confine.NewPool(v.crossRules, v.cfg.KeepCaps)
	})
	return v.cross, v.crossErr
}

// Close releases what the view holds once the sandbox has ended.
func (v *View) Close() {
	if v.cross != nil {
		v.cross.Close()
		v.crossRules.Close()
	}
}

// procRel returns a procfs path relative to /proc ("" for /proc itself).
func procRel(p string) (string, bool) {
	if p == "/proc" {
		return "", true
	}
	rel, ok := strings.CutPrefix(p, "/proc/")
	return rel, ok
}

// granted reports whether a grant covers /proc/rel, for writing or
// reading. /proc/self and /proc/thread-self in a grant name the task's own.
func (v *View) granted(rel string, write bool, tgid, tid int) bool {
	p := "/proc"
	if rel != "" {
		p += "/" + rel
	}
	need := uint64(landlock.FSReadFile | landlock.FSReadDir)
	if write {
		need = landlock.FSWriteFile
	}
	for _, g := range v.cfg.ProcGrants {
		if g.Access&need == 0 {
			continue
		}
		path := g.Path
		if r, ok := strings.CutPrefix(path, "/proc/self"); ok && (r == "" || r[0] == '/') {
			path = "/proc/" + strconv.Itoa(tgid) + r
		} else if r, ok := strings.CutPrefix(path, "/proc/thread-self"); ok && (r == "" || r[0] == '/') {
			path = "/proc/" + strconv.Itoa(tgid) + "/task/" + strconv.Itoa(tid) + r
		}
		if under(p, path) {
			return true
		}
	}
	return false
}

// entry is what the view makes of a procfs path.
type entry struct {
	refused bool
	gen     func() []byte // a synthetic file
	pid     int           // the process directory it is in, or 0
}

// refusedTop are the entries of /proc that describe the host, not the
// program: kernel memory and symbols, the kernel log and keyrings, the
// host's loaded modules, locks and IPC objects (with the pids of other
// processes), the kernel's command line (which can hold secrets), and
// the layouts of kernel memory and I/O space.
var refusedTop = map[string]bool{
	"kallsyms": true, "kcore": true, "kmsg": true, "keys": true, "key-users": true,
	"sysrq-trigger": true, "modules": true, "timer_list": true, "locks": true,
	"sysvipc": true, "cmdline": true, "vmallocinfo": true, "slabinfo": true,
	"iomem": true, "ioports": true, "kpagecount": true, "kpageflags": true,
	"kpagecgroup": true, "bootconfig": true, "sched_debug": true,
}

// sysctlIfNames are the entries of /proc/sys/net/<protocol>/{conf,neigh}
// shown: loopback's and the settings that are not an interface's.
var sysctlIfNames = map[string]bool{"lo": true, "all": true, "default": true}

// classify judges /proc/rel for a task of thread group tgid.
func (v *View) classify(rel string, tgid int) entry {
	if gen := v.cfg.Files[rel]; gen != nil {
		return entry{gen: func() []byte { return gen(tgid) }}
	}
	if rel == "" {
		return entry{}
	}
	comps := strings.Split(rel, "/")
	if pid, err := strconv.ParseUint(comps[0], 10, 31); err == nil {
		n := int(pid)
		if n != tgid && !v.cfg.Visible(n) {
			return entry{refused: true}
		}
		rest := comps[1:]
		if len(rest) >= 2 && rest[0] == "task" {
			// A thread of the process: procfs shows only its own
			// threads there.
			rest = rest[2:]
		}
		e := v.pidEntry(rest)
		e.pid = n
		return e
	}
	if refusedTop[comps[0]] {
		return entry{refused: true}
	}
	if len(comps) >= 4 && comps[0] == "sys" && comps[1] == "net" && (comps[3] == "conf" || comps[3] == "neigh") {
		// sys/net/<protocol>/{conf,neigh} hold a directory per host
		// interface: its listing and every interface's settings but
		// loopback's and the defaults are refused.
		if len(comps) == 4 || !sysctlIfNames[comps[4]] {
			return entry{refused: true}
		}
	}
	switch rel {
	case "cpuinfo":
		if v.cfg.NumCPUs > 0 {
			return entry{gen: func() []byte { return cpuinfo(readHost("/proc/cpuinfo"), v.cfg.NumCPUs) }}
		}
	case "stat":
		if v.cfg.NumCPUs > 0 || v.cfg.BootTime != nil {
			return entry{gen: func() []byte {
				var btime int64
				if v.cfg.BootTime != nil {
					btime = v.cfg.BootTime()
				}
				return procStat(readHost("/proc/stat"), v.cfg.NumCPUs, btime)
			}}
		}
	case "meminfo":
		if v.cfg.Memory != nil {
			return entry{gen: func() []byte {
				limit, used := v.cfg.Memory()
				return meminfo(readHost("/proc/meminfo"), limit, used)
			}}
		}
	case "loadavg":
		return entry{gen: v.loadavg}
	case "sys/kernel/hostname":
		if v.cfg.Nodename != nil {
			return entry{gen: func() []byte { return []byte(v.cfg.Nodename() + "\n") }}
		}
	}
	return entry{}
}

// pidEntry judges an entry of a process directory: the mounts it sees are
// the sandbox's, its network namespace (the host's) shows loopback only.
func (v *View) pidEntry(rest []string) entry {
	if len(rest) == 0 {
		return entry{}
	}
	switch rest[0] {
	case "mounts", "mountinfo":
		if len(rest) == 1 {
			info := rest[0] == "mountinfo"
			return entry{gen: func() []byte { return v.mounts(info) }}
		}
	case "mountstats":
		return entry{refused: true}
	case "net":
		switch {
		case len(rest) == 1:
			return entry{} // the listing names files, which are judged
		case len(rest) == 2 && rest[1] == "dev":
			return entry{gen: netDev}
		case len(rest) == 2 && rest[1] == "if_inet6":
			return entry{gen: ifInet6}
		}
		// The rest describes the host's network: every socket of the
		// namespace, routes, neighbours.
		return entry{refused: true}
	}
	return entry{}
}

// mounts makes the sandbox's mounts or mountinfo.
func (v *View) mounts(info bool) []byte {
	host := readHost("/proc/self/mountinfo")
	keep := func(mp string) bool {
		if under(mp, "/proc") {
			return mp == "/proc" && v.procRoot
		}
		if underAny(mp, v.cfg.Refused) {
			return false
		}
		for _, r := range v.cfg.Reach {
			if under(mp, r) || under(r, mp) {
				return true
			}
		}
		return false
	}
	m, mi := filterMounts(host, keep, v.cfg.Mounted)
	if info {
		return mi
	}
	return m
}

// loadavg is /proc/loadavg for the sandbox's processes.
func (v *View) loadavg() []byte {
	var pids []int
	if v.cfg.Processes != nil {
		pids = v.cfg.Processes()
	}
	running, last := 0, 0
	for _, pid := range pids {
		if st, err := procfs.ReadStatus(pid); err == nil {
			if state, _ := st.Field("State"); strings.HasPrefix(state, "R") {
				running++
			}
		}
		last = max(last, pid)
	}
	// The reader is running, whatever its state while it waits for this
	// answer.
	running = max(running, 1)
	l := v.load.update(running)
	return loadavgLine(l, running, max(len(pids), 1), last)
}

// readHost reads a host file for a synthetic one built from it; a file
// that cannot be read gives an empty base.
func readHost(p string) []byte {
	b, _ := readFile(p)
	return b
}

// loadAvg is an exponentially damped average of the sandbox's running
// processes, as the kernel's, updated whenever it is read.
type loadAvg struct {
	mu    sync.Mutex
	at    int64 // monotonic nanoseconds of the last update; 0: never
	value [3]float64
}
