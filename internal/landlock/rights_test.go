//go:build linux

package landlock

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestRightsAreTheKernels(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"FSExecute", FSExecute, unix.LANDLOCK_ACCESS_FS_EXECUTE},
		{"FSWriteFile", FSWriteFile, unix.LANDLOCK_ACCESS_FS_WRITE_FILE},
		{"FSReadFile", FSReadFile, unix.LANDLOCK_ACCESS_FS_READ_FILE},
		{"FSReadDir", FSReadDir, unix.LANDLOCK_ACCESS_FS_READ_DIR},
		{"FSRemoveDir", FSRemoveDir, unix.LANDLOCK_ACCESS_FS_REMOVE_DIR},
		{"FSRemoveFile", FSRemoveFile, unix.LANDLOCK_ACCESS_FS_REMOVE_FILE},
		{"FSMakeChar", FSMakeChar, unix.LANDLOCK_ACCESS_FS_MAKE_CHAR},
		{"FSMakeDir", FSMakeDir, unix.LANDLOCK_ACCESS_FS_MAKE_DIR},
		{"FSMakeReg", FSMakeReg, unix.LANDLOCK_ACCESS_FS_MAKE_REG},
		{"FSMakeSock", FSMakeSock, unix.LANDLOCK_ACCESS_FS_MAKE_SOCK},
		{"FSMakeFifo", FSMakeFifo, unix.LANDLOCK_ACCESS_FS_MAKE_FIFO},
		{"FSMakeBlock", FSMakeBlock, unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK},
		{"FSMakeSym", FSMakeSym, unix.LANDLOCK_ACCESS_FS_MAKE_SYM},
		{"FSRefer", FSRefer, unix.LANDLOCK_ACCESS_FS_REFER},
		{"FSTruncate", FSTruncate, unix.LANDLOCK_ACCESS_FS_TRUNCATE},
		{"FSIoctlDev", FSIoctlDev, unix.LANDLOCK_ACCESS_FS_IOCTL_DEV},
		{"NetBindTCP", NetBindTCP, unix.LANDLOCK_ACCESS_NET_BIND_TCP},
		{"NetConnectTCP", NetConnectTCP, unix.LANDLOCK_ACCESS_NET_CONNECT_TCP},
		{"ScopeAbstractUnixSocket", ScopeAbstractUnixSocket, unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET},
		{"ScopeSignal", ScopeSignal, unix.LANDLOCK_SCOPE_SIGNAL},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
}
