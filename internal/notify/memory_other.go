//go:build !linux

package notify

import "errors"

// errNeedsLinux is what a HandlerCtx's memory helpers return where there is
// no seccomp supervisor: they can never be called with a real notification.
var errNeedsLinux = errors.New("sandlock needs Linux")

// ReadMem reads task memory; see the Linux implementation.
func (hc *HandlerCtx) ReadMem(addr uint64, n int) ([]byte, error) { return nil, errNeedsLinux }

// ReadCString reads a NUL-terminated string; see the Linux implementation.
func (hc *HandlerCtx) ReadCString(addr uint64, max int) (string, error) { return "", errNeedsLinux }

// WriteMem writes task memory; see the Linux implementation.
func (hc *HandlerCtx) WriteMem(addr uint64, b []byte) error { return errNeedsLinux }
