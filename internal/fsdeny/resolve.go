package fsdeny

import (
	"bytes"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/notify"
)

// start is where a path lookup begins: an O_PATH descriptor (owned) or the
// root for absolute paths (fd -1), and the path left to walk. Magic links
// of the task's own /proc entries (fd/N, cwd, root, exe, also reached as
// /proc/self, /dev/fd, /dev/stdin…) are opened by the supervisor, which
// follows them as the task's /proc would; every other magic link is refused
// during the walk, since the helper thread's /proc/self is not the task's.
//
// Other paths through /proc/self and /proc/thread-self are rewritten to the
// task's own /proc directory; a walk that still lands in the supervisor's
// own /proc entries (a relative path from /proc, a symlink such as
// /proc/mounts or /etc/mtab) is mapped to the task's (see ownProc).
type start struct {
	fd  int
	rel string
	tid uint32 // the task
	// proc marks an absolute path that stays lexically inside /proc (no
	// ".."): everything the kernel walks for it is procfs, which the task
	// cannot change, so the kernel may resolve it again in the task's own
	// context (its /proc/self).
	proc bool
}

func (s start) close() {
	if s.fd >= 0 {
		unix.Close(s.fd)
	}
}

// dirfd is the descriptor to pass to *at syscalls.
func (s start) dirfd() int {
	if s.fd < 0 {
		return unix.AT_FDCWD
	}
	return s.fd
}

func procPath(tid uint32, rest ...string) string {
	return "/proc/" + strconv.FormatUint(uint64(tid), 10) + "/" + strings.Join(rest, "/")
}

