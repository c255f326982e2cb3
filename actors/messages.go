package actors

import (
	"github.com/asynkron/protoactor-go/actor"
)

// The runtime's control messages between a distributor and its workers, and the source's own.
// The messages that carry records (batch, work, failure, acks, results) are in envelope.go.

// workerUp announces a new worker incarnation to its distributor.
type workerUp struct {
	index int
	token uint64 // unique per incarnation; results from another token are stale
	pid   *actor.PID
}

// workerResults carries a worker's outcomes for the oldest records it holds.
type workerResults struct {
	index int
	token uint64
	res   *results
}

// workerDown tells the distributor that an incarnation is gone (or is being killed) and why.
// When charge is set, the record it was working on (culprit, or the oldest it held when culprit
// is nil) is charged a failed attempt with reason; the others it held are redelivered as they are.
type workerDown struct {
	index   int
	token   uint64
	reason  error
	charge  bool
	culprit *recordID
}

// recordID identifies a record in flight within a stage.
type recordID struct{ seq, sub uint64 }

func idOf(r *envelope) recordID { return recordID{r.Seq, r.Sub} }

// resync asks the source to resend every record in its window (an actor downstream restarted
// and may have lost what it held).
type resync struct{ from string }

// sourceRead is what the source's reader goroutine delivers to the source actor.
type sourceRead struct {
	recs  []*envelope
	keys  []string // with a journal: the records' resume keys
	err   error    // io.EOF at the end of input
	asked int      // how many records of the actor's asks this read answers
}

// drain asks the source to stop reading and finish with what it has read.
type drain struct{}
