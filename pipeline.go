package troupe

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/troupe-dev/troupe/supervisor/policy"
)

// Stage describes one stage of a pipeline. Exactly one of Func, Reduce and Backend is set.
type Stage struct {
	Name   string
	Func   Func
	Reduce ReduceFunc
	// Combine, on a reduce stage, merges partial aggregates (see CombineFunc): when set, the
	// workers of the stage before fold their outputs per key with Reduce before they leave the
	// worker, and this stage merges the partials. A fold that fails there is not retried there:
	// that batch's records go to the reduce stage as they are.
	Combine CombineFunc
	Backend BackendFactory
	Workers int // default runtime.NumCPU(); a reduce stage always has 1
	// Credits bounds the records in flight per worker, and CreditBytes their bytes (key and
	// payload): a worker is handed records while it holds fewer than Credits and their bytes fit
	// in CreditBytes, and one record whatever its size when it holds nothing. The defaults
	// (actors.DefaultCredits, or actors.DefaultBackendCredits for a Backend stage, whose round
	// trips to another process need a deeper pipeline; actors.DefaultCreditBytes) let small
	// records travel in large batches and large ones a few at a time, so memory stays bounded
	// without tuning.
	Credits     int
	CreditBytes int
	Attempts    int           // failed attempts before a record is dead-lettered; default 3
	Timeout     time.Duration // per record; 0 means none
	Options     map[string]any
	// Restart is the stage supervisor's restart policy; zero fields take actors.DefaultRestart's.
	Restart Restart
	// Cleanup, if set, is called once when the run has ended and the stage's workers have
	// stopped, to release what the Backend factory keeps between workers (warm spare processes,
	// say). Its error is the run's.
	Cleanup func() error
}

// Restart is a restart policy: at most Intensity restarts within Period. The first restart
// within Period is immediate; repeated ones wait a delay growing exponentially (with jitter)
// from Backoff.Min to Backoff.Max.
type Restart struct {
	Intensity int
	Period    time.Duration
	Backoff   policy.Backoff
}

// Order says whether the sink receives records in source order.
type Order int

const (
	// OrderAny delivers records to the sink as they complete (the default).
	OrderAny Order = iota
	// OrderInput delivers records in source order, holding completed ones in a reorder window
	// bounded by the credits in flight. The records derived from one source record (by a
	// splitter, or a reduce stage's aggregates) keep the order they were emitted in: a stage
	// hands them all to the same worker.
	OrderInput
)

// Source produces a pipeline's input. The runtime calls Read from one goroutine at a time.
type Source interface {
	// Read returns up to max records, or io.EOF (possibly with a final short batch) at the end.
	// The runtime numbers what it reads and keeps its own copy of each record; it may keep the
	// returned slice's Payload and Meta (not the slice), so a source must not reuse them. Read
	// must return soon after ctx is cancelled (a graceful stop cancels it).
	Read(ctx context.Context, max int) ([]Record, error)
	// Close releases the source.
	io.Closer
}

// Sized is implemented by sources that know how many records they will produce, for progress.
type Sized interface {
	Total() (int64, bool)
}

// Sink consumes a pipeline's output. The runtime calls it from one goroutine at a time.
type Sink interface {
	// Write stores one record. It must not keep rec's Payload or Meta after returning, nor write
	// into them (they may be shared with records still in flight). An error refuses the
	// record, which goes to the dead letters with it, unless it says the output itself failed
	// (it wraps ENOSPC, EDQUOT, EFBIG, EIO, EROFS or EPIPE): that aborts the run.
	Write(rec Record) error
	// Flush makes everything written so far durable (called before records are acknowledged
	// as done in batches, and at the end). Records count as out (Summary.RecordsOut) once it
	// succeeds; an error aborts the run.
	Flush() error
	io.Closer
}

// DeadLetter is a record that failed every attempt at a stage.
type DeadLetter struct {
	Key      string
	Seq      uint64 // the number the runtime gave the source record it came from, in read order
	Stage    string
	Attempts int
	Error    string
	Payload  []byte
	Meta     map[string]string
}

// DeadLetterSink stores dead letters. The runtime calls it from one goroutine at a time.
type DeadLetterSink interface {
	Write(d DeadLetter) error
	Flush() error
	io.Closer
}

