package actors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/troupe-dev/troupe"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// countSource produces n records keyed by their index, payload "v<index>".
type countSource struct {
	n, next int
	closed  atomic.Bool
}

func (s *countSource) Read(ctx context.Context, max int) ([]troupe.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []troupe.Record
	for len(out) < max && s.next < s.n {
		out = append(out, troupe.Record{Key: strconv.Itoa(s.next), Payload: []byte("v" + strconv.Itoa(s.next))})
		s.next++
	}
	if s.next == s.n {
		return out, io.EOF
	}
	return out, nil
}
func (s *countSource) Close() error         { s.closed.Store(true); return nil }
func (s *countSource) Total() (int64, bool) { return int64(s.n), true }

// memSink keeps what it is given, and can be slow.
type memSink struct {
	mu     sync.Mutex
	recs   []troupe.Record
	delay  time.Duration
	writes atomic.Int64
	onRec  func()
}

func (s *memSink) Write(r troupe.Record) error {
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	if s.onRec != nil {
		s.onRec()
	}
	s.mu.Lock()
	s.recs = append(s.recs, r)
	s.mu.Unlock()
	s.writes.Add(1)
	return nil
}
func (s *memSink) Flush() error { return nil }
func (s *memSink) Close() error { return nil }

func (s *memSink) keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.recs))
	for i, r := range s.recs {
		out[i] = r.Key
	}
	return out
}

// memDead keeps dead letters.
type memDead struct {
	mu sync.Mutex
	ds []troupe.DeadLetter
}

func (d *memDead) Write(x troupe.DeadLetter) error {
	d.mu.Lock()
	d.ds = append(d.ds, x)
	d.mu.Unlock()
	return nil
}
func (d *memDead) Flush() error { return nil }
func (d *memDead) Close() error { return nil }

func upper(_ context.Context, r troupe.Record) ([]troupe.Record, error) {
	return []troupe.Record{{Key: r.Key, Payload: []byte(strings.ToUpper(string(r.Payload)))}}, nil
}

// assertExactlyOnce checks that the sink saw every key in [0, n) exactly once.
func assertExactlyOnce(t *testing.T, keys []string, n int) {
	t.Helper()
	seen := make([]int, n)
	for _, k := range keys {
		i, err := strconv.Atoi(k)
		if err != nil || i < 0 || i >= n {
			t.Fatalf("unexpected key %q at the sink", k)
		}
		seen[i]++
	}
	for i, c := range seen {
		if c != 1 {
			t.Fatalf("key %d reached the sink %d times, want exactly once", i, c)
		}
	}
}

func TestThreeStagesDeliverEveryRecordOnce(t *testing.T) {
	const n = 20000
	sink := &memSink{}
	p := &troupe.Pipeline{
		Source: &countSource{n: n},
		Stages: []troupe.Stage{
			{Name: "a", Func: upper, Workers: 3},
			{Name: "b", Func: upper, Workers: 2, Credits: 8},
			{Name: "c", Func: upper, Workers: 1},
		},
		Sink: sink,
	}
	sum, err := Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	assertExactlyOnce(t, sink.keys(), n)
	if sum.Outcome != troupe.OutcomeCompleted || sum.RecordsIn != n || sum.RecordsOut != n || sum.DeadLetters != 0 || sum.InFlight != 0 {
		t.Fatalf("summary %+v", sum)
	}
	for _, st := range sum.Stages {
		if st.In != n || st.Out != n {
			t.Fatalf("stage %s: in %d out %d, want %d", st.Name, st.In, st.Out, n)
		}
	}
	for _, r := range sink.recs {
		if want := "V" + r.Key; string(r.Payload) != want {
			t.Fatalf("record %s: payload %q, want %q", r.Key, r.Payload, want)
		}
	}
}

func TestNoStagesIsSourceToSink(t *testing.T) {
	sink := &memSink{}
	if _, err := Run(context.Background(), &troupe.Pipeline{Source: &countSource{n: 1000}, Sink: sink}); err != nil {
		t.Fatal(err)
	}
	assertExactlyOnce(t, sink.keys(), 1000)
}

