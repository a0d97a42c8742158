//go:build !linux

// Command sandlock runs programs in a Landlock and seccomp sandbox, which
// only Linux has: here it says so and fails.
package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() {
	fmt.Fprintf(os.Stderr, "sandlock: sandlock needs Linux (this is %s)\n", runtime.GOOS)
	os.Exit(1)
}
