//go:build linux

// Package confine holds the per-thread mechanics shared by every confined
// thread sandlock runs: starting a goroutine on a fresh OS thread that is
// destroyed afterwards, and emptying a thread's capability sets.
package confine