func TestEmptyInput(t *testing.T) {
	sink := &memSink{}
	sum, err := Run(context.Background(), &troupe.Pipeline{Source: &countSource{n: 0}, Stages: []troupe.Stage{{Name: "a", Func: upper}}, Sink: sink})
	if err != nil || sum.RecordsIn != 0 || len(sink.keys()) != 0 {
		t.Fatalf("sum %+v err %v", sum, err)
	}
}

// Random panics in a stage: workers are restarted, what they held is redelivered, and the sink
// still sees every record exactly once.
func TestRandomPanicsLoseNothingAndDuplicateNothing(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 20_000
	}
	var panics atomic.Int64
	flaky := func(ctx context.Context, r troupe.Record) ([]troupe.Record, error) {
		if troupe.Attempt(ctx) == 1 && rand.IntN(2000) == 0 { // only on first attempts: no record is poison
			panics.Add(1)
			panic("random failure on " + r.Key)
		}
		return []troupe.Record{r}, nil
	}
	sink := &memSink{}
	dead := &memDead{}
	p := &troupe.Pipeline{
		Source:      &countSource{n: n},
		Stages:      []troupe.Stage{{Name: "flaky", Func: flaky, Workers: 4, Restart: troupe.Restart{Intensity: 1000, Period: time.Second}}, {Name: "up", Func: upper, Workers: 2}},
		Sink:        sink,
		DeadLetters: dead,
	}
	sum, err := Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if panics.Load() == 0 {
		t.Fatal("no panic happened: the test proves nothing")
	}
	assertExactlyOnce(t, sink.keys(), n)
	if len(dead.ds) != 0 {
		t.Fatalf("%d dead letters, want none: %+v", len(dead.ds), dead.ds[0])
	}
	// A worker that panics near the end may still be waiting to restart when the run ends.
	if sum.Restarts < panics.Load()-4 || sum.Restarts > panics.Load() {
		t.Fatalf("%d restarts for %d panics", sum.Restarts, panics.Load())
	}
	t.Logf("%d records, %d panics, %d restarts, %d retries", n, panics.Load(), sum.Restarts, sum.Stages[0].Retries)
}

// A record that fails every attempt goes to the dead letters with its key, stage, attempts and
// last error; a record that panics every time likewise; the others all reach the sink.
func TestPoisonRecordsGoToDeadLetters(t *testing.T) {
	const n = 2000
	var tries sync.Map
	stage := func(_ context.Context, r troupe.Record) ([]troupe.Record, error) {
		c, _ := tries.LoadOrStore(r.Key, new(atomic.Int32))
		c.(*atomic.Int32).Add(1)
		i, _ := strconv.Atoi(r.Key)
		switch {
		case i%500 == 7:
			return nil, fmt.Errorf("cannot handle %s", r.Key)
		case i%500 == 9:
			panic("boom " + r.Key)
		}
		return []troupe.Record{r}, nil
	}
	sink, dead := &memSink{}, &memDead{}
	p := &troupe.Pipeline{Source: &countSource{n: n}, Stages: []troupe.Stage{{Name: "s", Func: stage, Workers: 3, Attempts: 4}}, Sink: sink, DeadLetters: dead}
	sum, err := Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(sink.keys()); got != n-8 {
		t.Fatalf("sink has %d records, want %d", got, n-8)
	}
	if sum.DeadLetters != 8 || len(dead.ds) != 8 || sum.Outcome != troupe.OutcomeDeadLetters {
		t.Fatalf("dead letters: summary %d, stored %d, want 8", sum.DeadLetters, len(dead.ds))
	}
	for _, d := range dead.ds {
		i, _ := strconv.Atoi(d.Key)
		if d.Stage != "s" || d.Attempts != 4 || string(d.Payload) != "v"+d.Key {
			t.Fatalf("dead letter %+v", d)
		}
		want := "cannot handle " + d.Key
		if i%500 == 9 {
			want = "panic: boom " + d.Key
		}
		if !strings.Contains(d.Error, want) {
			t.Fatalf("dead letter %s: error %q does not say %q", d.Key, d.Error, want)
		}
		c, _ := tries.Load(d.Key)
		if got := c.(*atomic.Int32).Load(); got != 4 {
			t.Fatalf("record %s was tried %d times, want 4", d.Key, got)
		}
	}
}

