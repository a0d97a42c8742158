//go:build linux

// Package taskpath resolves the path argument of a sandboxed task's syscall
// the way the kernel would resolve it for that task — relative to its cwd or
// to one of its descriptors, through its own /proc magic links, following
// symlinks and ".." — to an O_PATH descriptor the supervisor holds. A
// feature that must judge what a path names then judges that descriptor and
// acts through it, never through the path again: a sibling thread of the
// task can rewrite the path in memory, and anyone can swap a component on
// disk, between a check and the kernel's own lookup.
//
// The walk runs on a thread with the task's rights (a helper of a
// confine.Pool, or a supervisor thread without capabilities, see
// confine.Unprivileged): its /proc/self is the supervisor's, so the task's magic
// links (fd/N, cwd, root, exe, also reached as /proc/self, /dev/fd,
// /dev/stdin…) are opened by the supervisor from /proc/<tid>, and every
// other magic link is refused during the walk. A walk that still lands in
// the supervisor's own /proc entries (a relative path from /proc, a symlink
// such as /proc/mounts or /etc/mtab) is mapped to the task's; naming the
// supervisor's entries by number is refused (its threads could read its
// environment and memory for the task).
package taskpath

import (
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/confine"
	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/procfs"
)

// AtFDCWD is AT_FDCWD as a syscall argument register holds it.
const AtFDCWD = uint64(0xffffffffffffff9c)

// IsCWD reports whether a dirfd argument is AT_FDCWD (the kernel reads the
// register as an int).
func IsCWD(dirfd uint64) bool { return int32(dirfd) == unix.AT_FDCWD }

// Resolver walks paths on threads with the task's rights.
type Resolver struct {
	do func(func()) error
}

// New returns a resolver whose walks run on pool.
func New(pool *confine.Pool) *Resolver { return &Resolver{do: pool.Do} }

// NewOn returns a resolver whose walks run through do, which must run its
// function with the task's rights (no capabilities the task lacks), such
// as confine.Unprivileged.
func NewOn(do func(func()) error) *Resolver { return &Resolver{do: do} }

// Start is where a path lookup begins: an O_PATH descriptor (owned) or the
// root for absolute paths (fd -1), and the path left to walk.
type Start struct {
	fd  int
	rel string
	tid uint32 // the task
	// link is the task's /proc entry of the magic link the path ends in
	// (nothing follows it), for a lookup that does not follow its last
	// component (see Resolve).
	link string
}

// Close releases the start's descriptor.
func (s Start) Close() {
	if s.fd >= 0 {
		unix.Close(s.fd)
	}
}

// dirfd is the descriptor to pass to *at syscalls.
func (s Start) dirfd() int {
	if s.fd < 0 {
		return unix.AT_FDCWD
	}
	return s.fd
}

// ProcPath returns /proc/<tid>/<rest…>.
func ProcPath(tid uint32, rest ...string) string {
	return "/proc/" + strconv.FormatUint(uint64(tid), 10) + "/" + strings.Join(rest, "/")
}

// OpenProc opens one of the task's /proc entries with O_PATH (and flags,
// e.g. O_NOFOLLOW), following the magic link unless told not to, and proves
// afterwards that the entry was the task's.
func OpenProc(hc *notify.HandlerCtx, p string, flags int) (int, error) {
	fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC|flags, 0)
	if err != nil {
		return -1, err
	}
	if err := notify.TaskAlive(hc); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// OpenFD opens the task's descriptor dirfd with O_PATH; a descriptor that
// is not open is EBADF, as for any *at syscall.
func OpenFD(hc *notify.HandlerCtx, dirfd uint64) (int, error) {
	fd, err := OpenProc(hc, ProcPath(hc.Notif.PID, "fd", strconv.FormatUint(uint64(uint32(dirfd)), 10)), 0)
	if err == unix.ENOENT {
		err = unix.EBADF
	}
	return fd, err
}

// OpenCWD opens the task's working directory with O_PATH.
func OpenCWD(hc *notify.HandlerCtx) (int, error) {
	return OpenProc(hc, ProcPath(hc.Notif.PID, "cwd"), 0)
}

// Locate finds where the lookup of path, relative to dirfd, starts.
func Locate(hc *notify.HandlerCtx, dirfd uint64, path string) (Start, error) {
	tid := hc.Notif.PID
	if strings.HasPrefix(path, "/") {
		if p, rest, ok := magic(tid, path); ok {
			if p == "/" {
				return Start{fd: -1, rel: procSelf(tid, "/"+rest), tid: tid, link: linkOf(tid, path, rest)}, nil
			}
			fd, err := OpenProc(hc, p, 0)
			if err != nil {
				return Start{}, err
			}
			return Start{fd: fd, rel: rest, tid: tid, link: linkOf(tid, path, rest)}, nil
		}
		return Start{fd: -1, rel: procSelf(tid, path), tid: tid}, nil
	}
	var fd int
	var err error
	if IsCWD(dirfd) {
		fd, err = OpenCWD(hc)
	} else {
		fd, err = OpenFD(hc, dirfd)
	}
	if err != nil {
		return Start{}, err
	}
	return Start{fd: fd, rel: path, tid: tid}, nil
}

