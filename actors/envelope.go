package actors

import "github.com/troupe-dev/troupe"

// envelope is a record in the runtime's custody: the user's Record and the bookkeeping the
// runtime keeps about it, out of reach of the code it runs. The runtime makes every envelope
// itself (from what a Source read, from what a stage returned) and never hands one out, so no
// Func, Source, Sink or Backend can change the numbers the books are kept by.
//
// An envelope is immutable once sent to another actor (the source keeps it for a resync, a
// distributor for a redelivery): a change travels as a copy.
type envelope struct {
	troupe.Record
	// Seq numbers the source record this one comes from, in read order.
	Seq uint64
	// Sub identifies the record among those derived from one source record (0 for the source
	// record itself and its 1:1 descendants; see subOf).
	Sub uint64
	// Weight is the share of its source record's fullWeight this record carries: the collector
	// counts a source record complete when the weights of its ends add up to fullWeight.
	Weight uint64
	// Attempt counts the failed attempts at this record in the stage it is sent to.
	Attempt uint32
	Flag    flag
}

// flag says what an envelope is: a record, or one of the runtime's markers.
type flag uint8

const (
	flagData    flag = iota
	flagEnd          // the end of input: no record follows it (Seq is the number of records read)
	flagDropped      // a record filtered out by a stage, or consumed by a reduce stage
	flagPartial      // the partial aggregates of a map-side combine, for a reduce stage, packed in its Payload (see packPartials): its Weight is how many records they fold (their completion weight travels in DROPPED markers)
)

// Messages between the runtime's actors. Records travel as *envelope; the types below carry them.
type (
	// batch is records (and markers) from one stage to the next, or to the collector.
	batch struct{ Records []*envelope }

	// work is a batch of records for one worker incarnation. A restarted worker gets a fresh PID
	// (supervisor.ChildSpec.FreshPIDs), and a worker also ignores work addressed to another
	// token (the distributor requeued those records when it learned of the death).
	work struct {
		token uint64
		recs  []*envelope
	}

	// failure is a record that failed every attempt at a stage (or that the source could not read,
	// or the sink refused), for the dead letters.
	failure struct {
		Record   *envelope
		Stage    string
		Attempts uint32
		Error    string
	}

	// acks tells the source which source records are complete. With a journal, Journal lists
	// the source records whose outputs the sink and dead-letter output now hold durably (a
	// record may be complete before its outputs are written: OrderInput holds them for their
	// turn), Dead which of those went to the dead letters, and SinkPos and DeadPos where the
	// appending outputs stood then.
	acks struct {
		Seqs             []uint64
		Journal          []uint64
		Dead             []bool
		SinkPos, DeadPos outputPos
	}

	// results is a worker's outcomes for the oldest records it holds, in order: record i produced
	// Counts[i] outputs, laid out one after the other in Outputs; Errors name the records (by
	// index, increasing, each with count 0) whose attempt failed.
	//
	// Combined results (see combine) carry, instead of Outputs, Partials: the outputs folded per
	// key for the reduce stage that follows, packed (see packPartials); Counts still say how many
	// outputs each record had.
	results struct {
		Counts   []uint32
		Outputs  []troupe.Record
		Errors   []recordError
		Partials []byte
		Folded   uint64 // how many outputs the partials fold
		Combined bool
	}

	recordError struct {
		Index   uint32
		Message string
	}
)
