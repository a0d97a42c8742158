//go:build linux

package cow

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/sandlock-go/sandlock/internal/landlock"
)

// Exclusion is a directory whose Landlock rights are limited, whatever
// rule grants them: the workdir keeps its read rights at most (every
// write goes through the supervisor), the storage nothing.
type Exclusion struct {
	Path string // canonical
	Keep uint64 // the rights it may keep
}

// Carve rewrites path rules so that no rule grants an exclusion more than
// it may keep. Landlock only adds rights, from a rule down to everything
// below it: a rule on an ancestor of an exclusion that grants more is
// split into a rule on the ancestor with what every exclusion below it
// may keep, and rules on each of the ancestor's other entries with all
// its rights, down the path to the exclusion. The cost: an entry created
// later directly in one of those ancestors gets only the ancestor's
// reduced rights. Rules paths are made canonical; fileRights are the
// rights a rule on a non-directory may carry.
func Carve(rules []landlock.PathRule, excl []Exclusion, fileRights uint64) []landlock.PathRule {
	var out []landlock.PathRule
	for _, r := range rules {
		path := r.Path
		if c, err := filepath.EvalSymlinks(r.Path); err == nil {
			path = c
		}
		carveRule(&out, landlock.PathRule{Path: path, Access: r.Access, Optional: r.Optional}, excl, fileRights)
	}
	return out
}

func carveRule(out *[]landlock.PathRule, r landlock.PathRule, excl []Exclusion, fileRights uint64) {
	// A rule at or below an exclusion keeps what the exclusion may.
	for _, e := range excl {
		if r.Path == e.Path || strings.HasPrefix(r.Path, e.Path+"/") {
			r.Access &= e.Keep
			if r.Access != 0 {
				*out = append(*out, r)
			}
			return
		}
	}
	keep := ^uint64(0)
	var below []Exclusion
	for _, e := range excl {
		if r.Access&^e.Keep != 0 && (r.Path == "/" || strings.HasPrefix(e.Path, r.Path+"/")) {
			below = append(below, e)
			keep &= e.Keep
		}
	}
	if len(below) == 0 {
		*out = append(*out, r)
		return
	}
	if a := r.Access & keep; a != 0 {
		*out = append(*out, landlock.PathRule{Path: r.Path, Access: a, Optional: r.Optional})
	}
	ents, err := os.ReadDir(r.Path)
	if err != nil {
		return // nothing below can be granted apart
	}
	for _, ent := range ents {
		child := filepath.Join(r.Path, ent.Name())
		onPath := false
		for _, e := range below {
			if child == e.Path || strings.HasPrefix(e.Path, child+"/") {
				onPath = true
			}
		}
		cr := landlock.PathRule{Path: child, Access: r.Access, Optional: true}
		switch {
		case onPath:
			carveRule(out, cr, below, fileRights)
		case ent.Type()&os.ModeSymlink != 0:
			// A rule on a symlink is a rule on its target: granted only
			// when the target is away from every exclusion.
			target, err := filepath.EvalSymlinks(child)
			if err != nil || near(target, excl) {
				continue
			}
			*out = append(*out, cr)
		default:
			if !ent.IsDir() {
				cr.Access &= fileRights
			}
			if cr.Access != 0 {
				*out = append(*out, cr)
			}
		}
	}
}

// near reports whether p is an exclusion, below one, or above one.
func near(p string, excl []Exclusion) bool {
	for _, e := range excl {
		if p == e.Path || p == "/" || strings.HasPrefix(p, e.Path+"/") || strings.HasPrefix(e.Path, p+"/") {
			return true
		}
	}
	return false
}
