package actors

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/troupe-dev/troupe"
)

// hostileBackend answers records like fakeBackend, but its first incarnation (per worker) can
// withhold credit, never answer, or report a fault of its own.
type hostileBackend struct {
	out    troupe.Outcomes
	in     chan []troupe.Task
	done   chan struct{}
	once   sync.Once
	silent bool // never answers
	credit bool // returns credit for what it reports
	fault  bool // reports a troupe.BackendFault instead of its first answer
}

func (b *hostileBackend) loop() {
	for {
		select {
		case <-b.done:
			return
		case recs := <-b.in:
			if b.silent {
				continue
			}
			if b.fault {
				b.out.Fail(backendFault{})
				<-b.done
				return
			}
			for _, r := range recs {
				outs, _ := upper(context.Background(), r.Record)
				b.out.Results([]troupe.Result{{Outputs: outs}})
				if b.credit {
					b.out.Grant(1)
				}
			}
		}
	}
}

func (b *hostileBackend) Submit(recs []troupe.Task) error {
	select {
	case b.in <- recs:
		return nil
	case <-b.done:
		return errors.New("closed")
	}
}

func (b *hostileBackend) Close(context.Context) error {
	b.once.Do(func() { close(b.done) })
	return nil
}

type backendFault struct{}

func (backendFault) Error() string      { return "protocol error: answered a record twice" }
func (backendFault) BackendFault() bool { return true }

// misbehaviour is how a hostileBackend's first incarnation misbehaves.
type misbehaviour struct{ silent, credit, fault bool }

// hostileFactory makes backends whose first incarnation misbehaves as set by first; later ones
// behave. initial is the first incarnation's initial grant.
func hostileFactory(initial int, first misbehaviour) troupe.BackendFactory {
	return func(_ context.Context, w troupe.WorkerInfo, out troupe.Outcomes) (troupe.Backend, error) {
		b := &hostileBackend{out: out, in: make(chan []troupe.Task, 1024), done: make(chan struct{}), credit: true}
		grant := 16
		if w.Incarnation == 0 {
			b.silent, b.credit, b.fault = first.silent, first.credit, first.fault
			grant = initial
		}
		go b.loop()
		out.Grant(grant)
		return b, nil
	}
}

