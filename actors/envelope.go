package actors

import (
	"unsafe"

	"github.com/troupe-dev/troupe"
)

// envelope is a record in the runtime's custody: the user's Record and the bookkeeping the
// runtime keeps about it, out of reach of the code it runs. The runtime makes every envelope
// itself (from what a Source read, from what a stage returned) and never hands one out, so no
// Func, Source, Sink or Backend can change the numbers the books are kept by.
//
// An envelope is immutable once sent to another actor (the source keeps it for a resync, a
// distributor for a redelivery): a change travels as a copy. The one exception is an owned
// envelope at the stage it was sent to, once its record's outcome is in and no worker that
// may still read it is left (see distributor.emit).
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
	// owned says that a stage's distributor made this envelope for the next stage, which alone
	// keeps it (the source keeps its own envelopes in its window; those are not owned): once a
	// worker has reported a record's outcome, that stage may write the record's single output
	// into its envelope rather than into a new one (see distributor.emit).
	owned bool
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
	// token (the distributor requeued those records when it learned of the death). The
	// distributor keeps recs as what the worker holds until their outcomes are in (see
	// heldQueue): a worker reads it and never writes it.
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
		// recs is the work these outcomes finish, handed back once the worker is done with it,
		// for the distributor's next one (see distributor.spareRecs); nil if not.
		recs []*envelope
	}

	recordError struct {
		Index   uint32
		Message string
	}
)

// setRecord copies src into dst field by field. A troupe.Record is too large for the compiler
// to copy it field by field, and its copies go through a bulk write barrier while the GC marks;
// on the path every record takes, at every stage, that cost more than the copies themselves.
func setRecord(dst, src *troupe.Record) {
	dst.Key = src.Key
	dst.Payload = src.Payload
	dst.Meta = src.Meta
}

// updateRecord is setRecord for a dst that may already hold src's fields (a stage that returns
// its input, or passes its key or payload on): it writes only those that differ, as a read
// costs less than a write through the write barrier.
func updateRecord(dst, src *troupe.Record) {
	if unsafe.StringData(dst.Key) != unsafe.StringData(src.Key) || len(dst.Key) != len(src.Key) {
		dst.Key = src.Key
	}
	if unsafe.SliceData(dst.Payload) != unsafe.SliceData(src.Payload) || len(dst.Payload) != len(src.Payload) || cap(dst.Payload) != cap(src.Payload) {
		dst.Payload = src.Payload
	}
	if dst.Meta != nil || src.Meta != nil {
		dst.Meta = src.Meta
	}
}

// appendRecords is append(dst, src...), copying with setRecord.
func appendRecords(dst, src []troupe.Record) []troupe.Record {
	n := len(dst)
	if n+len(src) > cap(dst) {
		dst = append(dst, src...)
		return dst
	}
	dst = dst[:n+len(src)]
	for i := range src {
		setRecord(&dst[n+i], &src[i])
	}
	return dst
}

// recordFields are troupe.Record's fields: the conversion below stops the build when Record
// gains one that setRecord does not copy.
type recordFields struct {
	Key     string
	Payload []byte
	Meta    map[string]string
}

var _ = recordFields(troupe.Record{})
