package supervisor

import (
	"fmt"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// abandonAfter bounds the wait for a child after it has been forced (Kill
// hook called, protoactor Stop sent) before it is abandoned.
var abandonAfter = time.Second

// child is the supervisor's record of one child specification.
type child struct {
	spec     ChildSpec
	pid      *actor.PID // running incarnation; nil if none
	cell     *cell      // the running incarnation's cell
	isSup    bool       // the incarnation is one of our supervisors
	failed   bool       // the incarnation crashed (its mailbox is suspended)
	state    ChildState
	restarts int
	// incarnation is the number of the running incarnation, or of the
	// last one that ran (see ChildSpec.OnStart).
	incarnation int
	op          *stopOp // stop in progress
	removed     bool

	// exitPending: the child ended by itself and the exit has not been
	// handled yet (processExit). A deliberate stop consumes it.
	exitPending bool
	exitReason  error
}

// stopOp is a stop of one incarnation in progress.
type stopOp struct {
	pid        *actor.PID
	deliberate bool // the supervisor wants it stopped (else: crash/kill)
	forced     bool // Kill hook called / protoactor Stop sent after timeout
	timer      *time.Timer
	cbs        []func() // run when the incarnation has terminated
}

// job is a unit of the supervisor's sequential work. run must eventually
// call done exactly once (possibly later, from a Terminated or timer
// message). reject, if set, answers a job that can no longer run because
// the supervisor is shutting down.
type job struct {
	run    func(done func())
	reject func()
}

// Messages the supervisor sends itself: shutdownTimer when a child's
// Shutdown (or the abandon bound) has passed; restartTimer for the next
// restart round, by the backoff timer or at once (see restartPending). A
// restartTimer whose gen is not the current timerGen is stale.
type (
	shutdownTimer struct{ op *stopOp }
	restartTimer  struct{ gen uint64 }
)

// server is the supervisor actor.
type server struct {
	spec   Spec
	sh     *shared
	hist   *history // numbers our children's incarnations
	ctx    actor.Context
	system *actor.ActorSystem
	self   *actor.PID
	proc   actor.Process // our own process, to send us system messages
	reg    *registry     // our actor system's registry

	children   []*child
	restartLog []time.Time

	jobs    []job
	busy    bool
	pumping bool

	stopping bool // shutdown has begun
	selfStop bool // we stopped ourselves
	exitErr  error

	restartTimer *time.Timer
	timerGen     uint64
}

var _ actor.SupervisorStrategy = (*server)(nil)

func supervisorProps(spec Spec, sh *shared, hist *history) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return &server{spec: spec, sh: sh, hist: hist} })
}

// Receive implements actor.Actor.
func (s *server) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		s.ctx, s.system, s.self = ctx, ctx.ActorSystem(), ctx.Self()
		s.proc, _ = s.system.ProcessRegistry.Get(s.self)
		s.reg = registryOf(s.system)
		s.reg.supervisors.Store(s.self.Id, s.sh)
		s.enqueue(job{run: s.initialize})
	case *actor.Terminated:
		s.onTerminated(m.Who)
	case *actor.Stopping:
		s.onStopping()
	case *actor.Stopped:
		s.onStopped()
	case *shutdownTimer:
		s.onShutdownTimer(m.op)
	case *restartTimer:
		if m.gen == s.timerGen && !s.stopping {
			s.enqueue(job{run: func(done func()) { s.restartPending(done, true) }})
		}
	case *StartChild:
		s.admin(ctx, m.reply, func(finish func(Reply)) { finish(s.startChildReq(m.Spec)) })
	case *TerminateChild:
		s.admin(ctx, m.reply, func(finish func(Reply)) { s.terminateChildReq(m.Name, finish) })
	case *RestartChild:
		s.admin(ctx, m.reply, func(finish func(Reply)) { finish(s.restartChildReq(m.Name)) })
	case *DeleteChild:
		s.admin(ctx, m.reply, func(finish func(Reply)) { finish(s.deleteChildReq(m.Name)) })
	case *KillChild:
		// Not queued: a hung child must be killable while the supervisor
		// waits for something else.
		s.respond(ctx.Sender(), m.reply, s.killChildReq(m.Name, m.Reason))
	case *WhichChildren:
		s.respond(ctx.Sender(), m.reply, Reply{Children: s.which()})
	case *CountChildren:
		s.respond(ctx.Sender(), m.reply, Reply{Counts: s.count()})
	case *StopSupervisor:
		s.enqueue(job{run: func(done func()) { s.shutdown(nil, false, done) }})
	}
}