// Pipeline is a source, stages and a sink, run under a supervision tree.
type Pipeline struct {
	Name        string
	Source      Source
	Stages      []Stage
	Sink        Sink
	DeadLetters DeadLetterSink // nil: dead letters are counted and logged, not stored
	Order       Order
	// Supervision is the root supervisor's flags; zero value: one_for_one, intensity 10 in 60s.
	Supervision policy.Flags
	// DrainTimeout bounds how long a stop (context cancelled) waits for in-flight records to
	// reach the sink; default 30s.
	DrainTimeout time.Duration
	// Logger receives the runtime's log, lines about a stage or a worker carrying the attrs
	// stage and worker (the worker's index); nil discards it. Give it a run's own attributes
	// (slog's With) to tell runs apart: the troupe command adds run, the run's id.
	Logger *slog.Logger
	// Events, if set, receives every supervision event of the run's tree.
	Events func(policy.Event)
	// Journal, if set, makes the run resumable: each source record whose outcome is final is
	// recorded in a journal file once the outputs hold it durably, and a later run with the
	// same journal skips what it records (see package actors, "Journal"). The Source must be
	// Resumable.
	Journal *Journal
}

// Journal names a run's journal (see Pipeline.Journal).
type Journal struct {
	// Path is the journal file; created when missing.
	Path string
	// RetryDeadLetters makes a run with this journal retry the records that earlier runs sent to
	// the dead letters; by default they count as done.
	RetryDeadLetters bool
}

// Resumable is implemented by sources whose records keep their identity across runs, so that a
// run with a journal can skip the records an earlier run finished. The runtime calls Resume once,
// before the first Read, and ResumeKey only after Resume.
type Resumable interface {
	// Fingerprint describes the input (its kind, file or folder, count), so that a journal
	// written for another input is refused. Two runs over the same input give the same one.
	Fingerprint() string
	// Resume tells the source which records are done: it must not produce a record for which
	// done(its resume key) is true, and calls done at most once per record. It returns an error
	// when the source cannot be resumed (standard input cannot be read twice).
	Resume(done func(key string) bool) error
	// ResumeKey returns the resume key of rec, one of the records the last Read returned: a
	// non-empty string that names the record in the input across runs. It is called from the
	// goroutine that called Read, after Read returned and before the next Read.
	ResumeKey(rec Record) string
}

// Summary is what a run did, in total and per stage. actors.Job.Progress returns one while the run goes on.
type Summary struct {
	// Outcome is how the run ended (OutcomeRunning in a Progress snapshot).
	Outcome     Outcome
	Total       int64 // records the source will produce (less those Skipped), or -1 when unknown
	RecordsIn   int64 // records read from the source
	RecordsOut  int64 // records written to the sink (counted once the sink has flushed them)
	DeadLetters int64 // records that went to the dead-letter output (once flushed there)
	Dropped     int64 // records filtered out by a stage (zero outputs)
	Skipped     int64 // source records skipped as done by an earlier run (see Pipeline.Journal)
	Restarts    int64 // worker and actor restarts in the whole tree
	InFlight    int64 // source records read but not yet complete
	Elapsed     time.Duration
	Stages      []StageSummary
}

// Outcome is how a run ended. Its String (and JSON) form is one of "running", "completed",
// "dead_letters", "interrupted" and "aborted".
type Outcome int

const (
	// OutcomeRunning: the run has not ended (a Progress snapshot).
	OutcomeRunning Outcome = iota
	// OutcomeCompleted: the input ended and every record reached the sink (or was filtered out).
	OutcomeCompleted
	// OutcomeDeadLetters: the input ended and every record reached its end, some of them the
	// dead-letter output.
	OutcomeDeadLetters
	// OutcomeInterrupted: the run was stopped (its context cancelled, or actors.Job.Stop) before
	// the end of its input; what was read drained to its end. The run's error wraps the
	// context's error.
	OutcomeInterrupted
	// OutcomeAborted: the run gave up (the supervision tree gave up, a stage was declared broken,
	// an I/O error, a stop that could not drain); the run's error says why. Records read and not
	// complete are counted in Summary.InFlight.
	OutcomeAborted
)

var outcomeNames = [...]string{"running", "completed", "dead_letters", "interrupted", "aborted"}

func (o Outcome) String() string {
	if o >= 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// MarshalText encodes the outcome as its name.
func (o Outcome) MarshalText() ([]byte, error) {
	if o < 0 || int(o) >= len(outcomeNames) {
		return nil, fmt.Errorf("invalid outcome %d", int(o))
	}
	return []byte(o.String()), nil
}

// UnmarshalText decodes an outcome's name.
func (o *Outcome) UnmarshalText(b []byte) error {
	for i, n := range outcomeNames {
		if string(b) == n {
			*o = Outcome(i)
			return nil
		}
	}
	return fmt.Errorf("unknown outcome %q", b)
}

// StageSummary is one stage's share of a Summary.
type StageSummary struct {
	Name     string
	In       int64 // records the stage received (first attempts)
	Out      int64 // records it emitted
	Failed   int64 // records it sent to the dead-letter output
	Retries  int64 // failed attempts that were retried
	Restarts int64 // worker restarts
	// P50 and P99 are record latencies in the stage: from the hand-off to a worker to its
	// outcome, including the wait behind the records the worker already held (up to Credits).
	P50, P99 time.Duration
}