// linkOf returns the task's /proc entry of the magic link a path ends in
// (when nothing follows it), or "".
func linkOf(tid uint32, path, rest string) string {
	if rest != "" || strings.HasSuffix(path, "/") {
		return "" // the link is followed: something comes after it
	}
	entry, _, ok := magicEntry(tid, path)
	if !ok {
		return ""
	}
	return entry
}

// components splits a path into its names, without empty names and ".".
func components(path string) []string {
	var comps []string
	for _, c := range strings.Split(path, "/") {
		if c != "" && c != "." {
			comps = append(comps, c)
		}
	}
	return comps
}

func numeric(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}

// procSelf rewrites an absolute path through /proc/self or
// /proc/thread-self to the task's own /proc directory (the helper thread's
// /proc/self is the supervisor).
func procSelf(tid uint32, path string) string {
	comps := components(path)
	if len(comps) < 2 || comps[0] != "proc" || (comps[1] != "self" && comps[1] != "thread-self") {
		return path
	}
	for _, c := range comps {
		if c == ".." {
			return path
		}
	}
	tgid := tgidOf(tid)
	if tgid == "" {
		return path // the task is gone; ownProc refuses the walk
	}
	own := []string{"proc", tgid}
	if comps[1] == "thread-self" {
		own = append(own, "task", strconv.FormatUint(uint64(tid), 10))
	}
	comps = append(own, comps[2:]...)
	out := "/" + strings.Join(comps, "/")
	if strings.HasSuffix(path, "/") {
		out += "/"
	}
	return out
}

// magic recognises an absolute path through the task's own /proc magic
// links. It returns the /proc entry to open ("/" for the root) and the rest
// of the path. Paths with ".." before the magic part are left alone.
func magic(tid uint32, path string) (entry, rest string, ok bool) {
	link, rest, ok := magicEntry(tid, path)
	if !ok {
		return "", "", false
	}
	if strings.HasSuffix(link, "/root") {
		return "/", rest, true
	}
	return link, rest, true
}

// magicEntry is magic, returning the root's link as it is.
func magicEntry(tid uint32, path string) (link, rest string, ok bool) {
	comps := components(path)
	if len(comps) < 2 {
		return "", "", false
	}
	self := strconv.FormatUint(uint64(tid), 10)
	switch {
	case comps[0] == "proc" && (comps[1] == "self" || comps[1] == "thread-self"):
		comps = append([]string{"proc", self}, comps[2:]...)
	case comps[0] == "dev" && comps[1] == "fd":
		comps = append([]string{"proc", self, "fd"}, comps[2:]...)
	case comps[0] == "dev" && (comps[1] == "stdin" || comps[1] == "stdout" || comps[1] == "stderr"):
		n := map[string]string{"stdin": "0", "stdout": "1", "stderr": "2"}[comps[1]]
		comps = append([]string{"proc", self, "fd", n}, comps[2:]...)
	}
	if len(comps) < 3 || comps[0] != "proc" || (comps[1] != self && comps[1] != tgidOf(tid)) {
		return "", "", false
	}
	// dir is the task's (or, under task/, one of its threads') /proc
	// directory; comps is left with the entry and what follows it.
	dir := ProcPath(tid)
	comps = comps[2:]
	if comps[0] == "task" && len(comps) >= 3 && numeric(comps[1]) {
		tgid := tgidOf(tid)
		if tgid == "" {
			return "", "", false
		}
		dir = "/proc/" + tgid + "/task/" + comps[1] + "/"
		comps = comps[2:]
	}
	switch comps[0] {
	case "root", "cwd", "exe":
		return dir + comps[0], strings.Join(comps[1:], "/"), true
	case "fd":
		if len(comps) < 2 || !numeric(comps[1]) {
			return "", "", false
		}
		return dir + "fd/" + comps[1], strings.Join(comps[2:], "/"), true
	}
	return "", "", false
}

// tgidOf returns the task's thread group id as a decimal string, or "" if
// it cannot be read.
func tgidOf(tid uint32) string {
	st, err := procfs.ReadStatus(int(tid))
	if err != nil {
		return ""
	}
	v, _ := st.Field("Tgid")
	return v
}

