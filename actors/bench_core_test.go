package actors

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/troupe-dev/troupe"
)

// The copy a worker makes of each record for its Func (see userCopy), against the cost per
// record of a whole in-process stage: the copy must stay a small share of it.
func BenchmarkUserCopy(b *testing.B) {
	for _, tc := range []struct {
		name string
		meta map[string]string
	}{{"no-meta", nil}, {"meta-2", map[string]string{"path": "a/b.png", "size": "123"}}} {
		b.Run(tc.name, func(b *testing.B) {
			r := &envelope{Record: troupe.Record{Key: "key", Payload: make([]byte, 64), Meta: tc.meta}, Seq: 1, Weight: fullWeight}
			b.ReportAllocs()
			for b.Loop() {
				sinkRecord = userCopy(r)
			}
		})
	}
}

var sinkRecord troupe.Record

// The cost per record of a whole 1:1 in-process stage (source, distributor, worker, collector,
// discarding sink), for a Func that returns its input and for one that returns a new record.
func BenchmarkStage1to1(b *testing.B) {
	for _, tc := range []struct {
		name string
		fn   troupe.Func
	}{
		{"identity", func(_ context.Context, r troupe.Record) ([]troupe.Record, error) { return []troupe.Record{r}, nil }},
		{"new", func(_ context.Context, r troupe.Record) ([]troupe.Record, error) {
			return []troupe.Record{{Key: r.Key, Payload: r.Payload}}, nil
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			p := &troupe.Pipeline{Source: NewRangeSource(int64(b.N), 64), Stages: []troupe.Stage{{Name: "s", Func: tc.fn, Workers: 2}}, Sink: NewDiscardSink()}
			b.ResetTimer()
			if _, err := Run(context.Background(), p); err != nil {
				b.Fatal(err)
			}
		})
	}
}

func BenchmarkRangeSourceRead(b *testing.B) {
	ctx := context.Background()
	src := NewRangeSource(int64(b.N), 100)
	b.ReportAllocs()
	b.SetBytes(100)
	for n := 0; n < b.N; {
		recs, err := src.Read(ctx, 256)
		n += len(recs)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// The in-process figure of troupe bench (inproc-3stage-64B): 64-byte records through three
// identity stages of two workers each, to a discarding sink. ns/op is per record.
func BenchmarkThreeStages(b *testing.B) {
	id := func(_ context.Context, r troupe.Record) ([]troupe.Record, error) { return []troupe.Record{r}, nil }
	b.ReportAllocs()
	p := &troupe.Pipeline{
		Source: NewRangeSource(int64(b.N), 64),
		Stages: []troupe.Stage{{Name: "a", Func: id, Workers: 2}, {Name: "b", Func: id, Workers: 2}, {Name: "c", Func: id, Workers: 2}},
		Sink:   NewDiscardSink(),
	}
	b.ResetTimer()
	sum, err := Run(context.Background(), p)
	if err != nil {
		b.Fatal(err)
	}
	if sum.RecordsOut != int64(b.N) {
		b.Fatalf("%d records out, want %d", sum.RecordsOut, b.N)
	}
}

// The cost per record of a whole 1:1 stage run by a Backend (source, distributor, backend
// worker, collector, discarding sink), the Backend an in-process echo that answers what it was
// given in one Results per wake-up, as the plugins' host does per frame: what the runtime
// costs around a backend, without a process or a wire.
func BenchmarkBackendStage1to1(b *testing.B) {
	b.ReportAllocs()
	p := &troupe.Pipeline{Source: NewRangeSource(int64(b.N), 64), Sink: NewDiscardSink(),
		Stages: []troupe.Stage{{Name: "s", Backend: newEchoBackend, Workers: 1}}}
	b.ResetTimer()
	if _, err := Run(context.Background(), p); err != nil {
		b.Fatal(err)
	}
}

// echoBackend answers each task with one new record of the task's key and payload.
type echoBackend struct {
	out  troupe.Outcomes
	mu   sync.Mutex
	q    []troupe.Task
	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

func newEchoBackend(_ context.Context, _ troupe.WorkerInfo, out troupe.Outcomes) (troupe.Backend, error) {
	e := &echoBackend{out: out, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go e.loop()
	out.Grant(DefaultCredits)
	return e, nil
}

func (e *echoBackend) Submit(tasks []troupe.Task) error {
	e.mu.Lock()
	e.q = append(e.q, tasks...)
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
	return nil
}

func (e *echoBackend) Close(context.Context) error {
	close(e.stop)
	<-e.done
	return nil
}

func (e *echoBackend) loop() {
	defer close(e.done)
	var spare []troupe.Task
	for {
		select {
		case <-e.stop:
			return
		case <-e.wake:
		}
		e.mu.Lock()
		tasks := e.q
		e.q = spare[:0]
		e.mu.Unlock()
		outs := make([]troupe.Record, len(tasks))
		rs := make([]troupe.Result, len(tasks))
		for i := range tasks {
			outs[i] = troupe.Record{Key: tasks[i].Record.Key, Payload: tasks[i].Record.Payload}
			rs[i].Outputs = outs[i : i+1 : i+1]
		}
		if len(rs) > 0 {
			e.out.Results(rs)
			e.out.Grant(len(rs))
		}
		clear(tasks)
		spare = tasks
	}
}
