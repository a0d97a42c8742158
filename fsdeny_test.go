//go:build linux

package sandlock_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock"
)

// fsTree is the directory layout most FSDenied tests use, built on the host
// before the run:
//
//	root/pub/a.txt          "public"
//	root/pub/sub/s.txt      "decoy"
//	root/pub/l              symlink to a.txt
//	root/secret/s.txt       "SECRET"   (denied)
//	root/secret/sub/d.txt   "DEEP"     (denied)
//	root/hl                 hard link to secret/s.txt, made before the run
//	root/sl                 symlink to secret/s.txt
//	root/sld                symlink to secret
type fsTree struct {
	root, pub, secret string
	deepLinks         uint64 // links of secret/sub/d.txt the test made itself
}

func newFSTree(t *testing.T) fsTree {
	t.Helper()
	root := tempDir(t)
	f := fsTree{root: root, pub: filepath.Join(root, "pub"), secret: filepath.Join(root, "secret")}
	for _, d := range []string{"pub/sub", "secret/sub"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"pub/a.txt":        "public",
		"pub/sub/s.txt":    "decoy",
		"secret/s.txt":     "SECRET",
		"secret/sub/d.txt": "DEEP",
	}
	for p, c := range files {
		if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	must(t, os.Link(filepath.Join(root, "secret/s.txt"), filepath.Join(root, "hl")))
	must(t, os.Symlink("a.txt", filepath.Join(root, "pub/l")))
	must(t, os.Symlink("secret/s.txt", filepath.Join(root, "sl")))
	must(t, os.Symlink("secret", filepath.Join(root, "sld")))
	return f
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sandbox returns a sandbox with root writable and deny denied, exporting
// root to the program as $D.
func (f fsTree) sandbox(deny ...string) *sandlock.Sandbox {
	sb := base()
	sb.FSWritable = []string{f.root}
	sb.FSDenied = deny
	sb.Env = map[string]string{"D": f.root}
	return sb
}

// intact fails the test unless the denied files are exactly as newFSTree
// made them: same names, same contents, the hard link still there.
func (f fsTree) intact(t *testing.T) {
	t.Helper()
	var names []string
	filepath.WalkDir(f.secret, func(p string, e os.DirEntry, err error) error {
		if err == nil {
			rel, _ := filepath.Rel(f.secret, p)
			names = append(names, rel)
		}
		return nil
	})
	if got, want := strings.Join(names, " "), ". s.txt sub sub/d.txt"; got != want {
		t.Errorf("denied tree changed: holds %q, want %q", got, want)
	}
	hostFile(t, filepath.Join(f.secret, "s.txt"), "SECRET")
	hostFile(t, filepath.Join(f.secret, "sub/d.txt"), "DEEP")
	hostFile(t, filepath.Join(f.root, "hl"), "SECRET")
	for name, want := range map[string]uint64{"s.txt": 2, "sub/d.txt": 1 + f.deepLinks} {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(f.secret, name), &st); err != nil || uint64(st.Nlink) != want {
			t.Errorf("secret/%s: nlink %d (%v), want %d (a new hard link to it was made)", name, st.Nlink, err, want)
		}
	}
}

// hostFile fails the test unless path holds content.
func hostFile(t *testing.T, path, content string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("%s: %v", path, err)
	} else if string(b) != content {
		t.Errorf("%s holds %q, want %q", path, b, content)
	}
}

// hostAbsent fails the test if path exists.
func hostAbsent(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); err == nil {
		t.Errorf("%s exists on the host", path)
	}
}

// probePrelude is a Python prelude for probing filesystem operations:
// probe(name, fn) records in R the result of fn() — "OK" for None, str(v)
// for a value, or the errno name of an OSError; the Go side decodes R.
const probePrelude = `
import errno, json, os, stat, sys
D = os.environ["D"]
R = {}
def P(*parts):
    return os.path.join(D, *parts)
def en(x):
    return errno.errorcode.get(x.errno, str(x.errno))
def probe(name, fn):
    try:
        v = fn()
        R[name] = "OK" if v is None else str(v)
    except OSError as x:
        R[name] = en(x)
def rd(path, flags=0, dir_fd=None):
    fd = os.open(path, os.O_RDONLY | flags, dir_fd=dir_fd)
    try:
        return os.read(fd, 100).decode()
    finally:
        os.close(fd)
def op(path, flags, mode=0o666, dir_fd=None):
    os.close(os.open(path, flags, mode, dir_fd=dir_fd))
def wr(path, data, flags=os.O_WRONLY, dir_fd=None):
    fd = os.open(path, flags, 0o666, dir_fd=dir_fd)
    try:
        os.write(fd, data.encode())
    finally:
        os.close(fd)
`

// pyProbe runs code after probePrelude and returns R.
func pyProbe(t *testing.T, sb *sandlock.Sandbox, code string) map[string]string {
	t.Helper()
	out := py(t, sb, probePrelude+code+"\nprint(json.dumps(R))")
	lines := strings.Split(out, "\n")
	var r map[string]string
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		t.Fatalf("decoding the probe results: %v\n%s", err, out)
	}
	return r
}

// expect compares probe results with what they must be.
func expect(t *testing.T, got, want map[string]string) {
	t.Helper()
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: not probed", k)
		} else if g != want[k] {
			t.Errorf("%s = %q, want %q", k, g, want[k])
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s = %q: unexpected probe (add it to want)", k, got[k])
		}
	}
}

func TestFSDenyOpen(t *testing.T) {
	f := newFSTree(t)
	got := pyProbe(t, f.sandbox(f.secret), `
probe("pub", lambda: rd(P("pub/a.txt")))
probe("pub sub", lambda: rd(P("pub/sub/s.txt")))
probe("pub symlink", lambda: rd(P("pub/l")))
probe("secret", lambda: rd(P("secret/s.txt")))
probe("secret deep", lambda: rd(P("secret/sub/d.txt")))
probe("secret dir", lambda: op(P("secret"), os.O_RDONLY | os.O_DIRECTORY))
probe("secret listdir", lambda: os.listdir(P("secret")))
probe("secret subdir", lambda: op(P("secret/sub"), os.O_RDONLY | os.O_DIRECTORY))
probe("secret wronly", lambda: wr(P("secret/s.txt"), "x"))
probe("secret rdwr", lambda: op(P("secret/s.txt"), os.O_RDWR))
probe("secret append", lambda: wr(P("secret/s.txt"), "x", os.O_WRONLY | os.O_APPEND))
probe("secret trunc", lambda: op(P("secret/s.txt"), os.O_WRONLY | os.O_TRUNC))
probe("secret creat", lambda: op(P("secret/s.txt"), os.O_RDWR | os.O_CREAT))
probe("secret creat trunc", lambda: op(P("secret/s.txt"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC))
probe("secret creat excl", lambda: op(P("secret/s.txt"), os.O_WRONLY | os.O_CREAT | os.O_EXCL))
probe("secret opath", lambda: op(P("secret/s.txt"), os.O_PATH))
probe("secret opath dir", lambda: op(P("secret"), os.O_PATH | os.O_DIRECTORY))
probe("secret nofollow", lambda: rd(P("secret/s.txt"), os.O_NOFOLLOW))
probe("secret trailing slash", lambda: op(P("secret/"), os.O_RDONLY))
probe("secret dot", lambda: op(P("secret/."), os.O_RDONLY))
probe("secret doubled slashes", lambda: rd(D + "//secret///s.txt"))
probe("symlink", lambda: rd(P("sl")))
probe("symlink opath nofollow", lambda: op(P("sl"), os.O_PATH | os.O_NOFOLLOW))
probe("symlink nofollow", lambda: rd(P("sl"), os.O_NOFOLLOW))
probe("dir symlink", lambda: rd(P("sld/s.txt")))
probe("dotdot in", lambda: rd(P("pub/../secret/s.txt")))
probe("dotdot deep", lambda: rd(P("pub/sub/../../secret/sub/../s.txt")))
probe("dotdot out", lambda: rd(P("secret/../pub/a.txt")))
probe("stat secret", lambda: os.stat(P("secret/s.txt")).st_size)
probe("listdir root", lambda: ",".join(sorted(os.listdir(D))))

rootfd = os.open(D, os.O_RDONLY | os.O_DIRECTORY)
pubfd = os.open(P("pub"), os.O_RDONLY | os.O_DIRECTORY)
probe("dirfd pub", lambda: rd("pub/a.txt", dir_fd=rootfd))
probe("dirfd secret", lambda: rd("secret/s.txt", dir_fd=rootfd))
probe("dirfd secret deep", lambda: rd("secret/sub/d.txt", dir_fd=rootfd))
probe("dirfd secret dir", lambda: op("secret", os.O_RDONLY | os.O_DIRECTORY, dir_fd=rootfd))
probe("dirfd dotdot", lambda: rd("../secret/s.txt", dir_fd=pubfd))
probe("dirfd dotdot pub", lambda: rd("../pub/a.txt", dir_fd=pubfd))
probe("dirfd symlink", lambda: rd("sl", dir_fd=rootfd))
probe("dirfd hardlink", lambda: rd("hl", dir_fd=rootfd))
probe("dirfd absolute ignores dirfd", lambda: rd(P("secret/s.txt"), dir_fd=pubfd))

os.chdir(D)
probe("cwd pub", lambda: rd("pub/a.txt"))
probe("cwd secret", lambda: rd("secret/s.txt"))
probe("cwd dotdot", lambda: rd("pub/../secret/s.txt"))
os.chdir("pub")
probe("cwd sub relative", lambda: rd("sub/s.txt"))
probe("cwd parent secret", lambda: rd("../secret/s.txt"))
probe("cwd parent hardlink", lambda: rd("../hl"))
probe("cwd dot", lambda: rd("./a.txt"))
`)
	expect(t, got, map[string]string{
		"pub":                          "public",
		"pub sub":                      "decoy",
		"pub symlink":                  "public",
		"secret":                       "EACCES",
		"secret deep":                  "EACCES",
		"secret dir":                   "EACCES",
		"secret listdir":               "EACCES",
		"secret subdir":                "EACCES",
		"secret wronly":                "EACCES",
		"secret rdwr":                  "EACCES",
		"secret append":                "EACCES",
		"secret trunc":                 "EACCES",
		"secret creat":                 "EACCES",
		"secret creat trunc":           "EACCES",
		"secret creat excl":            "EACCES",
		"secret opath":                 "EACCES",
		"secret opath dir":             "EACCES",
		"secret nofollow":              "EACCES",
		"secret trailing slash":        "EACCES",
		"secret dot":                   "EACCES",
		"secret doubled slashes":       "EACCES",
		"symlink":                      "EACCES",
		"symlink opath nofollow":       "OK", // the symlink itself is not denied
		"symlink nofollow":             "ELOOP",
		"dir symlink":                  "EACCES",
		"dotdot in":                    "EACCES",
		"dotdot deep":                  "EACCES",
		"dotdot out":                   "public",
		"stat secret":                  "6",
		"listdir root":                 "hl,pub,secret,sl,sld",
		"dirfd pub":                    "public",
		"dirfd secret":                 "EACCES",
		"dirfd secret deep":            "EACCES",
		"dirfd secret dir":             "EACCES",
		"dirfd dotdot":                 "EACCES",
		"dirfd dotdot pub":             "public",
		"dirfd symlink":                "EACCES",
		"dirfd hardlink":               "EACCES",
		"dirfd absolute ignores dirfd": "EACCES",
		"cwd pub":                      "public",
		"cwd secret":                   "EACCES",
		"cwd dotdot":                   "EACCES",
		"cwd sub relative":             "decoy",
		"cwd parent secret":            "EACCES",
		"cwd parent hardlink":          "EACCES",
		"cwd dot":                      "public",
	})
	f.intact(t)
}

