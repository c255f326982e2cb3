package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/supervisor"
)

// fastRestart restarts crashed workers at once, however often: for tests that crash a lot.
var fastRestart = troupe.Restart{Intensity: 1_000_000, Period: time.Second, Backoff: supervisor.Backoff{Min: time.Microsecond, Max: time.Microsecond}}

// A restarted worker keeps its name: a batch sent to an incarnation that has just died used to
// reach its successor, whose outcomes were then attributed to the records the distributor had
// handed it since (duplicates at the sink, records never done, or "reported 1 outcomes for 0
// records"). Here every record crashes its worker once, so restarts race with batches all the
// time.
func TestBatchForADeadWorkerNeverReachesItsSuccessor(t *testing.T) {
	const n = 2000
	crashOnce := func(t troupe.Task) bool { return t.Attempt == 1 && t.Record.Key[len(t.Record.Key)-1] == '3' }
	sink, dead := &memSink{}, &memDead{}
	p := &troupe.Pipeline{
		Source:      &countSource{n: n},
		Stages:      []troupe.Stage{{Name: "plug", Backend: newFakeFactory(upper, crashOnce), Workers: 3, Credits: 8, Restart: fastRestart}},
		Sink:        sink,
		DeadLetters: dead,
	}
	if _, err := Run(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if len(dead.ds) != 0 {
		t.Fatalf("%d dead letters, first %+v", len(dead.ds), dead.ds[0])
	}
	assertExactlyOnce(t, sink.keys(), n)
	for _, r := range sink.recs {
		if want := "V" + r.Key; string(r.Payload) != want {
			t.Fatalf("record %s: payload %q, want %q", r.Key, r.Payload, want)
		}
	}
}

// Run.Stop interrupts like a cancelled context; an aborted run says so; outcomes have names.
func TestOutcomes(t *testing.T) {
	r, err := Start(context.Background(), &troupe.Pipeline{Source: &countSource{n: 1 << 40}, Stages: []troupe.Stage{{Name: "a", Func: upper, Workers: 1}}, Sink: &memSink{}})
	if err != nil {
		t.Fatal(err)
	}
	for r.Progress().RecordsOut < 100 {
		time.Sleep(time.Millisecond)
	}
	if o := r.Progress().Outcome; o != troupe.OutcomeRunning {
		t.Fatalf("outcome while running: %v", o)
	}
	r.Stop()
	sum, err := r.Wait()
	if !errors.Is(err, context.Canceled) || sum.Outcome != troupe.OutcomeInterrupted || sum.InFlight != 0 {
		t.Fatalf("stopped: err %v, outcome %v, in flight %d", err, sum.Outcome, sum.InFlight)
	}

	sum, err = Run(context.Background(), &troupe.Pipeline{Source: &errSource{}, Sink: &memSink{}})
	if err == nil || errors.Is(err, context.Canceled) || sum.Outcome != troupe.OutcomeAborted {
		t.Fatalf("source error: err %v, outcome %v", err, sum.Outcome)
	}

	for o := troupe.OutcomeRunning; o <= troupe.OutcomeAborted; o++ {
		b, err := json.Marshal(o)
		var back troupe.Outcome
		if err != nil || json.Unmarshal(b, &back) != nil || back != o || string(b) != strconv.Quote(o.String()) {
			t.Fatalf("outcome %d: %s %v → %v", o, b, err, back)
		}
	}
	if got := fmt.Sprint(troupe.OutcomeCompleted, troupe.OutcomeDeadLetters, troupe.OutcomeInterrupted, troupe.OutcomeAborted); got != "completed dead_letters interrupted aborted" {
		t.Fatalf("names %q", got)
	}
}

// errSource fails at once.
type errSource struct{}

func (errSource) Read(context.Context, int) ([]troupe.Record, error) {
	return nil, errors.New("disk on fire")
}
func (errSource) Close() error { return nil }

// A stage that kills its worker whatever the record (a panic in a Func, a backend failing) is
// declared broken after brokenAfter records, and the run aborts naming it, rather than
// dead-lettering the whole input one restart at a time. What was read stays in flight, not
// dead-lettered.
func TestBrokenStageAbortsTheRun(t *testing.T) {
	const n = 10_000
	for _, kind := range []string{"func", "backend"} {
		t.Run(kind, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var calls atomic.Int64
			touch := func() {
				// A safety valve: without the detection the run would take hours.
				if calls.Add(1) == 2000 {
					cancel()
				}
			}
			st := troupe.Stage{Name: "boom", Workers: 2}
			want := "panic: every record"
			if kind == "func" {
				st.Func = func(context.Context, troupe.Record) ([]troupe.Record, error) { touch(); panic("every record") }
			} else {
				st.Backend = newFakeFactory(upper, func(troupe.Task) bool { touch(); return true })
				want = "SIGKILL"
			}
			sink, dead := &memSink{}, &memDead{}
			p := &troupe.Pipeline{Source: &countSource{n: n}, Stages: []troupe.Stage{{Name: "up", Func: upper, Workers: 1}, st}, Sink: sink, DeadLetters: dead}
			sum, err := Run(ctx, p)
			if err == nil || !strings.Contains(err.Error(), "stage boom is broken") || !strings.Contains(err.Error(), want) || errors.Is(err, context.Canceled) {
				t.Fatalf("err %v; want the stage declared broken with its last error (%q)", err, want)
			}
			if sum.Outcome != troupe.OutcomeAborted || sum.DeadLetters != 0 || len(dead.ds) != 0 || sum.RecordsOut != 0 || sum.InFlight == 0 || sum.InFlight != sum.RecordsIn {
				t.Fatalf("outcome %v, %d dead letters, %d out, %d in flight of %d read", sum.Outcome, sum.DeadLetters, sum.RecordsOut, sum.InFlight, sum.RecordsIn)
			}
			if c := calls.Load(); c > 10*brokenAfter {
				t.Fatalf("the stage ran %d times before it was declared broken", c)
			}
			t.Logf("%s: %d calls, %s: %v", kind, calls.Load(), sum.Elapsed, err)
		})
	}
}