// HandleFailure implements actor.SupervisorStrategy: protoactor calls it
// (in the supervisor's goroutine) when a child panicked. It records the
// reason and stops the failed child; the OTP rules are applied when its
// *actor.Terminated arrives.
func (s *server) HandleFailure(_ *actor.ActorSystem, _ actor.Supervisor, who *actor.PID, _ *actor.RestartStatistics, reason, _ any) {
	c := s.byPID(who)
	if c == nil {
		// Not (or no longer) ours, e.g. a nested supervisor whose start
		// failed: make sure it ends.
		s.ctx.Stop(who)
		return
	}
	c.cell.record(toError(reason))
	c.failed = true
	if c.op != nil {
		s.ctx.Stop(who) // its stop may have been a message it cannot read now
		return
	}
	s.beginStop(c, false, nil)
}

// --- job queue ---

func (s *server) enqueue(j job) {
	s.jobs = append(s.jobs, j)
	s.pump()
}

func (s *server) pump() {
	if s.pumping {
		return
	}
	s.pumping = true
	defer func() { s.pumping = false }()
	for !s.busy && len(s.jobs) > 0 {
		j := s.jobs[0]
		s.jobs = s.jobs[1:]
		if s.stopping && j.reject != nil {
			j.reject()
			continue
		}
		s.busy = true
		j.run(s.jobDone)
	}
}

func (s *server) jobDone() {
	s.busy = false
	s.pump()
}

func (s *server) admin(ctx actor.Context, ch chan Reply, fn func(finish func(Reply))) {
	sender := ctx.Sender()
	s.enqueue(job{
		run: func(done func()) {
			fn(func(r Reply) {
				s.respond(sender, ch, r)
				done()
			})
		},
		reject: func() { s.respond(sender, ch, Reply{Err: ErrSupervisorStopped}) },
	})
}

func (s *server) respond(sender *actor.PID, ch chan Reply, r Reply) {
	switch {
	case ch != nil:
		ch <- r // buffered, one reply per request
	case sender != nil:
		s.ctx.Send(sender, &r)
	}
}

// --- lifecycle ---

func (s *server) initialize(done func()) {
	for _, cs := range s.spec.Children {
		s.children = append(s.children, &child{spec: cs, state: ChildStopped})
	}
	for _, c := range s.children {
		if err := s.startChild(c); err != nil {
			s.sh.initErr = fmt.Errorf("supervisor %s: start of child %q failed: %w", s.self.Id, c.spec.Name, err)
			s.shutdown(s.sh.initErr, false, done)
			return
		}
		s.publish(c, Started, nil, 0)
	}
	s.closeInit()
	done()
}

func (s *server) closeInit() {
	if !s.sh.initClosed {
		s.sh.initClosed = true
		close(s.sh.initDone)
	}
}

// shutdown stops all children in reverse declaration order, then ends the
// supervisor with reason. With escalate, a nested supervisor fails towards
// its parent instead.
func (s *server) shutdown(reason error, escalate bool, done func()) {
	if s.stopping {
		done()
		return
	}
	s.stopping = true
	s.cancelRestartTimer()
	s.rejectQueued()
	for _, c := range s.children {
		if c.pid == nil {
			c.state = ChildStopped
		}
	}
	s.stopSeq(s.reversed(s.children), func() {
		s.exitErr = reason
		if escalate && s.ctx.Parent() != nil {
			s.publishSelf(Escalated, reason, 0)
			// Fail: protoactor's mailbox recovers this and reports
			// *actor.Failure to the parent, which sees an abnormal exit.
			panic(reason)
		}
		s.selfStop = true
		s.ctx.Stop(s.self)
		done()
	})
}

func (s *server) rejectQueued() {
	jobs := s.jobs
	s.jobs = nil
	for _, j := range jobs {
		if j.reject != nil {
			j.reject()
		} else {
			s.jobs = append(s.jobs, j)
		}
	}
}

// onStopping handles *actor.Stopping. If we did not stop ourselves (a
// parent forced us, or someone called protoactor's Stop), protoactor is
// about to stop all children at once; we still bound each child's stop
// by its Shutdown so that the supervisor's own stop completes.
func (s *server) onStopping() {
	if s.selfStop {
		return
	}
	s.stopping = true
	s.cancelRestartTimer()
	s.rejectQueued()
	for _, c := range s.children {
		if c.pid != nil && c.op == nil {
			s.armStop(c, &stopOp{pid: c.pid, deliberate: true}, false)
		}
	}
}