func TestFSDenyAllowedOpenSemantics(t *testing.T) {
	f := newFSTree(t)
	must(t, os.Symlink("nowhere", filepath.Join(f.pub, "dangling")))
	must(t, os.WriteFile(filepath.Join(f.pub, "trunc.txt"), []byte("to be truncated"), 0o644))
	must(t, os.WriteFile(filepath.Join(f.pub, "append.txt"), []byte("one,"), 0o644))
	must(t, os.WriteFile(filepath.Join(f.pub, "ro.txt"), []byte("read-only"), 0o444))
	got := pyProbe(t, f.sandbox(f.secret), `
import fcntl
def newfile():
    fd = os.open(P("pub/new.txt"), os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"created")
    os.close(fd)
probe("creat new", newfile)
probe("creat existing keeps content", lambda: (op(P("pub/a.txt"), os.O_RDWR | os.O_CREAT), rd(P("pub/a.txt")))[1])
probe("creat excl existing", lambda: op(P("pub/a.txt"), os.O_RDWR | os.O_CREAT | os.O_EXCL))
probe("creat excl new", lambda: op(P("pub/excl.txt"), os.O_RDWR | os.O_CREAT | os.O_EXCL))
probe("creat excl symlink", lambda: op(P("pub/l"), os.O_RDWR | os.O_CREAT | os.O_EXCL))
probe("creat excl dangling", lambda: op(P("pub/dangling"), os.O_RDWR | os.O_CREAT | os.O_EXCL))
probe("creat missing dir", lambda: op(P("pub/nodir/x"), os.O_RDWR | os.O_CREAT))
probe("creat trailing slash", lambda: op(P("pub/newdir/"), os.O_RDWR | os.O_CREAT))
probe("creat on dir", lambda: op(P("pub/sub"), os.O_RDWR | os.O_CREAT))
probe("creat through symlink", lambda: (wr(P("pub/l"), "PUBLIC", os.O_WRONLY | os.O_CREAT), rd(P("pub/a.txt")))[1])
probe("trunc", lambda: op(P("pub/trunc.txt"), os.O_WRONLY | os.O_TRUNC))
probe("append", lambda: wr(P("pub/append.txt"), "two", os.O_WRONLY | os.O_APPEND))
probe("missing", lambda: rd(P("pub/missing")))
probe("missing dir component", lambda: rd(P("pub/nodir/x")))
probe("file as dir", lambda: rd(P("pub/a.txt/x")))
probe("directory on file", lambda: op(P("pub/a.txt"), os.O_RDONLY | os.O_DIRECTORY))
probe("directory on dir", lambda: op(P("pub/sub"), os.O_RDONLY | os.O_DIRECTORY))
probe("directory on dir symlink", lambda: op(P("sld"), os.O_RDONLY | os.O_DIRECTORY))
probe("write dir", lambda: op(P("pub/sub"), os.O_WRONLY))
probe("nofollow symlink", lambda: op(P("pub/l"), os.O_RDONLY | os.O_NOFOLLOW))
probe("nofollow file", lambda: rd(P("pub/sub/s.txt"), os.O_NOFOLLOW))
probe("dangling", lambda: rd(P("pub/dangling")))
probe("read-only file for writing", lambda: op(P("pub/ro.txt"), os.O_WRONLY))
probe("read-only file for reading", lambda: rd(P("pub/ro.txt")))
probe("empty path", lambda: op("", os.O_RDONLY))
def opath():
    fd = os.open(P("pub/a.txt"), os.O_PATH)
    try:
        st = os.fstat(fd)
        try:
            os.read(fd, 1)
            return "read worked"
        except OSError as x:
            return "size %d read %s" % (st.st_size, en(x))
    finally:
        os.close(fd)
probe("opath", opath)
def opath_nofollow():
    fd = os.open(P("pub/l"), os.O_PATH | os.O_NOFOLLOW)
    try:
        return stat.S_ISLNK(os.fstat(fd).st_mode)
    finally:
        os.close(fd)
probe("opath nofollow symlink", opath_nofollow)
def flags():
    fd = os.open(P("pub/append.txt"), os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK)
    try:
        fl = fcntl.fcntl(fd, fcntl.F_GETFL)
        return "append=%s nonblock=%s acc=%d cloexec=%s" % (bool(fl & os.O_APPEND), bool(fl & os.O_NONBLOCK), fl & os.O_ACCMODE, bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC))
    finally:
        os.close(fd)
probe("flags", flags)
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
def no_cloexec():
    fd = libc.open(P("pub/a.txt").encode(), os.O_RDONLY)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "open")
    try:
        return "cloexec=%s" % bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)
    finally:
        os.close(fd)
probe("no cloexec", no_cloexec)
def creat_syscall():
    fd = libc.creat(P("pub/creat.txt").encode(), 0o600)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "creat")
    os.write(fd, b"via creat")
    os.close(fd)
probe("creat syscall", creat_syscall)
probe("creat syscall secret", lambda: (_ for _ in ()).throw(OSError(ctypes.get_errno(), "creat")) if libc.creat(P("secret/c.txt").encode(), 0o600) < 0 else None)
def tmpfile():
    fd = os.open(P("pub"), os.O_TMPFILE | os.O_RDWR, 0o640)
    try:
        os.write(fd, b"anonymous")
        st = os.fstat(fd)
        return "nlink=%d mode=%o" % (st.st_nlink, stat.S_IMODE(st.st_mode))
    finally:
        os.close(fd)
probe("tmpfile", tmpfile)
def tmpfile_link():
    fd = os.open(P("pub"), os.O_TMPFILE | os.O_WRONLY, 0o600)
    try:
        os.write(fd, b"linked tmpfile")
        os.link("/proc/self/fd/%d" % fd, P("pub/tmplinked.txt"), src_dir_fd=os.open(D, os.O_RDONLY), follow_symlinks=True)
    finally:
        os.close(fd)
probe("tmpfile link", tmpfile_link)
def tmpfile_excl_link():
    fd = os.open(P("pub"), os.O_TMPFILE | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        os.link("/proc/self/fd/%d" % fd, P("pub/tmpexcl.txt"), src_dir_fd=os.open(D, os.O_RDONLY), follow_symlinks=True)
    finally:
        os.close(fd)
probe("tmpfile excl link", tmpfile_excl_link)
def tmpfile_flink():
    fd = os.open(P("pub"), os.O_TMPFILE | os.O_WRONLY, 0o600)
    try:
        os.write(fd, b"flinked")
        if libc.linkat(fd, b"", -100, P("pub/flinked.txt").encode(), 0x1000) < 0:  # AT_EMPTY_PATH
            raise OSError(ctypes.get_errno(), "linkat")
    finally:
        os.close(fd)
probe("tmpfile linkat empty path", tmpfile_flink)
def linkat_bad_flags():
    if libc.linkat(-100, P("pub/a.txt").encode(), -100, P("pub/bad-flags").encode(), 0x8) < 0:
        raise OSError(ctypes.get_errno(), "linkat")
probe("linkat bad flags", linkat_bad_flags)
probe("opath creat missing", lambda: op(P("pub/opath-new"), os.O_PATH | os.O_CREAT, 0o600))
probe("tmpfile creat", lambda: op(P("pub"), os.O_TMPFILE | os.O_CREAT | os.O_RDWR, 0o600))
probe("tmpfile secret", lambda: op(P("secret"), os.O_TMPFILE | os.O_RDWR, 0o600))
probe("tmpfile secret via symlink", lambda: op(P("sld"), os.O_TMPFILE | os.O_RDWR, 0o600))
`)
	expect(t, got, map[string]string{
		"creat new":                    "OK",
		"creat existing keeps content": "public",
		"creat excl existing":          "EEXIST",
		"creat excl new":               "OK",
		"creat excl symlink":           "EEXIST",
		"creat excl dangling":          "EEXIST",
		"creat missing dir":            "ENOENT",
		"creat trailing slash":         "EISDIR",
		"creat on dir":                 "EISDIR",
		"creat through symlink":        "PUBLIC",
		"trunc":                        "OK",
		"append":                       "OK",
		"missing":                      "ENOENT",
		"missing dir component":        "ENOENT",
		"file as dir":                  "ENOTDIR",
		"directory on file":            "ENOTDIR",
		"directory on dir":             "OK",
		"directory on dir symlink":     "EACCES",
		"write dir":                    "EISDIR",
		"nofollow symlink":             "ELOOP",
		"nofollow file":                "decoy",
		"dangling":                     "ENOENT",
		"read-only file for writing":   "EACCES", // capabilities are dropped: root obeys modes
		"read-only file for reading":   "read-only",
		"empty path":                   "ENOENT",
		"opath":                        "size 6 read EBADF",
		"opath nofollow symlink":       "True",
		"flags":                        "append=True nonblock=True acc=1 cloexec=True",
		"no cloexec":                   "cloexec=False",
		"creat syscall":                "OK",
		"creat syscall secret":         "EACCES",
		"tmpfile":                      "nlink=0 mode=640",
		"tmpfile link":                 "OK",
		"tmpfile excl link":            "ENOENT",
		"tmpfile linkat empty path":    "OK",
		"linkat bad flags":             "EINVAL",
		"opath creat missing":          "ENOENT",
		"tmpfile creat":                "EINVAL",
		"tmpfile secret":               "EACCES",
		"tmpfile secret via symlink":   "EACCES",
	})
	hostFile(t, filepath.Join(f.pub, "new.txt"), "created")
	hostFile(t, filepath.Join(f.pub, "a.txt"), "PUBLIC")
	hostFile(t, filepath.Join(f.pub, "trunc.txt"), "")
	hostFile(t, filepath.Join(f.pub, "append.txt"), "one,two")
	hostFile(t, filepath.Join(f.pub, "creat.txt"), "via creat")
	hostFile(t, filepath.Join(f.pub, "tmplinked.txt"), "linked tmpfile")
	hostAbsent(t, filepath.Join(f.pub, "tmpexcl.txt"))
	hostFile(t, filepath.Join(f.pub, "flinked.txt"), "flinked")
	hostAbsent(t, filepath.Join(f.pub, "opath-new"))
	hostAbsent(t, filepath.Join(f.pub, "bad-flags"))
	hostAbsent(t, filepath.Join(f.pub, "newdir"))
	hostAbsent(t, filepath.Join(f.pub, "nowhere"))
	hostAbsent(t, filepath.Join(f.secret, "c.txt"))
	if st, err := os.Stat(filepath.Join(f.pub, "new.txt")); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("pub/new.txt: %v %v, want mode 0644", st.Mode(), err)
	}
	if st, err := os.Stat(filepath.Join(f.pub, "creat.txt")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("pub/creat.txt: %v %v, want mode 0600", st.Mode(), err)
	}
	f.intact(t)
}

