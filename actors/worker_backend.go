package actors

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/troupe-dev/troupe/internal/tick"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/supervisor"
)

// backendCloseTimeout bounds Backend.Close when a worker stops gracefully; backendKillTimeout
// when it dies (a timeout, a crash, a limit crossed): a process known to be broken gets no grace
// to finish what it holds.
const (
	backendCloseTimeout = 5 * time.Second
	backendKillTimeout  = 100 * time.Millisecond
)

// Messages from a Backend (any goroutine) to its worker actor.
type (
	backendResults struct{ res *results }
	backendGrant   struct{ n int }
	backendFail    struct{ err error }
	backendTick    struct{}
)

// outcomes is the Outcomes a Backend reports to. It buffers what arrives before the worker actor
// exists (the backend starts first, so that a failed start is a failed start) and hands it over
// when the actor attaches.
type outcomes struct {
	system *actor.ActorSystem
	mu     sync.Mutex
	pid    *actor.PID
	early  []any
	failed bool
}

func (o *outcomes) send(m any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pid == nil {
		o.early = append(o.early, m)
		return
	}
	o.system.Root.Send(o.pid, m)
}

func (o *outcomes) attach(pid *actor.PID) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.pid = pid
	for _, m := range o.early {
		o.system.Root.Send(pid, m)
	}
	o.early = nil
}

func (o *outcomes) Results(rs []troupe.Result) { o.send(backendResults{toResults(rs)}) }
func (o *outcomes) Grant(n int)                { o.send(backendGrant{n}) }
func (o *outcomes) Fail(err error) {
	o.mu.Lock()
	first := !o.failed
	o.failed = true
	o.mu.Unlock()
	if first {
		o.send(backendFail{err})
	}
}

// toResults lays a Backend's outcomes out as a worker reports them to its distributor.
func toResults(rs []troupe.Result) *results {
	n := 0
	for _, r := range rs {
		if r.Err == nil {
			n += len(r.Outputs)
		}
	}
	res := &results{Counts: make([]uint32, len(rs)), Outputs: make([]troupe.Record, 0, n)}
	for i, r := range rs {
		if r.Err != nil {
			res.Errors = append(res.Errors, recordError{Index: uint32(i), Message: r.Err.Error()})
			continue
		}
		res.Counts[i] = uint32(len(r.Outputs))
		res.Outputs = append(res.Outputs, r.Outputs...)
	}
	return res
}

// backendWorker feeds a Backend within its grants and relays its outcomes to the distributor.
type backendWorker struct {
	run     *run
	st      *stageRun
	index   int
	token   uint64
	backend troupe.Backend
	out     *outcomes

	queue       deque[*envelope] // received, not yet submitted
	submitted   deque[time.Time] // when each unreported record was submitted
	grants      int
	lastResults time.Time
	// lastProgress is when the backend last reported results or granted credit, or when work
	// came to an idle worker: what a hung backend is measured from (checkTimeout).
	lastProgress time.Time
	ticker       *tick.Ticker
	closed       bool
}

