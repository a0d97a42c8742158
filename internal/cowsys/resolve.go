//go:build linux

package cowsys

import (
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/cow"
	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/taskpath"
)

// target is a resolved path argument.
type target struct {
	cow.Resolved
	// fd is set for a path that names one of the task's descriptors
	// through its /proc magic link (/proc/self/fd/N, /dev/fd/N): a
	// duplicate of it, which the caller closes; the object is then that
	// very file (a deleted file of the upper layer included).
	fd int
}

// kernel reports whether the kernel, resolving the path itself, reaches
// what the merged view does: a path outside the workdir, or a lower entry
// reached the same way.
func (t target) kernel() bool {
	return !t.Differs && (!t.Inside || t.Exists && t.Entry.Layer == cow.Lower || !t.Exists)
}

func (t target) close() {
	if t.fd >= 0 {
		unix.Close(t.fd)
	}
}

// readPath reads a path argument.
func readPath(hc *notify.HandlerCtx, addr uint64) (string, error) {
	return notify.ReadPath(hc, addr)
}

// resolve resolves the path argument at addr, relative to dirfd, through
// the merged view; follow follows a final symlink.
func (g *Gate) resolve(hc *notify.HandlerCtx, dirfd uint64, path string, follow bool) (target, error) {
	t := target{fd: -1}
	if path == "" {
		return t, unix.ENOENT
	}
	var start cow.Place
	if path[0] == '/' {
		if g.names(path, g.storage) {
			return t, unix.EACCES // the branch storage, by name
		}
		if strings.HasPrefix(path, "/proc/") || strings.HasPrefix(path, "/dev/") {
			s, rest, fd, ok, err := g.magic(hc, path, follow)
			if err != nil {
				return t, err
			}
			if ok {
				if fd >= 0 {
					return g.fdTarget(fd)
				}
				if rest == "" {
					t.Resolved, err = g.b.Walk(s, ".", follow)
					return t, err
				}
				path, start = rest, s
			}
		}
	} else {
		var err error
		if start, err = g.startOf(hc, dirfd); err != nil {
			return t, err
		}
	}
	r, err := g.b.Walk(start, path, follow)
	t.Resolved = r
	return t, err
}

// names reports whether an absolute path names root or something below
// it, lexically.
func (g *Gate) names(path, root string) bool {
	if root == "" {
		return false
	}
	clean := "/" + strings.Join(components(path), "/")
	return clean == root || strings.HasPrefix(clean, root+"/")
}

