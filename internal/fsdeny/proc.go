//go:build linux

package fsdeny

import (
	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/confine"
	"github.com/sandlock-go/sandlock/internal/landlock"
	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/procfs"
	"github.com/sandlock-go/sandlock/internal/taskpath"
)

// procOpener decides where an open of a procfs inode is performed on the
// program's behalf.
//
// The confined helpers are in a Landlock domain of their own, a sibling of
// the program's, and Landlock refuses ptrace-mode access between sibling
// domains: they cannot open the sandbox's own /proc/<pid>/{environ, maps,
// mem, fd/…}, which the program may open. Those opens run on ProcPool
// instead, whose threads have no capabilities and NO_NEW_PRIVS but no
// Landlock domain; what Landlock would check for the program is checked
// here first (the grant covering the entry, read or write). The kernel
// still applies its own ptrace-mode checks to the helper, which has the
// program's credentials and no capabilities: an entry of the program's own
// thread group needs none natively, so the helper never gets more than the
// program; an entry of another process of the sandbox needs ptrace access
// natively too, which the helper gets exactly when the program would —
// same user, same dumpability, no capabilities on either side — unless a
// Landlock domain nested inside the sandbox's, or Yama, would refuse the
// program. Those two cases are not modelled: once any process of the
// sandbox has restricted itself further (landlock_restrict_self is watched
// for that), or when Yama restricts ptrace, entries of other processes are
// opened on the confined pool, which refuses the ptrace-protected ones.
//
// Every other procfs inode (outside any pid directory, or a pid that is not
// the sandbox's) is opened on the confined pool like any file.
type procOpener struct {
	pool    *confine.Pool
	ruleset *landlock.Ruleset
	traced  func(tid int) bool
	tgid    func(tid int) int
	// Entries of the sandbox's other processes are opened on pool only
	// while access.CrossProcess holds.
	access *taskpath.ProcAccess
}

func newProcOpener(cfg Config) *procOpener {
	return &procOpener{pool: cfg.ProcPool, ruleset: cfg.Ruleset, traced: cfg.Traced, tgid: cfg.TGID, access: taskpath.NewProcAccess()}
}

// poolFor returns the pool that must reopen pfd, an inode the task opens with
// flags, or nil for the confined pool. It fails with EACCES when the grants
// do not allow the open.
func (o *procOpener) poolFor(hc *notify.HandlerCtx, pfd int, flags int) (*confine.Pool, error) {
	if o == nil || !taskpath.OnProc(pfd) {
		return nil, nil
	}
	p, err := taskpath.FDPath(pfd)
	if err != nil {
		return nil, err
	}
	pid, ok := procfs.PidDir(p)
	if !ok || !o.traced(pid) {
		return nil, nil
	}
	if o.tgid(pid) != o.tgid(int(hc.Notif.PID)) && !o.access.CrossProcess() {
		return nil, nil
	}
	write := flags&unix.O_ACCMODE != unix.O_RDONLY || flags&unix.O_TRUNC != 0
	if !o.ruleset.Grants().Allows(p, write) {
		return nil, unix.EACCES
	}
	return o.pool, nil
}
