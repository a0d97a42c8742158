//go:build linux

package pidgate

import (
	"context"
	"errors"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/procfs"
)

// taskInfo is what the gate reads of a task in its status file.
type taskInfo struct {
	uid  uint32 // real uid: what PRIO_USER and IOPRIO_WHO_USER match
	pgid int32
}

// readTask reads a task's real uid and process group from dir/status
// (dir is /proc/<tid> or /proc/<pid>/task/<tid>).
func readTask(dir string) (taskInfo, error) {
	st, err := procfs.ReadStatusAt(dir)
	if err != nil {
		return taskInfo{}, err
	}
	uid, err := st.Int("Uid")
	if err != nil {
		return taskInfo{}, err
	}
	// NSpgid: the group in the task's own pid namespace, which is the
	// supervisor's (the sandbox has no namespaces of its own).
	pgid, err := st.Int("NSpgid")
	if err != nil {
		return taskInfo{}, err
	}
	return taskInfo{uid: uint32(uid), pgid: int32(pgid)}, nil
}

// caller reads the notifying task's own status, proven to be its own (not
// a process that reused its pid) by the notification still pending.
func (g *Gate) caller(hc *notify.HandlerCtx) (taskInfo, error) {
	info, err := readTask("/proc/" + strconv.Itoa(int(hc.Notif.PID)))
	if err != nil {
		return taskInfo{}, err
	}
	if err := notify.TaskAlive(hc); err != nil {
		return taskInfo{}, err
	}
	return info, nil
}

// members lists the sandbox's tasks (threads included, as the kernel's
// loops over a group or a user are) that a process-group or user selector
// matches. who 0 is the caller's group or real uid.
func (g *Gate) members(hc *notify.HandlerCtx, sel selector, who int32) ([]int, error) {
	if who == 0 {
		me, err := g.caller(hc)
		if err != nil {
			return nil, err
		}
		if sel == selPgrp {
			who = me.pgid
		} else {
			who = int32(me.uid)
		}
	}
	var out []int
	for _, pid := range g.cfg.ProcessIDs() {
		dir := "/proc/" + strconv.Itoa(pid) + "/task"
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue // gone meanwhile
		}
		for _, e := range entries {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			info, err := readTask(dir + "/" + e.Name())
			if errors.Is(err, procfs.ErrNoField) {
				return nil, err
			}
			if err != nil {
				continue // gone meanwhile
			}
			if (sel == selPgrp && info.pgid == who) || (sel == selUser && info.uid == uint32(who)) {
				out = append(out, tid)
			}
		}
	}
	return out, nil
}

// checkSetpgid lets setpgid(pid, pgid) through only into a process group of
// the sandbox, or into a new group led by the process itself (pgid equal
// to its pid). The sandbox's root shares its caller's session, and the
// kernel lets a process join any group of its session: the caller's shell's
// group or sandlock's own are refused with EPERM, the kernel's answer for a
// group a process may not join. The kernel itself keeps pid to the caller
// and its children, all of them the sandbox's.
func (g *Gate) checkSetpgid(_ context.Context, hc *notify.HandlerCtx) notify.Action {
	args := hc.Notif.Data.Args
	pid, pgid := int32(args[0]), int32(args[1])
	if pgid <= 0 || pid < 0 {
		// 0: a group of its own; negative: the kernel answers EINVAL.
		return notify.Continue()
	}
	self := int(pid)
	if pid == 0 {
		self = g.cfg.TGID(int(hc.Notif.PID))
	}
	if int(pgid) == self {
		return notify.Continue()
	}
	// A group whose id is a live sandbox process's pid was made by the
	// sandbox: the pid has been that process's since before the group
	// existed (a pid that names a group is not handed out again).
	if g.cfg.Traced(int(pgid)) && g.cfg.TGID(int(pgid)) == int(pgid) {
		return notify.Continue()
	}
	// A group whose leader has gone: it is the sandbox's if a process of
	// the sandbox is in it.
	for _, p := range g.cfg.ProcessIDs() {
		info, err := readTask("/proc/" + strconv.Itoa(p))
		if err == nil && info.pgid == pgid {
			return notify.Continue()
		}
	}
	return notify.Errno(unix.EPERM)
}
