package supervisor

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-dev/troupe/supervisor/policy"
)

// EventKind says what happened (see [policy.EventKind]).
type EventKind = policy.EventKind

const (
	// Started: a child was started (initially, by StartChild or by
	// RestartChild).
	Started = policy.Started
	// Exited: a child ended without its supervisor asking it to, or a
	// start attempt during a restart failed. Reason is the exit reason.
	Exited = policy.Exited
	// Restarted: the supervisor restarted a child after an exit. Restarts
	// is the child's restart count.
	Restarted = policy.Restarted
	// GaveUp: the supervisor at Path reached its maximum restart
	// intensity. Reason is the *EscalationError, Restarts the count.
	GaveUp = policy.GaveUp
	// Escalated: a nested supervisor that gave up has stopped its children
	// and now fails towards its parent.
	Escalated = policy.Escalated
	// Stopped: a child that its supervisor stopped has terminated (Reason
	// ErrShutdown, or ErrKilled if it had to be forced), or, with the
	// supervisor's own path, the supervisor has ended (Reason nil, or the
	// error it ended with).
	Stopped = policy.Stopped
	// Abandoned: a child did not terminate even after it was forced; it was
	// removed from the ProcessRegistry and is no longer waited for.
	Abandoned = policy.Abandoned
	// BackingOff: a child waiting to be restarted waits for the backoff delay
	// (Flags.Backoff) before its next start attempt.
	BackingOff = policy.BackingOff
)

// Event is published on the actor system's EventStream (as *Event) for
// everything a supervisor does (see [policy.Event] for its fields).
type Event = policy.Event

// Subscribe calls fn for every supervisor Event published in system, in
// the goroutine of the supervisor publishing it (so fn must not block).
// Call the returned function to unsubscribe.
func Subscribe(system *actor.ActorSystem, fn func(Event)) (unsubscribe func()) {
	sub := system.EventStream.Subscribe(func(evt any) {
		if e, ok := evt.(*Event); ok {
			fn(*e)
		}
	})
	return func() { system.EventStream.Unsubscribe(sub) }
}

func publish(system *actor.ActorSystem, path string, kind EventKind, reason error, restarts int) {
	system.EventStream.Publish(&Event{Time: time.Now(), Path: path, Kind: kind, Reason: reason, Restarts: restarts})
}
