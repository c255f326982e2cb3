package actors

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/troupe-dev/troupe"
)

// countingSource counts the records it has handed out.
type countingSource struct {
	countSource
	read atomic.Int64
}

func (s *countingSource) Read(ctx context.Context, max int) ([]troupe.Record, error) {
	recs, err := s.countSource.Read(ctx, max)
	s.read.Add(int64(len(recs)))
	return recs, err
}

// With OrderInput, the records completed behind a stalled one wait in the collector for it. They
// must stay in the source's window until written: acking them at completion let the source read
// on, and the collector hold, the whole input behind one slow record.
func TestOrderInputHeldRecordsStayInTheWindow(t *testing.T) {
	src := &countingSource{countSource: countSource{n: 500}}
	release := make(chan struct{})
	var passed atomic.Int64
	gate := func(ctx context.Context, r troupe.Record) ([]troupe.Record, error) {
		if r.Key == "0" {
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		} else {
			passed.Add(1)
		}
		return []troupe.Record{r}, nil
	}
	// One credit per worker: the worker stalled on record 0 holds nothing else.
	p := &troupe.Pipeline{Source: src, Stages: []troupe.Stage{{Name: "gate", Func: gate, Workers: 2, Credits: 1}, {Name: "id", Func: orderWindowIdentity, Workers: 2, Credits: 8}},
		Sink: &memSink{}, Order: troupe.OrderInput}
	const window = 2*1 + 2*8
	job, err := Start(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	// Wait until everything read but record 0 has passed the gate: then the run can go no
	// further until record 0 does (or, without the bound, the whole input has been read).
	deadline := time.Now().Add(60 * time.Second)
	// (At least half the window: the first records may all pass before the source reads more.)
	for n := src.read.Load(); n < window/2 || passed.Load() != n-1; n = src.read.Load() {
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	read := src.read.Load()
	close(release)
	sum, err := job.Wait()
	if err != nil || sum.RecordsOut != 500 {
		t.Fatalf("run: %v, %d out", err, sum.RecordsOut)
	}
	if read > window {
		t.Errorf("read %d records while the first was stalled; the window is %d", read, window)
	}
}

func orderWindowIdentity(_ context.Context, r troupe.Record) ([]troupe.Record, error) {
	return []troupe.Record{r}, nil
}
