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

// ChooseBase returns the first base of Bases where a branch can be made:
// fsStorage if set (an error there is the caller's to see), else beside
// the workdir when its parent takes it and is on the workdir's
// filesystem, else the runtime directory.
func ChooseBase(workdir, fsStorage string) (string, error) {
	if fsStorage != "" {
		abs, err := filepath.Abs(fsStorage)
		if err != nil {
			return "", err
		}
		if err := PrepareBase(abs); err != nil {
			return "", fmt.Errorf("storage %s: %w", fsStorage, err)
		}
		return canonicalDir(abs)
	}
	var errs []error
	for i, base := range Bases(workdir, "") {
		if i == 0 {
			var wst, pst unix.Stat_t
			if unix.Stat(workdir, &wst) != nil || unix.Stat(filepath.Dir(workdir), &pst) != nil || wst.Dev != pst.Dev {
				continue // the workdir is a mount point: its parent is elsewhere
			}
		}
		if near(base, []Exclusion{{Path: workdir}}) && base != "/" {
			continue // in the workdir, or holding it
		}
		if err := PrepareBase(base); err != nil {
			errs = append(errs, err)
			continue
		}
		c, err := canonicalDir(base)
		if err != nil || near(c, []Exclusion{{Path: workdir}}) {
			continue
		}
		return c, nil
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
