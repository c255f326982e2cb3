package actors

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/internal/callctx"
	"github.com/troupe-dev/troupe/supervisor"
)

// flushEvery bounds how long a worker keeps finished outcomes before reporting them, so that a
// distributor sees progress (and low rates see low latency) while a long batch is under way.
const flushEvery = 5 * time.Millisecond

var tokens atomic.Uint64

// funcWorker runs a stage's Func on each record, in its own goroutine, in order.
type funcWorker struct {
	run   *run
	st    *stageRun
	index int
	token uint64
	wd    *watchdog

	res       *results
	lastFlush time.Time
	// info is what the Func is told about its call (troupe.Attempt, troupe.StageName), through
	// cctx; the worker updates it before each call.
	info callctx.Info
	cctx context.Context
	// fanout is how many outputs per input the last results held, rounded up: the next
	// results make room for that many, so a splitter's outputs are not copied as they grow.
	fanout  int
	scratch combineScratch
}

func (w *funcWorker) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		w.token = tokens.Add(1)
		w.info.Stage = w.st.cfg.Name
		w.cctx = callctx.With(w.run.ctx, &w.info)
		if t := w.st.cfg.Timeout; t > 0 {
			w.wd = startWatchdog(w, t)
		}
		ctx.Send(w.st.distPID, workerUp{index: w.index, token: w.token, pid: ctx.Self()})
	case work:
		if m.token != w.token {
			return // meant for a previous incarnation (see work): the distributor requeues it
		}
		w.process(ctx, m.recs)
	case *actor.Stopping:
		w.wd.stop()
		// Batches still in the mailbox go back to the distributor's queue, uncharged.
		ctx.Send(w.st.distPID, workerDown{index: w.index, token: w.token, reason: supervisor.ErrShutdown})
	}
}

func (w *funcWorker) process(ctx actor.Context, recs []*envelope) {
	w.res = w.newResults(len(recs))
	w.lastFlush = time.Now()
	b := batchRun{look: clockEvery - 1}
	p := w.runBatch(ctx, recs, &b)
	if w.wd.hasFired() {
		// The watchdog gave this worker up while the Func ran past its timeout: the
		// distributor has taken its records back. It reads none of them again and reports
		// nothing (it would be stale); the supervisor has abandoned it.
		w.res = nil
		return
	}
	if p != nil {
		// The worker dies; the records it held are redelivered and this one is charged.
		w.report(ctx, 0)
		ctx.Send(w.st.distPID, workerDown{index: w.index, token: w.token, reason: p, charge: true, culprit: ptr(idOf(recs[b.i]))})
		supervisor.Exit(ctx, p)
		return
	}
	if w.res != nil { // nil when the last record was just reported
		w.res.recs = recs // read no more: the distributor may use it for its next work
	}
	w.report(ctx, 0)
}

// batchRun is where a worker stands in a batch: the record it runs (i), the record after which
// it next looks at the clock, the first record since its last report.
type batchRun struct{ i, look, since int }

