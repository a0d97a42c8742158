package landlock

import (
	"path/filepath"
	"strings"
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
}

// NewGrants canonicalises rules. A rule is writable when it allows writing
// files; rules whose path cannot be resolved are left out (they could not
// have been added to a ruleset either).
func NewGrants(rules []PathRule) Grants {
	var g Grants
	for _, r := range rules {
		canon, err := filepath.EvalSymlinks(r.Path)
		if err != nil {
			continue
		}
		canon = filepath.Clean(canon)
		if r.Access&(FSReadFile|FSReadDir|FSWriteFile) != 0 {
			g.readable = append(g.readable, canon)
		}
		if r.Access&FSWriteFile != 0 {
			g.writable = append(g.writable, canon)
		}
	}
	return g
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
