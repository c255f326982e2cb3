package actors

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/troupe-dev/troupe"
)

// collectorState is the collector's books: which source records are complete, how much weight
// the incomplete ones have gathered, and (with OrderInput) the outputs waiting for their turn.
// It outlives restarts of the collector actor.
type collectorState struct {
	sink     troupe.Sink
	deadSink troupe.DeadLetterSink
	order    troupe.Order

	base    uint64        // every source record below base is complete
	above   seqRing[bool] // complete source records at or above base
	partial map[uint64]*partialRoot
	held    map[uint64][]heldOut // OrderInput, or a journal: outputs of records not yet written
	// journal is set when the run keeps a journal: a record's outputs (and dead letters) are
	// held until it is complete, so that a flush never holds part of a record (a resumed run
	// redoes the records the journal does not name, and must not find part of them written);
	// journal lists the records whose outputs were written since the last flush, and dead those
	// of them that went to the dead letters.
	journal bool
	jready  []uint64
	dead    map[uint64]struct{}
	// The journal's batches: jready is sent on when it holds journalBatchRecords records, when
	// its oldest has waited journalBatchDelay (a tick is then armed), or once END has arrived.
	jsince   time.Time
	tickSet  bool
	endTaken bool

	// Records written to the sink and dead letters written to their output since the last
	// flush: they count (Summary.RecordsOut, DeadLetters) once the flush has succeeded.
	pendingOut, pendingDead int64
	// broken is set when an output failed: nothing more is written or acknowledged.
	broken bool
}

// heldOut is an output waiting to be written: a record for the sink or (f set) a dead letter.
type heldOut struct {
	r *envelope
	f *failure
}

// partialRoot is a source record some of whose derived records have arrived.
type partialRoot struct {
	weight uint64
	seen   map[uint64]struct{} // Subs that arrived, to drop copies
}

func newCollectorState(p *troupe.Pipeline) *collectorState {
	return &collectorState{
		sink: p.Sink, deadSink: p.DeadLetters, order: p.Order, journal: p.Journal != nil,
		partial: map[uint64]*partialRoot{}, held: map[uint64][]heldOut{},
		dead: map[uint64]struct{}{},
	}
}

func (c *collectorState) complete(seq uint64) bool {
	if seq < c.base {
		return true
	}
	return c.above.get(seq)
}

// collector writes outputs to the sink and dead letters to their output, and acks complete
// source records to the source.
type collector struct {
	run   *run
	c     *collectorState
	acks  []uint64
	wrote bool
}

func (a *collector) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.run.resync(ctx)
		return
	case *batch:
		if a.acks == nil {
			a.acks = make([]uint64, 0, len(m.Records))
		}
		for _, r := range m.Records {
			a.take(r, nil)
		}
		a.run.putBatchSlice(m.Records)
	case *failure:
		a.take(m.Record, m)
	case journalTick:
		a.c.tickSet = false
	default:
		return
	}
	a.flush(ctx)
}

// take accounts for one record reaching the end of the pipeline: an output, a DROPPED or END
// marker, or (with f) a dead letter.
func (a *collector) take(r *envelope, f *failure) {
	c := a.c
	if r.Flag == flagEnd {
		c.endTaken = true
	}
	if c.complete(r.Seq) {
		// A copy of something already done (the source resent its window): ack it again, in
		// case the first ack was lost.
		a.run.stats.dups.Add(1)
		if r.Seq < c.base || c.order != troupe.OrderInput { // held records are acked when written
			a.acks = append(a.acks, r.Seq)
		}
		return
	}
	var pr *partialRoot
	if r.Weight != fullWeight {
		pr = c.partial[r.Seq]
		if pr == nil {
			pr = &partialRoot{}
			c.partial[r.Seq] = pr
		}
		if r.Sub != 0 {
			if _, dup := pr.seen[r.Sub]; dup {
				a.run.stats.dups.Add(1)
				return
			}
			if pr.seen == nil {
				pr.seen = map[uint64]struct{}{}
			}
			pr.seen[r.Sub] = struct{}{}
		}
	}
	switch {
	case f != nil && c.journal:
		c.held[r.Seq] = append(c.held[r.Seq], heldOut{f: f})
	case f != nil:
		a.deadLetter(f)
	case r.Flag == flagData:
		if c.order == troupe.OrderInput || c.journal {
			c.held[r.Seq] = append(c.held[r.Seq], heldOut{r: r})
		} else {
			a.write(r)
		}
	}
	if pr != nil {
		pr.weight += r.Weight
		if pr.weight < fullWeight {
			return
		}
	}
	a.completed(r.Seq)
}