// openProc opens one of the task's /proc entries with O_PATH, following the
// magic link, and proves afterwards that the entry was the task's.
func openProc(hc *notify.HandlerCtx, p string) (int, error) {
	fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := notify.TaskAlive(hc); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// openFD opens the task's descriptor dirfd with O_PATH; a descriptor that
// is not open is EBADF, as for any *at syscall.
func openFD(hc *notify.HandlerCtx, dirfd uint64) (int, error) {
	fd, err := openProc(hc, procPath(hc.Notif.PID, "fd", strconv.FormatUint(uint64(uint32(dirfd)), 10)))
	if err == unix.ENOENT {
		err = unix.EBADF
	}
	return fd, err
}

// locate finds where the lookup of path, relative to dirfd, starts.
func locate(hc *notify.HandlerCtx, dirfd uint64, path string) (start, error) {
	tid := hc.Notif.PID
	if strings.HasPrefix(path, "/") {
		if p, rest, ok := magic(tid, path); ok {
			if p == "/" {
				rel, proc := procSelf(tid, "/"+rest)
				return start{fd: -1, rel: rel, tid: tid, proc: proc}, nil
			}
			fd, err := openProc(hc, p)
			if err != nil {
				return start{}, err
			}
			return start{fd: fd, rel: rest, tid: tid}, nil
		}
		rel, proc := procSelf(tid, path)
		return start{fd: -1, rel: rel, tid: tid, proc: proc}, nil
	}
	var fd int
	var err error
	if dirfd == atFDCWD || int32(dirfd) == unix.AT_FDCWD {
		fd, err = openProc(hc, procPath(tid, "cwd"))
	} else {
		fd, err = openFD(hc, dirfd)
	}
	if err != nil {
		return start{}, err
	}
	return start{fd: fd, rel: path, tid: tid}, nil
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
// /proc/thread-self to the task's own /proc directory, and reports whether
// the path stays lexically inside /proc.
func procSelf(tid uint32, path string) (string, bool) {
	comps := components(path)
	if len(comps) == 0 || comps[0] != "proc" {
		return path, false
	}
	for _, c := range comps {
		if c == ".." {
			return path, false
		}
	}
	if len(comps) >= 2 && (comps[1] == "self" || comps[1] == "thread-self") {
		tgid := tgidOf(tid)
		if tgid == "" {
			return path, false // the task is gone; ownProc refuses the walk
		}
		own := []string{"proc", tgid}
		if comps[1] == "thread-self" {
			own = append(own, "task", strconv.FormatUint(uint64(tid), 10))
		}
		comps = append(own, comps[2:]...)
	}
	out := "/" + strings.Join(comps, "/")
	if strings.HasSuffix(path, "/") {
		out += "/"
	}
	return out, true
}

// magic recognises an absolute path through the task's own /proc magic
// links. It returns the /proc entry to open ("/" for the root) and the rest
// of the path. Paths with ".." before the magic part are left alone.
func magic(tid uint32, path string) (entry, rest string, ok bool) {
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
	dir := procPath(tid)
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
	case "root":
		return "/", strings.Join(comps[1:], "/"), true
	case "cwd", "exe":
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
	return statusField(tid, "Tgid:")
}

// statusField returns a field of /proc/<tid>/status.
func statusField(tid uint32, key string) string {
	b, err := os.ReadFile(procPath(tid, "status"))
	if err != nil {
		return ""
	}
	i := bytes.Index(b, []byte("\n"+key))
	if i < 0 {
		return ""
	}
	line := b[i+1+len(key):]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	return string(bytes.TrimSpace(line))
}

// umaskOf returns the task's umask (it applies to files created on its
// behalf); 022 if /proc does not say.
func umaskOf(tid uint32) uint32 {
	m, err := strconv.ParseUint(statusField(tid, "Umask:"), 8, 32)
	if err != nil {
		return 0o022
	}
	return uint32(m)
}

// openPath resolves the rest of a lookup to an O_PATH descriptor, on a
// confined helper thread, refusing magic links. A walk that lands in the
// supervisor's own /proc entries is mapped to the task's (see ownProc).
func (d *Denier) openPath(s start, flags int) (int, error) {
	if s.rel == "" {
		// The start is the target itself (a followed magic link).
		return unix.FcntlInt(uintptr(s.fd), unix.F_DUPFD_CLOEXEC, 0)
	}
	fd, helper, err := d.walk(s.dirfd(), s.rel, flags)
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
	fd, _, err = d.walk(unix.AT_FDCWD, own, flags)
	return fd, err
}

// walk resolves path from dirfd to an O_PATH descriptor on a helper thread
// and returns it with the helper's thread id.
func (d *Denier) walk(dirfd int, path string, flags int) (fd, helper int, err error) {
	if derr := d.op.Do(func() {
		helper = unix.Gettid()
		fd, err = unix.Openat2(dirfd, path, &unix.OpenHow{
			Flags:   uint64(flags | unix.O_PATH | unix.O_CLOEXEC),
			Resolve: unix.RESOLVE_NO_MAGICLINKS,
		})
	}); derr != nil {
		return -1, 0, derr
	}
	return fd, helper, err
}

// onProc reports whether fd is on a procfs.
func onProc(fd int) bool {
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
func ownProc(s start, fd, helper int) (string, error) {
	p, err := fdPath(fd)
	if err != nil || !strings.HasPrefix(p, "/proc/") || !onProc(fd) {
		return "", nil
	}
	comps := strings.Split(p[len("/proc/"):], "/")
	sup := strconv.Itoa(os.Getpid())
	if comps[0] != sup {
		if numeric(comps[0]) && comps[0] != strconv.FormatUint(uint64(s.tid), 10) {
			if t, _ := strconv.ParseUint(comps[0], 10, 32); statusField(uint32(t), "Tgid:") == sup {
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

// parent resolves the directory that holds the last component of path and
// returns it with that component's name (a trailing slash kept, so the
// kernel applies its usual rules to it).
func (d *Denier) parent(hc *notify.HandlerCtx, dirfd uint64, path string) (int, string, error) {
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
	s, err := locate(hc, dirfd, dir)
	if err != nil {
		return -1, "", err
	}
	defer s.close()
	fd, err := d.openPath(s, unix.O_DIRECTORY)
	if err != nil {
		return -1, "", err
	}
	return fd, name + slash, nil
}
