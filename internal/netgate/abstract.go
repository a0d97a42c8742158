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
// host's socket table: for each process of the sandbox, each fd that is a
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
func (g *Gate) viaAbstract(ctx context.Context, s *socket, sa []byte, op func(sa []byte) (int, error)) (int, unix.Errno) {
	send := func() (int, error) { return op(sa) }
	if !g.cfg.AbstractScoped {
		return g.do(ctx, s, send)
	}
	owner := g.abstractOwner(sa[2:])
	if owner < 0 {
		return g.do(ctx, s, send)
	}
	defer unix.Close(owner)
	return doOn(ctx, g.cfg.Unscoped, s, send)
}

// abstractOwner returns a duplicate of the sandbox's socket bound to the
// abstract name, or -1.
func (g *Gate) abstractOwner(name []byte) int {
	seen := map[uint64]bool{}
	for _, pid := range g.cfg.ProcessIDs() {
		if fd := g.ownerIn(pid, name, seen); fd >= 0 {
			return fd
		}
	}
	return -1
}

// ownerIn looks for the owner of name among the fds of the process pid.
func (g *Gate) ownerIn(pid int, name []byte, seen map[uint64]bool) int {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return -1
	}
	defer unix.Close(pidfd)
	// The pidfd names one process for good; it is the sandbox's if the
	// tracer still knows the pid now (a pid is not reused before the
	// tracer has reaped it).
	if !g.cfg.Traced(pid) {
		return -1
	}
	dir := "/proc/" + strconv.Itoa(pid) + "/fd/"
	d, err := os.Open(dir)
	if err != nil {
		return -1
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
		dup, err := unix.PidfdGetfd(pidfd, num, 0)
		if err != nil {
			continue
		}
		seen[ino] = true
		if ownsAbstract(dup, name) {
			return dup
		}
		unix.Close(dup)
	}
	return -1
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
