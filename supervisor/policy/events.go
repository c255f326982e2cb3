package policy

import (
	"fmt"
	"time"
)

// EventKind says what happened.
type EventKind int

const (
	// Started: a child was started (initially, by StartChild or by
	// RestartChild).
	Started EventKind = iota
	// Exited: a child ended without its supervisor asking it to, or a
	// start attempt during a restart failed. Reason is the exit reason.
	Exited
	// Restarted: the supervisor restarted a child after an exit. Restarts
	// is the child's restart count.
	Restarted
	// GaveUp: the supervisor at Path reached its maximum restart
	// intensity. Reason is the supervisor's *EscalationError, Restarts the
	// count.
	GaveUp
	// Escalated: a nested supervisor that gave up has stopped its children
	// and now fails towards its parent.
	Escalated
	// Stopped: a child that its supervisor stopped has terminated (Reason
	// the supervisor's ErrShutdown, or ErrKilled if it had to be forced),
	// or, with the supervisor's own path, the supervisor has ended (Reason
	// nil, or the error it ended with).
	Stopped
	// Abandoned: a child did not terminate even after it was forced; it was
	// removed from the ProcessRegistry and is no longer waited for.
	Abandoned
	// BackingOff: a child waiting to be restarted waits for the backoff delay
	// (Flags.Backoff) before its next start attempt.
	BackingOff
)

var eventKindNames = []string{"started", "exited", "restarted", "gave_up", "escalated", "stopped", "abandoned", "backoff"}

// String returns e.g. "restarted".
func (k EventKind) String() string { return enumName(eventKindNames, int(k), "EventKind") }

// Event is what a supervisor reports about everything it does. Package
// supervisor publishes it on the actor system's EventStream (as *Event).
type Event struct {
	// Time is when it happened.
	Time time.Time
	// Path is the PID id of the child (or supervisor) concerned, e.g.
	// "root/convert/worker-2".
	Path string
	// Kind says what happened.
	Kind EventKind
	// Reason is the exit reason or error, if any.
	Reason error
	// Restarts is the child's restart count (Restarted), or the
	// supervisor's restart count within its period (GaveUp).
	Restarts int
}

// String formats the event for logs.
func (e Event) String() string {
	s := fmt.Sprintf("%s %s", e.Path, e.Kind)
	if e.Reason != nil {
		s += fmt.Sprintf(" (%v)", firstLine(e.Reason.Error()))
	}
	return s
}

func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
