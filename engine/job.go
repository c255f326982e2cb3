package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
)

// Status is where a job is in its life.
type Status string

// A job's statuses. A job ends done (its input ended: Summary.Outcome says whether some records
// went to the dead letters), failed (it was aborted: Err says why) or cancelled (Cancel or the
// engine's Shutdown stopped it; never done, whatever it had finished).
const (
	Queued    Status = "queued"
	Running   Status = "running"
	Done      Status = "done"
	Failed    Status = "failed"
	Cancelled Status = "cancelled"
)

// JobSpec is a job to submit: a pipeline built in Go, or a spec (YAML or JSON), and optionally
// the input that replaces its source.
type JobSpec struct {
	// Name is shown in listings; default the pipeline's name.
	Name string
	// Pipeline is a pipeline built in Go. The job owns it from Submit on (its source, sink and
	// stages' cleanups are closed by its run). A nil Sink collects the output in memory
	// (Job.Output). Exactly one of Pipeline and Spec is set.
	Pipeline *troupe.Pipeline
	// Spec is a spec's text, YAML or JSON. A plugin stage named as one of the engine's warm
	// stages and with the same command runs on the warm processes. A spec with no sink, or
	// a lines sink to "-", has its output collected in memory (Job.Output). SpecFile names it
	// in error positions (default "<spec>") and its directory is where relative paths
	// resolve (default the current directory).
	Spec     []byte
	SpecFile string
	// Input, if set, replaces the pipeline's (or the spec's) source; then a spec needs no
	// source. actors.NewSliceSource, NewStringsSource, NewChanSource and NewReaderSource make
	// one from what a request brings.
	Input troupe.Source
	// OutputLimit bounds the job's in-memory output; 0 means Options.OutputLimit.
	OutputLimit int64
}

// Job is one submitted job. Its methods are safe for concurrent use.
type Job struct {
	e    *Engine
	id   string
	name string
	p    *troupe.Pipeline
	out  *actors.MemorySink

	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	status    Status
	submitted time.Time
	started   time.Time
	ended     time.Time
	aj        *actors.Job
	summary   troupe.Summary
	err       error
	cancelled bool
	done      chan struct{}
}

func newJob(e *Engine, id, name string, p *troupe.Pipeline, out *actors.MemorySink) *Job {
	if name == "" {
		name = p.Name
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Job{e: e, id: id, name: name, p: p, out: out, ctx: ctx, cancel: cancel,
		status: Queued, submitted: time.Now(), done: make(chan struct{}),
		summary: troupe.Summary{Total: -1}}
}

// ID is the job's id, unique in its engine ("job-1", "job-2", ...).
func (j *Job) ID() string { return j.id }

// Name is the job's name (JobSpec.Name, or its pipeline's).
func (j *Job) Name() string { return j.name }

// Status is the job's status now.
func (j *Job) Status() Status {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.status
}

// Finished says whether the job has ended (done, failed or cancelled).
func (j *Job) Finished() bool {
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}

// EndedAt is when the job ended (zero while it has not).
func (j *Job) EndedAt() time.Time {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.ended
}

// Counts is the job's figures so far: the same as the progress view's (a Summary whose Outcome
// is running while it runs), or its final Summary once it has ended.
func (j *Job) Counts() troupe.Summary {
	j.mu.Lock()
	aj, s, ended := j.aj, j.summary, !j.ended.IsZero()
	j.mu.Unlock()
	if aj != nil && !ended {
		return aj.Progress()
	}
	return s
}

// Summary returns the job's final Summary, and whether it has ended.
func (j *Job) Summary() (troupe.Summary, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.ended.IsZero() {
		return troupe.Summary{}, false
	}
	return j.summary, true
}

// Err is why the job failed (or, for a cancelled one, that it was cancelled); nil otherwise.
func (j *Job) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// Run is the job's run (for an observer: its tree, its progress), or nil while it is queued or
// when it never started.
func (j *Job) Run() *actors.Job {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.aj
}

// Output is the job's in-memory output, or nil when its sink is not in memory.
func (j *Job) Output() *actors.MemorySink { return j.out }

// Cancel stops the job: a queued job never starts; a running one stops reading its input, its
// records in flight drain to its sink (within the drain timeout), and its processes are released.
// Its status becomes cancelled. Cancelling a job that has ended does nothing.
func (j *Job) Cancel() {
	j.mu.Lock()
	if j.ended.IsZero() {
		j.cancelled = true
	}
	queued := j.status == Queued
	j.mu.Unlock()
	j.cancel()
	if queued {
		e := j.e
		e.mu.Lock()
		for i, q := range e.queue {
			if q == j {
				e.queue = append(e.queue[:i:i], e.queue[i+1:]...)
				e.mu.Unlock()
				j.endWithoutRunning()
				return
			}
		}
		e.mu.Unlock()
	}
}

// Wait waits for the job to end, or for ctx to end (then it returns ctx's error), and returns its
// Summary and Err.
func (j *Job) Wait(ctx context.Context) (troupe.Summary, error) {
	select {
	case <-j.done:
	case <-ctx.Done():
		return j.Counts(), ctx.Err()
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.summary, j.err
}

// Done is closed when the job has ended.
func (j *Job) Done() <-chan struct{} { return j.done }

func (j *Job) setRunning() {
	j.mu.Lock()
	j.status = Running
	j.started = time.Now()
	j.mu.Unlock()
}

// run runs the job's pipeline to its end under the engine's root.
func (j *Job) run() {
	defer j.e.finished(j)
	aj, err := actors.StartUnder(j.ctx, j.p, actors.Parent{System: j.e.system, Supervisor: j.e.root, Name: j.id})
	if err != nil {
		discard(j.p)
		j.end(troupe.Summary{Outcome: troupe.OutcomeAborted, Total: -1}, err)
		return
	}
	j.mu.Lock()
	j.aj = aj
	j.mu.Unlock()
	s, err := aj.Wait()
	j.end(s, err)
}

// endWithoutRunning ends a job cancelled in the queue.
func (j *Job) endWithoutRunning() {
	discard(j.p)
	j.end(troupe.Summary{Outcome: troupe.OutcomeInterrupted, Total: -1}, nil)
	j.e.active.Done()
}

func (j *Job) end(s troupe.Summary, err error) {
	j.mu.Lock()
	if j.out != nil {
		j.out.Close() // a run that never started never closed it
	}
	j.summary = s
	j.ended = time.Now()
	switch {
	case j.cancelled:
		j.status = Cancelled
		if err == nil || errors.Is(err, context.Canceled) {
			err = fmt.Errorf("job %s: %w", j.id, context.Canceled)
		}
	case err != nil || s.Outcome == troupe.OutcomeAborted:
		j.status = Failed
	default:
		j.status = Done
	}
	j.err = err
	j.mu.Unlock()
	j.cancel()
	close(j.done)
}

// discard releases what a pipeline that will not run holds: its stages' cleanups, its source
// and outputs.
func discard(p *troupe.Pipeline) {
	for _, st := range p.Stages {
		if st.Cleanup != nil {
			_ = st.Cleanup()
		}
	}
	for _, c := range []interface{ Close() error }{p.Source, p.Sink} {
		if c != nil {
			_ = c.Close()
		}
	}
	if p.DeadLetters != nil {
		_ = p.DeadLetters.Close()
	}
}
