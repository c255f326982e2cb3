// Package engine runs troupe inside a long-running server. An Engine is started once (one actor
// system, one root supervisor for its life) and accepts jobs: a pipeline built in Go, or a spec
// (YAML or JSON), plus optionally the input that replaces its source. Each job runs under its own
// subtree of the engine's root (actors.StartUnder), so that a job's failure never takes another
// job, or the engine, down.
//
//	e, err := engine.New(engine.Options{MaxJobs: 4})
//	job, err := e.Submit(ctx, engine.JobSpec{Spec: yamlText, Input: actors.NewStringsSource(lines)})
//	summary, err := job.Wait(ctx)
//	for _, rec := range job.Output().Records() { ... }
//	outcomes, err := e.Shutdown(ctx)
//
// A job is queued, running, then done, failed or cancelled (Status). Counts gives its figures as
// it runs (the progress view's), Summary and Err what it did once it has ended; Cancel stops it
// (a cancelled job's status is cancelled, never done). MaxJobs jobs run at once and MaxQueue wait,
// in order (Submit fails with ErrQueueFull beyond); finished jobs are kept for Retention or up
// to RetainJobs. Shutdown refuses new jobs, lets the running ones drain until its context ends,
// cancels the rest, and reports each job's outcome.
//
// A job whose pipeline has no sink (or whose spec has none, or a lines sink to "-") has its
// output collected in memory (Job.Output, an actors.MemorySink bounded by OutputLimit: a job
// whose output would cross it fails with actors.ErrOutputLimit). Package actors has the other
// sources and sinks a server needs: a slice, strings, a channel or an io.Reader in; a callback or
// a channel out.
//
// Warm stages (Options.Warm) keep plugin processes between jobs: a job's stage that uses one
// starts without spawning a process (see WarmStage).
//
// HTTPHandler serves the engine over HTTP (POST /api/jobs and the rest; see Register).
package engine
