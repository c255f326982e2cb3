package spec_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/spec"
)

// A word count from a spec: lines from standard input are split into words, counted per word
// and formatted, then written to standard output.
func ExampleSpec_Pipeline() {
	s, err := spec.Parse([]byte(`
name: wordcount
source: {lines: {path: "-"}}
stages:
  - {name: words, builtin: split}
  - {name: count, builtin: count}
  - {name: format, builtin: format, options: {template: "{key}: {payload}"}}
sink: {lines: {path: "-"}}
`), "wordcount.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	var out bytes.Buffer
	p, err := s.Pipeline(spec.BuildOptions{
		Stdin:  strings.NewReader("the cat sat\non the mat\n"),
		Stdout: &out,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := actors.Run(context.Background(), p); err != nil {
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

// Parse reports every problem in a spec at once, each at its position.
func ExampleParse() {
	_, err := spec.Parse([]byte(`
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
	var se *spec.SpecError
	if errors.As(err, &se) {
		for _, e := range se.Errors {
			fmt.Println(e)
		}
	}
	// Output:
	// job.yaml:6:14: stages[0].workers: want an integer, got string "two"
	// job.yaml:9:5: stages[1]: unknown key "timout" (did you mean "timeout"?)
	// job.yaml:11:8: order: unknown value "sorted" (want one of: any, input)
}

// A valid spec, loaded from bytes: paths resolve against the spec file's directory.
func ExampleParse_valid() {
	s, err := spec.Parse([]byte(`
source: {lines: {path: words.txt}}
stages:
  - {name: words, builtin: split}
  - {name: count, builtin: count}
sink: {lines: {path: out/counts.txt}}
`), "jobs/wordcount.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	// Paths resolve against the spec's directory, to absolute paths.
	rel := func(p string) string { r, _ := filepath.Rel(s.Dir, p); return r }
	fmt.Println("name:", s.Name)
	fmt.Println("source:", rel(s.Source.Lines.Path))
	for _, st := range s.Stages {
		fmt.Printf("stage %s: builtin %s (reduce: %t)\n", st.Name, st.Builtin, st.IsReduce())
	}
	fmt.Println("sink:", rel(s.Sink.Lines.Path))
	// Output:
	// name: wordcount
	// source: words.txt
	// stage words: builtin split (reduce: false)
	// stage count: builtin count (reduce: true)
	// sink: out/counts.txt
}
