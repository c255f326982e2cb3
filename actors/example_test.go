package actors_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/troupe-dev/troupe"
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
	words := func(_ context.Context, r troupe.Record) ([]troupe.Record, error) {
		var out []troupe.Record
		for _, w := range strings.Fields(string(r.Payload)) {
			out = append(out, troupe.Record{Key: w})
		}
		return out, nil // zero, one or many outputs
	}
	count := func(_ string, acc []byte, _ troupe.Record) ([]byte, error) {
		n, _ := strconv.Atoi(string(acc))
		return strconv.AppendInt(nil, int64(n+1), 10), nil
	}
	format := func(_ context.Context, r troupe.Record) ([]troupe.Record, error) {
		return []troupe.Record{{Key: r.Key, Payload: fmt.Appendf(nil, "%s %s", r.Key, r.Payload)}}, nil
	}
	p := &troupe.Pipeline{
		Source: src,
		Stages: []troupe.Stage{
			{Name: "words", Func: words, Workers: 2},
			{Name: "count", Reduce: count},
			{Name: "format", Func: format, Workers: 2},
		},
		Sink:  sink,
		Order: troupe.OrderInput,
	}
	sum, err := actors.Run(context.Background(), p)
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
