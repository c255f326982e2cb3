package troupe_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

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
		rec.Payload = []byte("record " + rec.Key)
		return []*troupe.Record{rec}, nil
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

// A word count from a spec: lines from standard input are split into words, counted per word
// and formatted, then written to standard output.
func ExampleSpec_Pipeline() {
	spec, err := troupe.ParseSpec([]byte(`
name: wordcount
source: {lines: {path: "-"}}
stages:
  - {name: words, builtin: split, options: {key_from: field}}
  - {name: count, builtin: count}
  - {name: format, builtin: format, options: {template: "{key}: {payload}"}}
sink: {lines: {path: "-"}}
`), "wordcount.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	var out bytes.Buffer
	p, err := spec.Pipeline(troupe.BuildOptions{
		Stdin:  strings.NewReader("the cat sat\non the mat\n"),
		Stdout: &out,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	slices.Sort(lines) // stages run in parallel: sort for a stable listing
	fmt.Println(strings.Join(lines, "\n"))
	// Output:
	// cat: 1
	// mat: 1
	// on: 1
	// sat: 1
	// the: 2
}

// ParseSpec reports every problem in a spec at once, each at its position.
func ExampleParseSpec() {
	_, err := troupe.ParseSpec([]byte(`
source: {lines: {path: words.txt}}
stages:
  - name: words
    builtin: split
    workers: two
  - name: count
    builtin: count
    timout: 5s
sink: {discard: {}}
order: sorted
`), "job.yaml")
	var se *troupe.SpecError
	if errors.As(err, &se) {
		for _, e := range se.Errors {
			fmt.Println(e)
		}
	}
	// Output:
	// job.yaml:6:14: workers: expected an integer, got string "two"
	// job.yaml:9:5: unknown key "timout" in stage (did you mean "timeout"?)
	// job.yaml:11:8: order: unknown order "sorted" (want any or input)
}

// A valid spec, loaded from bytes: paths resolve against the spec file's directory.
func ExampleParseSpec_valid() {
	spec, err := troupe.ParseSpec([]byte(`
source: {lines: {path: words.txt}}
stages:
  - {name: words, builtin: split, options: {key_from: field}}
  - {name: count, builtin: count}
sink: {lines: {path: out/counts.txt}}
`), "jobs/wordcount.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	// Paths resolve against the spec's directory, to absolute paths.
	rel := func(p string) string { r, _ := filepath.Rel(spec.Dir, p); return r }
	fmt.Println("name:", spec.Name)
	fmt.Println("source:", rel(spec.Source.Lines.Path))
	for _, st := range spec.Stages {
		fmt.Printf("stage %s: builtin %s (reduce: %t)\n", st.Name, st.Builtin, st.IsReduce())
	}
	fmt.Println("sink:", rel(spec.Sink.Lines.Path))
	// Output:
	// name: wordcount
	// source: words.txt
	// stage words: builtin split (reduce: false)
	// stage count: builtin count (reduce: true)
	// sink: out/counts.txt
}
