package engine_test

import (
	"bytes"
	"context"
	"fmt"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/engine"
)

// An engine runs jobs on demand; a job without a sink keeps its output in memory.
func Example() {
	e, err := engine.New(engine.Options{MaxJobs: 2})
	if err != nil {
		panic(err)
	}
	defer e.Shutdown(context.Background())

	upper := troupe.Stage{Name: "upper", Func: func(_ context.Context, r troupe.Record) ([]troupe.Record, error) {
		return []troupe.Record{{Key: r.Key, Payload: bytes.ToUpper(r.Payload)}}, nil
	}}
	job, err := e.Submit(context.Background(), engine.JobSpec{
		Pipeline: &troupe.Pipeline{Name: "shout", Stages: []troupe.Stage{upper}, Order: troupe.OrderInput},
		Input:    actors.NewStringsSource([]string{"hello", "world"}),
	})
	if err != nil {
		panic(err)
	}
	summary, err := job.Wait(context.Background())
	fmt.Println(job.Status(), summary.RecordsOut, err)
	for _, r := range job.Output().Records() {
		fmt.Println(r.Key, string(r.Payload))
	}
	// Output:
	// done 2 <nil>
	// 1 HELLO
	// 2 WORLD
}

// A spec (YAML or JSON) with the request's input; a spec without a sink keeps its output in
// memory.
func ExampleEngine_Submit_spec() {
	e, err := engine.New(engine.Options{})
	if err != nil {
		panic(err)
	}
	defer e.Shutdown(context.Background())
	job, err := e.Submit(context.Background(), engine.JobSpec{
		Spec:  []byte("order: input\nstages:\n  - {name: up, builtin: upper}\n"),
		Input: actors.NewStringsSource([]string{"a", "b"}),
	})
	if err != nil {
		panic(err)
	}
	if _, err := job.Wait(context.Background()); err != nil {
		panic(err)
	}
	for _, r := range job.Output().Records() {
		fmt.Println(string(r.Payload))
	}
	// Output:
	// A
	// B
}
