// Package supervisor implements Erlang/OTP supervisor semantics on top of
// protoactor-go actors.
//
// A supervisor is a protoactor actor that owns an ordered list of child
// specifications ([ChildSpec]). Children are protoactor actors spawned as
// protoactor children of the supervisor, so their PID ids read like paths:
// a worker "worker-2" under a supervisor "convert" under a root supervisor
// "root" has the id "root/convert/worker-2". A supervisor can itself be a
// child of another supervisor ([Spec.Child]), which gives supervision trees.
//
// The model follows OTP's supervisor module:
//
//   - Children are started in declaration order and stopped in reverse
//     declaration order, also when a one_for_all or rest_for_one restart
//     stops several of them before starting them again.
//   - A [Strategy] decides which children are restarted when one exits:
//     [OneForOne] only that child, [OneForAll] every child, [RestForOne]
//     the child and every child declared after it. As in OTP, such a
//     group restart starts every child of the group whose specification
//     the supervisor keeps, also one that was not running: stopped with
//     [Supervisor.TerminateChild], or transient and ended normally.
//   - A start that fails during a restart counts as a restart (see
//     intensity below) and the restart is tried again, as OTP does: with
//     one_for_one that child is started again; with one_for_all and
//     rest_for_one the children of the failed child's group that already
//     run again are stopped first (reverse order, reason [ErrShutdown])
//     and the group is started again from its first child. For
//     one_for_all that group is every child; for rest_for_one it is the
//     failed child and the ones after it, so the children before it that
//     this restart already started keep running.
//   - A [RestartType] decides whether an exit leads to a restart at all:
//     [Permanent] children always are, [Transient] children only after an
//     abnormal exit (anything but nil or [ErrShutdown]) and [Temporary]
//     children never (their specification is removed when they end).
//   - Restart intensity: if more than [Flags].Intensity restarts happen
//     within [Flags].Period (counted across all children of the
//     supervisor, failed start attempts included), the supervisor gives
//     up: it stops all its children and fails. A nested supervisor fails
//     towards its parent supervisor (which sees an abnormal exit with an
//     [*EscalationError]); a root supervisor ends and reports the
//     [*EscalationError] from [Supervisor.Err].
//   - [Shutdown] decides how a child is stopped: [BrutalKill] stops it at
//     once, a duration gives it that long to clean up (it receives
//     *actor.Stopping) and [Infinity] waits as long as it takes. When the
//     time is up the optional [ChildSpec].Kill hook forces the child (for
//     instance by killing the OS process it wraps); a child that still
//     does not terminate within a short bound is abandoned (see
//     [Abandoned]).
//   - Significant children and [AutoShutdown] let a supervisor end by
//     itself when a significant child (or all of them) has ended.
//   - Dynamic children: [Supervisor.StartChild], [Supervisor.TerminateChild],
//     [Supervisor.RestartChild] and [Supervisor.DeleteChild] follow OTP's
//     error contract ([ErrAlreadyStarted], [ErrAlreadyPresent],
//     [ErrRunning], [ErrRestarting], [ErrNotFound]).
//
// A child actor ends itself with [Exit], which records the exit reason
// where the supervisor finds it. A panic inside a child is an abnormal
// exit whose reason is a [*PanicError] carrying the panic value and the
// stack; it never crashes the host process.
//
// protoactor's own supervision strategies are not used for decisions: the
// supervisor actor implements actor.SupervisorStrategy itself, so a child
// failure only records the reason and stops the failed child, and the OTP
// rules are applied when the child's *actor.Terminated arrives. The
// supervisor never blocks its own mailbox: stopping children, waiting for
// them with timeouts and delaying restarts ([Backoff]) are steps of a state
// machine driven by *actor.Terminated and timer messages, so the
// supervisor stays responsive to [Supervisor.WhichChildren] and friends
// while it waits. A restart that has to be tried again (a start failed)
// is a message the supervisor sends itself, at once or after the backoff
// delay (OTP's try_again_restart), so admin requests and
// [Supervisor.Stop] are answered between the attempts also when starts
// keep failing without backoff and the intensity is far from reached.
// (Only a [StartFunc] itself, or a child's *actor.Started handler, holds
// the supervisor while it runs.)
//
// [Start] and [Supervisor.StartChild] check a specification before
// anything starts ([Spec.Validate], [Flags.Validate],
// [ChildSpec.Validate], child supervisors included) and report every
// broken range or consistency rule at once, as [FieldErrors]: each
// [*FieldError] names the specification, the child and the field
// ("intensity", "backoff.min", "shutdown", ...), so that a caller reading
// specifications from a file can use errors.As to place each one, without
// taking error strings apart.
//
// Everything a supervisor does is published on the actor system's
// EventStream as an [*Event]; [Subscribe] is a convenience filter.
//
// The plain data of supervision ([Flags], [Strategy], [AutoShutdown],
// [Backoff], [Event], [EventKind], [FieldError]) is declared in package
// [github.com/troupe-dev/troupe/supervisor/policy], which imports only the
// standard library, and aliased here: code that only describes supervision
// or receives its events (the root package troupe, and so every plugin)
// names it there and does not link protoactor.
//
// What the package keeps besides its actors (for [Ref], [Exit] and
// [Incarnation]) is kept per actor system, as an extension of it
// (actor.ActorSystem.Extensions): two actor systems in one process can use
// the same supervisor and child names without interfering.
//
// # Finding children
//
// The supervisor hands out what it starts: a child's [ChildSpec].OnStart
// hook is called with the PID and the number of each incarnation once it
// has started (in the supervisor's goroutine, before the next child
// starts), and [Supervisor.Child] and [Supervisor.WhichChildren] report
// the running one. Incarnations are numbered per child name under its
// supervisor from 0, in the order of the start attempts; the numbering
// goes on when a child supervisor is restarted, for as long as the root
// supervisor runs. The start function learns the number through
// [ChildSpec].StartIncarnation, the actor through [Incarnation] (e.g. in
// its *actor.Started handler, to find out that an earlier incarnation may
// have left work unfinished).
//
// Every incarnation of a child has the same PID id (its supervisor's id,
// "/", its name), and protoactor looks a PID up by its id again once the
// incarnation it last reached has terminated (or been abandoned), so a
// PID from OnStart keeps reaching the child across restarts: the current
// incarnation, or dead letters while none runs. Children start in
// declaration order, so the OnStart hooks of the children declared first
// have run when a later child starts: declare receivers before their
// senders and the senders' start functions can read the receivers' PIDs.
// A restart may replace a PID that OnStart stored while other actors read
// it; store it with synchronisation (e.g. atomic.Pointer) or keep the
// first one, which stays valid.
package supervisor
