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
	st     *stageRun
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

func (o *outcomes) Results(rs []troupe.Result) { o.send(backendResults{o.st.toResults(rs)}) }
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

// toResults lays a Backend's outcomes out as a worker reports them to its distributor, in
// slices the distributor handed back from earlier results when it has some (see takeCounts,
// takeSpare).
func (st *stageRun) toResults(rs []troupe.Result) *results {
	n := 0
	for i := range rs {
		if rs[i].Err == nil {
			n += len(rs[i].Outputs)
		}
	}
	res := &results{Counts: st.takeCounts(len(rs))}
	if st.combineFold == nil {
		res.Outputs = st.takeSpare(n)
	}
	if res.Outputs == nil {
		res.Outputs = make([]troupe.Record, 0, n)
	}
	for i := range rs {
		r := &rs[i]
		if r.Err != nil {
			res.Errors = append(res.Errors, recordError{Index: uint32(i), Message: r.Err.Error()})
			res.Counts = append(res.Counts, 0)
			continue
		}
		res.Counts = append(res.Counts, uint32(len(r.Outputs)))
		res.Outputs = appendRecords(res.Outputs, r.Outputs)
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

	// queue holds the work received and not yet submitted, as the distributor sent it: qoff
	// records of the front slice are submitted already; queued counts the rest.
	queue  deque[[]*envelope]
	qoff   int
	queued int
	// spent is a work slice whose records are all submitted (the backend has copies of them):
	// it goes back to the distributor with the next results, for its next work (results.recs).
	spent []*envelope
	// submitted holds the submissions whose records are not all reported yet, oldest first
	// (the front one less the records reported of it): a record's submission time is its
	// batch's, so the books cost nothing per record. unreported counts their records.
	submitted  deque[submission]
	unreported int
	grants     int
	// lastResults is when the backend last reported results (since the run started).
	lastResults time.Duration
	// lastProgress is when the backend last reported results or granted credit, or when work
	// came to an idle worker: what a hung backend is measured from (checkTimeout).
	lastProgress time.Duration
	ticker       *tick.Ticker
	closed       bool
}

// submission is a batch of records handed to the backend together: when (since the run
// started), and how many of them are still unreported.
type submission struct {
	at time.Duration
	n  int
}

func (w *backendWorker) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		w.token = tokens.Add(1)
		w.lastResults = w.run.now()
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
		if len(m.recs) == 0 {
			return
		}
		if w.queued == 0 && w.unreported == 0 {
			w.lastProgress = w.run.now() // the wait for the backend starts now
		}
		w.queue.pushBack(m.recs)
		w.queued += len(m.recs)
		w.submit(ctx)
	case backendGrant:
		w.grants += m.n
		w.lastProgress = w.run.now()
		w.submit(ctx)
	case backendResults:
		n := len(m.res.Counts)
		if n > w.unreported {
			w.die(ctx, fmt.Errorf("backend reported %d outcomes for %d records", n, w.unreported), false)
			return
		}
		w.reported(n)
		w.lastResults = w.run.now()
		w.lastProgress = w.lastResults
		w.st.combine(m.res, nil)
		if m.res.recs == nil && w.spent != nil {
			m.res.recs, w.spent = w.spent, nil
		}
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
	n := min(w.grants, w.queued)
	if n == 0 {
		return
	}
	tasks := make([]troupe.Task, n)
	for i := 0; i < n; {
		front := *w.queue.front()
		recs := front[w.qoff:min(len(front), w.qoff+n-i)]
		for j, r := range recs {
			t := &tasks[i+j]
			setRecord(&t.Record, &r.Record) // field by field: see setRecord
			t.Attempt = int(r.Attempt) + 1
		}
		i += len(recs)
		if w.qoff += len(recs); w.qoff == len(front) {
			w.queue.popFront()
			w.qoff = 0
			w.spent = front
		}
	}
	w.queued -= n
	w.grants -= n
	w.submitted.pushBack(submission{at: w.run.now(), n: n})
	w.unreported += n
	if err := w.backend.Submit(tasks); err != nil {
		w.die(ctx, fmt.Errorf("submit: %w", err), !troupe.IsBackendFault(err))
	}
}

// reported takes n reported records (no more than are unreported) off the submissions.
func (w *backendWorker) reported(n int) {
	w.unreported -= n
	for n > 0 {
		b := w.submitted.front()
		if b.n > n {
			b.n -= n
			return
		}
		n -= b.n
		w.submitted.popFront()
	}
}

// checkTimeout fails the worker when it is hung. A record submitted and unreported past the
// timeout (counted from its submission, or from the report of the record before it, if later)
// is charged a failed attempt: it may be what hangs the backend. A backend that holds no record
// but grants no credit while records wait for it, for the timeout since its last results or
// grant, is hung by its own fault: its records go back uncharged.
func (w *backendWorker) checkTimeout(ctx actor.Context) {
	t := w.st.cfg.Timeout
	now := w.run.now()
	if w.unreported == 0 {
		if w.queued > 0 && w.grants == 0 && now-w.lastProgress > t {
			w.die(ctx, fmt.Errorf("hung: no results and no credit for %s while %d records waited for credit; worker killed", t, w.queued), false)
		}
		return
	}
	start := max(w.submitted.front().at, w.lastResults)
	if now-start > t {
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
