//go:build linux

package procview

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The synthetic files. Each is built from what the host's own file says
// where the format has more than the view changes, so that parsers find
// every field they expect.

// readFile reads a file of /proc or /sys (whose size stat does not tell).
func readFile(p string) ([]byte, error) { return os.ReadFile(p) }

// cpuList is a sysfs CPU list naming CPUs 0 to n-1.
func cpuList(n int) []byte {
	if n <= 1 {
		return []byte("0\n")
	}
	return []byte("0-" + strconv.Itoa(n-1) + "\n")
}

// cpuinfo keeps n processor blocks of the host's /proc/cpuinfo, numbered
// 0 to n-1 (the host's blocks repeated when it has fewer), with the
// package's sibling and core counts set to n. Other blocks follow as they
// are.
func cpuinfo(host []byte, n int) []byte {
	var cpus, rest [][]byte
	for _, b := range bytes.Split(bytes.TrimRight(host, "\n"), []byte("\n\n")) {
		if bytes.HasPrefix(b, []byte("processor")) {
			cpus = append(cpus, b)
		} else if len(b) > 0 {
			rest = append(rest, b)
		}
	}
	if len(cpus) == 0 {
		cpus = [][]byte{[]byte("processor\t: 0")}
	}
	var out bytes.Buffer
	for i := 0; i < n; i++ {
		for _, line := range strings.Split(string(cpus[i%len(cpus)]), "\n") {
			key, _, _ := strings.Cut(line, ":")
			switch strings.TrimSpace(key) {
			case "processor":
				line = key + ": " + strconv.Itoa(i)
			case "siblings", "cpu cores":
				line = key + ": " + strconv.Itoa(n)
			case "core id", "apicid", "initial apicid":
				line = key + ": " + strconv.Itoa(i)
			}
			out.WriteString(line + "\n")
		}
		out.WriteString("\n")
	}
	for _, b := range rest {
		out.Write(b)
		out.WriteString("\n\n")
	}
	return out.Bytes()
}

// procStat rewrites the host's /proc/stat: with n > 0, n CPU lines (cpu0
// to cpu<n-1>, the host's repeated when it has fewer) and the total line
// their sum; with btime > 0, that boot time.
func procStat(host []byte, n int, btime int64) []byte {
	lines := strings.Split(strings.TrimRight(string(host), "\n"), "\n")
	var total string
	var cpus, other []string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "cpu "):
			total = l
		case strings.HasPrefix(l, "cpu") && len(l) > 3 && l[3] >= '0' && l[3] <= '9':
			cpus = append(cpus, l)
		case btime > 0 && strings.HasPrefix(l, "btime "):
			other = append(other, "btime "+strconv.FormatInt(btime, 10))
		default:
			other = append(other, l)
		}
	}
	var out strings.Builder
	if n > 0 && len(cpus) > 0 {
		var sum []uint64
		var kept []string
		for i := 0; i < n; i++ {
			f := strings.Fields(cpus[i%len(cpus)])
			for j, v := range f[1:] {
				x, _ := strconv.ParseUint(v, 10, 64)
				if j >= len(sum) {
					sum = append(sum, 0)
				}
				sum[j] += x
			}
			kept = append(kept, "cpu"+strconv.Itoa(i)+" "+strings.Join(f[1:], " "))
		}
		out.WriteString("cpu ")
		for _, x := range sum {
			out.WriteString(" " + strconv.FormatUint(x, 10))
		}
		out.WriteString("\n")
		for _, l := range kept {
			out.WriteString(l + "\n")
		}
	} else {
		if total != "" {
			out.WriteString(total + "\n")
		}
		for _, l := range cpus {
			out.WriteString(l + "\n")
		}
	}
	for _, l := range other {
		out.WriteString(l + "\n")
	}
	return []byte(out.String())
}

