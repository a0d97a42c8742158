package fsdeny

// CheckFD denies (EACCES) a resolved descriptor that is, or is inside,
// something denied: for other handler families that resolve and pin a path
// themselves (the network gate's named unix sockets).
func (d *Denier) CheckFD(fd int) error { return d.checkFD(fd) }

// CheckEntry denies (EACCES) creating name in the resolved directory
// parent when the new entry would be denied (a unix socket bind).
func (d *Denier) CheckEntry(parent int, name string) error { return d.checkEntry(parent, name, false) }
