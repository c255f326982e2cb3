package supervisor

import (
	"fmt"
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-dev/troupe/supervisor/policy"
)

// ChildState is the state of a child as reported by WhichChildren (declared
// in package policy).
type ChildState = policy.ChildState

const (
	// ChildRunning: the child has a live incarnation (possibly being
	// stopped).
	ChildRunning = policy.ChildRunning
	// ChildRestarting: the child has exited and waits to be restarted
	// (backoff delay, or its start failed and will be retried).
	ChildRestarting = policy.ChildRestarting
	// ChildStopped: the child's specification is kept but it is not
	// running.
	ChildStopped = policy.ChildStopped
)

// ChildInfo describes one child (OTP's which_children).
type ChildInfo struct {
	// Name is the child's name.
	Name string
	// PID is the running incarnation, nil unless State is ChildRunning.
	PID *actor.PID
	// Type tells workers from supervisors.
	Type ChildType
	// State is ChildRunning, ChildRestarting or ChildStopped.
	State ChildState
	// Restarts counts how often the supervisor restarted the child.
	Restarts int
	// Incarnation is the number of the running incarnation, or of the last
	// one that ran, 0 if none has (see ChildSpec.OnStart).
	Incarnation int
}

// Counts are a supervisor's child counts (OTP's count_children).
type Counts struct {
	// Specs is the number of child specifications.
	Specs int
	// Active is the number of running children.
	Active int
	// Supervisors is the number of specifications of type SupervisorType.
	Supervisors int
	// Workers is the number of specifications of type Worker.
	Workers int
}

// Messages understood by a supervisor actor. The Supervisor handle's
// methods send them and wait for the Reply; actors can send them straight
// to a supervisor PID (with ctx.Request to get a *Reply back, or ctx.Send
// when they do not care).
type (
	// StartChild adds a child specification and starts the child.
	StartChild struct {
		Spec  ChildSpec
		reply chan Reply
	}
	// TerminateChild stops a child, keeping its specification (except for
	// temporary children, which are removed).
	TerminateChild struct {
		Name  string
		reply chan Reply
	}
	// RestartChild starts a stopped child again.
	RestartChild struct {
		Name  string
		reply chan Reply
	}
	// DeleteChild removes the specification of a stopped child.
	DeleteChild struct {
		Name  string
		reply chan Reply
	}
	// KillChild injects an abnormal exit: the child is stopped according
	// to its Shutdown and then handled as if it had crashed with Reason
	// (ErrKilled if nil): restart type and intensity apply. The reply is
	// sent once the stop has been initiated.
	KillChild struct {
		Name   string
		Reason error
		reply  chan Reply
	}
	// WhichChildren asks for the children (Reply.Children).
	WhichChildren struct{ reply chan Reply }
	// CountChildren asks for the child counts (Reply.Counts).
	CountChildren struct{ reply chan Reply }
	// StopSupervisor makes the supervisor stop all children in reverse
	// declaration order and then end. It gets no reply.
	StopSupervisor struct{}
)

// Reply is a supervisor's answer to an admin message.
type Reply struct {
	Err      error
	Children []ChildInfo
	Counts   Counts
}

// shared is the state a supervisor actor shares with its handles.
type shared struct {
	done       chan struct{}
	err        error // written before done is closed
	initDone   chan struct{}
	initErr    error // written before initDone is closed
	initClosed bool  // actor goroutine only
}

func newShared() *shared {
	return &shared{done: make(chan struct{}), initDone: make(chan struct{})}
}

var deadShared = func() *shared {
	sh := newShared()
	close(sh.done)
	close(sh.initDone)
	return sh
}()

// Supervisor is a handle to a supervisor actor. All methods are safe for
// concurrent use. A handle refers to one incarnation: once that supervisor
// has ended, Done is closed and the admin methods return
// ErrSupervisorStopped.
type Supervisor struct {
	system *actor.ActorSystem
	pid    *actor.PID
	mu     sync.Mutex
	sh     *shared
}

// Start spawns the supervisor described by spec as a root actor named
// spec.Name in system and starts its children in declaration order. It
// returns once all of them have started, or returns the error of the first
// one that failed, after stopping the ones already started in reverse
// order (as OTP's start_link does).
func Start(system *actor.ActorSystem, spec Spec) (*Supervisor, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	sh := newShared()
	pid, err := system.Root.SpawnNamed(supervisorProps(spec, sh, newHistory()), spec.Name)
	if err != nil {
		return nil, fmt.Errorf("supervisor: spawn %q: %w", spec.Name, err)
	}
	<-sh.initDone
	if sh.initErr != nil {
		<-sh.done
		return nil, sh.initErr
	}
	return &Supervisor{system: system, pid: pid, sh: sh}, nil
}

// Ref returns a handle to the supervisor actor running at pid in system,
// e.g. a nested supervisor found with WhichChildren. If no supervisor of
// this package runs there (in that actor system: another system's
// supervisor with the same name does not count), the handle's Done is
// closed and its methods return ErrSupervisorStopped.
func Ref(system *actor.ActorSystem, pid *actor.PID) *Supervisor {
	return &Supervisor{system: system, pid: pid}
}