// Umask returns the task's umask (it applies to files created on its
// behalf); 022 if /proc does not say.
func Umask(tid uint32) uint32 { return procfs.Umask(int(tid)) }

// Open resolves the rest of a lookup to an O_PATH descriptor, on a
// confined helper thread, refusing magic links. flags may hold O_NOFOLLOW
// and O_DIRECTORY. A walk that lands in the supervisor's own /proc entries
// is mapped to the task's (see ownProc).
func (r *Resolver) Open(s Start, flags int) (int, error) {
	if s.rel == "" {
		// The start is the target itself (a followed magic link).
		return unix.FcntlInt(uintptr(s.fd), unix.F_DUPFD_CLOEXEC, 0)
	}
	fd, helper, err := r.walk(s.dirfd(), s.rel, flags)
	if err != nil {
		return -1, err
	}
	own, err := ownProc(s, fd, helper)
	if err != nil || own == "" {
		if err != nil {
			unix.Close(fd)
			return -1, err
		}
		return fd, nil
	}
	unix.Close(fd)
	fd, _, err = r.walk(unix.AT_FDCWD, own, flags)
	return fd, err
}

// Resolve resolves path relative to the task's dirfd to an O_PATH
// descriptor of the object a syscall would act on: the last component
// followed unless nofollow.
func (r *Resolver) Resolve(hc *notify.HandlerCtx, dirfd uint64, path string, nofollow bool) (int, error) {
	if path == "" {
		return -1, unix.ENOENT
	}
	s, err := Locate(hc, dirfd, path)
	if err != nil {
		return -1, err
	}
	defer s.Close()
	if !nofollow {
		return r.Open(s, 0)
	}
	if s.link != "" {
		// The path names one of the task's magic links and does not
		// follow it: the object is the link itself.
		return OpenProc(hc, s.link, unix.O_NOFOLLOW)
	}
	return r.Open(s, unix.O_NOFOLLOW)
}

// Use resolves path like Resolve and runs use on the object, on the thread
// the walk ran on: a feature that judges and acts on the object there pays
// for one switch to that thread at most. use gets the object's path as
// FDPath reports it, or "" when it was not read; it must not keep the
// descriptor. A walk that lands in /proc is finished by the supervisor (see
// ownProc) before use runs.
func (r *Resolver) Use(hc *notify.HandlerCtx, dirfd uint64, path string, nofollow bool, use func(pin int, path string) error) error {
	if path == "" {
		return unix.ENOENT
	}
	s, err := Locate(hc, dirfd, path)
	if err != nil {
		return err
	}
	defer s.Close()
	flags := 0
	if nofollow {
		flags = unix.O_NOFOLLOW
	}
	if s.rel == "" || (nofollow && s.link != "") {
		// No walk: the object is a magic link's target or the link itself.
		pin, err := r.Resolve(hc, dirfd, path, nofollow)
		if err != nil {
			return err
		}
		defer unix.Close(pin)
		return r.run(func() error { return use(pin, "") })
	}
	procPin, helper := -1, 0
	if derr := r.do(func() {
		var fd int
		if fd, err = openat2(s.dirfd(), s.rel, flags); err != nil {
			return
		}
		p, perr := FDPath(fd)
		if perr == nil && strings.HasPrefix(p, "/proc/") {
			procPin, helper = fd, unix.Gettid()
			return
		}
		err = use(fd, p)
		unix.Close(fd)
	}); derr != nil {
		return derr
	}
	if procPin < 0 {
		return err
	}
	own, err := ownProc(s, procPin, helper)
	if err != nil || own == "" {
		defer unix.Close(procPin)
		if err != nil {
			return err
		}
		return r.run(func() error { return use(procPin, "") })
	}
	unix.Close(procPin)
	pin, _, err := r.walk(unix.AT_FDCWD, own, flags)
	if err != nil {
		return err
	}
	defer unix.Close(pin)
	return r.run(func() error { return use(pin, "") })
}

// run runs fn like the walks.
func (r *Resolver) run(fn func() error) error {
	var err error
	if derr := r.do(func() { err = fn() }); derr != nil {
		return derr
	}
	return err
}

