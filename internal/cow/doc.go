//go:build linux

// Package cow is the copy-on-write layer of a sandbox's workdir: the real
// directory (the lower layer) is never written while the program runs;
// every change lands in a private upper layer, and the merged view of the
// two is what the program sees. When the run ends the branch is committed
// (its changes applied to the workdir through a journal), aborted (thrown
// away) or kept.
//
// The package knows nothing of syscalls or processes: its operations take
// paths relative to the workdir, already resolved by the caller (see Walk
// for the resolution through the merged view), and are unit-tested without
// a sandbox. Package cowsys maps the program's syscalls onto them.
//
// # Layout
//
// A branch is a directory of its own in a storage base (see Storage):
//
//	info     what the branch belongs to: the workdir, its device and inode
//	lock     flock'ed by the process that runs the branch, for its life
//	upper/   the upper layer: every entry the program created or changed
//	work/    files being copied up, before they are linked into upper/
//	deleted  the whiteouts: the relative paths deleted from the lower
//	         layer, NUL-terminated, appended as the program deletes
//	journal  a commit's steps, written and synced before the first one runs
//	applied  created once a commit's removals are all done
//	kept     created when the branch is kept
//
// # The merged view
//
// An entry of the upper layer hides the lower entry of the same path. A
// whiteout hides the lower entry at its path and everything below it; a
// directory of the upper layer whose path is also a whiteout is opaque
// (the lower directory's entries do not show through). Directories of the
// upper layer are copies of the lower ones, made on demand (ensureUpperDir)
// when an entry in them changes, so the upper layer mirrors the paths of
// everything that changed.
//
// # Commit
//
// A commit computes its steps from the upper layer and the whiteouts
// (plan.go): removals first (entries deleted, or replaced by an entry of
// another type or by an opaque directory), then additions (directories made,
// files and symlinks moved in, links, directory metadata), writes them to the
// journal and syncs it, and then runs them. Every step can run again after
// an interruption and does what remains of it: a file is moved into place by
// rename(2) (or, across filesystems, copied to a temporary name beside it
// and renamed), so each file of the workdir is its old or its new version,
// never a mix, and a step whose source is gone from the upper layer is done.
// An interrupted commit is completed by the next one to open the workdir's
// branches (Recover), under the workdir's flock.
package cow