func (s *Supervisor) shared() *shared {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sh == nil {
		if s.pid == nil || s.system == nil {
			return deadShared
		}
		v, ok := registryOf(s.system).supervisors.Load(s.pid.Id)
		if !ok {
			return deadShared
		}
		s.sh = v.(*shared)
	}
	return s.sh
}

// PID returns the supervisor actor's PID.
func (s *Supervisor) PID() *actor.PID { return s.pid }

// Done returns a channel that is closed when the supervisor has ended, for
// any reason.
func (s *Supervisor) Done() <-chan struct{} { return s.shared().done }

// Err returns, once Done is closed, why the supervisor ended: nil after
// Stop or a normal automatic shutdown, an *EscalationError when it reached
// its maximum restart intensity.
func (s *Supervisor) Err() error {
	sh := s.shared()
	select {
	case <-sh.done:
		return sh.err
	default:
		return nil
	}
}

// Stop stops all children in reverse declaration order (each according to
// its Shutdown), then the supervisor, and returns when it has ended. It
// returns ErrSupervisorStopped if the supervisor had already ended.
func (s *Supervisor) Stop() error {
	sh := s.shared()
	select {
	case <-sh.done:
		return ErrSupervisorStopped
	default:
	}
	s.system.Root.Send(s.pid, &StopSupervisor{})
	<-sh.done
	return nil
}

// StartChild adds c and starts it. It returns ErrAlreadyStarted if a child
// with that name runs, ErrAlreadyPresent if one exists but does not run,
// or the start error (the specification is then not kept).
func (s *Supervisor) StartChild(c ChildSpec) error {
	ch := make(chan Reply, 1)
	return s.call(&StartChild{Spec: c, reply: ch}, ch).Err
}

// TerminateChild stops the named child according to its Shutdown and keeps
// its specification (temporary children are removed). Terminating a child
// that is not running (also one waiting to be restarted) is not an error.
// As in OTP, a later one_for_all or rest_for_one restart whose group holds
// the child starts it again.
func (s *Supervisor) TerminateChild(name string) error {
	ch := make(chan Reply, 1)
	return s.call(&TerminateChild{Name: name, reply: ch}, ch).Err
}

// RestartChild starts a stopped child again. It returns ErrRunning if it
// runs, ErrRestarting if it waits to be restarted, ErrNotFound if there is
// no such child, or the start error.
func (s *Supervisor) RestartChild(name string) error {
	ch := make(chan Reply, 1)
	return s.call(&RestartChild{Name: name, reply: ch}, ch).Err
}

// DeleteChild removes the specification of a stopped child. It returns
// ErrRunning if it runs, ErrRestarting if it waits to be restarted and
// ErrNotFound if there is no such child.
func (s *Supervisor) DeleteChild(name string) error {
	ch := make(chan Reply, 1)
	return s.call(&DeleteChild{Name: name, reply: ch}, ch).Err
}

// KillChild injects an abnormal exit with reason (ErrKilled if nil) into
// the named child: it is stopped according to its Shutdown and then
// treated as crashed, so its restart type and the restart intensity apply.
// It returns once the stop has been initiated; ErrNotFound if there is no
// such child, nil if it is not running.
func (s *Supervisor) KillChild(name string, reason error) error {
	ch := make(chan Reply, 1)
	return s.call(&KillChild{Name: name, Reason: reason, reply: ch}, ch).Err
}

// Child returns what WhichChildren says about the named child, or
// ErrNotFound.
func (s *Supervisor) Child(name string) (ChildInfo, error) {
	infos, err := s.WhichChildren()
	if err != nil {
		return ChildInfo{}, err
	}
	for _, info := range infos {
		if info.Name == name {
			return info, nil
		}
	}
	return ChildInfo{}, fmt.Errorf("%w: %s", ErrNotFound, name)
}

// WhichChildren lists the children in declaration order.
func (s *Supervisor) WhichChildren() ([]ChildInfo, error) {
	ch := make(chan Reply, 1)
	r := s.call(&WhichChildren{reply: ch}, ch)
	return r.Children, r.Err
}

// CountChildren counts the children.
func (s *Supervisor) CountChildren() (Counts, error) {
	ch := make(chan Reply, 1)
	r := s.call(&CountChildren{reply: ch}, ch)
	return r.Counts, r.Err
}

// call sends msg and waits for its reply or for the supervisor to end.
func (s *Supervisor) call(msg any, ch chan Reply) Reply {
	sh := s.shared()
	select {
	case <-sh.done:
		return Reply{Err: ErrSupervisorStopped}
	default:
	}
	s.system.Root.Send(s.pid, msg)
	select {
	case r := <-ch:
		return r
	case <-sh.done:
		select {
		case r := <-ch:
			return r
		default:
			return Reply{Err: ErrSupervisorStopped}
		}
	}
}