func hardeningRun(t *testing.T, st troupe.Stage, n int) (troupe.Summary, *memSink, *memDead) {
	t.Helper()
	sink, dead := &memSink{}, &memDead{}
	p := &troupe.Pipeline{Source: &countSource{n: n}, Stages: []troupe.Stage{st}, Sink: sink, DeadLetters: dead}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sum, err := Run(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	return sum, sink, dead
}

// TestBackendWithholdingCreditIsRestarted: a backend that stops granting credit (after its
// initial 3) while records wait for it makes no progress: after the stage's timeout the worker
// is killed and restarted, and its records are redelivered without being charged.
func TestBackendWithholdingCreditIsRestarted(t *testing.T) {
	const n = 100
	sum, sink, dead := hardeningRun(t, troupe.Stage{Name: "stingy", Backend: hostileFactory(3, misbehaviour{}), Workers: 2,
		Credits: 8, Attempts: 1, Timeout: time.Second}, n)
	assertExactlyOnce(t, sink.keys(), n)
	if len(dead.ds) != 0 || sum.Restarts < 1 {
		t.Fatalf("%d dead letters (%+v), %d restarts", len(dead.ds), dead.ds, sum.Restarts)
	}
}

// TestSilentBackendIsRestarted: a backend that takes records and never answers is killed at the
// timeout and its records redelivered.
func TestSilentBackendIsRestarted(t *testing.T) {
	const n = 100
	sum, sink, dead := hardeningRun(t, troupe.Stage{Name: "silent", Backend: hostileFactory(16, misbehaviour{silent: true}), Workers: 2,
		Credits: 8, Attempts: 2, Timeout: time.Second}, n)
	assertExactlyOnce(t, sink.keys(), n)
	if len(dead.ds) != 0 || sum.Restarts < 1 {
		t.Fatalf("%d dead letters (%+v), %d restarts", len(dead.ds), dead.ds, sum.Restarts)
	}
}

// TestBackendFaultChargesNoRecord: a backend reporting a fault of its own (BackendFault) while it
// holds a single record gets restarted; the record is redelivered uncharged (one attempt each
// here, so a charge would dead-letter it).
func TestBackendFaultChargesNoRecord(t *testing.T) {
	const n = 50
	sum, sink, dead := hardeningRun(t, troupe.Stage{Name: "faulty", Backend: hostileFactory(1, misbehaviour{fault: true, credit: true}), Workers: 2,
		Credits: 1, Attempts: 1}, n)
	assertExactlyOnce(t, sink.keys(), n)
	if len(dead.ds) != 0 || sum.Restarts < 1 {
		t.Fatalf("%d dead letters (%+v), %d restarts", len(dead.ds), dead.ds, sum.Restarts)
	}
}

type permanent struct{ error }

func (permanent) Permanent() bool { return true }

// TestFailedStarts: a start that fails for a passing reason, even while the tree starts, is
// retried like a crash; a permanent failure ends the run at once, without retries.
func TestFailedStarts(t *testing.T) {
	var starts atomic.Int32
	flaky := func(ctx context.Context, w troupe.WorkerInfo, out troupe.Outcomes) (troupe.Backend, error) {
		if starts.Add(1) <= 3 {
			return nil, errors.New("plugin killed by SIGKILL before its handshake")
		}
		return hostileFactory(16, misbehaviour{credit: true})(ctx, w, out)
	}
	const n = 100
	sum, sink, dead := hardeningRun(t, troupe.Stage{Name: "flaky", Backend: flaky, Workers: 2}, n)
	assertExactlyOnce(t, sink.keys(), n)
	if len(dead.ds) != 0 || sum.Restarts < 3 {
		t.Fatalf("%d dead letters, %d restarts", len(dead.ds), sum.Restarts)
	}

	// The workers' first starts run at once (see prestart.go): each worker is tried once.
	var perWorker [2]atomic.Int32
	never := func(_ context.Context, w troupe.WorkerInfo, _ troupe.Outcomes) (troupe.Backend, error) {
		perWorker[w.Index].Add(1)
		return nil, permanent{errors.New("not a troupe plugin")}
	}
	p := &troupe.Pipeline{Source: &countSource{n: 10}, Stages: []troupe.Stage{{Name: "never", Backend: never, Workers: 2}}, Sink: &memSink{}}
	_, err := Run(context.Background(), p)
	if err == nil || !strings.Contains(err.Error(), "not a troupe plugin") {
		t.Fatalf("err = %v", err)
	}
	for i := range perWorker {
		if got := perWorker[i].Load(); got > 1 {
			t.Fatalf("worker %d started %d times: a permanent failure was retried", i, got)
		}
	}
}

// TestBackendBrokenForGoodAbortsTheRun: a backend that faults on every start charges no record,
// so the records would go round for ever: after a few faults in a row without a result, the run
// is aborted with the reason.
func TestBackendBrokenForGoodAbortsTheRun(t *testing.T) {
	broken := func(_ context.Context, _ troupe.WorkerInfo, out troupe.Outcomes) (troupe.Backend, error) {
		b := &hostileBackend{out: out, in: make(chan []troupe.Task, 1024), done: make(chan struct{}), fault: true}
		go b.loop()
		out.Grant(16)
		return b, nil
	}
	p := &troupe.Pipeline{Source: &countSource{n: 100}, Stages: []troupe.Stage{{Name: "broken", Backend: broken, Workers: 2}}, Sink: &memSink{}, DeadLetters: &memDead{}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := Run(ctx, p)
	if err == nil || !strings.Contains(err.Error(), "backend's fault") || !strings.Contains(err.Error(), "answered a record twice") {
		t.Fatalf("err = %v, want the run aborted for the backend's faults", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the run was not aborted: it ran until the test's deadline")
	}
}
