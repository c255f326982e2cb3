package troupe

import "github.com/troupe-dev/troupe/actors"

// Aliases of the runtime's types, so that programs embedding troupe can build and run pipelines
// through this package alone. See package actors for their documentation.
type (
	// Record is one unit of work: a key, a payload and metadata.
	Record = actors.Record
	// Func is an in-process stage: one record in, zero, one or many out.
	Func = actors.Func
	// ReduceFunc folds the records of each key into one aggregate.
	ReduceFunc = actors.ReduceFunc
	// Stage describes one stage of a pipeline.
	Stage = actors.Stage
	// Pipeline is a source, stages and a sink, run under a supervision tree.
	Pipeline = actors.Pipeline
	// Run is a pipeline being run.
	Run = actors.Run
	// Source produces a pipeline's input.
	Source = actors.Source
	// Sink consumes a pipeline's output.
	Sink = actors.Sink
	// DeadLetter is a record that failed every attempt at a stage.
	DeadLetter = actors.DeadLetter
	// DeadLetterSink stores dead letters.
	DeadLetterSink = actors.DeadLetterSink
	// Summary is what a run did, in total and per stage.
	Summary = actors.Summary
	// StageSummary is one stage's share of a Summary.
	StageSummary = actors.StageSummary
	// Outcome is how a run ended: completed, dead_letters, interrupted or aborted.
	Outcome = actors.Outcome
	// Order says whether the sink receives records in source order.
	Order = actors.Order
)

// Orders of delivery to the sink.
const (
	// OrderAny delivers records to the sink as they complete.
	OrderAny = actors.OrderAny
	// OrderInput delivers records in source order.
	OrderInput = actors.OrderInput
)

// Outcomes of a run (Summary.Outcome).
const (
	// OutcomeRunning: the run has not ended (a Progress snapshot).
	OutcomeRunning = actors.OutcomeRunning
	// OutcomeCompleted: every record reached the sink (or was filtered out).
	OutcomeCompleted = actors.OutcomeCompleted
	// OutcomeDeadLetters: the run finished; some records went to the dead-letter output.
	OutcomeDeadLetters = actors.OutcomeDeadLetters
	// OutcomeInterrupted: the run was stopped before the end of its input and drained.
	OutcomeInterrupted = actors.OutcomeInterrupted
	// OutcomeAborted: the run gave up; its error says why.
	OutcomeAborted = actors.OutcomeAborted
)
