package seccomp

import "errors"

// NotifData is struct seccomp_data: the syscall a notification is about.
type NotifData struct {
	Nr                 int32
	Arch               uint32
	InstructionPointer uint64
	Args               [6]uint64
}

// Notif is struct seccomp_notif: one notification read from the listener.
type Notif struct {
	ID    uint64
	PID   uint32
	Flags uint32
	Data  NotifData
}

// ErrGone is returned by helpers when the notification's task is gone.
var ErrGone = errors.New("seccomp: notifying task is gone")
