package actors_test

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
)

// Run with one Func stage: a hundred synthetic records, a stage that keeps the even ones and
// returns a new record for each, and a sink that discards what it gets.
func ExampleRun() {
	even := func(ctx context.Context, rec troupe.Record) ([]troupe.Record, error) {
		n, err := strconv.Atoi(rec.Key)
		if err != nil {
			return nil, err // fails this attempt: retried, then dead-lettered
		}
		if n%2 != 0 {
			return nil, nil // filtered out
		}
		return []troupe.Record{{Key: rec.Key, Payload: []byte("even")}}, nil
	}
	p := &troupe.Pipeline{
		Source: actors.NewRangeSource(100, 8),
		Stages: []troupe.Stage{{Name: "even", Func: even, Workers: 2}},
		Sink:   actors.NewDiscardSink(),
	}
	sum, err := actors.Run(context.Background(), p)
	if err != nil {
		fmt.Println("run failed:", err)
		return
	}
	fmt.Printf("in %d, out %d, dropped %d\n", sum.RecordsIn, sum.RecordsOut, sum.Dropped)
	// Output:
	// in 100, out 50, dropped 50
}

// A reduce stage folds the records of each key into an aggregate, and emits one record per key
// at the end of input, in key order.
func ExampleRun_reduce() {
	src, _ := actors.NewLinesSource("-", strings.NewReader("a 3\nb 4\na 5\n"))
	byLetter := func(_ context.Context, rec troupe.Record) ([]troupe.Record, error) {
		letter, n, _ := strings.Cut(string(rec.Payload), " ")
		return []troupe.Record{{Key: letter, Payload: []byte(n)}}, nil
	}
	sum := func(_ string, acc []byte, rec troupe.Record) ([]byte, error) {
		a, _ := strconv.Atoi(string(acc)) // acc is nil for a key's first record
		n, err := strconv.Atoi(string(rec.Payload))
		if err != nil {
			return nil, err
		}
		return strconv.AppendInt(nil, int64(a+n), 10), nil
	}
	out := &printSink{}
	p := &troupe.Pipeline{
		Source: src,
		Stages: []troupe.Stage{{Name: "key", Func: byLetter}, {Name: "sum", Reduce: sum}},
		Sink:   out,
		Order:  troupe.OrderInput,
	}
	if _, err := actors.Run(context.Background(), p); err != nil {
		fmt.Println("run failed:", err)
	}
	// Output:
	// a 8
	// b 4
}

// printSink prints each record it gets as "key payload".
type printSink struct{}

func (printSink) Write(rec troupe.Record) error {
	fmt.Println(rec.Key, string(rec.Payload))
	return nil
}
func (printSink) Flush() error { return nil }
func (printSink) Close() error { return nil }

// A custom Source and Sink: the source hands out the words of a sentence, a few per Read, and
// the sink collects what reaches it. The runtime calls each from one goroutine at a time.
func ExampleRun_customSourceAndSink() {
	src := &wordSource{words: strings.Fields("the quick brown fox jumps over the lazy dog")}
	sink := &collectSink{}
	p := &troupe.Pipeline{
		Source: src,
		Stages: []troupe.Stage{{Name: "len", Func: func(_ context.Context, rec troupe.Record) ([]troupe.Record, error) {
			return []troupe.Record{{Key: rec.Key, Payload: strconv.AppendInt(nil, int64(len(rec.Payload)), 10)}}, nil
		}}},
		Sink:  sink,
		Order: troupe.OrderInput, // the sink gets records in source order
	}
	sum, err := actors.Run(context.Background(), p)
	if err != nil {
		fmt.Println("run failed:", err)
		return
	}
	fmt.Println(sum.RecordsOut, "records:", strings.Join(sink.got, " "))
	// Output:
	// 9 records: the=3 quick=5 brown=5 fox=3 jumps=5 over=4 the=3 lazy=4 dog=3
}

// wordSource is a Source of one record per word, keyed by its position.
type wordSource struct {
	words []string
	next  int
}

func (s *wordSource) Read(ctx context.Context, max int) ([]troupe.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var recs []troupe.Record
	for ; s.next < len(s.words) && len(recs) < min(max, 4); s.next++ {
		recs = append(recs, troupe.Record{Key: s.words[s.next], Payload: []byte(s.words[s.next])})
	}
	if s.next == len(s.words) {
		return recs, io.EOF // the last batch may come with io.EOF
	}
	return recs, nil
}

func (s *wordSource) Close() error { return nil }

// collectSink is a Sink that keeps "key=payload" for each record. A real sink makes what it
// wrote durable in Flush; records count as out once Flush succeeds.
type collectSink struct {
	mu  sync.Mutex
	got []string
}

func (s *collectSink) Write(rec troupe.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, rec.Key+"="+string(rec.Payload))
	return nil
}
func (s *collectSink) Flush() error { return nil }
func (s *collectSink) Close() error { return nil }

// Start runs a pipeline in the background: Progress reports its figures while it runs, Stop
// ends it gracefully, and Wait returns its summary.
func ExampleStart() {
	p := &troupe.Pipeline{
		Source: actors.NewRangeSource(1000, 8),
		Stages: []troupe.Stage{{Name: "id", Func: func(_ context.Context, rec troupe.Record) ([]troupe.Record, error) {
			return []troupe.Record{rec}, nil // a Func may return its input
		}}},
		Sink: actors.NewDiscardSink(),
	}
	job, err := actors.Start(context.Background(), p)
	if err != nil {
		fmt.Println("start failed:", err)
		return
	}
	_ = job.Progress() // a snapshot, at any time
	sum, err := job.Wait()
	fmt.Println(sum.RecordsOut, err, slices.ContainsFunc(sum.Stages, func(s troupe.StageSummary) bool { return s.Name == "id" }))
	// Output:
	// 1000 <nil> true
}