// Poison records packed together, with successes between them: never a broken stage.
func TestManyPoisonRecordsAreNotABrokenStage(t *testing.T) {
	const n = 3000
	poison := func(key string) bool { i, _ := strconv.Atoi(key); return i%10 == 3 }
	for _, kind := range []string{"func", "backend"} {
		t.Run(kind, func(t *testing.T) {
			st := troupe.Stage{Name: "p", Workers: 3, Restart: fastRestart}
			if kind == "func" {
				st.Func = func(ctx context.Context, r troupe.Record) ([]troupe.Record, error) {
					if poison(r.Key) {
						panic("poison " + r.Key)
					}
					return upper(ctx, r)
				}
			} else {
				st.Backend = newFakeFactory(upper, func(t troupe.Task) bool { return poison(t.Record.Key) })
			}
			sink, dead := &memSink{}, &memDead{}
			sum, err := Run(context.Background(), &troupe.Pipeline{Source: &countSource{n: n}, Stages: []troupe.Stage{st}, Sink: sink, DeadLetters: dead})
			if err != nil {
				t.Fatal(err)
			}
			if len(dead.ds) != n/10 || len(sink.keys()) != n-n/10 || sum.Outcome != troupe.OutcomeDeadLetters {
				t.Fatalf("sink %d, dead %d, outcome %v", len(sink.keys()), len(dead.ds), sum.Outcome)
			}
		})
	}
}

// The runtime trusts nothing of a stage's outputs but Key, Payload and Meta (it has no other
// fields): an output returned twice, the input returned several times, the input changed and
// returned, neither hang the run nor lose or duplicate a record.
func TestStageCannotCorruptBookkeeping(t *testing.T) {
	const n = 3000
	stages := map[string]struct {
		fn   troupe.Func
		outs int // outputs per input
	}{
		"same new record twice": {func(_ context.Context, r troupe.Record) ([]troupe.Record, error) {
			o := troupe.Record{Key: r.Key, Payload: r.Payload}
			return []troupe.Record{o, o}, nil
		}, 2},
		"input returned three times": {func(_ context.Context, r troupe.Record) ([]troupe.Record, error) {
			return []troupe.Record{r, r, r}, nil
		}, 3},
		"input changed and returned twice": {func(_ context.Context, r troupe.Record) ([]troupe.Record, error) {
			r.Payload, r.Meta = []byte("changed"), map[string]string{"k": "v"}
			return []troupe.Record{r, r}, nil
		}, 2},
		"split with weights changed": {func(_ context.Context, r troupe.Record) ([]troupe.Record, error) {
			outs := make([]troupe.Record, 20)
			for i := range outs {
				outs[i] = troupe.Record{Key: r.Key, Payload: r.Payload}
			}
			outs[19] = outs[3]
			return outs, nil
		}, 20},
	}
	for name, tc := range stages {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // only if it hangs
			defer cancel()
			sink, dead := &memSink{}, &memDead{}
			p := &troupe.Pipeline{Source: &countSource{n: n}, Stages: []troupe.Stage{{Name: "s", Func: tc.fn, Workers: 2}, {Name: "next", Func: upper, Workers: 2}}, Sink: sink, DeadLetters: dead, DrainTimeout: time.Second}
			sum, err := Run(ctx, p)
			if err != nil || sum.Outcome != troupe.OutcomeCompleted || len(dead.ds) != 0 {
				t.Fatalf("err %v, outcome %v, %d dead letters", err, sum.Outcome, len(dead.ds))
			}
			count := map[string]int{}
			for _, k := range sink.keys() {
				count[k]++
			}
			for i := range n {
				if c := count[strconv.Itoa(i)]; c != tc.outs {
					t.Fatalf("key %d reached the sink %d times, want %d", i, c, tc.outs)
				}
			}
		})
	}
}

