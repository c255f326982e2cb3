package cluster

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/cluster/clusterpb"
)

func TestResultsRoundTrip(t *testing.T) {
	rs := []troupe.Result{
		{Outputs: []troupe.Record{{Key: "a", Payload: []byte("A")}, {Key: "b", Payload: []byte("B"), Meta: map[string]string{"m": "1"}}}},
		{Err: errors.New("bad record")},
		{}, // filtered out
		{Outputs: []troupe.Record{{Key: "c"}}},
	}
	got, ok := fromResults(toResults(rs))
	if !ok || len(got) != len(rs) {
		t.Fatalf("fromResults: ok %v, %d results", ok, len(got))
	}
	if len(got[0].Outputs) != 2 || got[0].Outputs[1].Meta["m"] != "1" || string(got[0].Outputs[0].Payload) != "A" {
		t.Errorf("result 0: %+v", got[0])
	}
	if got[1].Err == nil || got[1].Err.Error() != "bad record" {
		t.Errorf("result 1: %+v", got[1])
	}
	if got[2].Err != nil || len(got[2].Outputs) != 0 || len(got[3].Outputs) != 1 {
		t.Errorf("results 2, 3: %+v %+v", got[2], got[3])
	}
}

// TestMalformedResults: what a node sends is checked; a lie is refused, never believed.
func TestMalformedResults(t *testing.T) {
	two := pack(2, func(int) *troupe.Record { return &troupe.Record{Key: "k", Payload: []byte("p")} })
	one := pack(1, func(int) *troupe.Record { return &troupe.Record{Key: "k"} })
	for name, m := range map[string]*clusterpb.Results{
		"more outputs than counted":  {Counts: []uint32{1}, Outputs: two},
		"fewer outputs than counted": {Counts: []uint32{3}, Outputs: one},
		"error out of range":         {Counts: []uint32{0}, Errors: []*clusterpb.RecordError{{Index: 1, Message: "x"}}},
		"error with outputs":         {Counts: []uint32{1}, Outputs: one, Errors: []*clusterpb.RecordError{{Index: 0}}},
		"error twice":                {Counts: []uint32{0}, Errors: []*clusterpb.RecordError{{Index: 0}, {Index: 0}}},
		"huge count":                 {Counts: []uint32{1 << 31, 1 << 31}},
		"key lengths past the keys":  {Counts: []uint32{1}, Outputs: &clusterpb.Records{Keys: []byte("k"), KeyLens: []uint32{5}, PayloadLens: []uint32{0}}},
		"bytes left over":            {Counts: []uint32{1}, Outputs: &clusterpb.Records{Keys: []byte("kk"), KeyLens: []uint32{1}, PayloadLens: []uint32{0}}},
		"lengths disagree":           {Counts: []uint32{1}, Outputs: &clusterpb.Records{Keys: []byte("k"), KeyLens: []uint32{1}}},
		"meta out of range":          {Counts: []uint32{1}, Outputs: &clusterpb.Records{KeyLens: []uint32{0}, PayloadLens: []uint32{0}, Metas: []*clusterpb.RecordMeta{{Index: 1}}}},
		"meta twice":                 {Counts: []uint32{1}, Outputs: &clusterpb.Records{KeyLens: []uint32{0}, PayloadLens: []uint32{0}, Metas: []*clusterpb.RecordMeta{{Index: 0}, {Index: 0}}}},
	} {
		if _, ok := fromResults(m); ok {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestBatchRoundTrip(t *testing.T) {
	tasks := []troupe.Task{
		{Record: troupe.Record{Key: "a", Payload: []byte("one")}, Attempt: 1},
		{Record: troupe.Record{Key: "", Payload: nil, Meta: map[string]string{"x": "y"}}, Attempt: 3},
		{Record: troupe.Record{Key: "ccc", Payload: []byte("three")}, Attempt: 2},
	}
	got, ok := fromBatch(toBatch(tasks))
	if !ok || len(got) != 3 {
		t.Fatalf("fromBatch: %v %d", ok, len(got))
	}
	for i := range tasks {
		w, g := tasks[i], got[i]
		if g.Attempt != w.Attempt || g.Record.Key != w.Record.Key || string(g.Record.Payload) != string(w.Record.Payload) || g.Record.Meta["x"] != w.Record.Meta["x"] {
			t.Errorf("task %d: %+v, want %+v", i, g, w)
		}
	}
	// Each payload is capped: appending to one never writes into the next.
	_ = append(got[0].Record.Payload, 'Z')
	if string(got[2].Record.Payload) != "three" {
		t.Errorf("an append to one payload changed another: %q", got[2].Record.Payload)
	}
	if _, ok := fromBatch(&clusterpb.Batch{Attempts: []uint32{1}}); ok {
		t.Error("a batch with attempts but no records was accepted")
	}
}

type recOutcomes struct {
	mu      sync.Mutex
	results []troupe.Result
	grants  int
	failed  error
	changed chan struct{}
}

func (o *recOutcomes) Results(rs []troupe.Result) {
	o.mu.Lock()
	o.results = append(o.results, rs...)
	o.mu.Unlock()
	o.poke()
}
func (o *recOutcomes) Grant(n int) { o.mu.Lock(); o.grants += n; o.mu.Unlock(); o.poke() }
func (o *recOutcomes) Fail(err error) {
	o.mu.Lock()
	o.failed = err
	o.mu.Unlock()
	o.poke()
}
func (o *recOutcomes) poke() {
	select {
	case o.changed <- struct{}{}:
	default:
	}
}

func (o *recOutcomes) wait(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		o.mu.Lock()
		ok := cond()
		o.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-o.changed:
		case <-deadline:
			t.Fatal("timed out")
		}
	}
}

func TestFuncBackend(t *testing.T) {
	f := func(ctx context.Context, r troupe.Record) ([]troupe.Record, error) {
		switch string(r.Payload) {
		case "panic":
			panic("boom")
		case "fail":
			return nil, errors.New("failed")
		}
		return []troupe.Record{{Key: r.Key, Payload: []byte(strings.Repeat("x", troupe.Attempt(ctx)) + troupe.StageName(ctx))}}, nil
	}
	o := &recOutcomes{changed: make(chan struct{}, 1)}
	b, err := FuncBackend("st", f, 8, 0)(context.Background(), troupe.WorkerInfo{Stage: "st"}, o)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	o.wait(t, func() bool { return o.grants == 8 })
	if err := b.Submit([]troupe.Task{{Record: troupe.Record{Key: "a"}, Attempt: 2}, {Record: troupe.Record{Payload: []byte("fail")}, Attempt: 1}}); err != nil {
		t.Fatal(err)
	}
	o.wait(t, func() bool { return len(o.results) == 2 })
	if got := string(o.results[0].Outputs[0].Payload); got != "xxst" {
		t.Errorf("output %q, want the attempt (2) and the stage's name", got)
	}
	if o.results[1].Err == nil {
		t.Error("the failed record has no error")
	}
	if err := b.Submit([]troupe.Task{{Record: troupe.Record{Payload: []byte("panic")}, Attempt: 1}}); err != nil {
		t.Fatal(err)
	}
	o.wait(t, func() bool { return o.failed != nil })
	if !strings.Contains(o.failed.Error(), "panic: boom") {
		t.Errorf("Fail(%v), want the panic", o.failed)
	}
}
