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
type start struct {
	fd  int
	rel string
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
		if err == unix.ENOENT {
			err = unix.EBADF
		}
		return -1, err
	}
	if err := notify.TaskAlive(hc); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// locate finds where the lookup of path, relative to dirfd, starts.
func locate(hc *notify.HandlerCtx, dirfd uint64, path string) (start, error) {
	tid := hc.Notif.PID
	if strings.HasPrefix(path, "/") {
		if p, rest, ok := magic(tid, path); ok {
			if p == "/" {
				return start{fd: -1, rel: "/" + rest}, nil
			}
			fd, err := openProc(hc, p)
			if err != nil {
				return start{}, err
			}
			return start{fd: fd, rel: rest}, nil
		}
		return start{fd: -1, rel: path}, nil
	}
	var p string
	if dirfd == atFDCWD || int32(dirfd) == unix.AT_FDCWD {
		p = procPath(tid, "cwd")
	} else {
		p = procPath(tid, "fd", strconv.FormatUint(uint64(uint32(dirfd)), 10))
	}
	fd, err := openProc(hc, p)
	if err != nil {
		return start{}, err
	}
	return start{fd: fd, rel: path}, nil
}

// magic recognises an absolute path through the task's own /proc magic
// links. It returns the /proc entry to open ("/" for the root) and the rest
// of the path. Paths with ".." before the magic part are left alone.
func magic(tid uint32, path string) (entry, rest string, ok bool) {
	var comps []string
	for _, c := range strings.Split(path, "/") {
		if c == "" || c == "." {
			continue
		}
		comps = append(comps, c)
	}
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
	switch comps[2] {
	case "root":
		return "/", strings.Join(comps[3:], "/"), true
	case "cwd", "exe":
		return procPath(tid, comps[2]), strings.Join(comps[3:], "/"), true
	case "fd":
		if len(comps) < 4 {
			return "", "", false
		}
		if _, err := strconv.Atoi(comps[3]); err != nil {
			return "", "", false
		}
		return procPath(tid, "fd", comps[3]), strings.Join(comps[4:], "/"), true
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
// confined helper thread, refusing magic links.
func (d *Denier) openPath(s start, flags int) (int, error) {
	if s.rel == "" {
		// The start is the target itself (a followed magic link).
		return unix.FcntlInt(uintptr(s.fd), unix.F_DUPFD_CLOEXEC, 0)
	}
	var fd int
	var err error
	if derr := d.op.do(func() {
		fd, err = unix.Openat2(s.dirfd(), s.rel, &unix.OpenHow{
			Flags:   uint64(flags | unix.O_PATH | unix.O_CLOEXEC),
			Resolve: unix.RESOLVE_NO_MAGICLINKS,
		})
	}); derr != nil {
		return -1, derr
	}
	return fd, err
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
