package actors

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/troupe-dev/troupe"
)

// bigSource hands out n records of size bytes each and checks, at every read, that no more than
// limit records are read and not yet written by the sink: the source's window, in bytes.
type bigSource struct {
	t        *testing.T
	n, size  int
	read     atomic.Int64
	written  *atomic.Int64
	maxAhead atomic.Int64
}

func (s *bigSource) Read(ctx context.Context, max int) ([]troupe.Record, error) {
	var out []troupe.Record
	for len(out) < max && int(s.read.Load()) < s.n {
		i := s.read.Add(1) - 1
		out = append(out, troupe.Record{Key: fmt.Sprint(i), Payload: make([]byte, s.size)})
	}
	if ahead := s.read.Load() - s.written.Load(); ahead > s.maxAhead.Load() {
		s.maxAhead.Store(ahead)
	}
	if int(s.read.Load()) >= s.n {
		return out, io.EOF
	}
	return out, nil
}

func (s *bigSource) Close() error { return nil }

// hintedSource is a bigSource that says how large its records are (see sizeHinter).
type hintedSource struct{ *bigSource }

func (s hintedSource) sizeHint() int { return s.size }

// gateSink holds its first write until the source has read fill records: the window must fill
// that far while the sink is stuck, and no further (bigSource checks that).
type gateSink struct {
	src     *bigSource
	fill    int64
	written atomic.Int64
	once    sync.Once
	err     error
}

