// Package procfs is the supervisor's reading of a task's /proc entries:
// the fields of its status file, its thread group, parent and umask, the
// targets of its fd links. One reader, so that every feature parses /proc
// the same way.
//
// A task's entries belong to whoever holds its pid: a caller that needs
// them to be the notifying task's checks afterwards that its notification
// is still pending (notify.TaskAlive).
package procfs

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
)

// Path is /proc/<pid>/<rest>.
func Path(pid int, rest string) string {
	return "/proc/" + strconv.Itoa(pid) + "/" + rest
}

// ErrNoField is a status file without the field asked for.
var ErrNoField = errors.New("field missing from /proc status")

// Status is a task's status file, read once.
type Status []byte

// ReadStatus reads /proc/<pid>/status (a tid, or /proc/<pid>/task/<tid>
// through dir).
func ReadStatus(pid int) (Status, error) { return os.ReadFile(Path(pid, "status")) }

// ReadStatusAt reads dir/status, for a dir such as /proc/<pid>/task/<tid>.
func ReadStatusAt(dir string) (Status, error) { return os.ReadFile(dir + "/status") }

// Field returns the value of a field ("Tgid", "Uid"…): the rest of its
// line, trimmed.
func (s Status) Field(name string) (string, error) {
	key := []byte(name + ":")
	i := bytes.Index(s, append([]byte("\n"), key...))
	switch {
	case bytes.HasPrefix(s, key):
		i = 0
	case i < 0:
		return "", ErrNoField
	default:
		i++
	}
	line := s[i+len(key):]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	return string(bytes.TrimSpace(line)), nil
}

// Int returns the first number of a field (base 10; "Uid" has four, the
// real one first).
func (s Status) Int(name string) (int64, error) {
	v, err := s.Field(name)
	if err != nil {
		return 0, err
	}
	if i := bytes.IndexAny([]byte(v), " \t"); i >= 0 {
		v = v[:i]
	}
	return strconv.ParseInt(v, 10, 64)
}

// intField reads a numeric field of pid's status, or 0.
func intField(pid int, name string) int {
	s, err := ReadStatus(pid)
	if err != nil {
		return 0
	}
	n, err := s.Int(name)
	if err != nil {
		return 0
	}
	return int(n)
}

// TGID returns the thread group of tid; a task that is gone counts as its
// own process.
func TGID(tid int) int {
	if n := intField(tid, "Tgid"); n > 0 {
		return n
	}
	return tid
}

// PPid returns the parent of process pid, or 0.
func PPid(pid int) int { return intField(pid, "PPid") }

// Umask returns the task's umask (files created on its behalf take it);
// 022 if /proc does not say.
func Umask(tid int) uint32 {
	s, err := ReadStatus(tid)
	if err != nil {
		return 0o022
	}
	v, err := s.Field("Umask")
	if err != nil {
		return 0o022
	}
	m, err := strconv.ParseUint(v, 8, 32)
	if err != nil {
		return 0o022
	}
	return uint32(m)
}

// FDLink returns the target of the task's fd link (/proc/<pid>/fd/<fd>).
func FDLink(pid, fd int) (string, error) {
	return os.Readlink(Path(pid, "fd/"+strconv.Itoa(fd)))
}

// PidDir returns the pid of a /proc/<pid> path.
func PidDir(p string) (int, bool) {
	rest, ok := strings.CutPrefix(p, "/proc/")
	if !ok {
		return 0, false
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest = rest[:i]
	}
	pid, err := strconv.ParseUint(rest, 10, 31)
	if err != nil || pid == 0 {
		return 0, false
	}
	return int(pid), true
}
