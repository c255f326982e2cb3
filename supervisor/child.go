package supervisor

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// cell holds what one incarnation of a child shares with its supervisor:
// the exit reason (written by the child, read by the supervisor on
// *actor.Terminated, which may overtake any user message the child sent)
// and the abandoned flag.
type cell struct {
	incarnation int           // its number, see ChildSpec.OnStart
	started     chan struct{} // closed when *actor.Started has been handled
	startOnce   sync.Once
	mu          sync.Mutex
	reason      error
	set         bool
	abandoned   atomic.Bool
}

func newCell(incarnation int) *cell {
	return &cell{incarnation: incarnation, started: make(chan struct{})}
}

// record sets the exit reason unless one was recorded before.
func (c *cell) record(reason error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.set {
		c.reason, c.set = reason, true
	}
}

func (c *cell) get() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

// Exit ends the calling child actor with reason: nil is a normal exit,
// ErrShutdown (or an error wrapping it) a shutdown exit, anything else an
// abnormal exit. The actor is stopped (it still receives *actor.Stopping)
// and its supervisor applies the child's restart type to the reason.
// Exit must be called from the actor's Receive. For an actor that is not
// supervised by this package it just stops the actor.
func Exit(ctx actor.Context, reason error) {
	if v, ok := registryOf(ctx.ActorSystem()).cells.Load(ctx.Self()); ok {
		v.(*cell).record(reason)
	}
	ctx.Stop(ctx.Self())
}

// childMiddleware wraps every incarnation of a child: it registers the
// cell, turns panics into *PanicError exit reasons and freezes an
// abandoned incarnation.
func childMiddleware(cl *cell) actor.ReceiverMiddleware {
	return func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(ctx actor.ReceiverContext, env *actor.MessageEnvelope) {
			if cl.abandoned.Load() {
				freeze()
			}
			if _, ok := env.Message.(*actor.Started); ok {
				// Registered here, not by the supervisor: Exit may be
				// called from this very handler. The supervisor removes
				// the entry when it handles the *actor.Terminated.
				registryOf(ctx.ActorSystem()).cells.Store(ctx.Self(), cl)
				defer cl.startOnce.Do(func() { close(cl.started) })
			}
			invoke(cl, next, ctx, env)
			if cl.abandoned.Load() {
				freeze()
			}
		}
	}
}

func invoke(cl *cell, next actor.ReceiverFunc, ctx actor.ReceiverContext, env *actor.MessageEnvelope) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		reason := panicReason(r)
		cl.record(reason)
		switch env.Message.(type) {
		case *actor.Stopping, *actor.Stopped:
			// Let the stop complete; the reason is recorded.
			return
		}
		// protoactor's mailbox recovers this and sends *actor.Failure to
		// the supervisor.
		panic(reason)
	}()
	next(ctx, env)
}

func panicReason(r any) error {
	if e, ok := r.(*EscalationError); ok {
		return e
	}
	if e, ok := r.(*PanicError); ok {
		return e
	}
	return &PanicError{Value: r, Stack: debug.Stack()}
}

// freeze ends the mailbox goroutine of an abandoned incarnation without
// letting protoactor finish its stop: its mailbox stays "running" and is
// never scheduled again, so the zombie never sends *actor.Terminated and
// never removes from the ProcessRegistry a newer incarnation that reuses
// its name. (This relies on the default goroutine-per-run dispatcher.)
func freeze() {
	runtime.Goexit()
}

// toError converts a failure reason from protoactor into an error.
func toError(r any) error {
	switch v := r.(type) {
	case nil:
		return &PanicError{Value: nil}
	case error:
		return v
	default:
		return &PanicError{Value: v}
	}
}

// safeCall runs f, turning a panic into an error.
func safeCall(what string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: %w", what, &PanicError{Value: r, Stack: debug.Stack()})
		}
	}()
	return f()
}