func components(path string) []string {
	var out []string
	for _, c := range strings.Split(path, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// fdTarget is the target of a path naming a descriptor (dup, owned by the
// target from here).
func (g *Gate) fdTarget(dup int) (target, error) {
	t := target{fd: dup}
	p, err := fdPath(dup)
	if err != nil || !strings.HasPrefix(p, "/") {
		// A pipe, socket or anonymous inode: not the branch's.
		t.Abs = "/"
		return t, nil
	}
	if strings.HasSuffix(p, " (deleted)") {
		// A file with no name left: the object is the descriptor's alone.
		if g.b.Holds(dup) {
			t.Inside, t.Exists, t.Differs = true, true, true
			t.Rel = ""
			var st unix.Stat_t
			unix.Fstat(dup, &st)
			t.Entry = cow.Entry{Layer: cow.Upper, Stat: st, Differs: true}
			return t, nil
		}
		t.Abs = p
		return t, nil
	}
	pl := g.b.Locate(p)
	if !pl.Inside {
		t.Abs = p
		return t, nil
	}
	r, err := g.b.Walk(pl, ".", false)
	if err != nil {
		unix.Close(dup)
		return target{fd: -1}, err
	}
	t.Resolved = r
	return t, nil
}

// startOf is where a relative path starts: the task's working directory,
// or its descriptor dirfd.
func (g *Gate) startOf(hc *notify.HandlerCtx, dirfd uint64) (cow.Place, error) {
	if taskpath.IsCWD(dirfd) {
		return g.cwd(hc)
	}
	p, err := readTaskLink(hc, "fd/"+strconv.FormatUint(uint64(uint32(dirfd)), 10))
	if err != nil {
		return cow.Place{}, err
	}
	if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, " (deleted)") {
		// Not a directory of any filesystem: the kernel answers (ENOTDIR).
		return cow.Place{Abs: "/nonexistent/" + p}, nil
	}
	return g.b.Locate(p), nil
}

// cwd is where the task's relative paths start: what the gate recorded of
// the process's chdir and fchdir calls, or the kernel's word (read once and
// kept, unless a chdir the gate left to the kernel may be under way).
func (g *Gate) cwd(hc *notify.HandlerCtx) (cow.Place, error) {
	tgid := g.tgidOf(int(hc.Notif.PID))
	g.mu.RLock()
	e, ok := g.cwds[tgid]
	g.mu.RUnlock()
	if ok && !e.unknown {
		p := e.place
		if e.virtual {
			p.Differs = true
		}
		return p, nil
	}
	link, err := readTaskLink(hc, "cwd")
	if err != nil {
		return cow.Place{}, err
	}
	if strings.HasSuffix(link, " (deleted)") {
		return cow.Place{Abs: link}, nil
	}
	p := g.b.Locate(link)
	if !ok {
		// Kept unless a chdir came meanwhile (which recorded its own).
		g.mu.Lock()
		if _, now := g.cwds[tgid]; !now {
			g.cwds[tgid] = cwdEntry{place: p}
		}
		g.mu.Unlock()
	}
	return p, nil
}

// setCwd records a process's working directory, as the gate decided it.
func (g *Gate) setCwd(hc *notify.HandlerCtx, p cow.Place, virtual bool) {
	tgid := g.tgidOf(int(hc.Notif.PID))
	g.mu.Lock()
	g.cwds[tgid] = cwdEntry{place: p, virtual: virtual}
	g.mu.Unlock()
}

// forgetCwd makes relative paths read the task's working directory from
// the kernel: a chdir left to it, whose outcome the gate does not know.
// It stays unknown (read each time, never kept) until a chdir the gate
// follows.
func (g *Gate) forgetCwd(hc *notify.HandlerCtx) {
	tgid := g.tgidOf(int(hc.Notif.PID))
	g.mu.Lock()
	g.cwds[tgid] = cwdEntry{unknown: true}
	g.mu.Unlock()
}

// magic recognises an absolute path through one of the task's own /proc
// magic links (fd/N, cwd, root, exe of /proc/self, /proc/thread-self,
// /proc/<its pid>; /dev/fd/N, /dev/stdin…). It returns where the lookup
// continues and what is left of the path; for a path that is exactly an
// fd link, followed, a duplicate of the descriptor instead. ok is false
// for any other path (the kernel's).
func (g *Gate) magic(hc *notify.HandlerCtx, path string, follow bool) (start cow.Place, rest string, fd int, ok bool, err error) {
	fd = -1
	comps := components(path)
	if len(comps) < 2 {
		return
	}
	tid := strconv.FormatUint(uint64(hc.Notif.PID), 10)
	entry := ""
	switch {
	case comps[0] == "dev" && comps[1] == "fd" && len(comps) >= 3:
		entry, comps = "fd/"+comps[2], comps[3:]
	case comps[0] == "dev" && (comps[1] == "stdin" || comps[1] == "stdout" || comps[1] == "stderr"):
		entry, comps = "fd/"+map[string]string{"stdin": "0", "stdout": "1", "stderr": "2"}[comps[1]], comps[2:]
	case comps[0] == "proc" && len(comps) >= 3:
		who := comps[1]
		switch {
		case who == "self" || who == "thread-self" || who == tid:
		case who == strconv.Itoa(g.tgidOf(int(hc.Notif.PID))):
		default:
			return
		}
		comps = comps[2:]
		if comps[0] == "task" && len(comps) >= 3 {
			if comps[1] != tid {
				return
			}
			comps = comps[2:]
		}
		switch comps[0] {
		case "cwd", "root", "exe":
			entry, comps = comps[0], comps[1:]
		case "fd":
			if len(comps) < 2 {
				return
			}
			entry, comps = "fd/"+comps[1], comps[2:]
		default:
			return
		}
	default:
		return
	}
	if _, aerr := strconv.Atoi(strings.TrimPrefix(entry, "fd/")); strings.HasPrefix(entry, "fd/") && aerr != nil {
		return
	}
	rest = strings.Join(comps, "/")
	if rest == "" && strings.HasSuffix(path, "/") {
		rest = "."
	}
	if rest == "" && !follow {
		return // the link itself: the kernel's
	}
	if rest == "" && strings.HasPrefix(entry, "fd/") {
		n, _ := strconv.ParseUint(entry[3:], 10, 32)
		dup, derr := g.dupFD(hc, n)
		if derr != nil {
			return start, "", -1, false, derr
		}
		return start, "", dup, true, nil
	}
	if entry == "root" {
		return cow.Place{Abs: "/"}, rest, -1, true, nil
	}
	link, lerr := readTaskLink(hc, entry)
	if lerr != nil {
		return start, "", -1, false, lerr
	}
	if !strings.HasPrefix(link, "/") || strings.HasSuffix(link, " (deleted)") {
		return // the kernel's (it answers ENOTDIR or ENOENT)
	}
	pl := g.b.Locate(link)
	if !pl.Inside {
		return // outside: the kernel follows the link itself
	}
	if rest == "" {
		rest = "."
	}
	return pl, rest, -1, true, nil
}