// openat2 is the walk: an O_PATH descriptor, never through a magic link.
func openat2(dirfd int, path string, flags int) (int, error) {
	return unix.Openat2(dirfd, path, &unix.OpenHow{
		Flags:   uint64(flags | unix.O_PATH | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_NO_MAGICLINKS,
	})
}

// walk resolves path from dirfd to an O_PATH descriptor on a helper thread
// and returns it with the helper's thread id.
func (r *Resolver) walk(dirfd int, path string, flags int) (fd, helper int, err error) {
	if derr := r.do(func() {
		helper = unix.Gettid()
		fd, err = openat2(dirfd, path, flags)
	}); derr != nil {
		return -1, 0, derr
	}
	return fd, helper, err
}

// OnProc reports whether fd is on a procfs.
func OnProc(fd int) bool {
	var sfs unix.Statfs_t
	return unix.Fstatfs(fd, &sfs) == nil && sfs.Type == unix.PROC_SUPER_MAGIC
}

// ownProc checks where a walk on a helper thread landed. The helper's
// /proc/self is the supervisor: a walk through it (a relative "self" from
// /proc, a symlink such as /proc/mounts → self/mounts or /etc/mtab →
// ../proc/self/mounts) lands in the supervisor's /proc entries, which the
// task means as its own. ownProc returns the task's equivalent path to walk
// instead, "" if fd is fine as it is, or EACCES for the supervisor's entries
// named by number (its pid in the path, or one of its threads): the helper,
// in the supervisor's thread group, could read what the task may not (its
// environment, its memory).
func ownProc(s Start, fd, helper int) (string, error) {
	if !OnProc(fd) {
		return "", nil // one statfs: cheaper than reading the path of every object
	}
	p, err := FDPath(fd)
	if err != nil || !strings.HasPrefix(p, "/proc/") {
		return "", nil
	}
	comps := strings.Split(p[len("/proc/"):], "/")
	sup := strconv.Itoa(os.Getpid())
	if comps[0] != sup {
		if numeric(comps[0]) && comps[0] != strconv.FormatUint(uint64(s.tid), 10) {
			if t, _ := strconv.ParseUint(comps[0], 10, 32); tgidOf(uint32(t)) == sup {
				return "", unix.EACCES // a thread of the supervisor, by number
			}
		}
		return "", nil
	}
	for _, c := range components(s.rel) {
		if c == sup {
			return "", unix.EACCES
		}
	}
	tgid := tgidOf(s.tid)
	if tgid == "" {
		return "", notify.ErrTaskGone
	}
	rest := comps[1:]
	if len(rest) >= 2 && rest[0] == "task" {
		if rest[1] != strconv.Itoa(helper) {
			return "", unix.EACCES // another thread of the supervisor, by number
		}
		// Reached through /proc/thread-self: the task's thread.
		rest = append([]string{"task", strconv.FormatUint(uint64(s.tid), 10)}, rest[2:]...)
	}
	return "/proc/" + strings.Join(append([]string{tgid}, rest...), "/"), nil
}

// Parent resolves the directory that holds the last component of path and
// returns it with that component's name (a trailing slash kept, so the
// kernel applies its usual rules to it).
func (r *Resolver) Parent(hc *notify.HandlerCtx, dirfd uint64, path string) (int, string, error) {
	if path == "" {
		return -1, "", unix.ENOENT
	}
	trimmed := strings.TrimRight(path, "/")
	slash := ""
	if trimmed == "" {
		// "/" itself: its parent is itself.
		trimmed, slash = "/.", ""
	} else if len(trimmed) < len(path) {
		slash = "/"
	}
	dir, name := ".", trimmed
	if i := strings.LastIndexByte(trimmed, '/'); i >= 0 {
		dir, name = trimmed[:i], trimmed[i+1:]
		if dir == "" {
			dir = "/"
		}
	}
	s, err := Locate(hc, dirfd, dir)
	if err != nil {
		return -1, "", err
	}
	defer s.Close()
	fd, err := r.Open(s, unix.O_DIRECTORY)
	if err != nil {
		return -1, "", err
	}
	return fd, name + slash, nil
}

// FDPath returns the path a descriptor was opened with, as the kernel keeps
// it (canonical: symlinks and ".." resolved; relative to the mount it was
// reached through).
func FDPath(fd int) (string, error) {
	buf := make([]byte, unix.PathMax)
	var n int
	var err error
	if dir := ownFDDir(); dir >= 0 {
		n, err = unix.Readlinkat(dir, strconv.Itoa(fd), buf)
	} else {
		n, err = unix.Readlink("/proc/self/fd/"+strconv.Itoa(fd), buf)
	}
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// ownFDDir is the supervisor's /proc/<pid>/fd directory, opened once: a
// readlink relative to it looks up one name instead of walking /proc, self
// and fd every time (the descriptor table is the process's, shared by its
// threads). -1 if it cannot be opened.
var ownFDDir = sync.OnceValue(func() int {
	fd, err := unix.Open("/proc/self/fd", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	return fd
})

// ErrAction turns an error from resolving or acting on the task's behalf
// into the syscall's answer: an errno as it is, EACCES for anything else
// (fail closed).
func ErrAction(err error) notify.Action { return notify.Errno(notify.ErrnoFor(err, unix.EACCES)) }