func TestFSDenyRemoveRenameLinkTruncate(t *testing.T) {
	f := newFSTree(t)
	for _, d := range []string{"pub/full", "pub/empty", "pub/mv"} {
		must(t, os.MkdirAll(filepath.Join(f.root, d), 0o755))
	}
	must(t, os.WriteFile(filepath.Join(f.root, "pub/full/x"), []byte("x"), 0o644))
	for _, n := range []string{"rm.txt", "mv.txt", "ln.txt", "big.txt"} {
		must(t, os.WriteFile(filepath.Join(f.pub, n), []byte(n), 0o644))
	}
	got := pyProbe(t, f.sandbox(f.secret), `
# Denied: the denied tree, its files and its pre-existing hard link.
probe("unlink secret", lambda: os.unlink(P("secret/s.txt")))
probe("unlink secret deep", lambda: os.unlink(P("secret/sub/d.txt")))
probe("unlink secret missing", lambda: os.unlink(P("secret/missing")))
probe("unlink secret via symlink dir", lambda: os.unlink(P("sld/s.txt")))
probe("unlink secret via dotdot", lambda: os.unlink(P("pub/../secret/s.txt")))
probe("unlink hardlink", lambda: os.unlink(P("hl")))
probe("rmdir secret", lambda: os.rmdir(P("secret")))
probe("rmdir secret sub", lambda: os.rmdir(P("secret/sub")))
probe("rename secret out", lambda: os.rename(P("secret/s.txt"), P("pub/stolen")))
probe("rename secret dir", lambda: os.rename(P("secret"), P("pub/secret2")))
probe("rename secret sub", lambda: os.rename(P("secret/sub"), P("pub/sub2")))
probe("rename into secret", lambda: os.rename(P("pub/mv.txt"), P("secret/mv.txt")))
probe("rename over secret", lambda: os.rename(P("pub/mv.txt"), P("secret/s.txt")))
probe("rename hardlink", lambda: os.rename(P("hl"), P("pub/hl2")))
probe("rename over hardlink", lambda: os.rename(P("pub/mv.txt"), P("hl")))
probe("link secret", lambda: os.link(P("secret/s.txt"), P("pub/ln")))
# Python calls link(2), which never follows symlinks, unless a dirfd is given:
# then linkat(2) with AT_SYMLINK_FOLLOW.
probe("link secret follow symlink", lambda: os.link(P("sl"), P("pub/ln"), src_dir_fd=os.open(D, os.O_RDONLY), follow_symlinks=True))
probe("link secret follow dir symlink", lambda: os.link("sld/s.txt", P("pub/ln"), src_dir_fd=os.open(D, os.O_RDONLY), follow_symlinks=True))
probe("link hardlink", lambda: os.link(P("hl"), P("pub/ln")))
probe("link into secret", lambda: os.link(P("pub/ln.txt"), P("secret/ln")))
probe("truncate secret", lambda: os.truncate(P("secret/s.txt"), 0))
probe("truncate hardlink", lambda: os.truncate(P("hl"), 0))
probe("truncate symlink", lambda: os.truncate(P("sl"), 0))
probe("otrunc hardlink", lambda: op(P("hl"), os.O_WRONLY | os.O_TRUNC))
probe("otrunc creat hardlink", lambda: op(P("hl"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC))

# Allowed, with the kernel's answers.
probe("unlink symlink to secret", lambda: os.unlink(P("sl")))
probe("unlink", lambda: os.unlink(P("pub/rm.txt")))
probe("unlink missing", lambda: os.unlink(P("pub/rm.txt")))
probe("unlink dir", lambda: os.unlink(P("pub/empty")))
probe("unlink trailing slash", lambda: os.unlink(P("pub/ln.txt/")))
probe("rmdir file", lambda: os.rmdir(P("pub/ln.txt")))
probe("rmdir full", lambda: os.rmdir(P("pub/full")))
probe("rmdir missing", lambda: os.rmdir(P("pub/nodir")))
probe("rename", lambda: os.rename(P("pub/mv.txt"), P("pub/moved.txt")))
probe("rename missing", lambda: os.rename(P("pub/mv.txt"), P("pub/x")))
probe("rename dir onto full", lambda: os.rename(P("pub/empty"), P("pub/full")))
probe("rename file onto dir", lambda: os.rename(P("pub/moved.txt"), P("pub/empty")))
probe("rename dir onto file", lambda: os.rename(P("pub/empty"), P("pub/moved.txt")))
probe("rename dir into itself", lambda: os.rename(P("pub/mv"), P("pub/mv/in")))
probe("rename dir", lambda: os.rename(P("pub/mv"), P("pub/mv2")))
probe("rename to missing dir", lambda: os.rename(P("pub/moved.txt"), P("pub/nodir/x")))
probe("link", lambda: os.link(P("pub/ln.txt"), P("pub/ln2.txt")))
probe("link existing", lambda: os.link(P("pub/ln.txt"), P("pub/ln2.txt")))
probe("link dir", lambda: os.link(P("pub/sub"), P("pub/sublink")))
probe("link missing", lambda: os.link(P("pub/none"), P("pub/x")))
probe("link symlink nofollow", lambda: (os.link(P("pub/l"), P("pub/l2"), follow_symlinks=False), os.readlink(P("pub/l2")))[1])
probe("link symlink follow", lambda: (os.link("l", P("pub/l3"), src_dir_fd=os.open(P("pub"), os.O_RDONLY), follow_symlinks=True), os.path.islink(P("pub/l3")))[1])
probe("link symlink to secret", lambda: (os.link(P("sld"), P("pub/sld-link")), os.readlink(P("pub/sld-link")))[1])
probe("truncate", lambda: os.truncate(P("pub/big.txt"), 3))
probe("truncate grow", lambda: (os.truncate(P("pub/ln.txt"), 10), os.stat(P("pub/ln.txt")).st_size)[1])
probe("truncate dir", lambda: os.truncate(P("pub/sub"), 0))
probe("truncate missing", lambda: os.truncate(P("pub/none"), 0))
probe("truncate negative", lambda: os.truncate(P("pub/big.txt"), -1))
os.chdir(P("pub"))
probe("relative rename", lambda: os.rename("big.txt", "sub/big.txt"))
probe("relative unlink secret", lambda: os.unlink("../secret/s.txt"))
probe("relative rename secret", lambda: os.rename("../hl", "hl"))
`)
	expect(t, got, map[string]string{
		"unlink secret":                  "EACCES",
		"unlink secret deep":             "EACCES",
		"unlink secret missing":          "EACCES",
		"unlink secret via symlink dir":  "EACCES",
		"unlink secret via dotdot":       "EACCES",
		"unlink hardlink":                "EACCES",
		"rmdir secret":                   "EACCES",
		"rmdir secret sub":               "EACCES",
		"rename secret out":              "EACCES",
		"rename secret dir":              "EACCES",
		"rename secret sub":              "EACCES",
		"rename into secret":             "EACCES",
		"rename over secret":             "EACCES",
		"rename hardlink":                "EACCES",
		"rename over hardlink":           "EACCES",
		"link secret":                    "EACCES",
		"link secret follow symlink":     "EACCES",
		"link secret follow dir symlink": "EACCES",
		"link hardlink":                  "EACCES",
		"link into secret":               "EACCES",
		"truncate secret":                "EACCES",
		"truncate hardlink":              "EACCES",
		"truncate symlink":               "EACCES",
		"otrunc hardlink":                "EACCES",
		"otrunc creat hardlink":          "EACCES",

		"unlink symlink to secret": "OK",
		"unlink":                   "OK",
		"unlink missing":           "ENOENT",
		"unlink dir":               "EISDIR",
		"unlink trailing slash":    "ENOTDIR",
		"rmdir file":               "ENOTDIR",
		"rmdir full":               "ENOTEMPTY",
		"rmdir missing":            "ENOENT",
		"rename":                   "OK",
		"rename missing":           "ENOENT",
		"rename dir onto full":     "ENOTEMPTY",
		"rename file onto dir":     "EISDIR",
		"rename dir onto file":     "ENOTDIR",
		"rename dir into itself":   "EINVAL",
		"rename dir":               "OK",
		"rename to missing dir":    "ENOENT",
		"link":                     "OK",
		"link existing":            "EEXIST",
		"link dir":                 "EPERM",
		"link missing":             "ENOENT",
		"link symlink nofollow":    "a.txt",
		"link symlink follow":      "False",
		"link symlink to secret":   "secret",
		"truncate":                 "OK",
		"truncate grow":            "10",
		"truncate dir":             "EISDIR",
		"truncate missing":         "ENOENT",
		"truncate negative":        "EINVAL",
		"relative rename":          "OK",
		"relative unlink secret":   "EACCES",
		"relative rename secret":   "EACCES",
	})
	f.intact(t)
	hostAbsent(t, filepath.Join(f.pub, "stolen"))
	hostAbsent(t, filepath.Join(f.pub, "secret2"))
	hostAbsent(t, filepath.Join(f.pub, "hl2"))
	hostAbsent(t, filepath.Join(f.pub, "ln"))
	hostAbsent(t, filepath.Join(f.root, "sl"))
	hostAbsent(t, filepath.Join(f.pub, "rm.txt"))
	hostFile(t, filepath.Join(f.pub, "moved.txt"), "mv.txt")
	hostFile(t, filepath.Join(f.pub, "ln2.txt"), "ln.txt\x00\x00\x00\x00")
	hostFile(t, filepath.Join(f.pub, "sub/big.txt"), "big")
	hostFile(t, filepath.Join(f.pub, "l3"), "public")
	if _, err := os.Stat(filepath.Join(f.pub, "mv2")); err != nil {
		t.Errorf("renamed directory: %v", err)
	}
}

