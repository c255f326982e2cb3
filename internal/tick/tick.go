// Package tick sends an actor a message at a steady interval: the clock of the actors that
// watch for something that fails to happen (a backend that stops answering, a node that stops
// sending heartbeats). An actor cannot wait on a timer itself; a goroutine sends it the tick.
package tick

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Ticker sends its message to its actor every interval until stopped.
type Ticker struct{ stop chan struct{} }

// Start sends msg to pid in sys every interval, from a goroutine of its own, until Stop.
func Start(sys *actor.ActorSystem, pid *actor.PID, every time.Duration, msg any) *Ticker {
	t := &Ticker{stop: make(chan struct{})}
	go func(stop <-chan struct{}) {
		c := time.NewTicker(every)
		defer c.Stop()
		for {
			select {
			case <-stop:
				return
			case <-c.C:
				sys.Root.Send(pid, msg)
			}
		}
	}(t.stop)
	return t
}

// Stop ends the ticks; a tick already sent may still arrive. It may be called more than once,
// and on a nil Ticker.
func (t *Ticker) Stop() {
	if t != nil && t.stop != nil {
		close(t.stop)
		t.stop = nil
	}
}
