//go:build linux

package procview

import (
	"encoding/binary"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/sysnum"
	"github.com/sandlock-go/sandlock/internal/taskpath"
)

// maxDirents bounds what one getdents reads on the program's behalf (it
// may return less than the program asked for, as the kernel may).
const maxDirents = 64 << 10

// procRootIno is the inode number of every procfs root.
const procRootIno = 1

// getdents reads a directory on the program's behalf: on a duplicate of
// its descriptor, which shares the program's file position, so that the
// listing goes on where the program's would. A procfs root lists only the
// sandbox's processes; every other directory is listed as it is. Doing
// every listing here, not only those of /proc, is what makes the filter
// hold: a sibling thread can dup2 a /proc descriptor over the fd number
// after any check of it, and only an answer the supervisor reads from its
// own duplicate cannot change.
func (v *View) getdents(hc *notify.HandlerCtx, is64 bool) notify.Action {
	args := hc.Notif.Data.Args
	count := min(uint64(uint32(args[2])), maxDirents)
	tgid := v.cfg.TGID(int(hc.Notif.PID))
	dir, err := taskpath.DupFD(hc, args[0], v.cfg.TGID, true)
	if err != nil {
		return taskpath.ErrAction(err)
	}
	defer unix.Close(dir)
	nr := sysnum.Native().MustNr("getdents64")
	if !is64 {
		nr = sysnum.Native().MustNr("getdents")
	}
	root := isProcRoot(dir)
	buf := make([]byte, max(count, 1))
	for {
		n, _, errno := unix.Syscall(uintptr(nr), uintptr(dir), uintptr(unsafe.Pointer(&buf[0])), uintptr(count))
		if errno != 0 {
			return notify.Errno(errno)
		}
		if n == 0 {
			return notify.ReturnValue(0)
		}
		out := buf[:n]
		if root {
			out = filterDirents(out, is64, func(name string) bool { return v.listed(name, tgid) })
			if len(out) == 0 {
				continue // every entry of this batch was hidden: read on
			}
		}
		if err := hc.WriteMem(args[1], out); err != nil {
			return notify.Errno(unix.EFAULT)
		}
		return notify.ReturnValue(int64(len(out)))
	}
}

// isProcRoot reports whether dir is the root of a procfs.
func isProcRoot(dir int) bool {
	var sfs unix.Statfs_t
	var st unix.Stat_t
	return unix.Fstatfs(dir, &sfs) == nil && sfs.Type == unix.PROC_SUPER_MAGIC &&
		unix.Fstat(dir, &st) == nil && st.Ino == procRootIno
}

// listed reports whether an entry of /proc is listed for a task of thread
// group tgid: a process directory only if the process is the sandbox's.
func (v *View) listed(name string, tgid int) bool {
	pid, err := strconv.ParseUint(name, 10, 31)
	if err != nil {
		return true
	}
	return int(pid) == tgid || (v.cfg.Visible != nil && v.cfg.Visible(int(pid)))
}

// filterDirents keeps the directory entries keep accepts, in place, from
// what getdents64 (struct linux_dirent64) or getdents (struct linux_dirent)
// returned. Both begin with the inode and the next entry's offset, then the
// record's length; the name follows at 19 or 18. A malformed record ends
// the listing.
func filterDirents(b []byte, is64 bool, keep func(name string) bool) []byte {
	nameAt := 18
	if is64 {
		nameAt = 19
	}
	out := b[:0]
	for len(b) >= nameAt {
		reclen := int(binary.NativeEndian.Uint16(b[16:]))
		if reclen < nameAt || reclen > len(b) {
			break
		}
		name := b[nameAt:reclen]
		for i, c := range name {
			if c == 0 {
				name = name[:i]
				break
			}
		}
		if keep(string(name)) {
			out = append(out, b[:reclen]...)
		}
		b = b[reclen:]
	}
	return out
}
