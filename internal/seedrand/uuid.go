//go:build linux

package seedrand

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/notify"
)

// The kernel's other source of randomness a program reads as a file:
// /proc/sys/kernel/random/uuid, a fresh version 4 UUID at every read
// (where the sandbox may read /proc). Opened for reading, it is answered
// with a sealed memory file holding a UUID from the opening process's
// stream, one per open as for the devices.

// isProcUUID reports whether pfd, a file of st, is procfs's
// sys/kernel/random/uuid: a regular file of a proc mount (its magic) whose
// path under that mount ends so. (Its inode number is no identity: procfs
// gives a sysctl file a new one whenever its dentry is evicted.)
func isProcUUID(pfd int, st *unix.Stat_t) bool {
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return false
	}
	var fs unix.Statfs_t
	if unix.Fstatfs(pfd, &fs) != nil || fs.Type != unix.PROC_SUPER_MAGIC {
		return false
	}
	target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(pfd))
	return err == nil && strings.HasSuffix(target, "/sys/kernel/random/uuid")
}

// uuidText is the kernel's text of a version 4 UUID made of b (%pUb and a
// newline).
func uuidText(b [16]byte) string {
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x\n", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// UUID returns the next UUID of process tgid's open streams, as the
// kernel's uuid file would give it: the host view serves the file with it
// where it serves /proc.
func (s *Source) UUID(tgid int) []byte {
	p := s.of(tgid)
	p.mu.Lock()
	key := derive(p.key[:], "open", index(p.opens))
	p.opens++
	p.mu.Unlock()
	var b [16]byte
	rand.NewChaCha8(key).Read(b[:])
	return []byte(uuidText(b))
}

// serveUUID answers a read-only open of the uuid file with a read-only
// descriptor of a sealed memory file holding the next UUID of the
// process's open streams.
func (s *Source) serveUUID(hc *notify.HandlerCtx, flags int) notify.Action {
	f, err := sealedFile("sandlock-uuid", string(s.UUID(int(hc.Notif.PID))))
	if err != nil {
		return notify.Errno(unix.EIO)
	}
	var fdFlags uint32
	if flags&unix.O_CLOEXEC != 0 {
		fdFlags = unix.O_CLOEXEC
	}
	return notify.InjectFDSend(f, fdFlags)
}

// sealedFile returns a read-only descriptor of a memory file holding text,
// sealed against every change.
func sealedFile(name, text string) (*os.File, error) {
	mfd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, err
	}
	defer unix.Close(mfd)
	if _, err := unix.Write(mfd, []byte(text)); err != nil {
		return nil, err
	}
	if _, err := unix.FcntlInt(uintptr(mfd), unix.F_ADD_SEALS, unix.F_SEAL_SEAL|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE); err != nil {
		return nil, err
	}
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(mfd), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}
