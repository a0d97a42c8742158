//go:build linux

package cow

import "runtime"

func lockThread() { runtime.LockOSThread() }
