package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/engine"
)

// engineJobs measures a tiny job (one record through one plugin stage) submitted to an engine,
// from Submit to the end of Wait: through a warm stage (the engine's processes, kept between
// jobs), and, as the baseline, through a stage that starts its own process.
func (h *harness) engineJobs(ctx context.Context) []Figure {
	name := "engine-warm-job-p50"
	cfg, err := pluginConfig()
	if err != nil {
		return failAll(err, name)
	}
	n := h.sizes.restarts * 5
	e, err := engine.New(engine.Options{MaxJobs: 1, Warm: []engine.WarmStage{{Name: "up", Plugin: cfg, Workers: 1}}})
	if err != nil {
		return failAll(err, name)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = e.Shutdown(sctx)
	}()
	cold, err := cfg.Factory()
	if err != nil {
		return failAll(err, name)
	}
	job := func(factory troupe.BackendFactory) (time.Duration, error) {
		start := time.Now()
		j, err := e.Submit(ctx, engine.JobSpec{
			Pipeline: &troupe.Pipeline{Name: "tiny", Stages: []troupe.Stage{{Name: "up", Backend: factory, Workers: 1}}},
			Input:    actors.NewStringsSource([]string{"hello"}),
		})
		if err != nil {
			return 0, err
		}
		s, err := j.Wait(ctx)
		if err != nil {
			return 0, err
		}
		if s.RecordsOut != 1 {
			return 0, fmt.Errorf("a tiny job wrote %d records, want 1", s.RecordsOut)
		}
		return time.Since(start), nil
	}
	var warm, coldLat []time.Duration
	for range n {
		d, err := job(e.Warm("up"))
		if err != nil {
			return failAll(fmt.Errorf("warm job: %w", err), name)
		}
		warm = append(warm, d)
	}
	for range max(3, n/10) {
		d, err := job(cold)
		if err != nil {
			return failAll(fmt.Errorf("cold job: %w", err), name)
		}
		coldLat = append(coldLat, d)
	}
	w, c := ms(p50(warm)), ms(p50(coldLat))
	met := w <= 10
	return []Figure{{Name: name, Unit: "ms", Troupe: w, Baseline: c, Ratio: w / c, BaselineName: "cold job",
		Target: "troupe <= 10 ms", Met: &met,
		Note: fmt.Sprintf("%d one-record jobs through a warm plugin stage, Submit to Wait; max %.3g ms; baseline: %d such jobs whose stage starts its own process", n, ms(slices.Max(warm)), len(coldLat))}}
}
