//go:build linux

package sandlock

import (
	"sync"

	"github.com/sandlock-go/sandlock/internal/session"
)

// testSessions maps a *Sandbox to the function that sees each of its runs'
// sessions (see WithTestSession).
var testSessions sync.Map

func init() {
	testSession = func(s *Sandbox, sess *session.Session) {
		if f, ok := testSessions.Load(s); ok {
			f.(func(*session.Session))(sess)
		}
	}
}

// WithTestSession makes every run of s call f with its session before it
// starts, where a test registers hooks of its own (e.g. sess.OnExec) and
// keeps the session to ask it questions (Traced, ProcessIDs, ExecStops).
// The returned func removes f. Tests only.
func WithTestSession(s *Sandbox, f func(sess *session.Session)) (remove func()) {
	testSessions.Store(s, f)
	return func() { testSessions.Delete(s) }
}
