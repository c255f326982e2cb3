package actors

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/supervisor"
)

// Parent is where StartUnder starts a run: as a child of a supervisor that outlives it, in an
// actor system shared with other runs (a long-running server's engine runs every job so).
type Parent struct {
	// System is the actor system Supervisor runs in. The run does not shut it down.
	System *actor.ActorSystem
	// Supervisor is the parent supervisor. The run's root supervisor is added to it as a
	// temporary child (never restarted, and its giving up does not count against the
	// parent's restart intensity), and removed when the run ends.
	Supervisor *supervisor.Supervisor
	// Name is the child's name under Supervisor, unique among its children while the run
	// lasts; it replaces Pipeline.Name as the first element of the run's paths below the
	// parent's ("engine/job-3/convert/workers/worker-1").
	Name string
}

// NewSystem returns an actor system configured as a run's own: protoactor's logging discarded,
// a short dead-letter throttle (messages to actors that just stopped are normal at a run's end).
// A server sharing one system between runs (StartUnder) makes it with NewSystem.
func NewSystem() *actor.ActorSystem {
	return actor.NewActorSystemWithConfig(actor.Configure(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }),
		// protoactor's dead-letter throttle keeps a goroutine for one interval after each
		// burst of dead letters.
		actor.WithDeadLetterThrottleInterval(10*time.Millisecond),
	))
}

// StartUnder starts the pipeline p as Start does, but with its supervision tree as a temporary
// child of parent.Supervisor in parent.System instead of in an actor system of its own. The run
// ends as a run started by Start does (its tree is stopped and removed from the parent); the
// parent and the system go on. A run's failure (its tree giving up, an abort) ends that run
// only.
func StartUnder(ctx context.Context, p *troupe.Pipeline, parent Parent) (*Job, error) {
	if parent.System == nil || parent.Supervisor == nil || parent.Name == "" {
		return nil, errors.New("actors: StartUnder needs a system, a supervisor and a name")
	}
	return start(ctx, p, &parent)
}

// startUnder starts spec as a temporary child of the parent supervisor and returns a handle to it.
func (r *run) startUnder(spec supervisor.Spec) (*supervisor.Supervisor, error) {
	spec.Name = r.childName()
	child := spec.Child(supervisor.Temporary)
	var pid *actor.PID
	child.OnStart = func(p *actor.PID, _ int) { pid = p }
	if err := r.parent.Supervisor.StartChild(child); err != nil {
		return nil, err
	}
	if pid == nil {
		return nil, errors.New("actors: the run's supervisor started without a PID")
	}
	root := supervisor.Ref(r.system, pid)
	root.Done() // binds the handle to this incarnation now, while it is registered
	return root, nil
}

// stopTree stops the run's tree. A tree under a parent is stopped through the parent
// (TerminateChild), so that once the run has ended its parent no longer lists it; a parent
// that is gone, or no longer knows the child, leaves it to Stop.
func (r *run) stopTree() error {
	if r.parent != nil {
		if err := r.parent.Supervisor.TerminateChild(r.childName()); err == nil {
			return nil
		}
	}
	return r.root.Stop()
}

// childName is the run's tree's name under its parent.
func (r *run) childName() string { return r.name[len(r.parent.Supervisor.PID().Id)+1:] }

// shutdownSystem shuts the run's actor system down, unless it is its parent's.
func (r *run) shutdownSystem() {
	if r.parent == nil {
		r.system.Shutdown()
	}
}