// A hard link made before the run reaches a denied file by a path outside
// the denied tree: it is denied as the file is, whether the denial names the
// file or a directory holding it.
func TestFSDenyHardlinkMadeBeforeRun(t *testing.T) {
	for _, denyFile := range []bool{false, true} {
		f := newFSTree(t)
		must(t, os.Link(filepath.Join(f.secret, "sub/d.txt"), filepath.Join(f.pub, "deep-link")))
		f.deepLinks = 1
		deny := f.secret
		if denyFile {
			deny = filepath.Join(f.secret, "sub/d.txt")
		}
		got := pyProbe(t, f.sandbox(deny), `
L = P("pub/deep-link")
probe("read", lambda: rd(L))
probe("write", lambda: wr(L, "x"))
probe("append", lambda: wr(L, "x", os.O_WRONLY | os.O_APPEND))
probe("otrunc", lambda: op(L, os.O_WRONLY | os.O_TRUNC))
probe("opath", lambda: op(L, os.O_PATH))
probe("truncate", lambda: os.truncate(L, 0))
probe("unlink", lambda: os.unlink(L))
probe("rename", lambda: os.rename(L, P("pub/renamed")))
probe("rename over", lambda: os.rename(P("pub/a.txt"), L))
probe("link", lambda: os.link(L, P("pub/another-link")))
probe("link follow", lambda: os.link(L, P("pub/another-link"), src_dir_fd=os.open(D, os.O_RDONLY), follow_symlinks=True))
probe("dirfd read", lambda: rd("deep-link", dir_fd=os.open(P("pub"), os.O_RDONLY)))
os.symlink("deep-link", P("pub/sym-to-link"))
probe("symlink to it", lambda: rd(P("pub/sym-to-link")))
probe("stat", lambda: os.stat(L).st_nlink)
probe("other file", lambda: rd(P("pub/a.txt")))
`)
		expect(t, got, map[string]string{
			"read": "EACCES", "write": "EACCES", "append": "EACCES", "otrunc": "EACCES",
			"opath": "EACCES", "truncate": "EACCES", "unlink": "EACCES", "rename": "EACCES",
			"rename over": "EACCES", "link": "EACCES", "link follow": "EACCES",
			"dirfd read": "EACCES", "symlink to it": "EACCES", "stat": "2", "other file": "public",
		})
		hostFile(t, filepath.Join(f.pub, "deep-link"), "DEEP")
		hostFile(t, filepath.Join(f.pub, "a.txt"), "public")
		hostAbsent(t, filepath.Join(f.pub, "renamed"))
		hostAbsent(t, filepath.Join(f.pub, "another-link"))
		f.intact(t)
	}
}

func TestFSDenyCreateInDeniedDir(t *testing.T) {
	f := newFSTree(t)
	got := pyProbe(t, f.sandbox(f.secret), `
import socket
rootfd = os.open(D, os.O_RDONLY | os.O_DIRECTORY)
probe("creat", lambda: op(P("secret/new"), os.O_WRONLY | os.O_CREAT))
probe("creat excl", lambda: op(P("secret/new"), os.O_WRONLY | os.O_CREAT | os.O_EXCL))
probe("creat deep", lambda: op(P("secret/sub/new"), os.O_WRONLY | os.O_CREAT))
probe("creat missing dir", lambda: op(P("secret/nodir/new"), os.O_WRONLY | os.O_CREAT))
probe("creat via symlink dir", lambda: op(P("sld/new"), os.O_WRONLY | os.O_CREAT))
probe("creat via dotdot", lambda: op(P("pub/../secret/new"), os.O_WRONLY | os.O_CREAT))
probe("creat via dirfd", lambda: op("secret/new", os.O_WRONLY | os.O_CREAT, dir_fd=rootfd))
probe("mkdir", lambda: os.mkdir(P("secret/newdir")))
probe("mkdir existing", lambda: os.mkdir(P("secret/sub")))
probe("mkdir via dirfd", lambda: os.mkdir("secret/newdir", dir_fd=rootfd))
probe("mkfifo", lambda: os.mkfifo(P("secret/fifo")))
probe("mknod regular", lambda: os.mknod(P("secret/node"), stat.S_IFREG | 0o600))
probe("symlink", lambda: os.symlink("/etc/passwd", P("secret/sym")))
probe("symlink via dirfd", lambda: os.symlink("x", "secret/sym", dir_fd=rootfd))
probe("link in", lambda: os.link(P("pub/a.txt"), P("secret/a")))
probe("rename in", lambda: os.rename(P("pub/a.txt"), P("secret/a")))
def bind():
    s = socket.socket(socket.AF_UNIX)
    s.bind(P("secret/sock"))
probe("tmpfile", lambda: op(P("secret"), os.O_TMPFILE | os.O_WRONLY, 0o600))

# The same operations next to it work.
probe("pub creat", lambda: op(P("pub/new"), os.O_WRONLY | os.O_CREAT))
probe("pub mkdir", lambda: os.mkdir(P("pub/newdir")))
probe("pub mkdir existing", lambda: os.mkdir(P("pub/sub")))
probe("pub mkdir missing parent", lambda: os.mkdir(P("pub/nodir/x")))
probe("pub mkfifo", lambda: os.mkfifo(P("pub/fifo")))
probe("pub mknod regular", lambda: os.mknod(P("pub/node"), stat.S_IFREG | 0o600))
probe("pub symlink", lambda: os.symlink("a.txt", P("pub/sym")))
probe("pub symlink existing", lambda: os.symlink("a.txt", P("pub/sym")))
probe("pub symlink into secret", lambda: os.symlink("../secret/s.txt", P("pub/sym2")))
probe("pub read symlink into secret", lambda: rd(P("pub/sym2")))
probe("pub creat through symlink into secret", lambda: op(P("pub/sym2"), os.O_WRONLY | os.O_CREAT))
probe("pub creat through dangling symlink into secret", lambda: (os.symlink("../secret/new", P("pub/sym3")), op(P("pub/sym3"), os.O_WRONLY | os.O_CREAT))[1])
`)
	expect(t, got, map[string]string{
		"creat": "EACCES", "creat excl": "EACCES", "creat deep": "EACCES",
		"creat missing dir": "ENOENT", "creat via symlink dir": "EACCES",
		"creat via dotdot": "EACCES", "creat via dirfd": "EACCES",
		"mkdir": "EACCES", "mkdir existing": "EACCES", "mkdir via dirfd": "EACCES",
		"mkfifo": "EACCES", "mknod regular": "EACCES", "symlink": "EACCES",
		"symlink via dirfd": "EACCES", "link in": "EACCES", "rename in": "EACCES",
		"tmpfile": "EACCES",

		"pub creat": "OK", "pub mkdir": "OK", "pub mkdir existing": "EEXIST",
		"pub mkdir missing parent": "ENOENT", "pub mkfifo": "OK", "pub mknod regular": "OK",
		"pub symlink": "OK", "pub symlink existing": "EEXIST", "pub symlink into secret": "OK",
		"pub read symlink into secret":                   "EACCES",
		"pub creat through symlink into secret":          "EACCES",
		"pub creat through dangling symlink into secret": "EACCES",
	})
	f.intact(t)
	for _, n := range []string{"new", "newdir", "fifo", "node", "sym", "a", "nodir"} {
		hostAbsent(t, filepath.Join(f.secret, n))
	}
	for n, mode := range map[string]os.FileMode{"new": 0, "newdir": os.ModeDir, "fifo": os.ModeNamedPipe, "node": 0, "sym": os.ModeSymlink} {
		st, err := os.Lstat(filepath.Join(f.pub, n))
		if err != nil || st.Mode().Type() != mode {
			t.Errorf("pub/%s: %v (%v), want type %v", n, st, err, mode)
		}
	}
}

