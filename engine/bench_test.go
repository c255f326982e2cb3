package engine_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/engine"
)

// BenchmarkWarmTinyJob measures a one-record job through a warm plugin stage, from Submit to
// the end of Wait, and reports its p50 and p99 (ms/job): the target is 10 ms p50.
func BenchmarkWarmTinyJob(b *testing.B) {
	e, err := engine.New(engine.Options{Warm: []engine.WarmStage{{Name: "up", Plugin: pluginConfig(), Workers: 1}}})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Shutdown(context.Background())
	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		j, err := e.Submit(context.Background(), warmJob(e, 1, []string{"hello"}))
		if err != nil {
			b.Fatal(err)
		}
		s, err := j.Wait(context.Background())
		if err != nil || s.RecordsOut != 1 || string(j.Output().Records()[0].Payload) != "HELLO" {
			b.Fatalf("%v, %d out", err, s.RecordsOut)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "p99-ms")
}

// BenchmarkColdTinyJob is the same job with a plugin stage that starts its own process, for
// comparison.
func BenchmarkColdTinyJob(b *testing.B) {
	e, err := engine.New(engine.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Shutdown(context.Background())
	factory, err := pluginConfig().Factory()
	if err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		js := warmJob(e, 1, []string{"hello"})
		js.Pipeline.Stages[0].Backend = factory
		j, err := e.Submit(context.Background(), js)
		if err != nil {
			b.Fatal(err)
		}
		if s, err := j.Wait(context.Background()); err != nil || s.RecordsOut != 1 {
			b.Fatalf("%v, %d out", err, s.RecordsOut)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
}
