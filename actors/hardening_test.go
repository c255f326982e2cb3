package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

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
