//go:build linux

package session

import (
	"testing"

	"github.com/sandlock-go/sandlock/internal/sysnum"
)

func TestVforkSafe(t *testing.T) {
	arch := sysnum.Native()
	prlimit, execve, getpid := arch.MustNr("prlimit64"), arch.MustNr("execve"), arch.MustNr("getpid")
	for _, c := range []struct {
		notified, selfUnnotified []int
		want                     bool
	}{
		{nil, nil, true},
		{[]int{getpid}, nil, true},
		{[]int{execve}, nil, false},
		// The child stage's prlimit64 names itself: when the filter lets
		// exactly that through, the vfork mode stays.
		{[]int{prlimit}, nil, false},
		{[]int{prlimit}, []int{prlimit}, true},
		{[]int{prlimit, execve}, []int{prlimit}, false},
	} {
		if got := vforkSafe(c.notified, c.selfUnnotified); got != c.want {
			t.Errorf("vforkSafe(%v, %v) = %v, want %v", c.notified, c.selfUnnotified, got, c.want)
		}
	}
}
