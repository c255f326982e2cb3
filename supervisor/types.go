package supervisor

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-dev/troupe/supervisor/policy"
)

// Strategy is a supervisor's restart strategy: which children are restarted
// when one of them exits and has to be restarted. It is declared in package
// policy, with the supervisor flags, so that code which only describes
// supervision does not link the actor runtime.
type Strategy = policy.Strategy

const (
	// OneForOne restarts only the child that exited.
	OneForOne = policy.OneForOne
	// OneForAll stops all other children (in reverse declaration order) and
	// then restarts all of them (in declaration order), also those that
	// were not running (their specification is kept). If a start fails,
	// the children restarted so far are stopped again (reverse order) and
	// all of them are restarted again.
	OneForAll = policy.OneForAll
	// RestForOne stops the children declared after the one that exited (in
	// reverse order) and restarts it and them (in declaration order), also
	// those that were not running. If a start fails, that child and the
	// ones after it are started again; the ones before it keep running.
	RestForOne = policy.RestForOne
)

// ParseStrategy parses an OTP strategy name: "one_for_one", "one_for_all"
// or "rest_for_one". Another name is an error that errors.As
// turns into a [*FieldError] for "strategy".
func ParseStrategy(s string) (Strategy, error) { return policy.ParseStrategy(s) }

// RestartType decides whether a child is restarted after it exits (declared
// in package policy).
type RestartType = policy.RestartType

const (
	// Permanent children are always restarted, even after a normal exit.
	Permanent = policy.Permanent
	// Transient children are restarted only after an abnormal exit (a
	// reason other than nil or ErrShutdown). After a normal exit the
	// specification is kept, not running.
	Transient = policy.Transient
	// Temporary children are never restarted; their specification is
	// removed when they end, also when they are stopped as bystanders of a
	// one_for_all or rest_for_one restart.
	Temporary = policy.Temporary
)

// ParseRestartType parses "permanent", "transient" or "temporary".
// Another name is an error that errors.As turns into a [*FieldError] for
// "restart".
func ParseRestartType(s string) (RestartType, error) { return policy.ParseRestartType(s) }

// AutoShutdown decides whether a supervisor ends by itself when
// significant children end (and are not restarted).
type AutoShutdown = policy.AutoShutdown

const (
	// Never disables automatic shutdown (the default).
	Never = policy.Never
	// AnySignificant shuts the supervisor down when any significant child
	// ends.
	AnySignificant = policy.AnySignificant
	// AllSignificant shuts the supervisor down when all significant
	// children have ended.
	AllSignificant = policy.AllSignificant
)

// ParseAutoShutdown parses "never", "any_significant" or "all_significant".
// Another name is an error that errors.As turns into a [*FieldError] for
// "auto_shutdown".
func ParseAutoShutdown(s string) (AutoShutdown, error) { return policy.ParseAutoShutdown(s) }

// ChildType tells workers from supervisors. It changes the default
// [Shutdown] and how a child is counted by [Supervisor.CountChildren]
// (declared in package policy).
type ChildType = policy.ChildType

const (
	// Worker is an ordinary child actor.
	Worker = policy.Worker
	// SupervisorType is a child that is itself a supervisor.
	SupervisorType = policy.SupervisorType
)

// Shutdown is how long a child gets to stop after it has been asked to
// (it receives *actor.Stopping and may clean up). The zero value means the
// default: 5 seconds for workers and Infinity for supervisors.
type Shutdown time.Duration

const (
	// BrutalKill stops the child at once and calls its Kill hook without
	// waiting for a graceful stop.
	BrutalKill Shutdown = -1
	// Infinity waits for the child to stop, however long it takes.
	Infinity Shutdown = -2
	// DefaultWorkerShutdown is the shutdown used for workers whose
	// ChildSpec.Shutdown is zero.
	DefaultWorkerShutdown = Shutdown(5 * time.Second)
)

