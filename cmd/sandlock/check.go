//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/sandlock-go/sandlock"
)

// checkMain is `sandlock check [--json]`.
func checkMain(args []string, stdout, stderr io.Writer) error {
	fl := pflag.NewFlagSet("sandlock check", pflag.ContinueOnError)
	asJSON := fl.Bool("json", false, "print the kernel's features as JSON")
	if err := parseFlags(fl, args, stderr); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return usageError{fmt.Errorf("check takes no arguments")}
	}
	f := sandlock.Features()
	if *asJSON {
		b, err := json.MarshalIndent(f, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", b)
		return nil
	}
	check(stdout, f)
	return nil
}

func check(w io.Writer, f sandlock.KernelFeatures) {
	if f.LandlockABI < 0 {
		fmt.Fprintf(w, "Landlock: unavailable (%s)\n", f.LandlockError)
	} else {
		fmt.Fprintf(w, "Landlock ABI: v%d\n", f.LandlockABI)
	}
	fmt.Fprintf(w, "Minimum required: ABI v%d\n", f.MinLandlockABI)
	status := "OK"
	if f.LandlockABI < f.MinLandlockABI {
		status = "UNSUPPORTED (use --allow-degraded or --disable for the missing protections)"
	}
	fmt.Fprintf(w, "Status: %s\n", status)
	fmt.Fprintf(w, "Seccomp user notification: %s\n", map[bool]string{true: "available", false: "unavailable"}[f.SeccompUserNotif])
	switch {
	case !f.SeccompUserNotif:
		fmt.Fprintf(w, "  %s\n", f.SeccompError)
	case f.SyncWakeUp:
		fmt.Fprintln(w, "  sync wake-up (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP): supported")
	default:
		fmt.Fprintln(w, "  sync wake-up (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP): not supported (each notification costs more)")
	}
	fmt.Fprintln(w, "Per-protection availability:")
	for _, p := range f.Protections {
		avail := "available"
		switch {
		case p.Available:
		case p.Erratum != 0 && f.LandlockABI >= p.MinABI:
			avail = fmt.Sprintf("unavailable (the kernel has not fixed Landlock erratum %d)", p.Erratum)
		default:
			avail = "unavailable"
		}
		fmt.Fprintf(w, "  %-28s requires v%d — %s\n", p.Name, p.MinABI, avail)
	}
	fmt.Fprintf(w, "Platform: %s\n", f.Arch)
}
