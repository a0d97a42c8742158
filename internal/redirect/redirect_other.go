//go:build linux && !amd64

package redirect

const supported = false

func getSiginfo(tid int, si *siginfo) error { return nil }

func rewrite(tid, expect int, c Call) {}
