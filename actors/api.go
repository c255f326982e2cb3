package actors

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/troupe-dev/troupe/ipc"
	"github.com/troupe-dev/troupe/supervisor"
)

// Record is one unit of work: a key, a payload and metadata, numbered at the source.
type Record = ipc.Record

// Func is an in-process stage: it maps one record to zero (a filter), one or many (a splitter)
// output records, or fails the attempt with an error. A panic fails the worker that ran it; its
// records are redelivered. Func must honour ctx: it is cancelled when the record's timeout passes.
//
// The input record is read-only: the runtime may send it again after a failure. A Func may return
// it unchanged as an output, and outputs may share its Payload and Meta; to change something,
// return a new record. The runtime protects itself where it can: a Func is given its own shallow
// copy of the record (the struct and the Meta map), so setting a field or a metadata entry of its
// input cannot change the record kept for redelivery; but the Payload's bytes are shared, and
// writing into them (bytes.ToUpper returns a new slice; an in-place loop over rec.Payload does
// not) corrupts the redelivered record: that remains the Func's duty.
//
// The runtime owns the records a Func returns: it sets their bookkeeping fields (Seq, Sub,
// Weight, Attempt, Flag; whatever the Func put there is ignored) and copies an output returned
// twice or that is the input. A Func must not keep or change an output after returning it. A nil
// output fails the attempt ("stage X returned a nil record").
type Func func(ctx context.Context, rec *Record) ([]*Record, error)

// ReduceFunc folds one record into the running aggregate acc of its key (nil for the first record
// of a key) and returns the new aggregate. At the end of input a reduce stage emits one record per
// key, with the key and the final aggregate as payload, in key order.
type ReduceFunc func(key string, acc []byte, rec *Record) ([]byte, error)

// Backend runs a stage's records outside the worker actor, typically in another process (see
// package plugins). A BackendFactory makes one Backend per worker incarnation; when a worker is
// restarted its Backend is closed and a new one is made.
type Backend interface {
	// Submit hands records to the backend, in order. It must not block for long: the worker only
	// submits what the backend's grants allow (see Grants). Outcomes come back through the Outcomes
	// given to the factory, in submission order.
	Submit(recs []*Record) error
	// Close stops the backend and releases everything it holds, within ctx's deadline.
	Close(ctx context.Context) error
}

// Outcomes receives what a Backend produces. Its methods are safe to call from any goroutine.
type Outcomes interface {
	// Results reports outcomes for the oldest submitted records not yet reported, in order.
	Results(res *ipc.Results)
	// Grant gives the worker permission to submit n more records.
	Grant(n int)
	// Fail reports that the backend died (its process exited, its connection broke, a limit was
	// crossed). Every record it holds is redelivered; the first unreported one counts a failed
	// attempt with err as its reason, unless err is a BackendFault (the backend broke its
	// protocol: no record is to blame).
	Fail(err error)
}

// WorkerInfo names one incarnation of a stage worker.
type WorkerInfo struct {
	Stage       string
	Index       int // 0-based worker index within the stage
	Incarnation int // 0 for the first start, incremented on every restart
	Options     map[string]any
}

// BackendFactory starts a Backend for one worker incarnation. An error is a failed start: the
// worker is restarted under the stage's restart policy, like a crash, unless the error is a
// PermanentError (a start that can never succeed), which fails the run at once.
type BackendFactory func(ctx context.Context, w WorkerInfo, out Outcomes) (Backend, error)

// Stage describes one stage of a pipeline. Exactly one of Func, Reduce and Backend is set.
type Stage struct {
	Name     string
	Func     Func
	Reduce   ReduceFunc
	Backend  BackendFactory
	Workers  int           // default runtime.NumCPU(); a reduce stage always has 1
	Credits  int           // records in flight per worker; default 64
	Attempts int           // failed attempts before a record is dead-lettered; default 3
	Timeout  time.Duration // per record; 0 means none
	Options  map[string]any
	// Restart is the stage supervisor's restart policy; zero fields take DefaultRestart's.
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
	Backoff   supervisor.Backoff
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
	// Keys, payloads and metadata are set by the source; sequence numbers and the other
	// bookkeeping fields by the runtime. A nil record aborts the run. Read
	// must return soon after ctx is cancelled (a graceful stop cancels it).
	Read(ctx context.Context, max int) ([]*Record, error)
	// Close releases the source.
	io.Closer
}

// Sized is implemented by sources that know how many records they will produce, for progress.
type Sized interface {
	Total() (int64, bool)
}

// Sink consumes a pipeline's output. The runtime calls it from one goroutine at a time.
type Sink interface {
	// Write stores one record. It must not keep rec after returning. An error refuses the
	// record, which goes to the dead letters with it, unless it says the output itself failed
	// (it wraps ENOSPC, EDQUOT, EFBIG, EIO, EROFS or EPIPE): that aborts the run.
	Write(rec *Record) error
	// Flush makes everything written so far durable (called before records are acknowledged
	// as done in batches, and at the end). Records count as out (Summary.RecordsOut) once it
	// succeeds; an error aborts the run.
	Flush() error
	io.Closer
}

// DeadLetter is a record that failed every attempt at a stage.
type DeadLetter struct {
	Key      string
	Seq      uint64
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
	Supervision supervisor.Flags
	// DrainTimeout bounds how long a stop (context cancelled) waits for in-flight records to
	// reach the sink; default 30s.
	DrainTimeout time.Duration
	// Logger receives the runtime's log; nil discards it.
	Logger *slog.Logger
	// Events, if set, receives every supervision event of the run's tree.
	Events func(supervisor.Event)
}

// Summary is what a run did, in total and per stage. Progress returns one while the run goes on.
type Summary struct {
	// Outcome is how the run ended (OutcomeRunning in a Progress snapshot).
	Outcome     Outcome
	Total       int64 // records the source will produce, or -1 when unknown
	RecordsIn   int64 // records read from the source
	RecordsOut  int64 // records written to the sink (counted once the sink has flushed them)
	DeadLetters int64 // records that went to the dead-letter output (once flushed there)
	Dropped     int64 // records filtered out by a stage (zero outputs)
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
	// OutcomeInterrupted: the run was stopped (its context cancelled, or Run.Stop) before the end
	// of its input; what was read drained to its end. Run's error wraps the context's error.
	OutcomeInterrupted
	// OutcomeAborted: the run gave up (the supervision tree gave up, a stage was declared broken,
	// an I/O error, a stop that could not drain); Run's error says why. Records read and not
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
