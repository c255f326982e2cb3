package actors

import (
	"context"
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