// String returns "brutal_kill", "infinity" or the duration.
func (s Shutdown) String() string {
	switch s {
	case BrutalKill:
		return "brutal_kill"
	case Infinity:
		return "infinity"
	case 0:
		return "default"
	}
	return time.Duration(s).String()
}

// Backoff delays repeated restarts. As in OTP, the first restart within
// the supervisor's intensity period is immediate; the ones after it, while
// that first one is still in the period, wait Min, 2*Min, 4*Min, ...
// capped at Max, with jitter (see [policy.Backoff.Delay]). A zero Min
// restarts at once every time.
type Backoff = policy.Backoff

// Flags are a supervisor's OTP "supervisor flags": strategy, intensity and
// period, auto_shutdown and backoff (see [policy.Flags]).
type Flags = policy.Flags

// DefaultFlags returns OTP's defaults: one_for_one, intensity 1, period 5s.
func DefaultFlags() Flags { return policy.DefaultFlags() }

// MaxIntensity is the largest Flags.Intensity: the largest int on every
// platform. (The supervisor keeps the time of each restart within Period,
// so an intensity near it is "never give up" in practice.)
const MaxIntensity = policy.MaxIntensity

// StartFunc starts one incarnation of a child. It runs in the supervisor's
// goroutine and may block (e.g. to launch a process); returning an error is
// a failed start. The supervisor spawns the returned props as its
// protoactor child named ChildSpec.Name, wrapped with a receiver middleware
// that turns a panic into a *PanicError exit reason. Like OTP's init/1, the
// new actor's *actor.Started handler has completed before the supervisor
// goes on (e.g. starts the next child), so that handler must not wait for
// its own supervisor.
type StartFunc func() (*actor.Props, error)

// ChildSpec specifies one child of a supervisor.
type ChildSpec struct {
	// Name identifies the child within its supervisor and is the last
	// element of its PID id. It must be unique and non-empty.
	Name string
	// Start starts an incarnation of the child. Set it or
	// StartIncarnation.
	Start StartFunc
	// StartIncarnation, if set instead of Start, starts an incarnation of
	// the child and is told its number (see OnStart), e.g. to name what it
	// starts for that incarnation.
	StartIncarnation func(incarnation int) (*actor.Props, error)
	// OnStart, if set, is called each time an incarnation of the child
	// has started, with its PID and its number: 0 for the first start of
	// a child of this name under its supervisor, then 1, 2, ... in the
	// order of the start attempts (a start that fails uses up its number;
	// a child supervisor's children go on counting when it is restarted).
	// It runs in the supervisor's goroutine, after the incarnation's
	// *actor.Started handler (for a child supervisor: after its children
	// have started) and before the supervisor goes on, e.g. starts the
	// next child or publishes the Started or Restarted event; so it must
	// be quick and must not wait for the supervisor, and what it stores
	// for other goroutines needs synchronisation. A panic in it is a
	// crash of that incarnation. The incarnation's actor can learn its
	// number with Incarnation. See the package documentation on finding
	// children.
	OnStart func(pid *actor.PID, incarnation int)
	// FreshPIDs gives each restart of a worker child a process name of its
	// own ("name#n"), so a PID of an earlier incarnation never reaches a
	// later one: for a child whose PID its peers learn anew at each start
	// (from a message it sends them), and which must not receive what was
	// meant for its predecessor. By default a child keeps its name, so its
	// PID stays valid across restarts; but protoactor publishes a new
	// process under its name before it has set up the process's mailbox,
	// so a message sent to the name while it restarts races with that
	// set-up. Ignored for supervisor children, whose paths are their names.
	FreshPIDs bool
	// Restart decides whether the child is restarted after it exits.
	Restart RestartType
	// Shutdown is how long the child gets to stop; see Shutdown.
	Shutdown Shutdown
	// Type tells workers from supervisors.
	Type ChildType
	// Significant marks a child whose ending can shut the supervisor down
	// (see Flags.AutoShutdown). Only Transient and Temporary children may
	// be significant.
	Significant bool
	// Kill, if set, is called (in the supervisor's goroutine) when a
	// graceful stop times out, or at once for BrutalKill, to force the
	// child (e.g. kill its OS process). If the child still has not
	// terminated a short while later it is abandoned: removed from the
	// ProcessRegistry so its name can be reused, and an Abandoned event is
	// published.
	Kill func(pid *actor.PID)

	// nested is set by Spec.Child: it starts a supervisor whose
	// initialisation the parent waits for.
	nested *Spec
}

