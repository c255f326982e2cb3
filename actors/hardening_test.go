package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/ipc"
	"github.com/troupe-dev/troupe/supervisor"
)

// fastRestart restarts crashed workers at once, however often: for tests that crash a lot.
var fastRestart = Restart{Intensity: 1_000_000, Period: time.Second, Backoff: supervisor.Backoff{Min: time.Microsecond, Max: time.Microsecond}}

// A restarted worker keeps its name: a batch sent to an incarnation that has just died used to
// reach its successor, whose outcomes were then attributed to the records the distributor had
// handed it since (duplicates at the sink, records never done, or "reported 1 outcomes for 0
// records"). Here every record crashes its worker once, so restarts race with batches all the
// time.
func TestBatchForADeadWorkerNeverReachesItsSuccessor(t *testing.T) {
	const n = 2000
	crashOnce := func(r *Record) bool { return r.Attempt == 0 && r.Key[len(r.Key)-1] == '3' }
	sink, dead := &memSink{}, &memDead{}
	p := &Pipeline{
		Source:      &countSource{n: n},
		Stages:      []Stage{{Name: "plug", Backend: newFakeFactory(upper, crashOnce), Workers: 3, Credits: 8, Restart: fastRestart}},
		Sink:        sink,
		DeadLetters: dead,
	}
	if _, err := p.Run(context.Background()); err != nil {
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
	r, err := (&Pipeline{Source: &countSource{n: 1 << 40}, Stages: []Stage{{Name: "a", Func: upper, Workers: 1}}, Sink: &memSink{}}).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for r.Progress().RecordsOut < 100 {
		time.Sleep(time.Millisecond)
	}
	if o := r.Progress().Outcome; o != OutcomeRunning {
		t.Fatalf("outcome while running: %v", o)
	}
	r.Stop()
	sum, err := r.Wait()
	if !errors.Is(err, context.Canceled) || sum.Outcome != OutcomeInterrupted || sum.InFlight != 0 {
		t.Fatalf("stopped: err %v, outcome %v, in flight %d", err, sum.Outcome, sum.InFlight)
	}

	sum, err = (&Pipeline{Source: &errSource{}, Sink: &memSink{}}).Run(context.Background())
	if err == nil || errors.Is(err, context.Canceled) || sum.Outcome != OutcomeAborted {
		t.Fatalf("source error: err %v, outcome %v", err, sum.Outcome)
	}

	for o := OutcomeRunning; o <= OutcomeAborted; o++ {
		b, err := json.Marshal(o)
		var back Outcome
		if err != nil || json.Unmarshal(b, &back) != nil || back != o || string(b) != strconv.Quote(o.String()) {
			t.Fatalf("outcome %d: %s %v → %v", o, b, err, back)
		}
	}
	if got := fmt.Sprint(OutcomeCompleted, OutcomeDeadLetters, OutcomeInterrupted, OutcomeAborted); got != "completed dead_letters interrupted aborted" {
		t.Fatalf("names %q", got)
	}
}

// errSource fails at once.
type errSource struct{}

func (errSource) Read(context.Context, int) ([]*Record, error) {
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
			st := Stage{Name: "boom", Workers: 2}
			want := "panic: every record"
			if kind == "func" {
				st.Func = func(context.Context, *Record) ([]*Record, error) { touch(); panic("every record") }
			} else {
				st.Backend = newFakeFactory(upper, func(*Record) bool { touch(); return true })
				want = "SIGKILL"
			}
			sink, dead := &memSink{}, &memDead{}
			p := &Pipeline{Source: &countSource{n: n}, Stages: []Stage{{Name: "up", Func: upper, Workers: 1}, st}, Sink: sink, DeadLetters: dead}
			sum, err := p.Run(ctx)
			if err == nil || !strings.Contains(err.Error(), "stage boom is broken") || !strings.Contains(err.Error(), want) || errors.Is(err, context.Canceled) {
				t.Fatalf("err %v; want the stage declared broken with its last error (%q)", err, want)
			}
			if sum.Outcome != OutcomeAborted || sum.DeadLetters != 0 || len(dead.ds) != 0 || sum.RecordsOut != 0 || sum.InFlight == 0 || sum.InFlight != sum.RecordsIn {
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
	poison := func(r *Record) bool { i, _ := strconv.Atoi(r.Key); return i%10 == 3 }
	for _, kind := range []string{"func", "backend"} {
		t.Run(kind, func(t *testing.T) {
			st := Stage{Name: "p", Workers: 3, Restart: fastRestart}
			if kind == "func" {
				st.Func = func(ctx context.Context, r *Record) ([]*Record, error) {
					if poison(r) {
						panic("poison " + r.Key)
					}
					return upper(ctx, r)
				}
			} else {
				st.Backend = newFakeFactory(upper, poison)
			}
			sink, dead := &memSink{}, &memDead{}
			sum, err := (&Pipeline{Source: &countSource{n: n}, Stages: []Stage{st}, Sink: sink, DeadLetters: dead}).Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(dead.ds) != n/10 || len(sink.keys()) != n-n/10 || sum.Outcome != OutcomeDeadLetters {
				t.Fatalf("sink %d, dead %d, outcome %v", len(sink.keys()), len(dead.ds), sum.Outcome)
			}
		})
	}
}

// The runtime trusts nothing of a stage's outputs but Key, Payload and Meta: an output returned
// twice, the input returned twice, bookkeeping fields set by the stage, in the input or in an
// output, neither hang the run nor lose or duplicate a record; a nil output fails the attempt.
func TestStageCannotCorruptBookkeeping(t *testing.T) {
	const n = 3000
	stages := map[string]struct {
		fn   Func
		outs int // outputs per input
	}{
		"same new record twice": {func(_ context.Context, r *Record) ([]*Record, error) {
			o := &Record{Key: r.Key, Payload: r.Payload}
			return []*Record{o, o}, nil
		}, 2},
		"input returned three times": {func(_ context.Context, r *Record) ([]*Record, error) {
			return []*Record{r, r, r}, nil
		}, 3},
		"output with bookkeeping": {func(_ context.Context, r *Record) ([]*Record, error) {
			return []*Record{{Key: r.Key, Payload: r.Payload, Seq: 7, Sub: 9, Weight: 5, Attempt: 3, Flag: ipc.Flag_END}}, nil
		}, 1},
		"input's bookkeeping changed": {func(_ context.Context, r *Record) ([]*Record, error) {
			r.Seq, r.Sub, r.Weight, r.Flag = r.Seq+1, 42, 1, ipc.Flag_DROPPED
			return []*Record{r}, nil
		}, 1},
		"split with weights changed": {func(_ context.Context, r *Record) ([]*Record, error) {
			outs := make([]*Record, 20)
			for i := range outs {
				outs[i] = &Record{Key: r.Key, Payload: r.Payload, Weight: 1}
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
			p := &Pipeline{Source: &countSource{n: n}, Stages: []Stage{{Name: "s", Func: tc.fn, Workers: 2}, {Name: "next", Func: upper, Workers: 2}}, Sink: sink, DeadLetters: dead, DrainTimeout: time.Second}
			sum, err := p.Run(ctx)
			if err != nil || sum.Outcome != OutcomeCompleted || len(dead.ds) != 0 {
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

func TestNilOutputFailsTheAttempt(t *testing.T) {
	const n = 500
	fn := func(_ context.Context, r *Record) ([]*Record, error) {
		switch r.Key {
		case "5":
			return []*Record{nil}, nil
		case "6":
			return []*Record{r, nil}, nil
		}
		return []*Record{r}, nil
	}
	sink, dead := &memSink{}, &memDead{}
	sum, err := (&Pipeline{Source: &countSource{n: n}, Stages: []Stage{{Name: "nils", Func: fn, Workers: 2}}, Sink: sink, DeadLetters: dead}).Run(context.Background())
	if err != nil || sum.Outcome != OutcomeDeadLetters || len(sink.keys()) != n-2 || len(dead.ds) != 2 {
		t.Fatalf("err %v, outcome %v, sink %d, dead %+v", err, sum.Outcome, len(sink.keys()), dead.ds)
	}
	for _, d := range dead.ds {
		if d.Error != "stage nils returned a nil record" || d.Attempts != DefaultAttempts {
			t.Fatalf("dead letter %+v", d)
		}
	}
}

// nilSource returns a nil record among good ones.
type nilSource struct{ countSource }

func (s *nilSource) Read(ctx context.Context, max int) ([]*Record, error) {
	recs, err := s.countSource.Read(ctx, max)
	if s.next > 300 && len(recs) > 1 {
		recs[1] = nil
	}
	return recs, err
}

func TestNilSourceRecordAbortsTheRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // only if it hangs
	defer cancel()
	sum, err := (&Pipeline{Source: &nilSource{countSource{n: 100_000}}, Stages: []Stage{{Name: "a", Func: upper, Workers: 2}}, Sink: &memSink{}}).Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "source: *actors.nilSource returned a nil record") || sum.Outcome != OutcomeAborted {
		t.Fatalf("err %v, outcome %v", err, sum.Outcome)
	}
}

// A Func that rewrites its input's fields (which the contract forbids) cannot change the record
// the runtime keeps for redelivery: after the window is resent (the collector restarted), each
// record is still transformed once. The builtin format did this, and the sink got "2\t2\tb".
func TestFuncCannotChangeTheRecordKeptForRedelivery(t *testing.T) {
	const n = 5000
	format := func(_ context.Context, r *Record) ([]*Record, error) {
		r.Payload = append([]byte(r.Key+"\t"), r.Payload...)
		if r.Meta == nil {
			r.Meta = map[string]string{}
		}
		r.Meta["seen"] += "x"
		return []*Record{r}, nil
	}
	var calls atomic.Int64
	sink := &memSink{}
	sink.onRec = func() {
		if calls.Add(1) == 1234 {
			panic("sink hiccup")
		}
	}
	sum, err := (&Pipeline{Source: &countSource{n: n}, Stages: []Stage{{Name: "format", Func: format, Workers: 2}}, Sink: sink}).Run(context.Background())
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

// A ReduceFunc that changes its input's bookkeeping cannot hang the run either.
func TestReduceCannotCorruptBookkeeping(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // only if it hangs
	defer cancel()
	count := func(_ string, acc []byte, r *Record) ([]byte, error) {
		r.Weight, r.Sub, r.Seq = 1, 5, r.Seq+3
		n, _ := strconv.Atoi(string(acc))
		return []byte(strconv.Itoa(n + 1)), nil
	}
	sink := &memSink{}
	p := &Pipeline{Source: &countSource{n: 1000}, Stages: []Stage{{Name: "count", Reduce: count}}, Sink: sink, DrainTimeout: time.Second}
	sum, err := p.Run(ctx)
	if err != nil || sum.Outcome != OutcomeCompleted {
		t.Fatalf("err %v, outcome %v", err, sum.Outcome)
	}
	if len(sink.recs) != 1000 {
		t.Fatalf("%d aggregates, want 1000", len(sink.recs))
	}
}
