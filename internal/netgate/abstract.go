//go:build linux

package netgate

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Abstract unix sockets and Landlock's scope.
//
// With the abstract-unix-socket scope (Landlock ABI 6), a task may reach an
// abstract socket only if the socket was created in its own Landlock
// domain or one nested in it. The helper threads that act on the program's
// behalf each have a domain of their own, a sibling of the program's, so
// the kernel would refuse them every abstract socket, the program's own
// servers included. The scope is therefore emulated: the operation is done
// on a thread without a Landlock domain (Config.Unscoped) when the socket
// bound to the name is held by a process of the sandbox, and on a confined
// helper otherwise, where the kernel answers exactly what it would answer
// the program for a socket outside its domain (EPERM) or for a name nobody
// holds (ECONNREFUSED).
//
// The owner is found among the sandbox's own descriptors, not in the
// host's socket table (where it was last found is tried first): for each process of the sandbox, each fd that is a
// socket is duplicated (pidfd_getfd) and asked for its address. Only the
// socket that owns a name counts: a datagram socket, or a listening stream
// or seqpacket one (an accepted socket reports its listener's address
// without owning it, and can never listen). The duplicate is held until
// the operation is done, so the name cannot pass to another socket in
// between: a name is released only when its socket is.
//
// Where this is looser than Landlock: a socket created outside the sandbox
// (so outside its domain) and handed to it, by inheritance or SCM_RIGHTS,
// counts as the sandbox's. Where it is stricter: a socket held only by a
// thread that unshared its fd table, or by a process whose /proc entries
// the supervisor cannot read, is not found (EPERM).

// viaAbstract does op towards the abstract unix socket of the address sa.
// Without a known owner, the confined helper tries first: a name nobody
// holds then costs no search (ECONNREFUSED), and nothing is sent where the
// scope refuses (EPERM comes before any delivery); only then are the
// sandbox's sockets searched.
func (g *Gate) viaAbstract(ctx context.Context, s *socket, sa []byte, op func(sa []byte) (int, error)) (int, unix.Errno) {
	send := func() (int, error) { return op(sa) }
	if !g.cfg.AbstractScoped {
		return g.do(ctx, s, send)
	}
	name := sa[2:]
	owner := g.hintedOwner(name)
	if owner < 0 {
		n, errno := g.do(ctx, s, send)
		if errno != unix.EPERM {
			return n, errno
		}
		if owner = g.abstractOwner(name); owner < 0 {
			return 0, unix.EPERM
		}
	}
	defer unix.Close(owner)
	return doOn(ctx, g.cfg.Unscoped, s, send)
}

// ownerHint is where the owner of an abstract name was last found.
type ownerHint struct{ pid, fd int }

// maxHints bounds the names remembered.
const maxHints = 256

// hintedOwner checks where the owner of name was last found, and returns a
// duplicate of it if it is still there, else -1. Programs reach the same
// servers again and again; the full search walks every descriptor of the
// sandbox.
func (g *Gate) hintedOwner(name []byte) int {
	g.hintsMu.Lock()
	h, ok := g.hints[string(name)]
	g.hintsMu.Unlock()
	if !ok {
		return -1
	}
	if fd := g.ownerAt(h, name); fd >= 0 {
		return fd
	}
	g.hintsMu.Lock()
	delete(g.hints, string(name))
	g.hintsMu.Unlock()
	return -1
}

// ownerAt returns a duplicate of fd h.fd of process h.pid if the process
// is the sandbox's and the socket owns name, else -1.
func (g *Gate) ownerAt(h ownerHint, name []byte) int {
	pidfd, err := unix.PidfdOpen(h.pid, 0)
	if err != nil {
		return -1
	}
	defer unix.Close(pidfd)
	if !g.cfg.Traced(h.pid) {
		return -1
	}
	dup, err := unix.PidfdGetfd(pidfd, h.fd, 0)
	if err != nil {
		return -1
	}
	if !ownsAbstract(dup, name) {
		unix.Close(dup)
		return -1
	}
	return dup
}

// abstractOwner returns a duplicate of the sandbox's socket bound to the
// abstract name, or -1, and remembers where it was.
func (g *Gate) abstractOwner(name []byte) int {
	seen := map[uint64]bool{}
	for _, pid := range g.cfg.ProcessIDs() {
		if fd, at := g.ownerIn(pid, name, seen); fd >= 0 {
			g.hintsMu.Lock()
			if g.hints == nil || len(g.hints) >= maxHints {
				g.hints = map[string]ownerHint{}
			}
			g.hints[string(name)] = ownerHint{pid, at}
			g.hintsMu.Unlock()
			return fd
		}
	}
	return -1
}

// ownerIn looks for the owner of name among the fds of the process pid;
// it returns a duplicate and the fd number it has in pid.
func (g *Gate) ownerIn(pid int, name []byte, seen map[uint64]bool) (dup, at int) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return -1, 0
	}
	defer unix.Close(pidfd)
	// The pidfd names one process for good; it is the sandbox's if the
	// tracer still knows the pid now (a pid is not reused before the
	// tracer has reaped it).
	if !g.cfg.Traced(pid) {
		return -1, 0
	}
	dir := "/proc/" + strconv.Itoa(pid) + "/fd/"
	d, err := os.Open(dir)
	if err != nil {
		return -1, 0
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	for _, n := range names {
		// The listing only points at candidates: each is checked on the
		// duplicate taken through the pidfd.
		link, err := os.Readlink(dir + n)
		if err != nil || !strings.HasPrefix(link, "socket:[") {
			continue
		}
		ino, err := strconv.ParseUint(strings.TrimSuffix(link[len("socket:["):], "]"), 10, 64)
		num, nerr := strconv.Atoi(n)
		if err != nil || nerr != nil || seen[ino] {
			continue
		}
		fd, err := unix.PidfdGetfd(pidfd, num, 0)
		if err != nil {
			continue
		}
		seen[ino] = true
		if ownsAbstract(fd, name) {
			return fd, num
		}
		unix.Close(fd)
	}
	return -1, 0
}

// ownsAbstract reports whether fd is the unix socket bound to the abstract
// name: it has that address and is a datagram socket or a listening one.
func ownsAbstract(fd int, name []byte) bool {
	if d, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN); err != nil || d != unix.AF_UNIX {
		return false
	}
	if typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || typ != unix.SOCK_DGRAM {
		if acc, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || acc != 1 {
			return false
		}
	}
	sa, err := rawGetsockname(fd)
	return err == nil && len(sa) > 2 && bytes.Equal(sa[2:], name)
}