// meminfo rewrites the host's /proc/meminfo for a machine whose memory is
// the budget: MemTotal is limit, MemFree and MemAvailable what the sandbox
// does not use, the anonymous memory in use is what it uses; swap, caches
// and buffers are none. Other fields stay the host's.
func meminfo(host []byte, limit, used uint64) []byte {
	free := limit - min(used, limit)
	kb := func(b uint64) uint64 { return b / 1024 }
	set := map[string]uint64{
		"MemTotal": kb(limit), "MemFree": kb(free), "MemAvailable": kb(free),
		"Buffers": 0, "Cached": 0, "SwapCached": 0, "SwapTotal": 0, "SwapFree": 0,
		"Active": kb(used), "Inactive": 0, "Active(anon)": kb(used), "Inactive(anon)": 0,
		"Active(file)": 0, "Inactive(file)": 0, "AnonPages": kb(used), "Shmem": 0,
		"SReclaimable": 0, "Zswap": 0, "Zswapped": 0,
	}
	var out strings.Builder
	seen := map[string]bool{}
	for _, l := range strings.Split(strings.TrimRight(string(host), "\n"), "\n") {
		key, _, ok := strings.Cut(l, ":")
		if v, over := set[key]; ok && over {
			fmt.Fprintf(&out, "%-16s%8d kB\n", key+":", v)
			seen[key] = true
			continue
		}
		if l != "" {
			out.WriteString(l + "\n")
		}
	}
	// A host file that could not be read still gives the three a budget
	// needs.
	for _, key := range []string{"MemTotal", "MemFree", "MemAvailable"} {
		if !seen[key] {
			fmt.Fprintf(&out, "%-16s%8d kB\n", key+":", set[key])
		}
	}
	return []byte(out.String())
}

// loadavgLine formats /proc/loadavg.
func loadavgLine(l [3]float64, running, total, last int) []byte {
	return fmt.Appendf(nil, "%.2f %.2f %.2f %d/%d %d\n", l[0], l[1], l[2], running, total, last)
}

// loadPeriods are the kernel's averaging periods: 1, 5 and 15 minutes.
var loadPeriods = [3]float64{60, 300, 900}

// update folds n running processes into the averages, as if n had been
// running since the last update, and returns them.
func (a *loadAvg) update(n int) [3]float64 {
	now := time.Now().UnixNano()
	a.mu.Lock()
	defer a.mu.Unlock()
	dt := 5.0 // the first reading counts like one kernel tick
	if a.at != 0 {
		dt = float64(now-a.at) / 1e9
	}
	a.at = now
	for i, p := range loadPeriods {
		f := math.Exp(-dt / p)
		a.value[i] = a.value[i]*f + float64(n)*(1-f)
	}
	return a.value
}

// netDev is /proc/net/dev with the loopback interface only, and no
// traffic: the host's counters would tell what other processes send.
func netDev() []byte {
	return []byte("Inter-|   Receive                                                |  Transmit\n" +
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n" +
		"    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0\n")
}

// ifInet6 is /proc/net/if_inet6 with loopback's ::1 only.
func ifInet6() []byte {
	return []byte("00000000000000000000000000000001 01 80 10 80       lo\n")
}

// filterMounts keeps the mounts of mountinfo whose mount point keep
// accepts, and adds a read-only mount for each of extra (files the view
// stands in for), replacing a mount of the host on the same point. It
// returns the result as /proc/<pid>/mounts and as mountinfo.
func filterMounts(mountinfo []byte, keep func(mountPoint string) bool, extra []string) (mounts, info []byte) {
	var m, mi bytes.Buffer
	ids := map[string]string{} // kept mount point → mount id
	for _, line := range strings.Split(string(mountinfo), "\n") {
		f := strings.Fields(line)
		sep := -1
		for i, x := range f {
			if x == "-" {
				sep = i
				break
			}
		}
		if sep < 6 || len(f) < sep+4 {
			continue
		}
		mp := unescapeMount(f[4])
		if !keep(mp) || slices.Contains(extra, mp) {
			continue
		}
		ids[mp] = f[0]
		mi.WriteString(line + "\n")
		// mounts shows the mount's options, then the superblock's.
		opts := f[5]
		if super := strings.Split(f[sep+3], ","); len(super) > 0 {
			if super[0] == "rw" || super[0] == "ro" {
				super = super[1:]
			}
			if len(super) > 0 {
				opts += "," + strings.Join(super, ",")
			}
		}
		fmt.Fprintf(&m, "%s %s %s %s 0 0\n", f[sep+2], f[4], f[sep+1], opts)
	}
	for i, p := range extra {
		parent := "1"
		best := ""
		for mp, id := range ids {
			if under(p, mp) && len(mp) >= len(best) {
				best, parent = mp, id
			}
		}
		fmt.Fprintf(&mi, "%d %s 0:%d / %s ro,nosuid,nodev,noexec,relatime - tmpfs sandlock ro\n", 1<<30+i, parent, 1<<10+i, p)
		fmt.Fprintf(&m, "sandlock %s tmpfs ro,nosuid,nodev,noexec,relatime 0 0\n", p)
	}
	return m.Bytes(), mi.Bytes()
}

// unescapeMount undoes the octal escapes of a mount point in mountinfo
// (space, tab, newline, backslash).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