// Renaming a directory that holds a denied path would move the denied path:
// denied, while renaming its siblings works.
func TestFSDenyRenameAncestor(t *testing.T) {
	root := tempDir(t)
	for _, d := range []string{"anc/mid/secret", "anc/other", "anc/mid/sib"} {
		must(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	must(t, os.WriteFile(filepath.Join(root, "anc/mid/secret/s"), []byte("S"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "anc/mid/file"), []byte("F"), 0o644))
	sb := base()
	sb.FSWritable = []string{root}
	sb.FSDenied = []string{filepath.Join(root, "anc/mid/secret")}
	sb.Env = map[string]string{"D": root}
	got := pyProbe(t, sb, `
probe("rename grandparent", lambda: os.rename(P("anc"), P("anc2")))
probe("rename parent", lambda: os.rename(P("anc/mid"), P("anc/mid2")))
probe("rename parent away", lambda: os.rename(P("anc/mid"), P("elsewhere")))
probe("rename parent via dotdot", lambda: os.rename(P("anc/other/../mid"), P("anc/mid3")))
os.chdir(P("anc"))
probe("rename parent relative", lambda: os.rename("mid", "mid4"))
probe("rename parent trailing slash", lambda: os.rename("mid/", "mid5/"))
probe("rename over parent", lambda: os.rename("other", "mid"))
probe("rmdir parent", lambda: os.rmdir("mid"))
probe("rename sibling dir", lambda: os.rename("other", "other2"))
probe("rename cousin dir", lambda: os.rename("mid/sib", "mid/sib2"))
probe("rename cousin file", lambda: os.rename("mid/file", "mid/file2"))
probe("rename prefix-named sibling", lambda: (os.mkdir("mid/secretx"), os.rename("mid/secretx", "mid/secrety"))[1])
`)
	expect(t, got, map[string]string{
		"rename grandparent":           "EACCES",
		"rename parent":                "EACCES",
		"rename parent away":           "EACCES",
		"rename parent via dotdot":     "EACCES",
		"rename parent relative":       "EACCES",
		"rename parent trailing slash": "EACCES",
		"rename over parent":           "EACCES",
		"rmdir parent":                 "ENOTEMPTY",
		"rename sibling dir":           "OK",
		"rename cousin dir":            "OK",
		"rename cousin file":           "OK",
		"rename prefix-named sibling":  "OK",
	})
	hostFile(t, filepath.Join(root, "anc/mid/secret/s"), "S")
	hostFile(t, filepath.Join(root, "anc/mid/file2"), "F")
	for _, p := range []string{"anc/other2", "anc/mid/sib2", "anc/mid/secrety"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// copyFile copies src to dst with mode.
func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	must(t, err)
	must(t, os.WriteFile(dst, b, mode))
}

func TestFSDenyExec(t *testing.T) {
	f := newFSTree(t)
	trueBin, err := filepath.EvalSymlinks("/bin/true")
	must(t, err)
	copyFile(t, trueBin, filepath.Join(f.secret, "true"), 0o755)
	copyFile(t, trueBin, filepath.Join(f.pub, "true"), 0o755)
	must(t, os.Link(filepath.Join(f.secret, "true"), filepath.Join(f.root, "true-link")))
	must(t, os.Symlink("secret/true", filepath.Join(f.root, "true-sym")))
	must(t, os.WriteFile(filepath.Join(f.secret, "script"), []byte("#!/bin/sh\necho ran\n"), 0o755))
	got := pyProbe(t, f.sandbox(f.secret), `
import subprocess
def ex(path, argv0=None):
    # fork, then execv in the child; the child reports a failed exec's errno
    # as its exit code.
    pid = os.fork()
    if pid == 0:
        try:
            os.execv(path, [argv0 or path])
        except OSError as x:
            os._exit(100 + x.errno)
        os._exit(99)
    _, st = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(st)
    if code >= 100:
        return errno.errorcode[code - 100]
    return "exit %d" % code
def sp(argv):
    try:
        return "exit %d" % subprocess.call(argv)
    except OSError as x:
        return en(x)
probe("exec allowed copy", lambda: ex(P("pub/true")))
probe("exec denied copy", lambda: ex(P("secret/true")))
probe("exec denied via symlink", lambda: ex(P("true-sym")))
probe("exec denied via hardlink", lambda: ex(P("true-link")))
probe("exec denied via dotdot", lambda: ex(P("pub/../secret/true")))
probe("exec denied script", lambda: ex(P("secret/script")))
probe("exec system true", lambda: ex("/bin/true"))
probe("exec missing", lambda: ex(P("pub/missing")))
probe("exec dir", lambda: ex(P("pub")))
probe("exec non-executable", lambda: ex(P("pub/a.txt")))
probe("subprocess allowed", lambda: sp([P("pub/true")]))
probe("subprocess denied", lambda: sp([P("secret/true")]))
os.chdir(P("pub"))
probe("exec relative allowed", lambda: ex("./true"))
probe("exec relative denied", lambda: ex("../secret/true"))
def fexec(path):
    fd = os.open(path, os.O_RDONLY)
    pid = os.fork()
    if pid == 0:
        try:
            os.execve(fd, [path], {})
        except OSError as x:
            os._exit(100 + x.errno)
        os._exit(99)
    _, st = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(st)
    return "exit %d" % code if code < 100 else errno.errorcode[code - 100]
probe("fexecve allowed", lambda: fexec(P("pub/true")))
`)
	expect(t, got, map[string]string{
		"exec allowed copy":        "exit 0",
		"exec denied copy":         "EACCES",
		"exec denied via symlink":  "EACCES",
		"exec denied via hardlink": "EACCES",
		"exec denied via dotdot":   "EACCES",
		"exec denied script":       "EACCES",
		"exec system true":         "exit 0",
		"exec missing":             "ENOENT",
		"exec dir":                 "EACCES",
		"exec non-executable":      "EACCES",
		"subprocess allowed":       "exit 0",
		"subprocess denied":        "EACCES",
		"exec relative allowed":    "exit 0",
		"exec relative denied":     "EACCES",
		"fexecve allowed":          "exit 0",
	})
}

// A denied path that does not exist yet is denied by name: creating it, by
// any means, is denied.
func TestFSDenyNotYetExisting(t *testing.T) {
	f := newFSTree(t)
	must(t, os.MkdirAll(filepath.Join(f.pub, "carrier/deep"), 0o755))
	future := filepath.Join(f.pub, "future")
	later := filepath.Join(f.pub, "later/deep")
	// Named through a symlink to its parent: the denial is of pub/ghost.
	must(t, os.Symlink("pub", filepath.Join(f.root, "publink")))
	ghost := filepath.Join(f.root, "publink/ghost")
	got := pyProbe(t, f.sandbox(future, later, ghost), `
probe("creat", lambda: op(P("pub/future"), os.O_WRONLY | os.O_CREAT))
probe("creat excl", lambda: op(P("pub/future"), os.O_WRONLY | os.O_CREAT | os.O_EXCL))
probe("creat relative", lambda: op("future", os.O_WRONLY | os.O_CREAT, dir_fd=os.open(P("pub"), os.O_RDONLY)))
probe("creat via dotdot", lambda: op(P("pub/sub/../future"), os.O_WRONLY | os.O_CREAT))
probe("creat via dangling symlink", lambda: (os.symlink("future", P("pub/to-future")), op(P("pub/to-future"), os.O_WRONLY | os.O_CREAT))[1])
probe("mkdir", lambda: os.mkdir(P("pub/future")))
probe("mkfifo", lambda: os.mkfifo(P("pub/future")))
probe("symlink", lambda: os.symlink("a.txt", P("pub/future")))
probe("link", lambda: os.link(P("pub/a.txt"), P("pub/future")))
probe("rename onto", lambda: os.rename(P("pub/a.txt"), P("pub/future")))
probe("rename dir onto", lambda: os.rename(P("pub/sub"), P("pub/future")))
probe("read", lambda: rd(P("pub/future")))
probe("mkdir parent of deep", lambda: os.mkdir(P("pub/later")))
probe("mkdir deep", lambda: os.mkdir(P("pub/later/deep")))
probe("creat deep", lambda: op(P("pub/later/deep"), os.O_WRONLY | os.O_CREAT))
probe("rename holder onto parent", lambda: os.rename(P("pub/carrier"), P("pub/later")))
probe("rmdir later", lambda: os.rmdir(P("pub/later")))
probe("rename holder onto missing parent", lambda: os.rename(P("pub/carrier"), P("pub/later")))
probe("prefix sibling", lambda: op(P("pub/futurex"), os.O_WRONLY | os.O_CREAT))
probe("prefix sibling dir", lambda: os.mkdir(P("pub/later/deeper")))
probe("ghost", lambda: op(P("pub/ghost"), os.O_WRONLY | os.O_CREAT))
probe("ghost mkdir", lambda: os.mkdir(P("pub/ghost")))
probe("ghost via link", lambda: op(P("publink/ghost"), os.O_WRONLY | os.O_CREAT))
`)
	expect(t, got, map[string]string{
		"creat": "EACCES", "creat excl": "EACCES", "creat relative": "EACCES",
		"creat via dotdot": "EACCES", "creat via dangling symlink": "EACCES",
		"mkdir": "EACCES", "mkfifo": "EACCES", "symlink": "EACCES", "link": "EACCES",
		"rename onto": "EACCES", "rename dir onto": "EACCES", "read": "ENOENT",
		"mkdir parent of deep": "OK", "mkdir deep": "EACCES", "creat deep": "EACCES",
		"rename holder onto parent":         "EACCES",
		"rmdir later":                       "OK",
		"rename holder onto missing parent": "EACCES",
		"prefix sibling":                    "OK",
		"prefix sibling dir":                "ENOENT",
		"ghost":                             "EACCES",
		"ghost mkdir":                       "EACCES",
		"ghost via link":                    "EACCES",
	})
	hostAbsent(t, future)
	hostAbsent(t, later)
	hostAbsent(t, filepath.Join(f.pub, "ghost"))
	hostFile(t, filepath.Join(f.pub, "futurex"), "")
	hostFile(t, filepath.Join(f.pub, "a.txt"), "public")
	if _, err := os.Stat(filepath.Join(f.pub, "carrier/deep")); err != nil {
		t.Errorf("carrier/deep: %v", err)
	}
}

// Denying one file leaves its siblings fully usable.
func TestFSDenySingleFile(t *testing.T) {
	f := newFSTree(t)
	only := filepath.Join(f.pub, "only.txt")
	must(t, os.WriteFile(only, []byte("ONLY"), 0o644))
	must(t, os.WriteFile(filepath.Join(f.pub, "only.txt2"), []byte("sibling"), 0o644))
	got := pyProbe(t, f.sandbox(only), `
probe("read", lambda: rd(P("pub/only.txt")))
probe("write", lambda: wr(P("pub/only.txt"), "x"))
probe("creat trunc", lambda: op(P("pub/only.txt"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC))
probe("truncate", lambda: os.truncate(P("pub/only.txt"), 0))
probe("unlink", lambda: os.unlink(P("pub/only.txt")))
probe("rename", lambda: os.rename(P("pub/only.txt"), P("pub/x")))
probe("rename over", lambda: os.rename(P("pub/a.txt"), P("pub/only.txt")))
probe("link", lambda: os.link(P("pub/only.txt"), P("pub/y")))
probe("rename parent", lambda: os.rename(P("pub"), P("pub2")))
probe("below file", lambda: rd(P("pub/only.txt/x")))
probe("sibling read", lambda: rd(P("pub/only.txt2")))
probe("sibling write", lambda: wr(P("pub/only.txt2"), "SIBLING"))
probe("sibling creat", lambda: op(P("pub/new"), os.O_WRONLY | os.O_CREAT))
probe("sibling rename", lambda: os.rename(P("pub/new"), P("pub/new2")))
probe("sibling unlink", lambda: os.unlink(P("pub/new2")))
probe("listdir", lambda: ",".join(sorted(os.listdir(P("pub")))))
probe("other tree", lambda: rd(P("secret/s.txt")))
`)
	expect(t, got, map[string]string{
		"read": "EACCES", "write": "EACCES", "creat trunc": "EACCES", "truncate": "EACCES",
		"unlink": "EACCES", "rename": "EACCES", "rename over": "EACCES", "link": "EACCES",
		"rename parent": "EACCES", "below file": "ENOTDIR",
		"sibling read": "sibling", "sibling write": "OK", "sibling creat": "OK",
		"sibling rename": "OK", "sibling unlink": "OK",
		"listdir":    "a.txt,l,only.txt,only.txt2,sub",
		"other tree": "SECRET",
	})
	hostFile(t, only, "ONLY")
	hostFile(t, filepath.Join(f.pub, "only.txt2"), "SIBLING")
	hostFile(t, filepath.Join(f.pub, "a.txt"), "public")
}

// Files created on the program's behalf get its umask, read at the time of
// the call.
func TestFSDenyUmask(t *testing.T) {
	f := newFSTree(t)
	code := probePrelude + `
def mode(p):
    return "%o" % stat.S_IMODE(os.lstat(p).st_mode)
def creat(p, m):
    op(p, os.O_WRONLY | os.O_CREAT, m)
    return mode(p)
probe("creat 666", lambda: creat(P("pub/f666"), 0o666))
probe("creat excl 644", lambda: (op(P("pub/f644"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), mode(P("pub/f644")))[1])
probe("mkdir 777", lambda: (os.mkdir(P("pub/d777"), 0o777), mode(P("pub/d777")))[1])
probe("mkfifo 666", lambda: (os.mkfifo(P("pub/p666"), 0o666), mode(P("pub/p666")))[1])
probe("mknod 666", lambda: (os.mknod(P("pub/n666"), stat.S_IFREG | 0o666), mode(P("pub/n666")))[1])
def tmpfile():
    fd = os.open(P("pub"), os.O_TMPFILE | os.O_RDWR, 0o666)
    try:
        return "%o" % stat.S_IMODE(os.fstat(fd).st_mode)
    finally:
        os.close(fd)
probe("tmpfile 666", tmpfile)
old = os.umask(0o002)
probe("after umask(002)", lambda: creat(P("pub/g666"), 0o666))
import threading
def other_thread():
    os.umask(0o027)  # the umask is per process: this thread sets it for all
    probe("thread umask(027)", lambda: creat(P("pub/h666"), 0o666))
th = threading.Thread(target=other_thread)
th.start(); th.join()
probe("main after thread", lambda: creat(P("pub/i666"), 0o666))
print(json.dumps(R))
`
	sb := f.sandbox(f.secret)
	res := run(t, sb, "/bin/sh", "-c", `umask 077 && echo shell > "$D/pub/shell" && exec "$0" -c "$1"`, python, code)
	if res.ExitCode != 0 {
		t.Fatalf("exit %d: %s %s", res.ExitCode, res.Stdout, res.Stderr)
	}
	var got map[string]string
	lines := strings.Split(strings.TrimSpace(string(res.Stdout)), "\n")
	must(t, json.Unmarshal([]byte(lines[len(lines)-1]), &got))
	expect(t, got, map[string]string{
		"creat 666":         "600",
		"creat excl 644":    "600",
		"mkdir 777":         "700",
		"mkfifo 666":        "600",
		"mknod 666":         "600",
		"tmpfile 666":       "600",
		"after umask(002)":  "664",
		"thread umask(027)": "640",
		"main after thread": "640",
	})
	for name, want := range map[string]os.FileMode{"shell": 0o600, "f666": 0o600, "d777": 0o700, "g666": 0o664, "h666": 0o640} {
		st, err := os.Lstat(filepath.Join(f.pub, name))
		if err != nil || st.Mode().Perm() != want {
			t.Errorf("host: pub/%s mode %v (%v), want %v", name, st.Mode().Perm(), err, want)
		}
	}
	hostFile(t, filepath.Join(f.pub, "shell"), "shell\n")
}

// The task's own /proc entries and /dev/fd, /dev/stdin: the supervisor must
// follow them as the task's, never as its own.
func TestFSDenyProcSelfAndDevFD(t *testing.T) {
	f := newFSTree(t)
	sb := f.sandbox(f.secret)
	sb.FSReadable = append(sb.FSReadable, "/proc")
	sb.Env["SANDLOCK_MARK"] = "marked"
	sb.Env["SUP_PID"] = strconv.Itoa(os.Getpid())
	got := pyProbe(t, sb, `
import threading
pid = os.getpid()
r, w = os.pipe()
os.write(w, b"piped")
pubfd = os.open(P("pub/a.txt"), os.O_RDONLY)
dirfd = os.open(P("pub"), os.O_RDONLY | os.O_DIRECTORY)
rootfd = os.open(D, os.O_RDONLY | os.O_DIRECTORY)
probe("dev fd pipe", lambda: rd("/dev/fd/%d" % r))
os.write(w, b"again")
probe("proc self fd pipe", lambda: rd("/proc/self/fd/%d" % r))
os.write(w, b"stdin")
os.dup2(r, 0)
probe("dev stdin", lambda: rd("/dev/stdin"))
probe("proc self fd file", lambda: rd("/proc/self/fd/%d" % pubfd))
probe("proc pid fd file", lambda: rd("/proc/%d/fd/%d" % (pid, pubfd)))
probe("proc thread-self fd file", lambda: rd("/proc/thread-self/fd/%d" % pubfd))
probe("dev fd file", lambda: rd("/dev/fd/%d" % pubfd))
probe("dev fd reopen for writing", lambda: wr("/dev/fd/%d" % pubfd, "PUB"))
probe("dev fd dir", lambda: rd("/dev/fd/%d/sub/s.txt" % dirfd))
probe("dev fd dir dotdot", lambda: rd("/dev/fd/%d/../secret/s.txt" % dirfd))
probe("proc self fd dir secret", lambda: rd("/proc/self/fd/%d/secret/s.txt" % rootfd))
probe("proc self fd dir hardlink", lambda: rd("/proc/self/fd/%d/hl" % rootfd))
probe("proc self fd bad", lambda: rd("/proc/self/fd/999"))
probe("dev fd bad", lambda: rd("/dev/fd/999/x"))
probe("dirfd bad", lambda: rd("x", dir_fd=999))
probe("dirfd not a dir", lambda: rd("x", dir_fd=pubfd))
os.chdir(P("pub"))
probe("proc self cwd", lambda: rd("/proc/self/cwd/a.txt"))
probe("proc self cwd secret", lambda: rd("/proc/self/cwd/../secret/s.txt"))
probe("proc self root", lambda: rd("/proc/self/root" + P("pub/sub/s.txt")))
probe("proc self root secret", lambda: rd("/proc/self/root" + P("secret/s.txt")))
probe("proc self root proc self", lambda: "Pid:\t%d\n" % pid in open("/proc/self/root/proc/self/status").read())
def exe_magic():
    fd = os.open("/proc/self/exe", os.O_RDONLY)
    try:
        return os.read(fd, 4)[1:].decode()
    finally:
        os.close(fd)
probe("proc self exe", exe_magic)

def status_pid(path):
    for line in open(path).read().split("\n"):
        if line.startswith("Pid:"):
            return int(line.split()[1])
probe("proc self status", lambda: status_pid("/proc/self/status") == pid)
probe("proc pid status", lambda: status_pid("/proc/%d/status" % pid) == pid)
probe("proc self cmdline", lambda: open("/proc/self/cmdline", "rb").read().split(b"\0")[0].decode())
probe("proc self environ", lambda: b"SANDLOCK_MARK=marked" in open("/proc/self/environ", "rb").read().split(b"\0"))
probe("proc self fd listing", lambda: {str(r), str(w), str(pubfd), str(dirfd)} <= set(os.listdir("/proc/self/fd")))
probe("proc self fd listing only mine", lambda: len(os.listdir("/proc/self/fd")) < 12)
probe("proc self fd link", lambda: os.readlink("/proc/self/fd/%d" % pubfd) == P("pub/a.txt"))
probe("proc self listing", lambda: "status" in os.listdir("/proc/self"))
probe("proc dotdot self", lambda: status_pid("/proc/sys/../self/status") == pid)
def in_thread():
    tid = threading.get_native_id()
    probe("thread proc self status", lambda: status_pid("/proc/self/status") == pid)
    probe("thread proc thread-self status", lambda: status_pid("/proc/thread-self/status") == tid)
    probe("thread proc self fd", lambda: rd("/proc/self/fd/%d" % pubfd))
th = threading.Thread(target=in_thread)
th.start(); th.join()
os.chdir("/proc")
probe("relative self status", lambda: status_pid("self/status") == pid)
probe("relative self cmdline", lambda: open("self/cmdline", "rb").read().split(b"\0")[0].decode())
os.symlink("/proc/self/status", P("pub/status-link"))
probe("symlink to proc self status", lambda: status_pid(P("pub/status-link")) == pid)
os.symlink("/proc/self/cmdline", P("pub/cmdline-link"))
probe("symlink to proc self cmdline", lambda: open(P("pub/cmdline-link"), "rb").read().split(b"\0")[0].decode())
os.symlink("/proc/self/environ", P("pub/environ-link"))
probe("symlink to proc self environ", lambda: b"SANDLOCK_MARK=marked" in open(P("pub/environ-link"), "rb").read().split(b"\0"))
def thread_self_link():
    tid = threading.get_native_id()
    os.symlink("/proc/thread-self/status", P("pub/ts-link"))
    probe("symlink to thread-self status", lambda: status_pid(P("pub/ts-link")) == tid)
th = threading.Thread(target=thread_self_link)
th.start(); th.join()
own_mounts = open("/proc/self/mounts").read()
probe("proc mounts", lambda: open("/proc/mounts").read() == own_mounts and len(own_mounts) > 0)
probe("proc net dir", lambda: "tcp" in os.listdir("/proc/net"))
probe("etc mtab", lambda: not os.path.exists("/etc/mtab") or open("/etc/mtab").read() == own_mounts)
probe("proc task fd", lambda: rd("/proc/self/task/%d/fd/%d" % (pid, pubfd)))
probe("proc task fd dir", lambda: rd("/proc/%d/task/%d/fd/%d/sub/s.txt" % (pid, pid, dirfd)))
# The supervisor's own entries, named by its pid: the helpers that open on
# the program's behalf are its threads, and must not read them for it.
SUP = os.environ["SUP_PID"]
probe("supervisor status", lambda: rd("/proc/%s/status" % SUP))
probe("supervisor environ", lambda: rd("/proc/%s/environ" % SUP))
probe("supervisor cmdline", lambda: rd("/proc/%s/cmdline" % SUP))
probe("supervisor cmdline relative", lambda: rd("%s/cmdline" % SUP))
probe("supervisor fd dir", lambda: op("/proc/%s/fd" % SUP, os.O_RDONLY | os.O_DIRECTORY))
`)
	expect(t, got, map[string]string{
		"dev fd pipe":                    "piped",
		"proc self fd pipe":              "again",
		"dev stdin":                      "stdin",
		"proc self fd file":              "public",
		"proc pid fd file":               "public",
		"proc thread-self fd file":       "public",
		"dev fd file":                    "public",
		"dev fd reopen for writing":      "OK",
		"dev fd dir":                     "decoy",
		"dev fd dir dotdot":              "EACCES",
		"proc self fd dir secret":        "EACCES",
		"proc self fd dir hardlink":      "EACCES",
		"proc self fd bad":               "ENOENT",
		"dev fd bad":                     "ENOENT",
		"dirfd bad":                      "EBADF",
		"dirfd not a dir":                "ENOTDIR",
		"proc self cwd":                  "PUBlic",
		"proc self cwd secret":           "EACCES",
		"proc self root":                 "decoy",
		"proc self root secret":          "EACCES",
		"proc self root proc self":       "True",
		"proc self exe":                  "ELF",
		"proc self status":               "True",
		"proc pid status":                "True",
		"proc self cmdline":              python,
		"proc self environ":              "True",
		"proc self fd listing":           "True",
		"proc self fd listing only mine": "True",
		"proc self fd link":              "True",
		"proc self listing":              "True",
		"proc dotdot self":               "True",
		"thread proc self status":        "True",
		"thread proc thread-self status": "True",
		"thread proc self fd":            "PUBlic",
		"relative self status":           "True",
		"relative self cmdline":          python,
		"symlink to proc self status":    "True",
		"symlink to proc self cmdline":   python,
		// Through a symlink as directly: the task's own entry, opened on
		// its behalf by a helper outside any Landlock domain (never the
		// supervisor's).
		"symlink to proc self environ":  "True",
		"etc mtab":                      "True",
		"symlink to thread-self status": "True",
		"proc mounts":                   "True",
		"proc net dir":                  "True",
		"proc task fd":                  "PUBlic",
		"proc task fd dir":              "decoy",
		"supervisor status":             "EACCES",
		"supervisor environ":            "EACCES",
		"supervisor cmdline":            "EACCES",
		"supervisor cmdline relative":   "EACCES",
		"supervisor fd dir":             "EACCES",
	})
	hostFile(t, filepath.Join(f.pub, "a.txt"), "PUBlic")
	f.intact(t)
}

// Many threads opening, creating and removing at once each get their own
// correct answer.
func TestFSDenyThreads(t *testing.T) {
	f := newFSTree(t)
	got := pyProbe(t, f.sandbox(f.secret), `
import threading
N, ITER = 8, 150
results = [dict() for _ in range(N)]
def count(d, k):
    d[k] = d.get(k, 0) + 1
def worker(i):
    d = results[i]
    for n in range(ITER):
        for name, path in (("pub", P("pub/a.txt")), ("secret", P("secret/s.txt")), ("hl", P("hl")), ("sl", P("sl"))):
            try:
                count(d, "%s:%s" % (name, rd(path)))
            except OSError as x:
                count(d, "%s:%s" % (name, en(x)))
        mine = P("pub/t%d-%d" % (i, n))
        try:
            fd = os.open(mine, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, b"%d" % n)
            os.close(fd)
            got = rd(mine)
            count(d, "own:ok" if got == str(n) else "own:wrong " + got)
            os.unlink(mine)
        except OSError as x:
            count(d, "own:" + en(x))
        try:
            op(P("secret/t%d-%d" % (i, n)), os.O_WRONLY | os.O_CREAT)
            count(d, "secret creat:OK")
        except OSError as x:
            count(d, "secret creat:" + en(x))
ths = [threading.Thread(target=worker, args=(i,)) for i in range(N)]
for th in ths: th.start()
for th in ths: th.join()
total = {}
for d in results:
    for k, v in d.items():
        total[k] = total.get(k, 0) + v
R["total"] = json.dumps(total, sort_keys=True, separators=(",", ":"))
R["left"] = ",".join(sorted(x for x in os.listdir(P("pub")) if x.startswith("t")))
`)
	want, _ := json.Marshal(map[string]int{
		"pub:public": 8 * 150, "secret:EACCES": 8 * 150, "hl:EACCES": 8 * 150, "sl:EACCES": 8 * 150,
		"own:ok": 8 * 150, "secret creat:EACCES": 8 * 150,
	})
	expect(t, got, map[string]string{"total": string(want), "left": ""})
	f.intact(t)
}

// swapLinks are the symlinks the swap-race tests flip, in pub: name →
// allowed target, denied target.
var swapLinks = map[string][2]string{
	"flip":  {"a.txt", "../secret/s.txt"},
	"dflip": {"sub", "../secret"},
	"tflip": {"t.txt", "../secret/s.txt"},
	"hflip": {"a.txt", "../hl"},
	"lflip": {"a.txt", "../secret/sub/d.txt"}, // a single link: known by path only
}

// swapRace runs, in a sandbox, loops of operations through symlinks that
// are flipped between an allowed and a denied target while they run, by
// flipper (see the tests); only the allowed outcomes may ever be seen.
func swapRace(t *testing.T, flipInSandbox bool, hostFlipper func(f fsTree) func()) {
	f := newFSTree(t)
	must(t, os.WriteFile(filepath.Join(f.pub, "t.txt"), []byte("t"), 0o644))
	links, _ := json.Marshal(swapLinks)
	for name, targets := range swapLinks {
		must(t, os.Symlink(targets[0], filepath.Join(f.pub, name)))
	}
	if hostFlipper != nil {
		defer hostFlipper(f)()
	}
	inSandbox := "False"
	if flipInSandbox {
		inSandbox = "True"
	}
	got := pyProbe(t, f.sandbox(f.secret), `
import signal
LINKS = json.loads('`+string(links)+`')
FLIP_IN_SANDBOX = `+inSandbox+`

def flipper(link, ready_w):
    # Atomically replace link, alternating its targets, until killed.
    i = 0
    tmp = P("pub", ".tmp-" + link)
    while True:
        try:
            os.unlink(tmp)  # left by a flipper killed mid-flip
        except FileNotFoundError:
            pass
        os.symlink(LINKS[link][i % 2], tmp)
        os.rename(tmp, P("pub", link))
        i += 1
        if i == 2:
            os.write(ready_w, b"x")

def loop(name, link, fn, allowed, n=2000):
    # Only the allowed outcomes may be seen (which of them is up to the
    # scheduler); the counts are logged.
    if FLIP_IN_SANDBOX:
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                flipper(link, ready_w)
            finally:
                os._exit(1)
        os.read(ready_r, 1)  # the flipper is running
    seen = {}
    for _ in range(n):
        try:
            v = fn()
            v = "OK" if v is None else v
        except OSError as x:
            v = en(x)
        seen[v] = seen.get(v, 0) + 1
    if FLIP_IN_SANDBOX:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(ready_r)
        os.close(ready_w)
    bad = sorted(set(seen) - set(allowed))
    R[name] = "ok" if not bad else "unexpected: " + ",".join(bad)
    R[name + " seen"] = json.dumps(seen, sort_keys=True)

pubfd = os.open(P("pub"), os.O_RDONLY | os.O_DIRECTORY)
def rdwr_creat(path):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        return os.read(fd, 100).decode()
    finally:
        os.close(fd)
# linkat(AT_SYMLINK_FOLLOW) links what the symlink points at: a link to the
# denied file, made outside the denied tree, would read it.
def link_follow():
    os.link("lflip", "linked", src_dir_fd=pubfd, dst_dir_fd=pubfd, follow_symlinks=True)
    try:
        return rd("linked", dir_fd=pubfd)
    finally:
        os.unlink("linked", dir_fd=pubfd)
loop("read file", "flip", lambda: rd(P("pub/flip")), ["public", "EACCES"])
loop("read through dir", "dflip", lambda: rd(P("pub/dflip/s.txt")), ["decoy", "EACCES"])
loop("read through dir dirfd", "dflip", lambda: rd("dflip/s.txt", dir_fd=pubfd), ["decoy", "EACCES"])
loop("read hardlink", "hflip", lambda: rd(P("pub/hflip")), ["public", "EACCES"])
loop("read single link", "lflip", lambda: rd(P("pub/lflip")), ["public", "EACCES"])
loop("creat rdwr", "flip", lambda: rdwr_creat(P("pub/flip")), ["public", "EACCES"])
loop("trunc", "tflip", lambda: op(P("pub/tflip"), os.O_WRONLY | os.O_TRUNC), ["OK", "EACCES"])
loop("append", "tflip", lambda: wr(P("pub/tflip"), "t", os.O_WRONLY | os.O_APPEND), ["OK", "EACCES"])
loop("truncate", "tflip", lambda: os.truncate(P("pub/tflip"), 0), ["OK", "EACCES"])
loop("link follow", "lflip", link_follow, ["public", "EACCES"])
# Creating through a flipped directory: the entry must land in pub/sub or
# nowhere.
def create_in(make, remove):
    def fn():
        try:
            make()
        finally:
            try:
                remove()
            except FileNotFoundError:
                pass
    return fn
loop("creat excl through dir", "dflip", create_in(lambda: op(P("pub/dflip/n"), os.O_WRONLY | os.O_CREAT | os.O_EXCL), lambda: os.unlink(P("pub/sub/n"))), ["OK", "EACCES"], 1000)
loop("mkdir through dir", "dflip", create_in(lambda: os.mkdir(P("pub/dflip/nd")), lambda: os.rmdir(P("pub/sub/nd"))), ["OK", "EACCES"], 1000)
loop("symlink through dir", "dflip", create_in(lambda: os.symlink("x", P("pub/dflip/ns")), lambda: os.unlink(P("pub/sub/ns"))), ["OK", "EACCES"], 1000)
`)
	want := map[string]string{}
	for _, name := range []string{"read file", "read through dir", "read through dir dirfd", "read hardlink", "read single link", "creat rdwr", "trunc", "append", "truncate", "link follow", "creat excl through dir", "mkdir through dir", "symlink through dir"} {
		want[name] = "ok"
		t.Logf("%s: %s", name, got[name+" seen"])
		delete(got, name+" seen")
	}
	expect(t, got, want)
	f.intact(t)
	hostFile(t, filepath.Join(f.pub, "a.txt"), "public")
	hostAbsent(t, filepath.Join(f.pub, "linked"))
}

// A process in the sandbox flips symlinks between an allowed target and a
// denied one while the program opens through them: the supervisor must
// judge and open the same file, so the secret is never read, written,
// truncated or linked.
func TestFSDenySymlinkSwapRace(t *testing.T) {
	swapRace(t, true, nil)
}

// The same race, flipped from outside the sandbox: the flips are not
// mediated, so they land at any point of a handler's work.
func TestFSDenySymlinkSwapRaceFromHost(t *testing.T) {
	swapRace(t, false, func(f fsTree) func() {
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ; i++ {
				for name, targets := range swapLinks {
					select {
					case <-stop:
						return
					default:
					}
					tmp := filepath.Join(f.pub, ".host-"+name)
					os.Remove(tmp)
					os.Symlink(targets[i%2], tmp)
					os.Rename(tmp, filepath.Join(f.pub, name))
				}
			}
		}()
		return func() { close(stop); <-done }
	})
}

func TestFSDenyCLI(t *testing.T) {
	f := newFSTree(t)
	cmd := func(extra ...string) []string {
		args := append([]string{"run"}, readArgs()...)
		args = append(args, "-w", f.root, "--fs-deny", f.secret, "--fs-deny", filepath.Join(f.pub, "sub/s.txt"), "--")
		return append(args, extra...)
	}
	code, out, errOut := cli(t, cmd("/bin/cat", filepath.Join(f.secret, "s.txt"))...)
	if code != 1 || out != "" || !strings.Contains(errOut, "Permission denied") {
		t.Errorf("cat of a denied file: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = cli(t, cmd("/bin/cat", filepath.Join(f.root, "hl"))...)
	if code != 1 || out != "" || !strings.Contains(errOut, "Permission denied") {
		t.Errorf("cat of a hard link to a denied file: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = cli(t, cmd("/bin/cat", filepath.Join(f.pub, "sub/s.txt"))...)
	if code != 1 || out != "" || !strings.Contains(errOut, "Permission denied") {
		t.Errorf("cat of the second denied path: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = cli(t, cmd("/bin/cat", filepath.Join(f.pub, "a.txt"))...)
	if code != 0 || out != "public" {
		t.Errorf("cat of an allowed file: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	script := `cd "$1" && echo new > pub/new && cat pub/new && if echo x > secret/new; then echo wrote; fi; if rm secret/s.txt; then echo removed; fi; if mv pub/a.txt secret/; then echo moved; fi; echo done`
	code, out, errOut = cli(t, cmd("/bin/sh", "-c", script, "sh", f.root)...)
	if code != 0 || out != "new\ndone\n" {
		t.Errorf("shell: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	hostFile(t, filepath.Join(f.pub, "new"), "new\n")
	hostFile(t, filepath.Join(f.pub, "a.txt"), "public")
	hostAbsent(t, filepath.Join(f.secret, "new"))
	hostAbsent(t, filepath.Join(f.secret, "a.txt"))
	f.intact(t)
}
