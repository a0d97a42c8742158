//go:build linux

package netgate

import (
	"context"
	"sort"
	"strings"

	"github.com/sandlock-go/sandlock/internal/netpolicy"
	"github.com/sandlock-go/sandlock/internal/notify"
	"github.com/sandlock-go/sandlock/internal/plan"
)

// HostsFile is the synthetic /etc/hosts of a sandbox whose rules name
// hosts: loopback, and each host with the addresses it was allowed under.
func HostsFile(rules []netpolicy.Resolved) []byte {
	var b strings.Builder
	const loopback = "127.0.0.1 localhost\n::1 localhost\n"
	b.WriteString(loopback)
	seen := map[string]bool{"127.0.0.1 localhost": true, "::1 localhost": true}
	var lines []string
	for _, r := range rules {
		for _, a := range r.Addrs {
			line := a.String() + " " + r.Host
			if r.Host != "" && !seen[line] {
				seen[line] = true
				lines = append(lines, line)
			}
		}
	}
	sort.Strings(lines)
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	return []byte(b.String())
}

// registerHosts serves content for every open of /etc/hosts (by that
// absolute path), so that the program resolves the allowed names to the
// addresses they were allowed under.
func registerHosts(b *plan.Builder, content []byte) {
	serve := func(pathArg int) notify.HandlerFunc {
		return func(ctx context.Context, hc *notify.HandlerCtx) notify.Action {
			path, err := notify.ReadPath(hc, hc.Notif.Data.Args[pathArg])
			if err != nil || path != "/etc/hosts" {
				return notify.Continue()
			}
			return notify.InjectBytes(content)
		}
	}
	b.HandleNamed("open", plan.Virtualize, "hosts file", true, serve(0))
	b.HandleNamed("openat", plan.Virtualize, "hosts file", true, serve(1))
	b.HandleNamed("openat2", plan.Virtualize, "hosts file", true, serve(1))
}
