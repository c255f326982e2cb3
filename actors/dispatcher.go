package actors

import (
	"sync"
	"sync/atomic"
)

// dispatcher runs the run's actors' mailboxes on goroutines it keeps. protoactor's default
// dispatcher starts a new goroutine each time a mailbox has work; a new goroutine starts with a
// small stack, and the runtime's actors (a distributor handling a batch, a worker running one)
// grow it again at every batch: a quarter of the CPU of a small-record run went to copying
// stacks. Here a goroutine that has run a mailbox waits a while for the next one, so the common
// case reuses a grown stack. Schedule never queues work behind a busy goroutine: when no
// goroutine is idle it starts one, so an actor blocked in user code cannot delay another. Idle
// goroutines wait until the run ends (close): there are never more of them than the run has
// actors, and a timer per wait cost more than it saved.
type dispatcher struct {
	throughput int
	work       chan func() // unbuffered: a send succeeds only when an idle goroutine takes it
	done       chan struct{}
	closeOnce  sync.Once
	started    atomic.Int64 // goroutines started, for tests
	idle       atomic.Int32 // goroutines waiting for work, for tests
}

func newDispatcher(throughput int) *dispatcher {
	return &dispatcher{throughput: throughput, work: make(chan func()), done: make(chan struct{})}
}

func (d *dispatcher) Throughput() int { return d.throughput }

func (d *dispatcher) Schedule(fn func()) {
	select {
	case d.work <- fn:
	default:
		d.started.Add(1)
		go d.loop(fn)
	}
}

func (d *dispatcher) loop(fn func()) {
	for {
		fn()
		d.idle.Add(1)
		select {
		case fn = <-d.work:
			d.idle.Add(-1)
		case <-d.done:
			d.idle.Add(-1)
			return
		}
	}
}

// close lets the idle goroutines exit at once; a goroutine running a mailbox exits when it is done.
func (d *dispatcher) close() { d.closeOnce.Do(func() { close(d.done) }) }
