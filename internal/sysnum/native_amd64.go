package sysnum

// Native returns the table of the architecture this binary runs on.
func Native() *Table { return AMD64 }