// With OrderInput the sink receives records in source order, whatever the workers' speeds.
func TestOrderInputUnderRandomDelays(t *testing.T) {
	const n = 3000
	jitter := func(_ context.Context, r troupe.Record) ([]troupe.Record, error) {
		if rand.IntN(10) == 0 {
			time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
		}
		return []troupe.Record{r}, nil
	}
	sink := &memSink{}
	p := &troupe.Pipeline{Source: &countSource{n: n}, Stages: []troupe.Stage{{Name: "j", Func: jitter, Workers: 4, Credits: 16}, {Name: "k", Func: jitter, Workers: 3}}, Sink: sink, Order: troupe.OrderInput}
	if _, err := Run(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	keys := sink.keys()
	if len(keys) != n {
		t.Fatalf("%d records, want %d", len(keys), n)
	}
	for i, k := range keys {
		if k != strconv.Itoa(i) {
			t.Fatalf("position %d holds key %s: out of order", i, k)
		}
	}
}

// A sink much slower than the source: the records in flight never exceed the sum of credits.
func TestBackpressureBoundsInFlight(t *testing.T) {
	stages := []troupe.Stage{{Name: "a", Func: upper, Workers: 2, Credits: 8}, {Name: "b", Func: upper, Workers: 3, Credits: 4}}
	credits := 2*8 + 3*4
	var maxSeen atomic.Int64
	sink := &memSink{delay: 200 * time.Microsecond}
	p := &troupe.Pipeline{Source: &countSource{n: 3000}, Stages: stages, Sink: sink}
	r, err := Start(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-r.r.endedCh:
				return
			default:
			}
			if v := r.Progress().InFlight; v > maxSeen.Load() {
				maxSeen.Store(v)
			}
			runtime.Gosched()
		}
	}()
	if _, err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	<-done
	if m := maxSeen.Load(); m > int64(credits) || m == 0 {
		t.Fatalf("max in flight %d, want 0 < x ≤ %d", m, credits)
	}
	assertExactlyOnce(t, sink.keys(), 3000)
}

