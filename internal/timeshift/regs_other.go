//go:build linux && !amd64

package timeshift

import "errors"

// Supported reports whether this architecture's stubs and register access
// are written: TimeStart is refused elsewhere.
const Supported = false

type regs struct{}

var errUnsupported = errors.New("timeshift: not written for this architecture yet")

func getRegs(int) (*regs, error) { return nil, errUnsupported }
func setRegs(int, *regs) error   { return errUnsupported }
func syscallNr(*regs) int        { return -1 }
func stackPointer(*regs) uint64  { return 0 }
func arg(*regs, int) uint64      { return 0 }
func setArg(*regs, int, uint64)  {}
