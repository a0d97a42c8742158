//go:build linux

// Package limits holds the builtin handlers and helpers behind a sandbox's
// resource limits: process count, memory budget, CPU share and placement,
// and GPU device grants.
package limits

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseSize parses a byte size: a decimal integer with an optional K, M or
// G suffix (either case, powers of 1024), as "512M". It rejects empty
// strings, signs, fractions, other suffixes ("MiB", "MB") and values that
// overflow 64 bits.
func ParseSize(s string) (uint64, error) {
	if s == "" {
		return 0, errors.New("empty size")
	}
	mult := uint64(1)
	digits := s
	switch strings.ToUpper(s[len(s)-1:]) {
	case "K":
		mult, digits = 1<<10, s[:len(s)-1]
	case "M":
		mult, digits = 1<<20, s[:len(s)-1]
	case "G":
		mult, digits = 1<<30, s[:len(s)-1]
	}
	if digits == "" {
		return 0, fmt.Errorf("size %q has no number", s)
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("size %q: want a whole number with an optional K, M or G suffix", s)
		}
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || n > math.MaxUint64/mult {
		return 0, fmt.Errorf("size %q is out of range", s)
	}
	return n * mult, nil
}

// FormatSize renders a byte count the way ParseSize reads it, exactly.
func FormatSize(n uint64) string {
	for _, u := range []struct {
		suffix string
		mult   uint64
	}{{"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatUint(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatUint(n, 10)
}