func (w *backendWorker) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		w.token = tokens.Add(1)
		w.lastResults = time.Now()
		w.lastProgress = w.lastResults
		ctx.Send(w.st.distPID, workerUp{index: w.index, token: w.token, pid: ctx.Self()})
		w.out.attach(ctx.Self())
		if t := w.st.cfg.Timeout; t > 0 {
			w.ticker = tick.Start(ctx.ActorSystem(), ctx.Self(), min(max(t/4, 5*time.Millisecond), time.Second), backendTick{})
		}
	case work:
		if m.token != w.token {
			return // meant for a previous incarnation (see work): the distributor requeues it
		}
		if w.queue.len() == 0 && w.submitted.len() == 0 {
			w.lastProgress = time.Now() // the wait for the backend starts now
		}
		for _, r := range m.recs {
			w.queue.pushBack(r)
		}
		w.submit(ctx)
	case backendGrant:
		w.grants += m.n
		w.lastProgress = time.Now()
		w.submit(ctx)
	case backendResults:
		n := len(m.res.Counts)
		if n > w.submitted.len() {
			w.die(ctx, fmt.Errorf("backend reported %d outcomes for %d records", n, w.submitted.len()), false)
			return
		}
		for range n {
			w.submitted.popFront()
		}
		w.lastResults = time.Now()
		w.lastProgress = w.lastResults
		w.st.combine(m.res, nil)
		ctx.Send(w.st.distPID, workerResults{index: w.index, token: w.token, res: m.res})
	case backendFail:
		w.die(ctx, m.err, !troupe.IsBackendFault(m.err))
	case backendTick:
		w.checkTimeout(ctx)
	case *actor.Stopping:
		w.ticker.Stop()
		ctx.Send(w.st.distPID, workerDown{index: w.index, token: w.token, reason: supervisor.ErrShutdown})
		w.close(backendCloseTimeout)
	}
}

func (w *backendWorker) submit(ctx actor.Context) {
	n := min(w.grants, w.queue.len())
	if n == 0 {
		return
	}
	tasks := make([]troupe.Task, n)
	now := time.Now()
	for i := range tasks {
		r := w.queue.popFront()
		tasks[i] = troupe.Task{Record: r.Record, Attempt: int(r.Attempt) + 1}
		w.submitted.pushBack(now)
	}
	w.grants -= n
	if err := w.backend.Submit(tasks); err != nil {
		w.die(ctx, fmt.Errorf("submit: %w", err), !troupe.IsBackendFault(err))
	}
}

// checkTimeout fails the worker when it is hung. A record submitted and unreported past the
// timeout (counted from its submission, or from the report of the record before it, if later)
// is charged a failed attempt: it may be what hangs the backend. A backend that holds no record
// but grants no credit while records wait for it, for the timeout since its last results or
// grant, is hung by its own fault: its records go back uncharged.
func (w *backendWorker) checkTimeout(ctx actor.Context) {
	t := w.st.cfg.Timeout
	if w.submitted.len() == 0 {
		if w.queue.len() > 0 && w.grants == 0 && time.Since(w.lastProgress) > t {
			w.die(ctx, fmt.Errorf("hung: no results and no credit for %s while %d records waited for credit; worker killed", t, w.queue.len()), false)
		}
		return
	}
	start := w.submitted.at(0)
	if w.lastResults.After(start) {
		start = w.lastResults
	}
	if time.Since(start) > t {
		w.die(ctx, fmt.Errorf("timeout: record ran past %s; worker killed", t), true)
	}
}

// die reports the worker's end to the distributor, kills the backend and exits abnormally, so
// that the supervisor restarts it by the stage's policy. Without charge (the backend's own
// fault), the distributor counts it towards maxOwnFaults.
func (w *backendWorker) die(ctx actor.Context, err error, charge bool) {
	ctx.Send(w.st.distPID, workerDown{index: w.index, token: w.token, reason: err, charge: charge})
	w.ticker.Stop()
	w.close(backendKillTimeout)
	supervisor.Exit(ctx, err)
}

func (w *backendWorker) close(within time.Duration) {
	if w.closed {
		return
	}
	w.closed = true
	cctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := w.backend.Close(cctx); err != nil {
		w.run.log.Warn("closing backend", "stage", w.st.cfg.Name, "worker", w.index, "error", err)
	}
}

// failedStart is a worker whose Backend failed to start for a reason that may pass (its process
// died before it was ready, the startup deadline passed, it refused its configuration): a worker
// that exits at once with the start's error, so that the supervisor restarts it by the stage's
// restart policy like any crash. Returning the error from the child's start instead would abort
// the whole run when it happens while the tree starts (OTP's start semantics).
func failedStart(err error) *actor.Props {
	return actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*actor.Started); ok {
			supervisor.Exit(ctx, fmt.Errorf("start: %w", err))
		}
	})
}
