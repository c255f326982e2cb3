package actors_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/troupe-dev/troupe/actors"
)

// Word count: a splitter, a reduce stage and a formatting stage, in source order.
func Example() {
	text := "the cat sat\non the mat\nthe end\n"
	src, err := actors.NewLinesSource("-", strings.NewReader(text))
	if err != nil {
		fmt.Println(err)
		return
	}
	sink, err := actors.NewLinesSink("-", os.Stdout)
	if err != nil {
		fmt.Println(err)
		return
	}
	words := func(_ context.Context, r *actors.Record) ([]*actors.Record, error) {
		var out []*actors.Record
		for _, w := range strings.Fields(string(r.Payload)) {
			out = append(out, &actors.Record{Key: w})
		}
		return out, nil // zero, one or many outputs
	}
	count := func(_ string, acc []byte, _ *actors.Record) ([]byte, error) {
		n, _ := strconv.Atoi(string(acc))
		return strconv.AppendInt(nil, int64(n+1), 10), nil
	}
	format := func(_ context.Context, r *actors.Record) ([]*actors.Record, error) {
		return []*actors.Record{{Key: r.Key, Payload: fmt.Appendf(nil, "%s %s", r.Key, r.Payload)}}, nil
	}
	p := &actors.Pipeline{
		Source: src,
		Stages: []actors.Stage{
			{Name: "words", Func: words, Workers: 2},
			{Name: "count", Reduce: count},
			{Name: "format", Func: format, Workers: 2},
		},
		Sink:  sink,
		Order: actors.OrderInput,
	}
	sum, err := p.Run(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sum.RecordsIn, "lines,", sum.RecordsOut, "distinct words")
	// Output:
	// cat 1
	// end 1
	// mat 1
	// on 1
	// sat 1
	// the 3
	// 3 lines, 6 distinct words
}