// Stopping a run (context cancelled) stops the source, drains what is in flight, and loses
// nothing that was read: every record read reaches the sink exactly once.
func TestGracefulStopLosesNothing(t *testing.T) {
	const n = 1_000_000
	slow := func(_ context.Context, r troupe.Record) ([]troupe.Record, error) {
		time.Sleep(20 * time.Microsecond)
		return []troupe.Record{r}, nil
	}
	sink := &memSink{}
	src := &countSource{n: n}
	ctx, cancel := context.WithCancel(context.Background())
	p := &troupe.Pipeline{Source: src, Stages: []troupe.Stage{{Name: "s", Func: slow, Workers: 4}}, Sink: sink}
	r, err := Start(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	for sink.writes.Load() < 2000 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	sum, err := r.Wait()
	// The run tells the truth: it was interrupted, not completed.
	if !errors.Is(err, context.Canceled) || sum.Outcome != troupe.OutcomeInterrupted {
		t.Fatalf("err %v, outcome %v; want an error wrapping context.Canceled and %v", err, sum.Outcome, troupe.OutcomeInterrupted)
	}
	keys := sink.keys()
	if sum.RecordsIn == n || int64(len(keys)) != sum.RecordsIn || sum.InFlight != 0 {
		t.Fatalf("read %d, wrote %d, in flight %d (of %d)", sum.RecordsIn, len(keys), sum.InFlight, n)
	}
	assertExactlyOnce(t, keys, len(keys))
	if !src.closed.Load() {
		t.Fatal("source not closed")
	}
}

// Splitters and filters: word count = split into words, drop stop words, count per key.
func TestSplitFilterReduceWordCount(t *testing.T) {
	lines := []string{"the cat sat", "on the mat", "the end", ""}
	src := &sliceSource{}
	for i, l := range lines {
		src.recs = append(src.recs, troupe.Record{Key: strconv.Itoa(i + 1), Payload: []byte(l)})
	}
	split := func(_ context.Context, r troupe.Record) ([]troupe.Record, error) {
		var out []troupe.Record
		for _, w := range strings.Fields(string(r.Payload)) {
			out = append(out, troupe.Record{Key: w, Payload: []byte(w)})
		}
		return out, nil
	}
	noStop := func(_ context.Context, r troupe.Record) ([]troupe.Record, error) {
		if r.Key == "on" {
			return nil, nil
		}
		return []troupe.Record{r}, nil
	}
	count := func(_ string, acc []byte, _ troupe.Record) ([]byte, error) {
		n, _ := strconv.Atoi(string(acc))
		return []byte(strconv.Itoa(n + 1)), nil
	}
	sink := &memSink{}
	p := &troupe.Pipeline{Source: src, Stages: []troupe.Stage{
		{Name: "split", Func: split, Workers: 2},
		{Name: "nostop", Func: noStop, Workers: 2},
		{Name: "count", Reduce: count},
		{Name: "up", Func: upper, Workers: 2},
	}, Sink: sink, Order: troupe.OrderInput}
	sum, err := Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range sink.recs {
		got[r.Key] = string(r.Payload)
	}
	want := map[string]string{"the": "3", "cat": "1", "sat": "1", "mat": "1", "end": "1"}
	if fmt.Sprint(got) != fmt.Sprint(want) || len(sink.recs) != len(want) {
		t.Fatalf("counts %v, want %v", got, want)
	}
	// With OrderInput the aggregates keep the reduce stage's key order through the stage after it.
	if keys := strings.Join(sink.keys(), " "); keys != "cat end mat sat the" {
		t.Fatalf("aggregates arrived as %q, want key order", keys)
	}
	if sum.Dropped == 0 {
		t.Fatal("the filter dropped nothing")
	}
}

type sliceSource struct {
	recs []troupe.Record
	i    int
}

func (s *sliceSource) Read(_ context.Context, max int) ([]troupe.Record, error) {
	n := min(max, len(s.recs)-s.i)
	out := s.recs[s.i : s.i+n]
	s.i += n
	if s.i == len(s.recs) {
		return out, io.EOF
	}
	return out, nil
}
func (s *sliceSource) Close() error { return nil }

// A Func that honours its context fails the attempt at the timeout; one that ignores it is
// detected by the watchdog, its worker replaced, and the record charged.
func TestTimeouts(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	stage := func(ctx context.Context, r troupe.Record) ([]troupe.Record, error) {
		switch r.Key {
		case "5": // honours ctx
			<-ctx.Done()
			return nil, ctx.Err()
		case "9": // ignores ctx: hangs until the test ends
			<-release
		}
		return []troupe.Record{r}, nil
	}
	sink, dead := &memSink{}, &memDead{}
	p := &troupe.Pipeline{Source: &countSource{n: 40}, Stages: []troupe.Stage{{Name: "t", Func: stage, Workers: 2, Attempts: 2, Timeout: 100 * time.Millisecond}}, Sink: sink, DeadLetters: dead}
	sum, err := Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(sink.keys()) != 38 || len(dead.ds) != 2 {
		t.Fatalf("sink %d, dead %d: %+v", len(sink.keys()), len(dead.ds), dead.ds)
	}
	for _, d := range dead.ds {
		if !strings.Contains(d.Error, "timeout") {
			t.Fatalf("dead letter %s: %q does not say timeout", d.Key, d.Error)
		}
	}
	if sum.Restarts < 1 {
		t.Fatalf("the hung worker was not replaced: %d restarts", sum.Restarts)
	}
}

// fakeBackend runs a Func on its own goroutine, as a plugin process would, granting credits
// and reporting outcomes asynchronously; it can be made to "crash".
type fakeBackend struct {
	fn    troupe.Func
	out   troupe.Outcomes
	in    chan []troupe.Task
	done  chan struct{}
	once  sync.Once
	crash func(t troupe.Task) bool
}

func newFakeFactory(fn troupe.Func, crash func(troupe.Task) bool) troupe.BackendFactory {
	return func(_ context.Context, _ troupe.WorkerInfo, out troupe.Outcomes) (troupe.Backend, error) {
		b := &fakeBackend{fn: fn, out: out, in: make(chan []troupe.Task, 1024), done: make(chan struct{}), crash: crash}
		go b.loop()
		out.Grant(16)
		return b, nil
	}
}

func (b *fakeBackend) loop() {
	for {
		select {
		case <-b.done:
			return
		case recs := <-b.in:
			for _, r := range recs {
				if b.crash != nil && b.crash(r) {
					b.out.Fail(errors.New("process killed by SIGKILL"))
					<-b.done
					return
				}
				outs, err := b.fn(context.Background(), r.Record)
				b.out.Results([]troupe.Result{{Outputs: outs, Err: err}})
				b.out.Grant(1)
			}
		}
	}
}

func (b *fakeBackend) Submit(recs []troupe.Task) error {
	select {
	case b.in <- recs:
		return nil
	case <-b.done:
		return errors.New("closed")
	}
}

func (b *fakeBackend) Close(context.Context) error {
	b.once.Do(func() { close(b.done) })
	return nil
}

func TestBackendStageCrashesAreRedelivered(t *testing.T) {
	const n = 20000
	crash := func(t troupe.Task) bool { return t.Attempt == 1 && rand.IntN(1000) == 0 }
	poison := func(t troupe.Task) bool { return t.Record.Key == "77" }
	var crashes atomic.Int64
	sink, dead := &memSink{}, &memDead{}
	p := &troupe.Pipeline{
		Source: &countSource{n: n},
		Stages: []troupe.Stage{{Name: "plug", Backend: newFakeFactory(upper, func(t troupe.Task) bool {
			if crash(t) || poison(t) {
				crashes.Add(1)
				return true
			}
			return false
		}), Workers: 3, Restart: troupe.Restart{Intensity: 1000, Period: time.Second}}},
		Sink: sink, DeadLetters: dead,
	}
	sum, err := Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	keys := sink.keys()
	if len(keys) != n-1 || len(dead.ds) != 1 || dead.ds[0].Key != "77" || !strings.Contains(dead.ds[0].Error, "SIGKILL") {
		t.Fatalf("sink %d, dead %+v", len(keys), dead.ds)
	}
	keys = append(keys, "77")
	assertExactlyOnce(t, keys, n)
	// Every crash restarts its worker; only the last crash of each worker may still be waiting
	// for its restart when the run ends (the poison record alone crashes 3 times).
	if c := crashes.Load(); c < 3 || sum.Restarts < c-3 || sum.Restarts > c {
		t.Fatalf("%d restarts for %d crashes", sum.Restarts, c)
	}
}

// A panicking sink: the collector restarts, the source resends its window, and the books (which
// live in the run) keep every record exactly once.
func TestCollectorRestartResendsWindow(t *testing.T) {
	const n = 5000
	var calls atomic.Int64
	sink := &memSink{}
	sink.onRec = func() {
		if calls.Add(1) == 1234 {
			panic("sink hiccup")
		}
	}
	p := &troupe.Pipeline{Source: &countSource{n: n}, Stages: []troupe.Stage{{Name: "a", Func: upper, Workers: 2}}, Sink: sink}
	sum, err := Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	assertExactlyOnce(t, sink.keys(), n)
	if sum.Restarts == 0 {
		t.Fatal("collector did not restart")
	}
}

// A window far larger than the reader's batch: acks arriving while the end of input is on its
// way used to ask a reader that had already stopped, and the source blocked for ever.
func TestLargeWindowEndsCleanly(t *testing.T) {
	for range 5 {
		sink := &memSink{}
		p := &troupe.Pipeline{
			Source: &countSource{n: 50_000},
			Stages: []troupe.Stage{{Name: "a", Func: upper, Workers: 2, Credits: 2048}, {Name: "b", Func: upper, Workers: 2, Credits: 2048}},
			Sink:   sink,
		}
		if _, err := Run(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		assertExactlyOnce(t, sink.keys(), 50_000)
	}
}
