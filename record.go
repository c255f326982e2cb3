package troupe

import (
	"context"

	"github.com/troupe-dev/troupe/internal/callctx"
)

// Record is one unit of work: a key, a payload and metadata. It is a plain value: a stage
// receives a copy and returns new values, so that nothing it does to them reaches the runtime's
// bookkeeping (sequence numbers, attempts and the like live in the runtime, out of reach).
//
// Payload's bytes are shared, not copied: the runtime may deliver a record again after a failed
// attempt, so code handed a record never writes into its Payload in place (bytes.ToUpper returns
// a new slice; a loop over rec.Payload assigning its bytes does not). Treat the Meta map as
// read-only too: the runtime gives a Func and a ReduceFunc their own copy of it, but a Sink and a
// Backend share it. To change a payload or metadata, build a new slice or map and return a
// record that holds it (reassigning the fields of the copy a stage is handed is fine).
type Record struct {
	Key     string
	Payload []byte
	Meta    map[string]string
}

// Func is an in-process stage: it maps one record to zero (a filter), one or many (a splitter)
// output records, or fails the attempt with an error. A panic fails the worker that ran it; its
// records are redelivered. Func must honour ctx: it is cancelled when the record's timeout passes.
// Attempt and StageName read what the runtime tells a call about itself from ctx.
//
// A Func may return its input as an output; outputs may share its Payload and Meta (see Record).
type Func func(ctx context.Context, rec Record) ([]Record, error)

// ReduceFunc folds one record into the running aggregate acc of its key (nil for the first record
// of a key) and returns the new aggregate. At the end of input a reduce stage emits one record per
// key, with the key and the final aggregate as payload, in key order. acc is the ReduceFunc's own
// (the slice it returned last time for the key); rec's Payload and Meta are shared, as for a Func.
type ReduceFunc func(key string, acc []byte, rec Record) ([]byte, error)

// CombineFunc merges partial, an aggregate that the stage's ReduceFunc folded from some of the
// key's records (starting from nil), into acc, the aggregate of others (nil for the first), and
// returns the aggregate of both. Set as a reduce stage's Stage.Combine, it lets the runtime fold
// records per key on the workers of the stage before (a map-side combine), so that the reduce
// stage receives one partial aggregate per key and batch instead of every record: for a count,
// it adds two counts. It must give the same result whatever the grouping (associative and
// commutative), as the partials depend on how records were batched.
type CombineFunc func(key string, acc, partial []byte) ([]byte, error)

// Attempt returns which attempt at its record the call running with ctx is: 1 for the first, 2
// after one failed attempt, and so on (a stage gives up after Stage.Attempts). It is set for the
// calls of a Func and of a plugin's Process (a ReduceFunc has no context); 0 for a context that is
// not one of those. Read it during the call: the runtime reuses the value for the worker's next
// call.
func Attempt(ctx context.Context) int {
	if info := callctx.From(ctx); info != nil {
		return info.Attempt
	}
	return 0
}

// StageName returns the name of the stage whose call runs with ctx (see Attempt), or "".
func StageName(ctx context.Context) string {
	if info := callctx.From(ctx); info != nil {
		return info.Stage
	}
	return ""
}
