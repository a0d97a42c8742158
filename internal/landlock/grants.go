//go:build linux

package landlock

import (
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Grants are a ruleset's path rules in canonical form (symlinks resolved),
// for judging what the ruleset allows where the kernel does not judge:
// syscalls Landlock does not cover (chmod, xattrs, inotify…), and opens a
// supervisor performs from a thread outside the program's domain.
//
// A path is compared with the grants as the kernel reports it for an open
// descriptor (readlink of /proc/self/fd/N: the path through the mount it was
// reached by), which is what Landlock's path-beneath rules judge: a grant
// covers itself and everything below it.
type Grants struct {
	readable []string // every grant: a writable grant can also be read
	writable []string
	// readAll: the rules were carved out of a read grant on "/" (see
	// Config.ReadsEverywhere): reading the metadata of the carved trees
	// tells nothing their listing does not.
	readAll bool
}

// add records the rule on the object fd, the descriptor the rule was made
// from: its path as the kernel reports it is the grant's canonical form,
// exactly the object the rule binds (a grant that could not be read is left
// out: paths under it are refused). buf is scratch space of PathMax bytes.
func (g *Grants) add(fd int, access uint64, buf []byte) {
	n, err := unix.Readlink("/proc/self/fd/"+strconv.Itoa(fd), buf)
	if err != nil || n == 0 || buf[0] != '/' {
		return
	}
	canon := string(buf[:n])
	if access&(FSReadFile|FSReadDir|FSWriteFile) != 0 {
		g.readable = append(g.readable, canon)
	}
	if access&FSWriteFile != 0 {
		g.writable = append(g.writable, canon)
	}
}

// Allows reports whether the canonical path p is under a grant that lets
// it be written (write) or read.
func (g Grants) Allows(p string, write bool) bool {
	roots := g.readable
	if write {
		roots = g.writable
	}
	return under(p, roots)
}

// Everything reports whether every path is allowed (a grant on "/"), for
// writing or for reading.
func (g Grants) Everything(write bool) bool {
	if !write && g.readAll {
		return true
	}
	roots := g.readable
	if write {
		roots = g.writable
	}
	for _, r := range roots {
		if r == "/" {
			return true
		}
	}
	return false
}

// under reports whether p is one of roots or below one.
func under(p string, roots []string) bool {
	for _, r := range roots {
		if r == "/" || p == r || strings.HasPrefix(p, r) && len(p) > len(r) && p[len(r)] == '/' {
			return true
		}
	}
	return false
}