func (s *server) onStopped() {
	s.cancelRestartTimer()
	for _, c := range s.children {
		if c.op != nil && c.op.timer != nil {
			c.op.timer.Stop()
		}
	}
	s.reg.supervisors.CompareAndDelete(s.self.Id, s.sh)
	if !s.sh.initClosed && s.sh.initErr == nil {
		s.sh.initErr = fmt.Errorf("supervisor %s: stopped during start: %w", s.self.Id, ErrSupervisorStopped)
	}
	s.sh.err = s.exitErr
	s.publishSelf(Stopped, s.exitErr, 0)
	s.closeInit()
	close(s.sh.done)
}

// --- starting ---

func (s *server) startChild(c *child) error {
	var props *actor.Props
	var sh *shared
	n := s.hist.next(c.spec.Name)
	err := safeCall("start "+c.spec.Name, func() error {
		if c.spec.nested != nil {
			if err := c.spec.nested.Validate(); err != nil {
				return err
			}
			sh = newShared()
			props = supervisorProps(*c.spec.nested, sh, s.hist.child(c.spec.Name))
			return nil
		}
		var err error
		if c.spec.StartIncarnation != nil {
			props, err = c.spec.StartIncarnation(n)
		} else {
			props, err = c.spec.Start()
		}
		return err
	})
	if err != nil {
		return err
	}
	if props == nil {
		return fmt.Errorf("start %s: StartFunc returned nil props", c.spec.Name)
	}
	cl := newCell(n)
	// See ChildSpec.FreshPIDs. Events and paths keep the child's name.
	name := c.spec.Name
	if c.spec.FreshPIDs && sh == nil && n > 1 {
		name = c.spec.Name + "#" + strconv.Itoa(n)
	}
	pid, err := s.ctx.SpawnNamed(props.Clone(actor.WithReceiverMiddleware(childMiddleware(cl))), name)
	if err != nil {
		return fmt.Errorf("spawn %s: %w", c.spec.Name, err)
	}
	// Like OTP's init/1, the child's *actor.Started handler completes
	// before the next child starts. (A panic there is a crash right after
	// the start.)
	<-cl.started
	if sh != nil {
		// A nested supervisor starts its children in its own goroutine;
		// waiting here cannot deadlock (it does not need our mailbox).
		<-sh.initDone
		if sh.initErr != nil {
			return sh.initErr
		}
	}
	c.pid, c.cell, c.isSup, c.failed, c.state = pid, cl, sh != nil, false, ChildRunning
	c.exitPending = false
	c.incarnation = n
	if c.spec.OnStart != nil {
		// A panic in the hook is a crash of the incarnation right after
		// its start, like a panic in its *actor.Started handler.
		err := safeCall("OnStart of "+c.spec.Name, func() error { c.spec.OnStart(pid, n); return nil })
		if err != nil {
			cl.record(err)
			s.beginStop(c, false, nil)
		}
	}
	return nil
}

// --- stopping ---

// stopSeq terminates cs one after another (deliberately), then calls then.
func (s *server) stopSeq(cs []*child, then func()) {
	var step func(i int)
	step = func(i int) {
		if i == len(cs) {
			then()
			return
		}
		s.terminate(cs[i], func() { step(i + 1) })
	}
	step(0)
}

// terminate stops c deliberately (joining a stop in progress) and calls cb
// once it has terminated. An unhandled exit of c is consumed.
func (s *server) terminate(c *child, cb func()) {
	wrapped := func() {
		c.exitPending = false
		cb()
	}
	switch {
	case c.pid == nil:
		wrapped()
	case c.op != nil:
		c.op.cbs = append(c.op.cbs, wrapped)
	default:
		s.beginStop(c, true, wrapped)
	}
}

func (s *server) beginStop(c *child, deliberate bool, cb func()) {
	op := &stopOp{pid: c.pid, deliberate: deliberate}
	if cb != nil {
		op.cbs = append(op.cbs, cb)
	}
	s.armStop(c, op, true)
}

// armStop installs op on c and applies c's Shutdown: BrutalKill forces at
// once; a timeout arms a timer; Infinity just waits. If send is set the
// stop request is sent (else protoactor sends it).
func (s *server) armStop(c *child, op *stopOp, send bool) {
	c.op = op
	switch sd := c.spec.shutdown(); sd {
	case BrutalKill:
		s.force(c, op)
	case Infinity:
		if send {
			s.gracefulStop(c)
		}
	default:
		if send {
			s.gracefulStop(c)
		}
		op.timer = s.after(time.Duration(sd), &shutdownTimer{op: op})
	}
}

