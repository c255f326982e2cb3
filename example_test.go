package troupe_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
)

// A pipeline built in Go: a thousand synthetic records, a stage that keeps every third one and
// upper-cases its key into the payload, and a sink that discards what it gets.
func Example() {
	keep := func(ctx context.Context, rec troupe.Record) ([]troupe.Record, error) {
		n, err := strconv.Atoi(rec.Key)
		if err != nil {
			return nil, err
		}
		if n%3 != 0 {
			return nil, nil // filtered out
		}
		// A Func never changes its input (it may be delivered again): it returns a new record.
		return []troupe.Record{{Key: rec.Key, Payload: []byte("record " + rec.Key)}}, nil
	}
	p := &troupe.Pipeline{
		Name:   "every-third",
		Source: actors.NewRangeSource(1000, 16),
		Stages: []troupe.Stage{{Name: "keep", Func: keep, Workers: 4}},
		Sink:   actors.NewDiscardSink(),
	}
	sum, err := actors.Run(context.Background(), p)
	if err != nil {
		fmt.Println("run failed:", err)
		return
	}
	fmt.Printf("in %d, out %d, dropped %d, dead letters %d\n", sum.RecordsIn, sum.RecordsOut, sum.Dropped, sum.DeadLetters)
	// Output:
	// in 1000, out 334, dropped 666, dead letters 0
}

// A stage reads which attempt at its record a call is from its context: here a flaky step that
// fails every record's first attempt, and succeeds when the runtime retries it.
func ExampleAttempt() {
	var mu sync.Mutex
	attempts := map[int]int{} // how many calls saw each attempt number
	flaky := func(ctx context.Context, rec troupe.Record) ([]troupe.Record, error) {
		n := troupe.Attempt(ctx) // 1 for the first attempt
		mu.Lock()
		attempts[n]++
		mu.Unlock()
		if n == 1 {
			return nil, fmt.Errorf("%s: %s failed its first attempt", troupe.StageName(ctx), rec.Key)
		}
		return []troupe.Record{rec}, nil
	}
	p := &troupe.Pipeline{
		Source: actors.NewRangeSource(10, 8),
		Stages: []troupe.Stage{{Name: "flaky", Func: flaky, Attempts: 3}},
		Sink:   actors.NewDiscardSink(),
	}
	sum, err := actors.Run(context.Background(), p)
	if err != nil {
		fmt.Println("run failed:", err)
		return
	}
	fmt.Printf("out %d, dead letters %d, first attempts %d, second attempts %d\n",
		sum.RecordsOut, sum.DeadLetters, attempts[1], attempts[2])
	// Output:
	// out 10, dead letters 0, first attempts 10, second attempts 10
}
