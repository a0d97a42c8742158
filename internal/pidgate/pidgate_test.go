//go:build linux

package pidgate

import (
	"context"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/confine"
	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/sysnum"
)

// family starts n sleeping processes in a process group of their own, the
// stand-ins for a sandbox's processes (the gate only asks the tracer which
// pids are the sandbox's), and returns their pids, the first leading the
// group. Like a sandbox's, they have no capabilities.
func family(t *testing.T, n int) []int {
	t.Helper()
	var pids []int
	for i := 0; i < n; i++ {
		cmd := exec.Command("setpriv", "--inh-caps=-all", "--bounding-set=-all", "sleep", "600")
		pgid := 0
		if i > 0 {
			pgid = pids[0]
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: pgid}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		pids = append(pids, cmd.Process.Pid)
		// Wait for the exec: setpriv has dropped the capabilities.
		for end := time.Now().Add(10 * time.Second); ; {
			b, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/comm")
			if string(b) == "sleep\n" {
				break
			}
			if time.Now().After(end) {
				t.Fatalf("never became sleep: %q", b)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	return pids
}

func gateOver(pids []int) *Gate {
	return New(Config{
		Traced:     func(tid int) bool { return slices.Contains(pids, tid) },
		TGID:       func(tid int) int { return tid },
		ProcessIDs: func() []int { return pids },
		Pool:       confine.NewPool(nil, false),
	})
}

// notif is a notification of syscall name from tid with args.
func notif(name string, tid int, args ...uint64) *notify.HandlerCtx {
	hc := &notify.HandlerCtx{NotifFD: -1}
	hc.Notif.PID = uint32(tid)
	hc.Notif.Data.Nr = int32(sysnum.Native().MustNr(name))
	copy(hc.Notif.Data.Args[:], args)
	return hc
}

func wantAction(t *testing.T, what string, got, want notify.Action) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: %v, want %v", what, got, want)
	}
}

func TestCheckPid(t *testing.T) {
	pids := family(t, 1)
	g := gateOver(pids)
	ctx := context.Background()
	in, out := uint64(pids[0]), uint64(os.Getpid())
	for _, c := range []struct {
		pid  uint64
		want notify.Action
	}{
		{in, notify.Continue()},
		{1<<32 | in, notify.Continue()}, // the kernel reads a C int
		{out, notify.Errno(unix.ESRCH)}, // the supervisor
		{1<<32 | out, notify.Errno(unix.ESRCH)},
		{1, notify.Errno(unix.ESRCH)},
		{0, notify.Continue()},          // the caller
		{0xffffffff, notify.Continue()}, // -1: no process; the kernel answers
	} {
		wantAction(t, "prlimit64 pid "+strconv.FormatUint(c.pid, 16), g.checkPid(ctx, notif("prlimit64", pids[0], c.pid)), c.want)
	}
	wantAction(t, "setpriority PRIO_PROCESS outside", g.checkWho(ctx, notif("setpriority", pids[0], unix.PRIO_PROCESS, out, 5)), notify.Errno(unix.ESRCH))
	wantAction(t, "ioprio_set IOPRIO_WHO_PROCESS inside", g.checkWho(ctx, notif("ioprio_set", pids[0], ioprioWhoProcess, in, 0)), notify.Continue())
	// Group and user targets pass the check: performWho answers them.
	wantAction(t, "setpriority PRIO_USER", g.checkWho(ctx, notif("setpriority", pids[0], unix.PRIO_USER, 0, 5)), notify.Continue())
}

func TestCheckSetpgid(t *testing.T) {
	pids := family(t, 2)
	g := gateOver(pids)
	ctx := context.Background()
	leader := uint64(pids[0])
	wantAction(t, "join the family's group", g.checkSetpgid(ctx, notif("setpgid", pids[1], 0, leader)), notify.Continue())
	wantAction(t, "join the test's group", g.checkSetpgid(ctx, notif("setpgid", pids[1], 0, uint64(unix.Getpgrp()))), notify.Errno(unix.EPERM))
	wantAction(t, "a group of its own", g.checkSetpgid(ctx, notif("setpgid", pids[1], uint64(pids[1]), uint64(pids[1]))), notify.Continue())
	// The family's group without its leader among the sandbox's pids: a
	// member still in it makes it the sandbox's.
	g = gateOver(pids[1:])
	wantAction(t, "join a leaderless group", g.checkSetpgid(ctx, notif("setpgid", pids[1], 0, leader)), notify.Continue())
	g = gateOver(nil)
	wantAction(t, "join a group of no sandbox process", g.checkSetpgid(ctx, notif("setpgid", pids[1], 0, leader)), notify.Errno(unix.EPERM))
}

func TestGroupTargets(t *testing.T) {
	pids := family(t, 2)
	lone := family(t, 1) // same user, not the sandbox's
	g := gateOver(pids)
	ctx := context.Background()
	pgid := uint64(pids[0])
	loneNice, err := unix.Getpriority(unix.PRIO_PROCESS, lone[0])
	if err != nil {
		t.Fatal(err)
	}

	tids, err := g.members(nil, selPgrp, int32(pgid))
	if err != nil || !slices.Equal(tids, pids) {
		t.Fatalf("members of group %d: %v %v, want %v", pgid, tids, err, pids)
	}
	// (User targets with who 0, the caller's uid, need a live
	// notification: the end-to-end tests cover them, as root and not.)
	tids, err = g.members(nil, selUser, 4242)
	if err != nil || len(tids) != 0 {
		t.Fatalf("members of user 4242: %v %v, want none", tids, err)
	}

	wantAction(t, "setpriority PRIO_PGRP 7", g.performWho(ctx, notif("setpriority", pids[0], unix.PRIO_PGRP, pgid, 7)), notify.ReturnValue(0))
	for _, p := range pids {
		if nice, _ := unix.Getpriority(unix.PRIO_PROCESS, p); nice != 20-7 {
			t.Errorf("pid %d: getpriority %d, want %d", p, nice, 20-7)
		}
	}
	if nice, _ := unix.Getpriority(unix.PRIO_PROCESS, lone[0]); nice != loneNice {
		t.Errorf("a process outside was reniced: getpriority %d", nice)
	}
	// The helper thread has no capabilities: raising the priority back is
	// refused as it would be to the program, though this test may run as
	// root.
	wantAction(t, "setpriority PRIO_PGRP 0", g.performWho(ctx, notif("setpriority", pids[0], unix.PRIO_PGRP, pgid, 0)), notify.Errno(unix.EACCES))
	if err := unix.Setpriority(unix.PRIO_PROCESS, pids[1], 9); err != nil {
		t.Fatal(err)
	}
	wantAction(t, "getpriority PRIO_PGRP", g.performWho(ctx, notif("getpriority", pids[0], unix.PRIO_PGRP, pgid)), notify.ReturnValue(20-7))
	// No I/O priority of their own: the one nice 7 gives, best effort
	// level (7+20)/5.
	wantAction(t, "ioprio_get PGRP", g.performWho(ctx, notif("ioprio_get", pids[0], ioprioWhoPgrp, pgid)), notify.ReturnValue(ioprioClassBE<<ioprioClassShift|5))
	wantAction(t, "ioprio_set PGRP idle", g.performWho(ctx, notif("ioprio_set", pids[0], ioprioWhoPgrp, pgid, ioprioClassIdle<<ioprioClassShift)), notify.ReturnValue(0))
	wantAction(t, "ioprio_get PGRP idle", g.performWho(ctx, notif("ioprio_get", pids[0], ioprioWhoPgrp, pgid)), notify.ReturnValue(ioprioClassIdle<<ioprioClassShift))
	for _, w := range []struct {
		name string
		args []uint64
	}{
		{"setpriority", []uint64{unix.PRIO_PGRP, uint64(lone[0]), 9}},
		{"getpriority", []uint64{unix.PRIO_PGRP, uint64(unix.Getpgrp())}},
		{"setpriority", []uint64{unix.PRIO_USER, 4242, 9}},
		{"ioprio_set", []uint64{ioprioWhoPgrp, uint64(lone[0]), ioprioClassIdle << ioprioClassShift}},
		{"ioprio_get", []uint64{ioprioWhoUser, 4242}},
	} {
		wantAction(t, w.name+" on no sandbox process", g.performWho(ctx, notif(w.name, pids[0], w.args...)), notify.Errno(unix.ESRCH))
	}
	if r, _, _ := unix.Syscall(unix.SYS_IOPRIO_GET, ioprioWhoProcess, uintptr(lone[0]), 0); r != 0 {
		t.Errorf("a process outside got I/O priority %#x", r)
	}
	// Process targets and invalid selectors are the check's and the
	// kernel's.
	wantAction(t, "setpriority PRIO_PROCESS", g.performWho(ctx, notif("setpriority", pids[0], unix.PRIO_PROCESS, 0, 9)), notify.Continue())
	wantAction(t, "setpriority which 7", g.performWho(ctx, notif("setpriority", pids[0], 7, 0, 9)), notify.Continue())
}
