//go:build linux

package netgate

import (
	"sort"
	"strings"

	"github.com/sandlock-go/sandlock/internal/netpolicy"
)

// HostsFile is the synthetic /etc/hosts of a sandbox whose rules name
// hosts: loopback, and each host with the addresses it was allowed under.
// The host view (internal/procview) serves it for every open that reaches
// the host's /etc/hosts.
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
