package troupe_test

import (
	"context"
	"fmt"
	"strconv"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
)

// A pipeline built in Go: a thousand synthetic records, a stage that keeps every third one and
// upper-cases its key into the payload, and a sink that discards what it gets.
func Example() {
	keep := func(ctx context.Context, rec *troupe.Record) ([]*troupe.Record, error) {
		n, err := strconv.Atoi(rec.Key)
		if err != nil {
			return nil, err
		}
		if n%3 != 0 {
			return nil, nil // filtered out
		}
		// A Func never changes its input (it may be delivered again): it returns a new record.
		return []*troupe.Record{{Key: rec.Key, Payload: []byte("record " + rec.Key)}}, nil
	}
	p := &troupe.Pipeline{
		Name:   "every-third",
		Source: actors.NewRangeSource(1000, 16),
		Stages: []troupe.Stage{{Name: "keep", Func: keep, Workers: 4}},
		Sink:   actors.NewDiscardSink(),
	}
	sum, err := p.Run(context.Background())
	if err != nil {
		fmt.Println("run failed:", err)
		return
	}
	fmt.Printf("in %d, out %d, dropped %d, dead letters %d\n", sum.RecordsIn, sum.RecordsOut, sum.Dropped, sum.DeadLetters)
	// Output:
	// in 1000, out 334, dropped 666, dead letters 0
}
