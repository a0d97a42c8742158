//go:build linux

package sandlock

import (
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/sandlock-go/sandlock/internal/limits"
	"github.com/sandlock-go/sandlock/internal/netgate"
	"github.com/sandlock-go/sandlock/internal/procview"
)

// What the program sees of the host (issue 16): /proc, its hostname, the
// synthetic /etc/hosts and /etc/hostname, and the network interfaces
// (internal/procview, internal/netview). The views are the virtualize
// phase: after the denials, so that a synthetic file never overrides a
// deny, and before user handlers.

// hostView builds the host view's feature from the Sandbox's fields and
// the features it shows: the limits (meminfo), the network policy (the
// hosts file of hostname rules), the registration (the name) and the
// deterministic run (the seeded uuid file, the shifted boot time).
func (s *Sandbox) hostView(lim *limits.Feature, network *netgate.Feature, named *registration, det *determinism) *procview.Feature {
	name := &nodename{s: s, named: named}
	f := &procview.Feature{
		Tier:     string(s.ProcView),
		Named:    s.Name != "",
		Nodename: name.get,
		NumCPUs:  int(s.NumCPUs),
	}
	if lim.MaxMemory() > 0 {
		f.Memory = func() (uint64, uint64) { return lim.MaxMemory(), lim.MemoryUsed() }
	}
	if network.Hosts {
		f.Hosts = netgate.HostsFile(network.Rules)
	}
	if det.random != nil {
		f.Files = map[string]func(int) []byte{"sys/kernel/random/uuid": det.random.UUID}
	}
	if det.clock != nil {
		// The boot happened as long before the shifted clock's now as it
		// did before the real one's.
		shift := det.clock.Shift().Sec
		f.BootTime = func() int64 {
			if host := hostBootTime(); host > 0 {
				return host + shift
			}
			return 0
		}
	}
	return f
}

// hostBootTime is the host's /proc/stat btime, in seconds since the epoch
// (0 if it cannot be read: stat is then shown unchanged).
func hostBootTime() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// nodename is the hostname the program sees: the sandbox's name, the one
// the registry generated for it, or one generated for an unregistered run.
type nodename struct {
	s     *Sandbox
	named *registration // nil with NoRegistry
	once  sync.Once
	name  string
}

// get returns the name; it is called once the run has started, when the
// registration has claimed its name.
func (n *nodename) get() string {
	n.once.Do(func() {
		switch {
		case n.s.Name != "":
			n.name = n.s.Name
		case n.named != nil && n.named.entry != nil:
			n.name = n.named.entry.Name()
		default:
			n.name = "sandbox-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(nameSeq.Add(1), 10)
		}
	})
	return n.name
}
