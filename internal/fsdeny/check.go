package fsdeny

// CheckEntry denies (EACCES) creating name in the resolved directory
// parent when the new entry would be denied (a unix socket bind).
func (d *Denier) CheckEntry(parent int, name string) error { return d.checkEntry(parent, name, false) }
