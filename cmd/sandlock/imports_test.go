//go:build linux

package main

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestOnlyThePublicAPI keeps the CLI honest: it is built on the root
// package alone, like any program that uses the library.
func TestOnlyThePublicAPI(t *testing.T) {
	files, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !strings.HasSuffix(f.Name(), ".go") {
			continue
		}
		parsed, err := parser.ParseFile(token.NewFileSet(), f.Name(), nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range parsed.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/sandlock-go/sandlock/") {
				t.Errorf("%s imports %s: the CLI may use only github.com/sandlock-go/sandlock", f.Name(), path)
			}
		}
	}
}