// completed marks a source record complete, and moves base (writing held outputs in order).
// With OrderInput a record is acked only once base has passed it and its outputs are written:
// a record completed out of order stays in the source's window while it waits here, so the
// records held behind a slow one never exceed the window.
func (a *collector) completed(seq uint64) {
	c := a.c
	if c.order != troupe.OrderInput {
		a.acks = append(a.acks, seq)
	}
	if len(c.partial) > 0 { // only splits and aggregates leave partial books
		delete(c.partial, seq)
	}
	if c.journal && c.order != troupe.OrderInput {
		a.writeHeld(seq)
	}
	if seq != c.base {
		c.above.put(seq, true)
		return
	}
	// base moves past seq, and past those above it that are complete, without putting seq in
	// the ring first: deleting a key from the ring scans to the next one present, and records
	// that come in order (or a worker's batch after the other's) would each pay for the gap.
	for {
		if c.order == troupe.OrderInput {
			a.writeHeld(c.base)
			a.acks = append(a.acks, c.base)
		}
		c.base++
		if !c.above.del(c.base) {
			return
		}
	}
}

// writeHeld writes the held outputs of a complete source record, and with a journal lists it
// for the journal.
func (a *collector) writeHeld(seq uint64) {
	c := a.c
	for _, h := range c.held[seq] {
		if h.f != nil {
			a.deadLetter(h.f)
		} else {
			a.write(h.r)
		}
	}
	delete(c.held, seq)
	if c.journal {
		if len(c.jready) == 0 {
			c.jsince = time.Now()
		}
		c.jready = append(c.jready, seq)
	}
}

func (a *collector) write(r *envelope) {
	c := a.c
	if c.broken {
		return
	}
	if err := c.sink.Write(r.Record); err != nil {
		if outputFailed(err) {
			a.brokenOutput(fmt.Errorf("sink: %w", err))
			return
		}
		// A record the sink refuses (say, a key that escapes the output directory) is not lost:
		// it goes to the dead letters with the sink's reason.
		a.run.log.Warn("sink refused record", "key", r.Key, "error", err)
		a.deadLetter(&failure{Record: r, Stage: "sink", Attempts: 1, Error: err.Error()})
		return
	}
	a.wrote = true
	c.pendingOut++
}

func (a *collector) deadLetter(f *failure) {
	c := a.c
	if c.broken {
		return
	}
	a.run.observeDeadLetter(f)
	r := f.Record
	if c.journal {
		c.dead[r.Seq] = struct{}{}
	}
	if c.deadSink == nil {
		a.run.stats.dead.Add(1)
		a.run.log.Warn("dead letter", "key", r.Key, "seq", r.Seq, "stage", f.Stage, "attempts", f.Attempts, "error", f.Error)
		return
	}
	d := troupe.DeadLetter{Key: r.Key, Seq: r.Seq, Stage: f.Stage, Attempts: int(f.Attempts), Error: f.Error, Payload: r.Payload, Meta: r.Meta}
	if err := c.deadSink.Write(d); err != nil {
		a.brokenOutput(fmt.Errorf("dead letters: %w", err))
		return
	}
	a.wrote = true
	c.pendingDead++
}

// brokenOutput aborts the run after an output's Write failed. What the outputs took before
// is flushed and counted where they can still flush it (a files sink's earlier files are in
// place); an output that failed flushes nothing (a lines file cut itself back to what was
// flushed before), and so counts nothing more. What is counted is what is on disk.
func (a *collector) brokenOutput(err error) {
	c := a.c
	if !c.broken {
		if c.pendingOut > 0 && c.sink.Flush() == nil {
			a.run.stats.out.Add(c.pendingOut)
		}
		if c.pendingDead > 0 && c.deadSink.Flush() == nil {
			a.run.stats.dead.Add(c.pendingDead)
		}
	}
	a.failed(err)
}

