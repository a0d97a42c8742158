//go:build linux

package sandlock

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseList(t *testing.T) {
	for _, tc := range []struct {
		in     string
		ranges bool
		want   []uint32
		err    string
	}{
		{"0", false, []uint32{0}, ""},
		{"0,2,3", false, []uint32{0, 2, 3}, ""},
		{"0-3,6", true, []uint32{0, 1, 2, 3, 6}, ""},
		{"1-1", true, []uint32{1}, ""},
		{"0-3", false, nil, `"0-3": ranges are not allowed here`},
		{"3-1", true, nil, `"3-1": not a range low-high`},
		{"", false, nil, `"": not a number`},
		{"1,,2", false, nil, `"": not a number`},
		{"x", true, nil, `"x": not a number`},
		{"-1", true, nil, `"-1": not a number`},
		{"65536", false, nil, `"65536": not a number`},
		{"1-", true, nil, `"1-": not a range low-high`},
	} {
		got, err := parseList(tc.in, tc.ranges)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("parseList(%q, %v) = %v, %v; want error %q", tc.in, tc.ranges, got, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("parseList(%q, %v) = %v, %v; want %v", tc.in, tc.ranges, got, err, tc.want)
		}
	}
}

// FuzzParseList: never a panic; an accepted list names only numbers that
// appear in it or between a range's ends, and writing it back out as a
// plain list parses to the same numbers; a refused one says which part.
func FuzzParseList(f *testing.F) {
	for _, s := range []string{"0", "0,2,3", "0-3,6", "3-1", "", ",", "1-", "-", "99999", "0-0,0"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, ranges bool) {
		got, err := parseList(s, ranges)
		if err != nil {
			if !strings.HasPrefix(err.Error(), `"`) {
				t.Fatalf("parseList(%q): error %q does not quote the part", s, err)
			}
			return
		}
		if !ranges && strings.Contains(s, "-") {
			t.Fatalf("parseList(%q, false) accepted a range: %v", s, got)
		}
		parts := make([]string, len(got))
		for i, v := range got {
			if v > 65535 {
				t.Fatalf("parseList(%q) = %d, out of range", s, v)
			}
			parts[i] = strconv.Itoa(int(v))
		}
		again, err := parseList(strings.Join(parts, ","), false)
		if err != nil || !slices.Equal(again, got) {
			t.Fatalf("parseList(%q) = %v, which does not parse back: %v, %v", s, got, again, err)
		}
	})
}
