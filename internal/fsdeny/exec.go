//go:build linux

package fsdeny

import (
	"errors"
	"fmt"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/sandlock-go/sandlock/internal/procfs"
	"github.com/sandlock-go/sandlock/internal/taskpath"
	"github.com/sandlock-go/sandlock/internal/tracer"
)

// CheckExec is the second half of the exec check, for the session's exec
// stop: the new image is loaded and has not run. The first half (the
// execve handler) judged the path the program named, but the kernel
// resolved that path again after the check, so a program swapping a
// symlink against its own execve could have the kernel load a denied file.
// Here the files the kernel actually loaded are judged by identity:
//
//   - the file the image was loaded from (/proc/PID/exe): for an ELF
//     binary the binary, for a #! script the interpreter the kernel finally
//     ran, by path and inode like every other check (checkFD);
//   - every other file the kernel mapped before the first instruction: the
//     ELF interpreter (PT_INTERP, ld.so), which the kernel opened by a path
//     from the binary that nobody else checked. Its identity is taken from
//     /proc/PID/maps (the kernel's path and inode of the mapping), then
//     opened by that path and required to be the same inode before it is
//     checked.
//
// A denied file, or one that cannot be checked (an undumpable image whose
// exe link the supervisor may not read, an interpreter that was replaced or
// deleted since it was mapped), kills the process before its first
// instruction: the check fails closed.
//
// Not checked here: the #! script itself. The kernel reads only its first
// line (to find the interpreter, which is checked); the interpreter reads
// the script through an open of its path, which the open handlers judge.
// A program racing the script's path can thus learn the #! line of a
// denied script (the interpreter and its one argument, as the interpreter's
// argv), nothing more.
func (d *Denier) CheckExec(st *tracer.ExecStop) {
	if err := d.checkImage(st); err != nil {
		st.Kill("fs deny: " + err.Error())
	}
}

// checkImage checks the files a new image was loaded from.
func (d *Denier) checkImage(st *tracer.ExecStop) error {
	exe, err := st.Exe()
	if err != nil {
		return fmt.Errorf("cannot check the file it executes (an image the kernel made undumpable, such as an execute-only binary, cannot be inspected without CAP_SYS_PTRACE): %w", err)
	}
	defer unix.Close(exe)
	exePath, err := taskpath.FDPath(exe)
	if err != nil {
		return fmt.Errorf("cannot check the file it executes: %w", err)
	}
	if err := d.checkLoaded(exe, exePath, "the image was loaded from"); err != nil {
		return err
	}
	var exeStat unix.Stat_t
	if err := unix.Fstat(exe, &exeStat); err != nil {
		return fmt.Errorf("cannot check the file it executes: %w", err)
	}
	files, err := mappedFiles(st.PID())
	if err != nil {
		return fmt.Errorf("cannot list the files its image maps: %w", err)
	}
	for _, f := range files {
		if f.ino == exeStat.Ino && f.path == exePath {
			continue
		}
		if err := d.checkMapped(f); err != nil {
			return err
		}
	}
	return nil
}

// checkLoaded checks a descriptor of a file the kernel loaded; how says
// how the image holds it, for the message.
func (d *Denier) checkLoaded(fd int, path, how string) error {
	err := d.checkFD(fd)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EACCES):
		return fmt.Errorf("%s %s, which is denied", how, path)
	default:
		return fmt.Errorf("cannot check %s: %w", path, err)
	}
}

// checkMapped checks a file the kernel mapped into the new image besides
// the one it was loaded from.
func (d *Denier) checkMapped(f mappedFile) error {
	fd, err := unix.Open(f.path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cannot check %s, which the image maps (its interpreter?): %w", f.path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("cannot check %s, which the image maps: %w", f.path, err)
	}
	if st.Ino != f.ino {
		return fmt.Errorf("cannot check %s, which the image maps: the file at that path is no longer the one mapped", f.path)
	}
	return d.checkLoaded(fd, f.path, "the image maps (as its program interpreter)")
}

// mappedFile is a file mapped into a process: the kernel's path of it (as
// /proc/PID/maps shows it) and its inode.
type mappedFile struct {
	path string
	ino  uint64
}

// mappedFiles lists the distinct files mapped into process pid.
func mappedFiles(pid int) ([]mappedFile, error) {
	var out []mappedFile
	err := procfs.Maps(pid, func(m procfs.Mapping) bool {
		if m.Inode == 0 || len(m.Path) == 0 || m.Path[0] != '/' {
			return true // anonymous, [stack], [vdso], …
		}
		mf := mappedFile{path: m.Path, ino: m.Inode}
		if !slices.Contains(out, mf) {
			out = append(out, mf)
		}
		return true
	})
	return out, err
}