// failed aborts the run after an output failed: nothing more is written, counted or acked.
func (a *collector) failed(err error) {
	a.c.broken = true
	a.c.pendingOut, a.c.pendingDead = 0, 0
	a.acks = nil
	a.c.jready = nil
	a.run.fail(err)
}

// flush makes what was written durable, counts it, then acks it.
func (a *collector) flush(ctx actor.Context) {
	c := a.c
	if c.broken {
		a.acks = nil
		return
	}
	if a.wrote || c.pendingOut > 0 || c.pendingDead > 0 {
		if err := c.sink.Flush(); err != nil {
			a.failed(fmt.Errorf("sink: %w", err))
			return
		}
		if c.deadSink != nil {
			if err := c.deadSink.Flush(); err != nil {
				// The sink's records are out; the dead letters since the last flush are not.
				a.run.stats.out.Add(c.pendingOut)
				a.failed(fmt.Errorf("dead letters: %w", err))
				return
			}
		}
		a.run.stats.out.Add(c.pendingOut)
		a.run.stats.dead.Add(c.pendingDead)
		c.pendingOut, c.pendingDead = 0, 0
		a.wrote = false
	}
	m := &acks{Seqs: a.acks}
	a.acks = nil
	if len(c.jready) > 0 {
		wait := journalBatchDelay - time.Since(c.jsince)
		switch {
		case c.endTaken || len(c.jready) >= journalBatchRecords || wait <= 0:
			if err := a.journalReady(m); err != nil {
				a.failed(err)
				return
			}
		case !c.tickSet:
			c.tickSet = true
			self := ctx.Self()
			run := a.run
			time.AfterFunc(wait, func() {
				if run.ctx.Err() == nil { // the run has not ended
					run.send(self, journalTick{})
				}
			})
		}
	}
	if len(m.Seqs) > 0 || len(m.Journal) > 0 {
		ctx.Send(a.run.source.Load(), m)
	}
}

const (
	// journalBatchRecords and journalBatchDelay bound a journal batch: the records written
	// (and so the sink's and the journal's fsyncs) are grouped up to this many records or this
	// long. A kill redoes at most one batch of finished records, beside those in flight.
	journalBatchRecords = 8192
	journalBatchDelay   = 50 * time.Millisecond
)

// journalTick makes the collector send on a journal batch that has waited journalBatchDelay.
type journalTick struct{}

// journalReady adds to m the records whose outputs were written and flushed, once the outputs
// that append to a file have made them durable, with where those outputs stand.
func (a *collector) journalReady(m *acks) error {
	c := a.c
	if testHookWanted("sink-flush") && testHookHit("sink-flush") {
		testHookStall("sink-flush") // test only: the sink has flushed, nothing is synced or journalled
	}
	var err error
	if m.SinkPos, err = syncPos(c.sink); err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	if c.deadSink != nil {
		if m.DeadPos, err = syncPos(c.deadSink); err != nil {
			return fmt.Errorf("dead letters: %w", err)
		}
	} else {
		m.DeadPos = outputPos{size: -1}
	}
	m.Journal = c.jready
	m.Dead = make([]bool, len(c.jready))
	for i, seq := range c.jready {
		if _, ok := c.dead[seq]; ok {
			m.Dead[i] = true
			delete(c.dead, seq)
		}
	}
	c.jready = nil
	return nil
}

// outputError is an output failing as a whole (its device full or broken) rather than refusing
// one record: the run is aborted.
type outputError struct{ err error }

func (e *outputError) Error() string { return e.err.Error() }
func (e *outputError) Unwrap() error { return e.err }

// outputFailed tells an error of a Sink's Write that means the output itself failed (an
// outputError, or a full, read-only, broken or over-limit device) from a refusal of the record.
func outputFailed(err error) bool {
	var oe *outputError
	if errors.As(err, &oe) {
		return true
	}
	for _, e := range []error{syscall.ENOSPC, syscall.EDQUOT, syscall.EFBIG, syscall.EIO, syscall.EROFS, syscall.EPIPE} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
