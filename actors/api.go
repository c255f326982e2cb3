package actors

import (
	"context"
	"errors"
	"time"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/supervisor"
)

// Defaults of a Stage and a Pipeline.
const (
	DefaultCredits     = 1024    // Stage.Credits: records in flight per worker
	DefaultCreditBytes = 1 << 20 // Stage.CreditBytes: their bytes (keys and payloads)
	// DefaultBackendCredits is Stage.Credits for a Backend stage (a plugin): a round trip to
	// another process takes longer than a call, and small records need a deeper pipeline to
	// hide it; CreditBytes still bounds large records.
	DefaultBackendCredits = 8192
	DefaultAttempts       = 3
	DefaultDrainTimeout   = 30 * time.Second
)

// ErrDrainTimeout is wrapped by a run's error when a stop could not drain the records in flight
// within the drain timeout (the outcome is then OutcomeAborted); Summary.InFlight counts the
// records left unfinished.
var ErrDrainTimeout = errors.New("records still in flight after the drain timeout")

// DefaultRestart is a stage's restart policy where Stage.Restart leaves a field zero. Crashes of
// user code are expected events in troupe (a poison record crashes its worker Attempts times), so
// the intensity is generous; what restart intensity guards against is a crash loop.
var DefaultRestart = troupe.Restart{Intensity: 50, Period: 10 * time.Second, Backoff: supervisor.Backoff{Min: 10 * time.Millisecond, Max: time.Second}}

// Job is a pipeline running. Its methods are safe for concurrent use.
type Job struct {
	r *run
}

// Run runs the pipeline p to the end of its input and returns what it did; Summary.Outcome says
// how it ended. Cancelling ctx stops it gracefully: the source stops reading, records in flight
// drain to the sink (within DrainTimeout), and the tree stops in order; the outcome is then
// OutcomeInterrupted and the error wraps ctx's error (errors.Is(err, context.Canceled)). The
// error is also non-nil when the run was aborted (the supervision tree gave up, a stage was
// broken, an I/O error) or a stop could not drain (OutcomeAborted). Records that failed every
// attempt are not an error: they are counted in Summary.DeadLetters (OutcomeDeadLetters).
func Run(ctx context.Context, p *troupe.Pipeline) (troupe.Summary, error) {
	j, err := Start(ctx, p)
	if err != nil {
		return troupe.Summary{Outcome: troupe.OutcomeAborted, Total: -1}, err
	}
	return j.Wait()
}

// Start starts the pipeline p and returns at once; see Run. A Pipeline runs at most once at a
// time.
func Start(ctx context.Context, p *troupe.Pipeline) (*Job, error) {
	return start(ctx, p, nil)
}

func start(ctx context.Context, p *troupe.Pipeline, parent *Parent) (*Job, error) {
	r, err := newRun(p, parent)
	if err != nil {
		return nil, err
	}
	if err := r.startTree(); err != nil {
		r.cancel()
		r.closePrestarted()
		r.src.reader.close()
		r.shutdownSystem()
		r.disp.close()
		if r.journal != nil {
			_ = r.journal.close(false)
		}
		return nil, err
	}
	go r.watch(ctx)
	return &Job{r: r}, nil
}

// Progress returns the run's figures so far.
func (j *Job) Progress() troupe.Summary { return j.r.snapshot() }

// Stop asks the run to stop gracefully, as cancelling its context does.
func (j *Job) Stop() { j.r.requestStop() }

// Wait waits for the run to end and returns its summary; see Run.
func (j *Job) Wait() (troupe.Summary, error) {
	<-j.r.endedCh
	return j.r.summary, j.r.waitErr
}
