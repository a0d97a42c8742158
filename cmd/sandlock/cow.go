//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/sandlock-go/sandlock"
)

// cowMain is `sandlock cow recover [--abort] [--fs-storage DIR] PATH`:
// completes the interrupted commits of the copy-on-write workdir PATH and
// lists its other branches (kept, or left by runs that did not end);
// --abort removes those.
func cowMain(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "recover" {
		return usageError{errors.New("cow: expected `sandlock cow recover [--abort] [--fs-storage DIR] PATH`")}
	}
	fl := pflag.NewFlagSet("sandlock cow recover", pflag.ContinueOnError)
	fl.Usage = func() {
		fmt.Fprintln(fl.Output(), "Usage: sandlock cow recover [--abort] [--fs-storage DIR] PATH\n\nCompletes the interrupted commits of the copy-on-write workdir PATH and lists\nits other branches.\n\nFlags:")
		fl.PrintDefaults()
	}
	abort := fl.Bool("abort", false, "also remove the branches kept or left by runs that did not end")
	storage := fl.String("fs-storage", "", "the storage the runs used (--fs-storage), besides the default places")
	if err := parseFlags(fl, args[1:], stderr); err != nil {
		return err
	}
	if fl.NArg() != 1 {
		return usageError{errors.New("cow recover: expected one PATH")}
	}
	reports, err := sandlock.RecoverWorkdir(fl.Arg(0), *storage, *abort)
	if err != nil {
		return err
	}
	if len(reports) == 0 {
		fmt.Fprintf(stdout, "no branch of %s\n", fl.Arg(0))
		return nil
	}
	var failed error
	for _, r := range reports {
		what := map[string]string{
			"committed": "an interrupted commit, completed",
			"kept":      "kept",
			"left":      "left by a run that did not end",
			"running":   "in use by a running sandbox",
			"removed":   "removed",
		}[r.State]
		if r.Err != nil {
			fmt.Fprintf(stderr, "sandlock: branch %s: %v\n", r.Dir, r.Err)
			failed = exitError{exitPolicy}
			continue
		}
		fmt.Fprintf(stdout, "%-9s %s (%s)\n", r.State, r.Dir, what)
	}
	return failed
}