// runBatch runs the records of recs from b.i on, under one recover: it returns the panic of
// record b.i, if one panicked, or nil once every record ran or the watchdog fired.
func (w *funcWorker) runBatch(ctx actor.Context, recs []*envelope, b *batchRun) (p *supervisor.PanicError) {
	defer func() {
		if v := recover(); v != nil {
			p = &supervisor.PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	for ; b.i < len(recs); b.i++ {
		w.st.lend(&w.scratch, &w.info, w.cctx)
		outs, err := w.call(recs[b.i])
		if w.wd.hasFired() {
			return nil
		}
		if err != nil {
			w.res.Errors = append(w.res.Errors, recordError{Index: uint32(len(w.res.Counts)), Message: err.Error()})
			w.res.Counts = append(w.res.Counts, 0)
		} else {
			w.res.Counts = append(w.res.Counts, uint32(len(outs)))
			w.st.collect(w.res, recs[b.i], outs, &w.scratch)
		}
		// Reading the clock costs as much as a cheap stage: look after a few records, and then
		// as often as the time they took says is needed.
		if i := b.i; i == b.look {
			el := time.Since(w.lastFlush)
			if el >= flushEvery {
				w.report(ctx, len(recs)-i-1)
				b.since, b.look = i+1, i+clockEvery
			} else {
				b.look = i + nextLook(el, i+1-b.since)
			}
		}
	}
	return nil
}

// clockEvery is how many records a worker runs before it first looks at the clock for
// flushEvery, and after each report; maxLook bounds how many it runs between two looks.
const (
	clockEvery = 8
	maxLook    = 256
)

// nextLook is how many records to run before the next look at the clock, when done records took
// el since the last report: half the records that would, at that pace, reach flushEvery.
func nextLook(el time.Duration, done int) int {
	perRecord := max(el/time.Duration(done), 1)
	return int(max(1, min(maxLook, (flushEvery-el)/perRecord/2)))
}

// maxOutputsRoom bounds the outputs a worker makes room for ahead of a batch (see fanout).
const maxOutputsRoom = 1 << 14

// newResults makes results with room for n inputs and their outputs at the last fan-out (none
// when the stage combines: its outputs are folded as they come, see collect).
func (w *funcWorker) newResults(n int) *results {
	room := n
	if w.fanout > 1 {
		room = max(n, min(n*w.fanout, maxOutputsRoom))
	}
	res := &results{Counts: w.st.takeCounts(n)}
	if w.st.combineFold != nil {
		return res
	}
	if res.Outputs = w.st.takeSpare(room); res.Outputs == nil {
		res.Outputs = make([]troupe.Record, 0, room)
	}
	return res
}

// call runs the stage on one record, under the record's timeout. A panic goes on up to
// runBatch, which recovers it for the whole batch (a recover per record cost more than a
// cheap stage's record).
func (w *funcWorker) call(r *envelope) (outs []troupe.Record, err error) {
	// What the call needs of the envelope is read before the watchdog is armed: once it may
	// fire, the envelope may go back to the distributor (see watchdog).
	w.info.Attempt = int(r.Attempt) + 1
	rec := userCopy(r)
	rctx := w.cctx
	if t := w.st.cfg.Timeout; t > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(rctx, t)
		defer cancel()
		w.wd.arm(r)
		defer w.wd.disarm()
	}
	outs, err = w.st.cfg.Func(rctx, rec)
	if err != nil && errors.Is(err, context.DeadlineExceeded) && rctx.Err() != nil {
		err = fmt.Errorf("timeout: record took longer than %s: %w", w.st.cfg.Timeout, err)
	}
	return outs, err
}

// report sends the outcomes gathered so far to the distributor; left is how many records of
// the batch are still to run.
func (w *funcWorker) report(ctx actor.Context, left int) {
	if w.res == nil || len(w.res.Counts) == 0 {
		return
	}
	if in := len(w.res.Counts); in > 0 {
		w.fanout = (len(w.res.Outputs) + in - 1) / in
	}
	w.st.combine(w.res, &w.scratch)
	ctx.Send(w.st.distPID, workerResults{index: w.index, token: w.token, res: w.res})
	w.res = nil // the next batch makes its own
	if left > 0 {
		w.res = w.newResults(left)
	}
	w.lastFlush = time.Now()
}

// userCopy is the record user code (a Func, a ReduceFunc) is given: a copy, with its own Meta map,
// so that setting a field or a metadata entry of its input (which the contract forbids) cannot
// change the record the runtime keeps for redelivery. Payload's bytes are shared: writing into
// them stays the stage's fault (see troupe.Record). A nil Meta costs nothing.
func userCopy(r *envelope) troupe.Record {
	rec := r.Record
	if rec.Meta != nil {
		rec.Meta = maps.Clone(rec.Meta)
	}
	return rec
}

func ptr[T any](v T) *T { return &v }

// watchdog notices a Func that ignores its context and runs past the record's timeout. It cannot
// stop the goroutine (nothing in Go can); it charges the record, has the worker killed and
// replaced, and the worker, when the Func returns at last, stops there: it reads no other
// record of its batch (the distributor has taken them back, see distributor.emit) and reports
// nothing.
//
// armed settles the race between a Func that returns and the watchdog that gives up on it: the
// worker arms it with the time the record started, and disarms it (back to 0) when the Func
// returns, if it is still armed with that time; the watchdog fires only by turning that time
// into wdFired. Exactly one of them wins: a worker that disarmed in time goes on, and one that
// did not sees wdFired. The time names the record: the watchdog cannot blame a record for the
// time its predecessor took.
type watchdog struct {
	w       *funcWorker
	timeout time.Duration
	armed   atomic.Int64 // UnixNano when the current record started; 0 when idle; wdFired
	since   int64        // what the worker armed it with (the worker's goroutine only)
	current atomic.Pointer[envelope]
	done    chan struct{}
}

const wdFired = -1

func startWatchdog(w *funcWorker, timeout time.Duration) *watchdog {
	wd := &watchdog{w: w, timeout: timeout, done: make(chan struct{})}
	tick := min(max(timeout/4, 5*time.Millisecond), time.Second)
	grace := min(max(timeout/10, 50*time.Millisecond), 5*time.Second)
	go func() {
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-wd.done:
				return
			case <-t.C:
			}
			since := wd.armed.Load()
			if since <= 0 || time.Since(time.Unix(0, since)) < timeout+grace {
				continue
			}
			r := wd.current.Load() // stored before armed was
			if !wd.armed.CompareAndSwap(since, wdFired) {
				continue
			}
			wd.fire(r)
			return
		}
	}()
	return wd
}

func (wd *watchdog) fire(r *envelope) {
	w := wd.w
	reason := fmt.Errorf("timeout: record %q ran past %s and ignored cancellation; worker killed", r.Key, wd.timeout)
	w.run.log.Warn("worker hung", "stage", w.st.cfg.Name, "worker", w.index, "key", r.Key, "timeout", wd.timeout)
	w.run.send(w.st.distPID, workerDown{index: w.index, token: w.token, reason: reason, charge: true, culprit: ptr(idOf(r))})
	if sup := w.st.workersPID.Load(); sup != nil {
		w.run.send(sup, &supervisor.KillChild{Name: workerName(w.index), Reason: reason})
	}
}

func (wd *watchdog) arm(r *envelope) {
	wd.current.Store(r)
	wd.since = max(time.Now().UnixNano(), 1)
	wd.armed.CompareAndSwap(0, wd.since) // never out of wdFired
}

func (wd *watchdog) disarm() {
	wd.armed.CompareAndSwap(wd.since, 0) // fails when the watchdog fired first
}

// hasFired reports whether the watchdog gave the worker up (nil: no watchdog, never).
func (wd *watchdog) hasFired() bool { return wd != nil && wd.armed.Load() == wdFired }

func (wd *watchdog) stop() {
	if wd == nil {
		return
	}
	select {
	case <-wd.done:
	default:
		close(wd.done)
	}
}