// A Func that rewrites its input's fields (which the contract forbids) cannot change the record
// the runtime keeps for redelivery: after the window is resent (the collector restarted), each
// record is still transformed once. The builtin format did this, and the sink got "2\t2\tb".
func TestFuncCannotChangeTheRecordKeptForRedelivery(t *testing.T) {
	const n = 5000
	format := func(_ context.Context, r troupe.Record) ([]troupe.Record, error) {
		r.Payload = append([]byte(r.Key+"\t"), r.Payload...)
		if r.Meta == nil {
			r.Meta = map[string]string{}
		}
		r.Meta["seen"] += "x"
		return []troupe.Record{r}, nil
	}
	var calls atomic.Int64
	sink := &memSink{}
	sink.onRec = func() {
		if calls.Add(1) == 1234 {
			panic("sink hiccup")
		}
	}
	sum, err := Run(context.Background(), &troupe.Pipeline{Source: &countSource{n: n}, Stages: []troupe.Stage{{Name: "format", Func: format, Workers: 2}}, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Restarts == 0 {
		t.Fatal("the collector did not restart: the test proves nothing")
	}
	assertExactlyOnce(t, sink.keys(), n)
	for _, r := range sink.recs {
		if want := r.Key + "\tv" + r.Key; string(r.Payload) != want || r.Meta["seen"] != "x" {
			t.Fatalf("record %s: payload %q meta %v, want %q and seen=x", r.Key, r.Payload, r.Meta, want)
		}
	}
}

// A ReduceFunc that changes the record it is given cannot hang the run or change its key.
func TestReduceCannotCorruptBookkeeping(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // only if it hangs
	defer cancel()
	count := func(_ string, acc []byte, r troupe.Record) ([]byte, error) {
		r.Key, r.Payload, r.Meta = "other", nil, map[string]string{} // its own copy
		n, _ := strconv.Atoi(string(acc))
		return []byte(strconv.Itoa(n + 1)), nil
	}
	sink := &memSink{}
	p := &troupe.Pipeline{Source: &countSource{n: 1000}, Stages: []troupe.Stage{{Name: "count", Reduce: count}}, Sink: sink, DrainTimeout: time.Second}
	sum, err := Run(ctx, p)
	if err != nil || sum.Outcome != troupe.OutcomeCompleted {
		t.Fatalf("err %v, outcome %v", err, sum.Outcome)
	}
	if len(sink.recs) != 1000 {
		t.Fatalf("%d aggregates, want 1000", len(sink.recs))
	}
}

// reusingSource hands out the same slice on every Read, and scribbles over it after each Read
// returns (when the next one comes): the runtime keeps its own copy of each record it reads.
type reusingSource struct {
	n, next int
	buf     []troupe.Record
}

func (s *reusingSource) Read(ctx context.Context, max int) ([]troupe.Record, error) {
	for i := range s.buf {
		s.buf[i] = troupe.Record{Key: "scribbled", Payload: []byte("scribbled")}
	}
	k := min(max, 7, s.n-s.next)
	if cap(s.buf) < k {
		s.buf = make([]troupe.Record, k)
	}
	s.buf = s.buf[:k]
	for i := range s.buf {
		s.buf[i] = troupe.Record{Key: strconv.Itoa(s.next), Payload: []byte("v" + strconv.Itoa(s.next))}
		s.next++
	}
	if s.next == s.n {
		return s.buf, io.EOF
	}
	return s.buf, nil
}
func (s *reusingSource) Close() error { return nil }

func TestSourceReusingItsSliceCannotCorruptRecords(t *testing.T) {
	const n = 3000
	sink := &memSink{}
	sum, err := Run(context.Background(), &troupe.Pipeline{Source: &reusingSource{n: n}, Stages: []troupe.Stage{{Name: "up", Func: upper, Workers: 2}}, Sink: sink})
	if err != nil || sum.Outcome != troupe.OutcomeCompleted {
		t.Fatalf("err %v, outcome %v", err, sum.Outcome)
	}
	assertExactlyOnce(t, sink.keys(), n)
	for _, r := range sink.recs {
		if want := "V" + r.Key; string(r.Payload) != want {
			t.Fatalf("record %s: payload %q, want %q", r.Key, r.Payload, want)
		}
	}
}
