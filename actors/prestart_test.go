package actors

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/troupe-dev/troupe"
)

// A stage's backend workers start at once, not one after another: a slow start (a plugin
// process importing its libraries) is paid once per stage, not once per worker. The factory
// here returns only when every worker's start has begun.
func TestBackendWorkersStartConcurrently(t *testing.T) {
	const workers = 3
	var entered sync.WaitGroup
	entered.Add(workers)
	all := make(chan struct{})
	go func() { entered.Wait(); close(all) }()
	var once [workers]sync.Once
	factory := func(ctx context.Context, w troupe.WorkerInfo, out troupe.Outcomes) (troupe.Backend, error) {
		once[w.Index].Do(entered.Done)
		select {
		case <-all:
		case <-time.After(30 * time.Second):
			return nil, permanent{fmt.Errorf("worker %d: the other workers' starts did not begin while this one started", w.Index)}
		}
		return hostileFactory(16, misbehaviour{credit: true})(ctx, w, out)
	}
	const n = 100
	sum, sink, dead := hardeningRun(t, troupe.Stage{Name: "slow-start", Backend: factory, Workers: workers}, n)
	assertExactlyOnce(t, sink.keys(), n)
	if len(dead.ds) != 0 || sum.RecordsOut != n {
		t.Fatalf("%d dead letters, %d records out", len(dead.ds), sum.RecordsOut)
	}
}

// closeCounted counts its Close calls.
type closeCounted struct {
	troupe.Backend
	closed *atomic.Int32
}

func (b closeCounted) Close(ctx context.Context) error {
	b.closed.Add(1)
	return b.Backend.Close(ctx)
}

// A backend started ahead of its worker is closed when the run ends before the worker took it:
// here the last stage (the first to start) fails for good, so the first stage's workers never
// start, but their backends were.
func TestPrestartedBackendsAreClosedWhenTheRunEndsFirst(t *testing.T) {
	var opened, closed atomic.Int32
	first := func(ctx context.Context, w troupe.WorkerInfo, out troupe.Outcomes) (troupe.Backend, error) {
		b, err := hostileFactory(16, misbehaviour{credit: true})(ctx, w, out)
		if err != nil {
			return nil, err
		}
		opened.Add(1)
		return closeCounted{b, &closed}, nil
	}
	never := func(context.Context, troupe.WorkerInfo, troupe.Outcomes) (troupe.Backend, error) {
		return nil, permanent{errors.New("not a troupe plugin")}
	}
	p := &troupe.Pipeline{Source: &countSource{n: 10}, Sink: &memSink{}, Stages: []troupe.Stage{
		{Name: "first", Backend: first, Workers: 2},
		{Name: "last", Backend: never, Workers: 2},
	}}
	if _, err := Run(context.Background(), p); err == nil {
		t.Fatal("the run succeeded with a stage that cannot start")
	}
	if opened.Load() != 2 || closed.Load() != 2 {
		t.Fatalf("%d backends of the first stage opened, %d closed; want 2 and 2", opened.Load(), closed.Load())
	}
}
