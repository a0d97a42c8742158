//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/sandlock-go/sandlock"
)

// psMain is `sandlock ps`: the user's running sandboxes.
func psMain(args []string, stdout, stderr io.Writer) error {
	fl := pflag.NewFlagSet("sandlock ps", pflag.ContinueOnError)
	if err := parseFlags(fl, args, stderr); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return usageError{errors.New("ps takes no arguments")}
	}
	list, err := sandlock.Instances()
	if err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintln(stdout, "No running sandboxes.")
		return nil
	}
	fmt.Fprintf(stdout, "%-32s %8s  %12s  %-10s  %s\n", "NAME", "PID", "UPTIME", "STATUS", "CMD")
	for _, in := range list {
		fmt.Fprintf(stdout, "%-32s %8d  %12s  %-10s  %s\n", in.Name, in.Pid, uptime(in.Started), in.Status, commandLine(in.Command))
	}
	return nil
}

// uptime formats the time since t as upstream does: 42s, 5m, 3h7m, 2d4h.
func uptime(t time.Time) string {
	if t.IsZero() {
		return "?"
	}
	s := int64(time.Since(t).Seconds())
	switch {
	case s < 0:
		return "0s"
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm", s/60)
	case s < 86400:
		return fmt.Sprintf("%dh%dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd%dh", s/86400, s%86400/3600)
}

// commandLine joins a command for display, cut to about 60 characters.
func commandLine(cmd []string) string {
	if len(cmd) == 0 {
		return "?"
	}
	s := strings.Join(cmd, " ")
	if len(s) <= 60 {
		return s
	}
	end := 57
	for end > 0 && !utf8.RuneStart(s[end]) {
		end--
	}
	return s[:end] + "…"
}

// inspectMain is `sandlock inspect NAME [--toml]`: a running sandbox's
// effective policy, as JSON or as a profile --profile-file takes back.
func inspectMain(args []string, stdout, stderr io.Writer) error {
	fl := pflag.NewFlagSet("sandlock inspect", pflag.ContinueOnError)
	asTOML := fl.Bool("toml", false, "print the policy as a TOML profile")
	if err := parseFlags(fl, args, stderr); err != nil {
		return err
	}
	if fl.NArg() != 1 {
		return usageError{errors.New("inspect takes one sandbox name (see sandlock ps)")}
	}
	prof, err := sandlock.Inspect(fl.Arg(0))
	if err != nil {
		return fmt.Errorf("inspect failed: %w", unprefixed(err))
	}
	if *asTOML {
		b, err := prof.MarshalTOML()
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	}
	b, err := json.MarshalIndent(prof, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", b)
	return nil
}

// killMain is `sandlock kill NAME`.
func killMain(args []string, stdout, stderr io.Writer) error {
	fl := pflag.NewFlagSet("sandlock kill", pflag.ContinueOnError)
	if err := parseFlags(fl, args, stderr); err != nil {
		return err
	}
	if fl.NArg() != 1 {
		return usageError{errors.New("kill takes one sandbox name (see sandlock ps)")}
	}
	in, err := sandlock.Kill(fl.Arg(0))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Killed sandbox '%s' (child PID %d, supervisor PID %d)\n", in.Name, in.Pid, in.Supervisor)
	return nil
}

// profileMain is `sandlock profile list|show NAME|delete NAME`.
func profileMain(args []string, stdout, stderr io.Writer) error {
	fl := pflag.NewFlagSet("sandlock profile", pflag.ContinueOnError)
	fl.Usage = func() {
		fmt.Fprintln(fl.Output(), "Usage: sandlock profile list | show NAME | delete NAME")
	}
	if err := parseFlags(fl, args, stderr); err != nil {
		return err
	}
	verb := fl.Arg(0)
	want := map[string]int{"list": 1, "show": 2, "delete": 2}
	if n, ok := want[verb]; !ok || fl.NArg() != n {
		return usageError{errors.New("usage: sandlock profile list | show NAME | delete NAME")}
	}
	if verb == "list" {
		dir, err := sandlock.ProfileDir()
		if err != nil {
			return err
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.toml"))
		var names []string
		for _, f := range files {
			names = append(names, strings.TrimSuffix(filepath.Base(f), ".toml"))
		}
		sort.Strings(names)
		if len(names) == 0 {
			fmt.Fprintf(stdout, "No profiles found in %s\n", dir)
		}
		for _, n := range names {
			fmt.Fprintf(stdout, "  %s\n", n)
		}
		return nil
	}
	path, err := sandlock.ProfilePath(fl.Arg(1))
	if err != nil {
		return err
	}
	if verb == "show" {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("profile %q: %w", fl.Arg(1), err)
		}
		_, err = stdout.Write(b)
		return err
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("profile %q: %w", fl.Arg(1), err)
	}
	fmt.Fprintf(stdout, "Deleted profile '%s'\n", fl.Arg(1))
	return nil
}

// unprefixed drops the "sandlock: " an error of the library starts with,
// to put it after a prefix of the CLI's own.
func unprefixed(err error) error {
	if msg, ok := strings.CutPrefix(err.Error(), "sandlock: "); ok {
		return errors.New(msg)
	}
	return err
}
