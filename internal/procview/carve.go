//go:build linux

package procview

import (
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sandlock-go/sandlock/internal/landlock"
)

// Refused are the trees no Landlock rule ever grants when /proc is not the
// host's: /proc itself (served by the supervisor instead, or refused), and
// the parts of /sys that describe the host rather than the program's view
// of it — firmware tables, the LSM and debug interfaces, the tracing
// interface, the list of network interfaces, and the control groups, whose
// cgroup.procs and tasks files list every process of the host by pid (and
// whose hierarchy names the host's services and containers).
var Refused = []string{
	"/proc",
	"/sys/firmware",
	"/sys/kernel/security",
	"/sys/kernel/debug",
	"/sys/kernel/tracing",
	"/sys/class/net",
	"/sys/fs/cgroup",
}

// RefusedTrees are Refused and the directories of sysfs that list the
// host's network interfaces by their canonical paths: /sys/class/net holds
// symbolic links to them (/sys/devices/virtual/net,
// /sys/devices/pci…/<device>/net), which Landlock judges by where they
// lead, so each is refused on its own. They are found through
// /sys/class/net, one link per interface, not by walking /sys/devices. An
// interface that appears later under another device is not refused; one
// of the refused directories (virtual interfaces: veth, bridges, tunnels)
// stays refused with all it holds.
func RefusedTrees() []string {
	trees := slices.Clone(Refused)
	entries, err := os.ReadDir("/sys/class/net")
	if err != nil {
		return trees
	}
	for _, e := range entries {
		dev, err := filepath.EvalSymlinks(filepath.Join("/sys/class/net", e.Name()))
		if err != nil {
			continue
		}
		dir := filepath.Dir(dev)
		if under(dir, "/sys") && !underAny(dir, trees) {
			trees = append(trees, dir)
		}
	}
	return trees
}

// Touches reports whether a rule grants something in one of trees or
// above one, by the rule's path as written or as it resolves.
func Touches(rules []landlock.PathRule, trees ...string) bool {
	for _, r := range rules {
		paths := []string{filepath.Clean(r.Path)}
		if canon, err := filepath.EvalSymlinks(r.Path); err == nil {
			paths = append(paths, canon)
		}
		for _, p := range paths {
			for _, t := range trees {
				if under(p, t) || contains(p, t) {
					return true
				}
			}
		}
	}
	return false
}

// ReadOnly are the trees a writable grant covers for reading only: /sys,
// whose files a program running as root could write with no capability
// at all (many attributes check only the owner, root).
var ReadOnly = []string{"/sys"}

// Carved is a set of Landlock path rules with the refused trees taken out.
type Carved struct {
	// Rules grant what the rules given to Carve granted, but nothing in a
	// refused tree and only reading in a read-only one.
	Rules []landlock.PathRule
	// Proc are the rules that granted something under /proc, each for the
	// tree below its path as written ("/proc" for a rule above it): what
	// the served /proc view may show.
	Proc []landlock.PathRule
	// Hollow are the directories a rule granted that are now granted only
	// in parts: each holds a refused or read-only tree, so its own rule
	// was replaced by rules for its other entries. Listing one needs the
	// supervisor (see View).
	Hollow []string
	// Reach are the canonical paths the rules given to Carve granted, for
	// the mounts the view shows.
	Reach []string
}

// Carve takes the refused trees out of rules and narrows the read-only
// ones to reading. A rule on a refused tree or below one is dropped; a rule
// on a directory above one is replaced by rules for each of the
// directory's entries that leads to no refused tree, recursively down to
// the refused tree's parent. Symbolic links among those entries get no
// rule: Landlock would bind the rule to their target, which is granted or
// not by the rules themselves. A rule whose path cannot be resolved is kept
// as it is, for the ruleset to report.
func Carve(rules []landlock.PathRule, refused, readOnly []string) Carved {
	var c Carved
	for _, r := range rules {
		lexical := filepath.Clean(r.Path)
		if under(lexical, "/proc") {
			c.Proc = append(c.Proc, landlock.PathRule{Path: lexical, Access: r.Access})
		}
		canon, err := filepath.EvalSymlinks(r.Path)
		if err != nil {
			c.Rules = append(c.Rules, r)
			continue
		}
		c.Reach = append(c.Reach, canon)
		if underAny(canon, refused) {
			continue
		}
		if contains(canon, "/proc") && !under(lexical, "/proc") {
			c.Proc = append(c.Proc, landlock.PathRule{Path: "/proc", Access: r.Access})
		}
		access := r.Access
		if underAny(canon, readOnly) {
			access &= landlock.FSRead
		}
		if !c.splits(canon, access, refused, readOnly) {
			c.Rules = append(c.Rules, landlock.PathRule{Path: r.Path, Access: access, Optional: r.Optional})
			continue
		}
		c.expand(canon, access, refused, readOnly)
	}
	return c
}

// splits reports whether a rule on dir with access must be replaced by
// rules on its entries: it holds a refused tree, or a read-only tree that
// access would let be written.
func (c *Carved) splits(dir string, access uint64, refused, readOnly []string) bool {
	for _, t := range refused {
		if contains(dir, t) {
			return true
		}
	}
	if access&^landlock.FSRead != 0 {
		for _, t := range readOnly {
			if contains(dir, t) {
				return true
			}
		}
	}
	return false
}

// expand replaces the rule on dir with rules on its entries.
func (c *Carved) expand(dir string, access uint64, refused, readOnly []string) {
	if access&landlock.FSReadDir != 0 {
		c.Hollow = append(c.Hollow, dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return // unreadable: nothing below it is granted
	}
	for _, e := range entries {
		child := filepath.Join(dir, e.Name())
		if e.Type()&os.ModeSymlink != 0 || underAny(child, refused) {
			continue
		}
		a := access
		if underAny(child, readOnly) {
			a &= landlock.FSRead
		}
		if c.splits(child, a, refused, readOnly) {
			c.expand(child, a, refused, readOnly)
			continue
		}
		// Optional: an entry may go between this listing and the build.
		c.Rules = append(c.Rules, landlock.PathRule{Path: child, Access: a, Optional: true})
	}
}

// under reports whether p is root or below it.
func under(p, root string) bool {
	return p == root || root == "/" || strings.HasPrefix(p, root) && len(p) > len(root) && p[len(root)] == '/'
}

// underAny reports whether p is one of roots or below one.
func underAny(p string, roots []string) bool {
	for _, r := range roots {
		if under(p, r) {
			return true
		}
	}
	return false
}

// contains reports whether the tree t lies strictly below dir.
func contains(dir, t string) bool { return dir != t && under(t, dir) }
