package procfs

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
)

// Mapping is one line of /proc/<pid>/maps (or a mapping's header line in
// smaps).
type Mapping struct {
	Start, End   uint64
	Perms        string // "rw-p", "r-xs"…
	Offset       uint64
	Major, Minor uint32 // the device of a file-backed mapping
	Inode        uint64
	// Path is the file's path (unescaped), or a name such as "[heap]",
	// "[vdso]", "/memfd:x (deleted)", "/SYSV00000000 (deleted)"; "" for
	// an anonymous mapping.
	Path string
}

// Shared reports a MAP_SHARED mapping; Accessible one that is not
// PROT_NONE.
func (m Mapping) Shared() bool     { return len(m.Perms) == 4 && m.Perms[3] == 's' }
func (m Mapping) Accessible() bool { return len(m.Perms) >= 3 && m.Perms[:3] != "---" }

// Size is the mapping's length in bytes.
func (m Mapping) Size() uint64 { return m.End - m.Start }

// ParseMapsLine parses "start-end perms offset major:minor inode path";
// the path may hold spaces.
func ParseMapsLine(line []byte) (Mapping, bool) {
	var fields [5][]byte
	rest := line
	for i := range fields {
		rest = bytes.TrimLeft(rest, " ")
		end := bytes.IndexByte(rest, ' ')
		if end < 0 {
			end = len(rest)
		}
		fields[i], rest = rest[:end], rest[end:]
	}
	var m Mapping
	lo, hi, ok := bytes.Cut(fields[0], []byte("-"))
	maj, mnr, ok2 := bytes.Cut(fields[3], []byte(":"))
	if !ok || !ok2 {
		return m, false
	}
	var errs [6]error
	m.Start, errs[0] = strconv.ParseUint(string(lo), 16, 64)
	m.End, errs[1] = strconv.ParseUint(string(hi), 16, 64)
	m.Offset, errs[2] = strconv.ParseUint(string(fields[2]), 16, 64)
	a, e3 := strconv.ParseUint(string(maj), 16, 32)
	b, e4 := strconv.ParseUint(string(mnr), 16, 32)
	errs[3], errs[4] = e3, e4
	m.Inode, errs[5] = strconv.ParseUint(string(fields[4]), 10, 64)
	for _, e := range errs {
		if e != nil {
			return Mapping{}, false
		}
	}
	if m.End < m.Start {
		return Mapping{}, false
	}
	m.Major, m.Minor = uint32(a), uint32(b)
	m.Perms = string(fields[1])
	m.Path = unescapePath(string(bytes.TrimLeft(rest, " ")))
	return m, true
}

// unescapePath undoes the one escape /proc/PID/maps applies to a path: a
// newline is shown as \012.
func unescapePath(p string) string { return strings.ReplaceAll(p, `\012`, "\n") }

// Maps calls each for every mapping of process pid, in address order,
// until each returns false. A line it cannot parse is skipped.
func Maps(pid int, each func(Mapping) bool) error {
	f, err := os.Open(Path(pid, "maps"))
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		if m, ok := ParseMapsLine(sc.Bytes()); ok && !each(m) {
			return nil
		}
	}
	return sc.Err()
}
