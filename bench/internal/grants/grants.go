// Package grants holds what the benchmark launchers grant: the same
// readable directories bench/run.sh gives sandlock on the command line, so
// that every variant of a row confines alike.
package grants

import (
	"fmt"
	"os"
)

// Readable returns dir and the system directories that exist here.
func Readable(dir string) []string {
	read := []string{dir}
	for _, p := range []string{"/usr", "/lib", "/lib64", "/bin", "/etc"} {
		if _, err := os.Stat(p); err == nil {
			read = append(read, p)
		}
	}
	return read
}

// Args checks that a launcher got DIR PROGRAM [ARG...] and exits with its
// usage otherwise.
func Args(name string) {
	if len(os.Args) < 3 {
		fmt.Fprintf(os.Stderr, "usage: %s DIR PROGRAM [ARG...]\n", name)
		os.Exit(2)
	}
}