// Validate reports whether c is usable as a child specification. It
// returns nil or [FieldErrors], one [*FieldError] for each broken rule: a
// non-empty name without '/', a start function, a known restart type and
// child type, a shutdown that is a positive duration, BrutalKill or
// Infinity, and only transient or temporary children significant. For a
// child supervisor (Spec.Child) its Spec is validated too.
func (c ChildSpec) Validate() error {
	var fe fieldErrors
	c.check(&fe, c.Name, "")
	return fe.err()
}

// check adds c's broken rules to fe; label names c in them (see
// FieldError.Child) and path is the Supervisor path of c's supervisor.
func (c ChildSpec) check(fe *fieldErrors, label, path string) {
	fe.supervisor, fe.child = path, label
	switch {
	case c.Name == "":
		fe.add("name", "must not be empty")
	case strings.Contains(c.Name, "/"):
		fe.add("name", "must not contain '/', got %q", c.Name)
	}
	switch {
	case c.Start == nil && c.StartIncarnation == nil && c.nested == nil:
		fe.add("start", "no start function")
	case c.Start != nil && c.StartIncarnation != nil:
		fe.add("start", "set only one of Start and StartIncarnation")
	}
	if c.Restart < Permanent || c.Restart > Temporary {
		fe.add("restart", "unknown value %d (want one of %s)", int(c.Restart), strings.Join([]string{Permanent.String(), Transient.String(), Temporary.String()}, ", "))
	}
	if c.Shutdown < Infinity {
		fe.add("shutdown", "invalid value %d (want a positive duration, BrutalKill or Infinity)", int64(c.Shutdown))
	}
	if c.Type < Worker || c.Type > SupervisorType {
		fe.add("type", "unknown value %d (want one of %s)", int(c.Type), strings.Join([]string{Worker.String(), SupervisorType.String()}, ", "))
	}
	if c.Significant && c.Restart == Permanent {
		fe.add("significant", "a permanent child cannot be significant")
	}
	if c.nested != nil {
		sub := c.nested.Name
		if path != "" {
			sub = path + "/" + sub
		}
		c.nested.check(fe, sub)
	}
}

func (c ChildSpec) shutdown() Shutdown {
	if c.Shutdown != 0 {
		return c.Shutdown
	}
	if c.Type == SupervisorType {
		return Infinity
	}
	return DefaultWorkerShutdown
}

// Spec specifies a supervisor.
type Spec struct {
	// Name is the supervisor's actor name (the last element of its PID id).
	Name string
	// Flags are the supervisor flags.
	Flags Flags
	// Children are started in this order and stopped in reverse order.
	Children []ChildSpec
}

// Validate checks the spec: a name, the flags (see Flags.Validate), every
// child (see ChildSpec.Validate; child supervisors from Spec.Child down to
// their own children) and unique child names. It returns nil or
// [FieldErrors] with every broken rule, each naming the spec (Supervisor)
// and the child it concerns.
func (s Spec) Validate() error {
	var fe fieldErrors
	s.check(&fe, s.Name)
	return fe.err()
}

func (s Spec) check(fe *fieldErrors, path string) {
	fe.supervisor, fe.child = path, ""
	if s.Name == "" {
		fe.add("name", "must not be empty")
	}
	fe.addFlags(s.Flags)
	first := make(map[string]int, len(s.Children))
	for i, c := range s.Children {
		label := c.Name
		if label == "" {
			label = fmt.Sprintf("#%d", i+1)
		}
		c.check(fe, label, path)
		if c.Name == "" {
			continue
		}
		if j, dup := first[c.Name]; dup {
			fe.supervisor, fe.child = path, label
			fe.add("name", "duplicate: child #%d has the same name", j+1)
			continue
		}
		first[c.Name] = i
	}
}