func (s *gateSink) Write(troupe.Record) error {
	s.once.Do(func() {
		deadline := time.Now().Add(30 * time.Second)
		for s.src.read.Load() < s.fill {
			if time.Now().After(deadline) {
				s.err = fmt.Errorf("the source read %d records while the sink was stuck; the window should let it read %d", s.src.read.Load(), s.fill)
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	s.written.Add(1)
	return nil
}
func (s *gateSink) Flush() error { return nil }
func (s *gateSink) Close() error { return nil }

// Large records are read a few at a time: the source's window is bounded in bytes (the sum of
// the stages' CreditBytes), not only in records, so a stuck sink holds a few large records in
// memory, not Credits of them.
func TestWindowIsBoundedInBytes(t *testing.T) {
	const size = 64 << 10
	// Two workers of 256 KiB: a window of 512 KiB, under 8 records of 64 KiB and their keys.
	window := 2 * (256 << 10) / size
	for _, c := range []struct {
		name  string
		hint  bool
		limit int
	}{
		// A source that cannot tell its records' size is first asked for firstAsk of them.
		{"size learnt from the first batch", false, max(window, firstAsk)},
		{"size told by the source", true, window},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := &bigSource{t: t, n: 200, size: size}
			sink := &gateSink{src: src}
			src.written = &sink.written
			sink.fill = int64(window) - 2
			var source troupe.Source = src
			if c.hint {
				source = hintedSource{src}
			}
			p := &troupe.Pipeline{Source: source, Sink: sink, Stages: []troupe.Stage{{Name: "id", Workers: 2, CreditBytes: 256 << 10,
				Func: func(_ context.Context, r troupe.Record) ([]troupe.Record, error) { return []troupe.Record{r}, nil }}}}
			sum, err := Run(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			if sink.err != nil {
				t.Fatal(sink.err)
			}
			if sum.RecordsOut != 200 {
				t.Fatalf("%d records out, want 200", sum.RecordsOut)
			}
			if got := src.maxAhead.Load(); got > int64(c.limit) {
				t.Fatalf("the source read up to %d records of %d KiB ahead of the sink; the byte window allows %d", got, size>>10, c.limit)
			}
		})
	}
}

// byteBackend completes tasks from its own goroutine and records the most bytes it held at once.
type byteBackend struct {
	out     troupe.Outcomes
	in      chan []troupe.Task
	done    chan struct{}
	mu      sync.Mutex
	held    int
	maxHeld *atomic.Int64
	maxRecs *atomic.Int64
	recs    int
}

func (b *byteBackend) Submit(batch []troupe.Task) error {
	b.mu.Lock()
	b.recs += len(batch)
	for _, t := range batch {
		b.held += len(t.Record.Key) + len(t.Record.Payload)
	}
	if int64(b.held) > b.maxHeld.Load() && b.recs > 1 {
		b.maxHeld.Store(int64(b.held))
	}
	if int64(b.recs) > b.maxRecs.Load() {
		b.maxRecs.Store(int64(b.recs))
	}
	b.mu.Unlock()
	b.in <- batch
	return nil
}

func (b *byteBackend) loop() {
	defer close(b.done)
	for batch := range b.in {
		rs := make([]troupe.Result, len(batch))
		for i, t := range batch {
			rs[i] = troupe.Result{Outputs: []troupe.Record{t.Record}}
		}
		b.mu.Lock()
		b.recs -= len(batch)
		for _, t := range batch {
			b.held -= len(t.Record.Key) + len(t.Record.Payload)
		}
		b.mu.Unlock()
		b.out.Results(rs)
		b.out.Grant(len(batch))
	}
}

func (b *byteBackend) Close(context.Context) error { close(b.in); <-b.done; return nil }

// A worker is handed records while their bytes fit its CreditBytes; a record larger than that
// goes alone.
func TestWorkerCreditIsBoundedInBytes(t *testing.T) {
	for _, c := range []struct {
		name            string
		n, size, budget int
		wantMaxBytes    int64 // at most, when holding more than one record
	}{
		{"small records fill the record credit", 5000, 64, 1 << 20, DefaultBackendCredits * (64 + 4)},
		{"large records by bytes", 300, 64 << 10, 256 << 10, 256 << 10},
		{"records larger than the budget one at a time", 100, 300 << 10, 256 << 10, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			var maxHeld, maxRecs atomic.Int64
			factory := func(_ context.Context, _ troupe.WorkerInfo, out troupe.Outcomes) (troupe.Backend, error) {
				b := &byteBackend{out: out, in: make(chan []troupe.Task, 1<<16), done: make(chan struct{}), maxHeld: &maxHeld, maxRecs: &maxRecs}
				go b.loop()
				out.Grant(1 << 20)
				return b, nil
			}
			src := &bigSource{t: t, n: c.n, size: c.size, written: new(atomic.Int64)}
			p := &troupe.Pipeline{Source: src, Sink: NewDiscardSink(), Stages: []troupe.Stage{{Name: "b", Workers: 1, CreditBytes: c.budget, Backend: factory}}}
			sum, err := Run(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			if sum.RecordsOut != int64(c.n) {
				t.Fatalf("%d records out, want %d", sum.RecordsOut, c.n)
			}
			if got := maxHeld.Load(); got > c.wantMaxBytes {
				t.Fatalf("the worker held %d bytes in several records at once; its byte credit allows %d", got, c.wantMaxBytes)
			}
			if c.wantMaxBytes == 0 && maxRecs.Load() != 1 {
				t.Fatalf("records larger than the byte credit went %d at a time, want 1", maxRecs.Load())
			}
		})
	}
}

// oneAtATime hands out its records one per Read.
type oneAtATime struct{ recs []troupe.Record }

func (s *oneAtATime) Read(ctx context.Context, max int) ([]troupe.Record, error) {
	if len(s.recs) == 0 {
		return nil, io.EOF
	}
	r := s.recs[0]
	s.recs = s.recs[1:]
	return []troupe.Record{r}, nil
}

func (s *oneAtATime) Close() error { return nil }

// A record larger than the byte window does not leave the other workers idle: while one worker
// converts a 5K photo, the others are given the small ones (found by the photo bench, where
// troupe used one core of two).
func TestLargeRecordKeepsOtherWorkersBusy(t *testing.T) {
	recs := []troupe.Record{{Key: "large", Payload: make([]byte, 4*DefaultCreditBytes)}}
	for i := range 20 {
		recs = append(recs, troupe.Record{Key: fmt.Sprint("small-", i), Payload: make([]byte, 1024)})
	}
	other := make(chan struct{})
	var once sync.Once
	p := &troupe.Pipeline{Source: &oneAtATime{recs: recs}, Sink: NewDiscardSink(), Stages: []troupe.Stage{{Name: "id", Workers: 2, Attempts: 1,
		Func: func(_ context.Context, r troupe.Record) ([]troupe.Record, error) {
			if r.Key != "large" {
				once.Do(func() { close(other) })
				return []troupe.Record{r}, nil
			}
			select {
			case <-other:
				return []troupe.Record{r}, nil
			case <-time.After(30 * time.Second):
				return nil, fmt.Errorf("the other worker got no record in 30 s while this one held a record larger than the byte window")
			}
		}}}}
	sum, err := Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if sum.RecordsOut != 21 || sum.DeadLetters != 0 {
		t.Fatalf("%d records out, %d dead letters (want 21, 0): %v", sum.RecordsOut, sum.DeadLetters, sum)
	}
}

// A stage's default record credits depend on its kind: a Backend's round trip to another
// process needs a deeper pipeline than a call (CreditBytes bounds both alike).
func TestDefaultCreditsByStageKind(t *testing.T) {
	backend := troupe.Stage{Name: "plugin", Backend: func(context.Context, troupe.WorkerInfo, troupe.Outcomes) (troupe.Backend, error) { return nil, nil }}
	fn := troupe.Stage{Name: "func", Func: func(_ context.Context, r troupe.Record) ([]troupe.Record, error) { return nil, nil }}
	set := troupe.Stage{Name: "set", Backend: backend.Backend, Credits: 7}
	for _, c := range []struct {
		s    troupe.Stage
		want int
	}{{backend, DefaultBackendCredits}, {fn, DefaultCredits}, {set, 7}} {
		if err := checkStage(&c.s); err != nil {
			t.Fatal(err)
		}
		if c.s.Credits != c.want || c.s.CreditBytes != DefaultCreditBytes {
			t.Errorf("stage %s: credits %d, credit bytes %d; want %d, %d", c.s.Name, c.s.Credits, c.s.CreditBytes, c.want, DefaultCreditBytes)
		}
	}
}
