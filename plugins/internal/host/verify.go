package host

import (
	"errors"
	"fmt"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/ipc"
)

// protocolError is a plugin's breach of the stage protocol: the fault of the process, not of any
// record it held. Its BackendFault method tells the runtime (troupe.BackendFault) to redeliver
// the process's records without charging any of them an attempt.
type protocolError struct{ msg string }

func protocolErrorf(format string, args ...any) *protocolError {
	return &protocolError{msg: "protocol error: " + fmt.Sprintf(format, args...)}
}

func (e *protocolError) Error() string      { return e.msg }
func (e *protocolError) BackendFault() bool { return true }

// verify checks a results frame against the records it reports on, the oldest ones submitted and
// not yet reported, and takes them off the list. Results are matched to records by position
// only, so a plugin that answers a record twice, or answers one it was never sent, would
// otherwise shift every later answer onto the wrong record. It refuses:
//
//   - results for more records than are outstanding;
//   - a frame that is not self-consistent (ipc.CheckResults: counts that do not add up to the
//     outputs, error indexes out of range or out of order, an error with outputs);
//   - an output whose seq is not its input's (a second result for a record, or a result for a
//     record never sent), whose sub is neither 0 nor its input's, or whose flag is not DATA (END
//     and DROPPED are the runtime's bookkeeping).
//
// A duplicated answer that has no outputs (an error, a filtered record) carries no identity and
// cannot be told from the answer it displaces.
func (b *Backend) verify(res *ipc.Results) error {
	if err := ipc.CheckResults(res); err != nil {
		return protocolErrorf("results frame: %v", err)
	}
	b.smu.Lock()
	defer b.smu.Unlock()
	n := len(res.Counts)
	if n > b.sent.len() {
		return protocolErrorf("results for %d records, only %d outstanding", n, b.sent.len())
	}
	off := 0
	for i, c := range res.Counts {
		in := b.sent.at(i)
		for j, o := range res.Outputs[off : off+int(c)] {
			switch {
			case o.Seq != in.Seq:
				return protocolErrorf("output %d of the record seq=%d key=%q has seq %d: "+
					"a second result for a record, or a result for a record it was not sent", j, in.Seq, in.Key, o.Seq)
			case o.Sub != 0 && o.Sub != in.Sub:
				return protocolErrorf("output %d of the record seq=%d key=%q has sub %d, not the record's (%d) or 0",
					j, in.Seq, in.Key, o.Sub, in.Sub)
			case o.Flag != ipc.FlagData:
				return protocolErrorf("output %d of the record seq=%d key=%q has flag %s: only the host sets it",
					j, in.Seq, in.Key, o.Flag)
			}
		}
		off += int(c)
	}
	b.sent.pop(n)
	return nil
}

// results turns a verified results frame into the runtime's outcomes, one per record reported.
func results(res *ipc.Results) []troupe.Result {
	rs := make([]troupe.Result, len(res.Counts))
	outs := make([]troupe.Record, len(res.Outputs))
	for i, o := range res.Outputs {
		outs[i] = o.Record
	}
	errs, off := res.Errors, 0
	for i, c := range res.Counts {
		if len(errs) > 0 && int(errs[0].Index) == i {
			rs[i].Err = errors.New(errs[0].Message)
			errs = errs[1:]
			continue
		}
		rs[i].Outputs = outs[off : off+int(c) : off+int(c)]
		off += int(c)
	}
	return rs
}

// fifo is a queue of records.
type fifo struct {
	recs []*ipc.Record
	head int
}

func (q *fifo) len() int                { return len(q.recs) - q.head }
func (q *fifo) at(i int) *ipc.Record    { return q.recs[q.head+i] }
func (q *fifo) push(recs []*ipc.Record) { q.recs = append(q.recs, recs...) }

// pop drops the n oldest records.
func (q *fifo) pop(n int) {
	clear(q.recs[q.head : q.head+n])
	q.head += n
	if q.head == len(q.recs) {
		q.recs, q.head = q.recs[:0], 0
	} else if q.head > 1024 && q.head > len(q.recs)/2 {
		n := copy(q.recs, q.recs[q.head:])
		clear(q.recs[n:])
		q.recs, q.head = q.recs[:n], 0
	}
}
