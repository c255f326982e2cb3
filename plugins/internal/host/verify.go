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
func (b *Backend) verify(res *ipc.ResultsView) error {
	// NextView has checked that the frame is self-consistent (ipc.CheckResults).
	b.smu.Lock()
	defer b.smu.Unlock()
	n := len(res.Counts)
	if n > b.sent.len() {
		return protocolErrorf("results for %d records, only %d outstanding", n, b.sent.len())
	}
	off := 0
	for i, c := range res.Counts {
		seq := b.sent.seq(i)
		for j, o := range res.Ident[off : off+int(c)] {
			switch {
			case o.Seq != seq:
				return protocolErrorf("output %d of the record seq=%d key=%q has seq %d: "+
					"a second result for a record, or a result for a record it was not sent", j, seq, b.sent.key(i), o.Seq)
			case o.Sub != 0:
				// The host sends sub 0 (README, section 4): an output's must be its input's or 0.
				return protocolErrorf("output %d of the record seq=%d key=%q has sub %d, not the record's (0)",
					j, seq, b.sent.key(i), o.Sub)
			case o.Flag != ipc.FlagData:
				return protocolErrorf("output %d of the record seq=%d key=%q has flag %s: only the host sets it",
					j, seq, b.sent.key(i), o.Flag)
			}
		}
		off += int(c)
	}
	b.sent.pop(n)
	return nil
}

// results turns a verified results frame into the runtime's outcomes, one per record reported.
// The outputs are the frame's own (a new slice per frame), shared out among the results.
func results(res *ipc.ResultsView) []troupe.Result {
	rs := make([]troupe.Result, len(res.Counts))
	outs := res.Outputs
	errs, off := res.Errors, 0
	for i, c := range res.Counts {
		if len(errs) > 0 && int(errs[0].Index) == i {
			rs[i].Err = errors.New(errs[0].Message)
			errs = errs[1:]
			continue
		}
		if c > 0 {
			rs[i].Outputs = outs[off : off+int(c) : off+int(c)]
		}
		off += int(c)
	}
	return rs
}

// fifo is the queue of the records sent and not yet reported, oldest first: their keys (for
// error messages) and the seq of the oldest (the seqs are consecutive).
type fifo struct {
	keys  []string
	head  int
	first uint64 // the seq of keys[head]
}

func (q *fifo) len() int         { return len(q.keys) - q.head }
func (q *fifo) seq(i int) uint64 { return q.first + uint64(i) }
func (q *fifo) key(i int) string { return q.keys[q.head+i] }

// push appends tasks, numbered from seq on, which must follow the last record pushed.
func (q *fifo) push(seq uint64, tasks []troupe.Task) {
	if q.len() == 0 {
		q.first = seq
	}
	for i := range tasks {
		q.keys = append(q.keys, tasks[i].Record.Key)
	}
}

// pop drops the n oldest records.
func (q *fifo) pop(n int) {
	clear(q.keys[q.head : q.head+n])
	q.head += n
	q.first += uint64(n)
	if q.head == len(q.keys) {
		q.keys, q.head = q.keys[:0], 0
	} else if q.head > 1024 && q.head > len(q.keys)/2 {
		n := copy(q.keys, q.keys[q.head:])
		clear(q.keys[n:])
		q.keys, q.head = q.keys[:n], 0
	}
}
