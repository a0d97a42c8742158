//go:build linux

package cow

import (
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// maxSymlinks is the kernel's limit on symlinks followed in one lookup.
const maxSymlinks = 40

// Place is where a path lookup starts: inside the merged view at Rel, or
// outside the workdir at Abs (an absolute, canonical path).
type Place struct {
	Inside bool
	Rel    string
	Abs    string
	// Differs is set when the kernel would start elsewhere: the place is
	// a directory of the upper layer, or a working directory the kernel
	// does not share (see cowsys).
	Differs bool
}

// Resolved is the result of Walk.
type Resolved struct {
	// Inside: the path names Rel in the merged view, which exists when
	// Exists (Entry is then its lstat, or its target's when followed).
	Inside bool
	Rel    string
	Exists bool
	Entry  Entry
	// Outside: the path leaves the workdir; Abs is what is left to
	// resolve, from the root, as the kernel would resolve it.
	Abs string
	// Differs is set when the kernel, resolving the same path in the real
	// filesystem from the same start, could reach another object: the walk
	// went through the upper layer or a whiteout, or started in a place the
	// kernel does not see.
	Differs bool
	// ViaDiffers is Differs for the way to the final entry alone: when it
	// is clear, the kernel reaches the final entry's path in the workdir
	// (a directory of the upper layer that merges the lower one is also
	// reached there).
	ViaDiffers bool
}

// Walk resolves path the way the kernel would, in the merged view: from
// start for a relative path, from the root for an absolute one; symlinks
// (in the merged view: the upper layer's too) are followed, the last one
// only when follow is set or the path ends with a slash; ".." above the
// workdir leaves it. The final component need not exist (Exists false),
// but every directory on the way must. Once the walk leaves the workdir
// and the path to it, the rest of the path is left to the kernel (Abs):
// a symlink outside the workdir that leads into it is followed by the
// kernel to the workdir itself, which the program may only read.
func (b *Branch) Walk(start Place, path string, follow bool) (Resolved, error) {
	if path == "" {
		return Resolved{}, unix.ENOENT
	}
	trailing := strings.HasSuffix(path, "/")
	comps := components(path)
	pos := start
	if strings.HasPrefix(path, "/") {
		pos = Place{Abs: "/"}
	}
	differs := pos.Differs
	links := 0
	for i := 0; i < len(comps); i++ {
		c := comps[i]
		last := i == len(comps)-1
		if !pos.Inside {
			if c == ".." {
				pos.Abs = filepath.Dir(pos.Abs)
				continue
			}
			next := filepath.Join(pos.Abs, c)
			switch {
			case next == b.workdir:
				pos = Place{Inside: true}
				continue
			case strings.HasPrefix(b.workdir, next+"/"):
				// A directory on the way to the workdir (whose path is
				// canonical: no symlink on it).
				pos.Abs = next
				continue
			}
			rest := filepath.Join(append([]string{pos.Abs}, comps[i:]...)...)
			if trailing {
				rest += "/"
			}
			return Resolved{Abs: rest, Differs: differs}, nil
		}
		if c == ".." {
			if pos.Rel == "" {
				pos = Place{Abs: filepath.Dir(b.workdir)}
			} else {
				pos.Rel, _ = split(pos.Rel)
			}
			continue
		}
		rel := join(pos.Rel, c)
		e, err := b.Lstat(rel)
		if err == unix.ENOENT {
			if last {
				return Resolved{Inside: true, Rel: rel, Differs: differs || e.Differs, ViaDiffers: differs}, nil
			}
			return Resolved{}, unix.ENOENT
		}
		if err != nil {
			return Resolved{}, err
		}
		if e.IsSymlink() && (!last || follow || trailing) {
			if links++; links > maxSymlinks {
				return Resolved{}, unix.ELOOP
			}
			if e.Differs {
				differs = true
			}
			target, err := b.Readlink(rel)
			if err != nil {
				return Resolved{}, err
			}
			if target == "" {
				return Resolved{}, unix.ENOENT
			}
			rest := comps[i+1:]
			comps = append(components(target), rest...)
			i = -1
			if strings.HasPrefix(target, "/") {
				pos = Place{Abs: "/"}
			}
			if len(comps) == 0 {
				// A link to "/" or "." and nothing after it.
				return b.settle(pos, differs)
			}
			continue
		}
		if !last {
			if !e.IsDir() {
				return Resolved{}, unix.ENOTDIR
			}
			if e.Layer != Lower && !e.Merges {
				differs = true
			}
			pos.Rel = rel
			continue
		}
		if trailing && !e.IsDir() {
			return Resolved{}, unix.ENOTDIR
		}
		return Resolved{Inside: true, Rel: rel, Exists: true, Entry: e, Differs: differs || e.Differs, ViaDiffers: differs}, nil
	}
	return b.settle(pos, differs)
}

// settle is the result of a walk that ends on a directory it stands on
// ("/", ".", "a/..").
func (b *Branch) settle(pos Place, differs bool) (Resolved, error) {
	if !pos.Inside {
		return Resolved{Abs: pos.Abs, Differs: differs}, nil
	}
	e, err := b.Lstat(pos.Rel)
	if err != nil {
		return Resolved{}, err
	}
	return Resolved{Inside: true, Rel: pos.Rel, Exists: true, Entry: e, Differs: differs || e.Differs, ViaDiffers: differs}, nil
}

// components splits a path into its names, without empty names and ".".
func components(path string) []string {
	var out []string
	for _, c := range strings.Split(path, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// Locate returns the merged view's place of a canonical absolute path
// (what the kernel reports for a descriptor): the workdir and below, or
// the upper layer and below (the same merged place); anything else is
// outside.
func (b *Branch) Locate(abs string) Place {
	if rel, ok := relTo(abs, b.workdir); ok {
		return Place{Inside: true, Rel: rel}
	}
	if up := b.UpperDir(); up == "" {
		return Place{Abs: abs}
	} else if rel, ok := relTo(abs, up); ok {
		// The kernel resolves from the upper layer's directory, which the
		// program cannot reach by itself.
		return Place{Inside: true, Rel: rel, Differs: true}
	}
	return Place{Abs: abs}
}

// relTo returns p relative to root when p is root or below it.
func relTo(p, root string) (string, bool) {
	switch {
	case p == root:
		return "", true
	case strings.HasPrefix(p, root+"/"):
		return p[len(root)+1:], true
	}
	return "", false
}

// Contains reports whether an absolute path names the workdir, the branch
// storage, or something below them, lexically.
func (b *Branch) Contains(abs string) bool {
	_, w := relTo(abs, b.workdir)
	return w
}
