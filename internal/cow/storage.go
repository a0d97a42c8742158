//go:build linux

package cow

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// nextToName is the storage base made beside a workdir, in its parent
// directory: on the workdir's filesystem, so that a commit moves files with
// rename(2).
const nextToName = ".sandlock-cow"

// Bases returns the storage bases for branches of workdir, in the order a
// new branch tries them: the one the caller chose (fsStorage, when set);
// beside the workdir; the user's runtime directory ($XDG_RUNTIME_DIR/
// sandlock-cow, or $TMPDIR/sandlock-cow-<uid>). Recovery looks in all of
// them.
func Bases(workdir, fsStorage string) []string {
	var out []string
	if fsStorage != "" {
		out = append(out, fsStorage)
	}
	out = append(out, filepath.Join(filepath.Dir(workdir), nextToName))
	if rt := os.Getenv("XDG_RUNTIME_DIR"); rt != "" && filepath.IsAbs(rt) {
		out = append(out, filepath.Join(rt, "sandlock-cow"))
	}
	out = append(out, filepath.Join(os.TempDir(), "sandlock-cow-"+strconv.Itoa(os.Geteuid())))
	return out
}

// PrepareBase makes the storage base dir if it does not exist (mode 0700)
// and checks that it is what a branch may live in: a directory (not a
// symlink) of the calling user that nobody else may enter.
func PrepareBase(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return checkBase(dir)
}

// checkBase checks an existing base (see PrepareBase).
func checkBase(dir string) error {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return err
	}
	switch {
	case !isDir(&st):
		return fmt.Errorf("%s is not a directory", dir)
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("%s belongs to uid %d, not to this user", dir, st.Uid)
	case st.Mode&0o077 != 0:
		return fmt.Errorf("%s is open to other users (mode %#o); it must be 0700", dir, st.Mode&0o7777)
	}
	return nil
}

// usableBase reports whether a branch can be made in dir: it is a base
// already, or the calling user may make it (the branch makes it with its
// first change: a run that only reads leaves nothing behind).
func usableBase(dir string) error {
	err := checkBase(dir)
	if !errors.Is(err, unix.ENOENT) {
		return err
	}
	parent := filepath.Dir(dir)
	if err := unix.Faccessat(unix.AT_FDCWD, parent, unix.W_OK|unix.X_OK, unix.AT_EACCESS); err != nil {
		return fmt.Errorf("%s: %w", parent, err)
	}
	return nil
}

// ChooseBase returns the first base of Bases where a branch can be made:
// fsStorage if set (an error there is the caller's to see), else beside
// the workdir when its parent takes it and is on the workdir's
// filesystem, else the runtime directory. The base itself is made with
// the branch's first change.
func ChooseBase(workdir, fsStorage string) (string, error) {
	if fsStorage != "" {
		abs, err := filepath.Abs(fsStorage)
		if err != nil {
			return "", err
		}
		if c, err := canonicalDir(filepath.Dir(abs)); err == nil {
			abs = filepath.Join(c, filepath.Base(abs))
		}
		if err := usableBase(abs); err != nil {
			return "", fmt.Errorf("storage %s: %w", fsStorage, err)
		}
		return abs, nil
	}
	var errs []error
	for i, base := range Bases(workdir, "") {
		if i == 0 {
			var wst, pst unix.Stat_t
			if unix.Stat(workdir, &wst) != nil || unix.Stat(filepath.Dir(workdir), &pst) != nil || wst.Dev != pst.Dev {
				continue // the workdir is a mount point: its parent is elsewhere
			}
		} else if c, err := canonicalDir(filepath.Dir(base)); err == nil {
			base = filepath.Join(c, filepath.Base(base))
		}
		if near(base, []Exclusion{{Path: workdir}}) {
			continue // in the workdir, or holding it
		}
		if err := usableBase(base); err != nil {
			errs = append(errs, err)
			continue
		}
		return base, nil
	}
	return "", fmt.Errorf("no storage for the branch: %w", errors.Join(errs...))
}

func canonicalDir(dir string) (string, error) {
	c, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", err
	}
	return c, nil
}