// Child returns this spec as the specification of a child supervisor
// (Type SupervisorType, Shutdown Infinity, named s.Name). The parent waits
// for the child supervisor to have started all its children; if one of
// them fails, the start of the child supervisor fails. The parent starts
// the child supervisor from s itself (the returned Start is provided for
// completeness and is not used by a parent supervisor).
func (s Spec) Child(restart RestartType) ChildSpec {
	spec := s
	spec.Children = append([]ChildSpec(nil), s.Children...)
	return ChildSpec{
		Name:     s.Name,
		Restart:  restart,
		Shutdown: Infinity,
		Type:     SupervisorType,
		nested:   &spec,
		Start: func() (*actor.Props, error) {
			if err := spec.Validate(); err != nil {
				return nil, err
			}
			return supervisorProps(spec, newShared(), newHistory()), nil
		},
	}
}

// Errors of the admin contract; compare with errors.Is.
var (
	// ErrAlreadyStarted: StartChild with the name of a running child.
	ErrAlreadyStarted = errors.New("supervisor: child already started")
	// ErrAlreadyPresent: StartChild with the name of a child that exists
	// but is not running.
	ErrAlreadyPresent = errors.New("supervisor: child already present")
	// ErrRunning: RestartChild or DeleteChild of a running child.
	ErrRunning = errors.New("supervisor: child is running")
	// ErrRestarting: RestartChild or DeleteChild of a child waiting to be
	// restarted.
	ErrRestarting = errors.New("supervisor: child is restarting")
	// ErrNotFound: no child with that name.
	ErrNotFound = errors.New("supervisor: child not found")
	// ErrSupervisorStopped: the supervisor is not running (any more), or is
	// shutting down.
	ErrSupervisorStopped = errors.New("supervisor: supervisor not running")
)

// Exit reasons.
var (
	// ErrShutdown is the reason of a child that its supervisor stopped.
	// Passed to Exit it means a shutdown exit, which, like a nil reason, is
	// normal: transient children are not restarted after it.
	ErrShutdown = errors.New("shutdown")
	// ErrKilled is the reason of a child that had to be forced (its
	// graceful shutdown timed out, or BrutalKill), and the default reason
	// of KillChild.
	ErrKilled = errors.New("killed")
)

// PanicError is the exit reason of a child that panicked.
type PanicError struct {
	// Value is the value passed to panic.
	Value any
	// Stack is the stack of the panicking goroutine (debug.Stack()).
	Stack []byte
}

// Error returns "panic: <value>" followed by a newline and the stack.
func (e *PanicError) Error() string {
	return fmt.Sprintf("panic: %v\n%s", e.Value, e.Stack)
}

// Unwrap returns the panic value if it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// EscalationError is the reason a supervisor fails with when it reached
// its maximum restart intensity.
type EscalationError struct {
	// Supervisor is the supervisor's PID id, e.g. "root/convert".
	Supervisor string
	// Restarts is the number of restarts within Period that exceeded the
	// intensity.
	Restarts int
	// Period is the supervisor's intensity period.
	Period time.Duration
	// Last is the exit reason (or start error) that caused the last restart.
	Last error
}

// Error returns e.g. "supervisor root/convert: reached max restart
// intensity (2 restarts in 5s); last: boom".
func (e *EscalationError) Error() string {
	return fmt.Sprintf("supervisor %s: reached max restart intensity (%d restarts in %v); last: %v",
		e.Supervisor, e.Restarts, e.Period, e.Last)
}

// Unwrap returns the last exit reason.
func (e *EscalationError) Unwrap() error { return e.Last }

// isNormal reports whether reason is a normal exit (nil or shutdown).
func isNormal(reason error) bool {
	return reason == nil || errors.Is(reason, ErrShutdown)
}