// gracefulStop asks c to stop: one of our supervisors gets StopSupervisor
// (ordered shutdown of its own children), anything else protoactor's Stop
// (it receives *actor.Stopping).
func (s *server) gracefulStop(c *child) {
	if c.isSup && !c.failed {
		s.ctx.Send(c.pid, &StopSupervisor{})
		return
	}
	s.ctx.Stop(c.pid)
}

// force stops c without waiting any longer: protoactor Stop plus the Kill
// hook, then a bounded wait before abandoning it.
func (s *server) force(c *child, op *stopOp) {
	op.forced = true
	if op.timer != nil {
		op.timer.Stop()
	}
	s.ctx.Stop(op.pid)
	if c.spec.Kill != nil {
		_ = safeCall("kill "+c.spec.Name, func() error { c.spec.Kill(op.pid); return nil })
	}
	op.timer = s.after(abandonAfter, &shutdownTimer{op: op})
}

func (s *server) onShutdownTimer(op *stopOp) {
	for _, c := range s.children {
		if c.op != op {
			continue
		}
		if !op.forced {
			s.force(c, op)
		} else {
			s.abandon(c, op)
		}
		return
	}
}

// abandon gives up on an incarnation that did not terminate after being
// forced: it is frozen if it ever returns to its mailbox, removed from the
// ProcessRegistry (so its name can be reused) and reported to ourselves as
// terminated, which also removes it from protoactor's list of our
// children.
func (s *server) abandon(c *child, op *stopOp) {
	if c.cell != nil {
		c.cell.abandoned.Store(true)
	}
	s.system.ProcessRegistry.Remove(op.pid)
	s.publish(c, Abandoned, fmt.Errorf("child %s did not terminate within %v after it was killed", op.pid.Id, abandonAfter), 0)
	s.proc.SendSystemMessage(s.self, &actor.Terminated{Who: op.pid})
}

func (s *server) onTerminated(who *actor.PID) {
	s.reg.cells.Delete(who)
	c := s.byPID(who)
	if c == nil {
		return
	}
	op := c.op
	c.op = nil
	if op != nil && op.timer != nil {
		op.timer.Stop()
	}
	reason := c.cell.get()
	c.pid, c.cell, c.failed = nil, nil, false
	if op != nil && op.deliberate {
		r := ErrShutdown
		if op.forced {
			r = ErrKilled
		}
		c.state = ChildStopped
		s.publish(c, Stopped, r, 0)
	} else {
		if reason == nil && op != nil && op.forced {
			reason = ErrKilled
		}
		s.publish(c, Exited, reason, 0)
		c.exitPending, c.exitReason = true, reason
		if shouldRestart(c.spec.Restart, reason) && !s.stopping {
			c.state = ChildRestarting
		} else {
			c.state = ChildStopped
		}
	}
	if op != nil {
		for _, cb := range op.cbs {
			cb()
		}
	}
	if c.exitPending && c.pid == nil && !s.stopping {
		s.enqueue(job{run: func(done func()) { s.processExit(c, done) }})
	}
}

// --- helpers ---

func (s *server) byPID(pid *actor.PID) *child {
	for _, c := range s.children {
		if c.pid == pid { // pointer identity: one incarnation
			return c
		}
	}
	return nil
}

func (s *server) find(name string) *child {
	for _, c := range s.children {
		if c.spec.Name == name {
			return c
		}
	}
	return nil
}

func (s *server) remove(c *child) {
	c.removed = true
	for i, x := range s.children {
		if x == c {
			s.children = append(s.children[:i:i], s.children[i+1:]...)
			return
		}
	}
}

func (s *server) reversed(cs []*child) []*child {
	out := make([]*child, 0, len(cs))
	for i := len(cs) - 1; i >= 0; i-- {
		out = append(out, cs[i])
	}
	return out
}

func (s *server) after(d time.Duration, msg any) *time.Timer {
	system, self := s.system, s.self
	return time.AfterFunc(d, func() { system.Root.Send(self, msg) })
}

func (s *server) publish(c *child, kind EventKind, reason error, restarts int) {
	publish(s.system, s.self.Id+"/"+c.spec.Name, kind, reason, restarts)
}

func (s *server) publishSelf(kind EventKind, reason error, restarts int) {
	publish(s.system, s.self.Id, kind, reason, restarts)
}
