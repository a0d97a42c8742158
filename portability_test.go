//go:build linux

package sandlock_test

import (
	"os"
	"os/exec"
	"testing"
)

// TestBuildsOnOtherSystems: the module compiles for systems without
// Landlock, so that a program importing sandlock builds everywhere and
// fails at run time with "sandlock needs Linux". A Linux-only file added
// without its build constraint breaks this.
func TestBuildsOnOtherSystems(t *testing.T) {
	for _, goos := range []string{"darwin", "windows"} {
		cmd := exec.Command("go", "build", "./...")
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("GOOS=%s go build ./...: %v\n%s", goos, err, out)
		}
	}
}
