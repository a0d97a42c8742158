package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/spf13/pflag"

	"github.com/sandlock-go/sandlock"
	"github.com/sandlock-go/sandlock/internal/landlock"
	"github.com/sandlock-go/sandlock/internal/seccomp"
)

// checkMain is `sandlock check`.
func checkMain(args []string, stdout, stderr io.Writer) error {
	fl := pflag.NewFlagSet("sandlock check", pflag.ContinueOnError)
	if err := parseFlags(fl, args, stderr); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return usageError{fmt.Errorf("check takes no arguments")}
	}
	check(stdout)
	return nil
}

func check(w io.Writer) {
	abi := sandlock.LandlockABIVersion()
	if abi < 0 {
		_, err := landlock.ABI()
		fmt.Fprintf(w, "Landlock: unavailable (%v)\n", err)
	} else {
		fmt.Fprintf(w, "Landlock ABI: v%d\n", abi)
	}
	fmt.Fprintf(w, "Minimum required: ABI v%d\n", sandlock.MinLandlockABI())
	status := "OK"
	if abi < sandlock.MinLandlockABI() {
		status = "UNSUPPORTED (use --allow-degraded or --disable for the missing protections)"
	}
	fmt.Fprintf(w, "Status: %s\n", status)
	sup, detail := seccomp.Probe()
	fmt.Fprintf(w, "Seccomp user notification: %s\n", map[bool]string{true: "available", false: "unavailable"}[sup])
	if detail != "" {
		fmt.Fprintf(w, "  %s\n", detail)
	}
	fmt.Fprintln(w, "Per-protection availability:")
	for _, p := range landlock.Protections {
		avail := "available"
		if abi < p.MinABI() {
			avail = "unavailable"
		}
		fmt.Fprintf(w, "  %-28s requires v%d — %s\n", p.String(), p.MinABI(), avail)
	}
	fmt.Fprintf(w, "Platform: %s\n", runtime.GOARCH)
}
