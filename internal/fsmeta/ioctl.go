//go:build linux

package fsmeta

import (
	"encoding/binary"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/notify"
)

// The ioctl commands that change a file's attributes through a descriptor
// opened in any mode, read-only included, for the file's owner: the
// descriptor forms of file_setattr, and more. Landlock covers ioctls on
// devices only, so a program could change these on any file it may read.
const (
	fsIocSetflags     = 0x40086602 // FS_IOC_SETFLAGS: chattr's flags (int)
	fsIoc32Setflags   = 0x40046602 // FS_IOC32_SETFLAGS
	fsIocFssetxattr   = 0x401c5820 // FS_IOC_FSSETXATTR: struct fsxattr
	fsIocSetversion   = 0x40087602 // FS_IOC_SETVERSION: the inode generation (int)
	fsIoc32Setversion = 0x40047602 // FS_IOC32_SETVERSION
	fsIocEnableVerity = 0x40806685 // FS_IOC_ENABLE_VERITY: makes the file read-only for good
	fsIocSetEncPolicy = 0x800c6613 // FS_IOC_SET_ENCRYPTION_POLICY: on an empty directory
)

// IoctlCommands are the ioctl commands the guard serves: when nothing else
// watches ioctl, the filter notifies only these.
func IoctlCommands() []uint32 {
	return []uint32{fsIocSetflags, fsIoc32Setflags, fsIocFssetxattr, fsIocSetversion, fsIoc32Setversion, fsIocEnableVerity, fsIocSetEncPolicy}
}

// Sizes of what those commands read, as the kernel reads them.
const (
	fsxattrSize      = 28  // struct fsxattr
	verityArgSize    = 128 // struct fsverity_enable_arg
	verityMaxSalt    = 32  // FS_VERITY_MAX_SALT_SIZE
	verityMaxSig     = 16128
	encPolicyV1Size  = 12 // struct fscrypt_policy_v1
	encPolicyV2Size  = 24 // struct fscrypt_policy_v2
	encPolicyVersion = 2  // FSCRYPT_POLICY_V2; 0 is V1
)

// ioctl serves the covered commands on a duplicate of the descriptor, with
// a private copy of what the kernel would read; any other command (when
// ioctl is notified whole for someone else) goes on, decided on its
// register alone.
func (g *Guard) ioctl(hc *notify.HandlerCtx) (int64, error) {
	cmd := uint32(arg(hc, 1))
	switch cmd {
	case fsIocSetflags, fsIoc32Setflags, fsIocFssetxattr, fsIocSetversion, fsIoc32Setversion, fsIocEnableVerity, fsIocSetEncPolicy:
	default:
		return 0, goOn{}
	}
	o, err := g.fdObject(hc, arg(hc, 0))
	if err != nil {
		return 0, err
	}
	argBuf, keep, err := readIoctlArg(hc, cmd, arg(hc, 2))
	if err != nil {
		o.close()
		return 0, err
	}
	return g.act(hc, o, true, nil, func(fd int, _ unsafe.Pointer) (uintptr, error) {
		defer runtime.KeepAlive(keep)
		return ret(unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(cmd), uintptr(unsafe.Pointer(&argBuf[0]))))
	})
}

// readIoctlArg copies what the command reads from the task. keep holds the
// buffers the copy points to.
func readIoctlArg(hc *notify.HandlerCtx, cmd uint32, addr uint64) (buf []byte, keep [][]byte, err error) {
	read := func(n int) ([]byte, error) {
		b, err := hc.ReadMem(addr, n)
		if err != nil {
			return nil, memErr(err)
		}
		return b, nil
	}
	switch cmd {
	case fsIocFssetxattr:
		buf, err = read(fsxattrSize)
	case fsIocEnableVerity:
		if buf, err = read(verityArgSize); err != nil {
			return nil, nil, err
		}
		// The salt and the signature are read through pointers: copied
		// too, and pointed at. Sizes the kernel refuses are left for it to
		// refuse, with nothing to read.
		for _, f := range []struct{ size, ptr, max int }{{12, 16, verityMaxSalt}, {24, 32, verityMaxSig}} {
			size := binary.NativeEndian.Uint32(buf[f.size:])
			ptr := binary.NativeEndian.Uint64(buf[f.ptr:])
			var priv []byte
			if size > 0 && int(size) <= f.max {
				if priv, err = hc.ReadMem(ptr, int(size)); err != nil {
					return nil, nil, memErr(err)
				}
			}
			var at uint64
			if len(priv) > 0 {
				at = uint64(uintptr(unsafe.Pointer(&priv[0])))
				keep = append(keep, priv)
			}
			binary.NativeEndian.PutUint64(buf[f.ptr:], at)
		}
	case fsIocSetEncPolicy:
		// The version (the first byte) says how much the kernel reads.
		var v []byte
		if v, err = read(1); err != nil {
			return nil, nil, err
		}
		size := 1
		switch v[0] {
		case 0:
			size = encPolicyV1Size
		case encPolicyVersion:
			size = encPolicyV2Size
		}
		buf = make([]byte, encPolicyV2Size)
		var b []byte
		if b, err = read(size); err != nil {
			return nil, nil, err
		}
		copy(buf, b)
	default: // the flags and the generation: an int
		buf, err = read(4)
	}
	return buf, keep, err
}
