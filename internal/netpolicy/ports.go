package netpolicy

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// ParseBind parses a bind spec: "8080", "8080,9000-9005", "3000-3010", "*".
// all is true for "*" ("*" cannot be mixed with ports). Otherwise ranges is
// sorted by Lo, with overlapping and adjacent ranges merged.
func ParseBind(s string) (all bool, ranges []PortRange, err error) {
	if s == "" {
		return false, nil, ruleError(s, "empty bind spec (use * for all ports)")
	}
	all, ranges, err = parsePorts(s)
	if err != nil {
		return false, nil, ruleError(s, "%v", err)
	}
	return all, ranges, nil
}

// parsePorts parses a port list: "*" (all is true and ranges nil), or a
// comma list of ports and lo-hi ranges, returned sorted and merged.
func parsePorts(s string) (all bool, ranges []PortRange, err error) {
	if s == "" {
		return false, nil, errors.New("at least one port required")
	}
	if s == "*" {
		return true, nil, nil
	}
	for _, part := range strings.Split(s, ",") {
		if part == "*" {
			return false, nil, errors.New("cannot mix * with port numbers")
		}
		r, err := parsePortRange(part)
		if err != nil {
			return false, nil, err
		}
		ranges = append(ranges, r)
	}
	return false, mergeRanges(ranges), nil
}

// parsePortRange parses "p" or "lo-hi".
func parsePortRange(s string) (PortRange, error) {
	if s == "" {
		return PortRange{}, errors.New("empty port in list")
	}
	loText, hiText, isRange := strings.Cut(s, "-")
	if !isRange {
		p, err := parsePort(s)
		return PortRange{p, p}, err
	}
	if loText == "" || hiText == "" || strings.Contains(hiText, "-") {
		return PortRange{}, fmt.Errorf("invalid port range %q (want lo-hi)", s)
	}
	lo, err := parsePort(loText)
	if err != nil {
		return PortRange{}, err
	}
	hi, err := parsePort(hiText)
	if err != nil {
		return PortRange{}, err
	}
	if lo > hi {
		return PortRange{}, fmt.Errorf("port range %d-%d is reversed", lo, hi)
	}
	return PortRange{lo, hi}, nil
}

// parsePort parses one port number, 1..65535, in decimal digits.
func parsePort(s string) (uint16, error) {
	if !allDigits(s) {
		return 0, fmt.Errorf("invalid port %q", s)
	}
	n, err := strconv.ParseUint(s, 10, 16)
	switch {
	case err != nil: // all digits, so the only failure is a value too large
		return 0, fmt.Errorf("port %s out of range (1-65535)", s)
	case n == 0:
		return 0, errors.New("port 0 is not valid")
	}
	return uint16(n), nil
}

// mergeRanges sorts rs by Lo and merges ranges that overlap or touch. It
// reuses rs's storage.
func mergeRanges(rs []PortRange) []PortRange {
	sort.Slice(rs, func(i, j int) bool { return rs[i].Lo < rs[j].Lo })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && uint32(r.Lo) <= uint32(out[n-1].Hi)+1 {
			if r.Hi > out[n-1].Hi {
				out[n-1].Hi = r.Hi
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// portsContain reports whether port lies in one of the ranges rs. The scan
// is linear so that hand-built, unsorted lists match too.
func portsContain(rs []PortRange, port uint16) bool {
	for _, r := range rs {
		if r.contains(port) {
			return true
		}
	}
	return false
}
