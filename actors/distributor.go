package actors

import (
	"errors"
	"fmt"
	"math/bits"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/supervisor"
)

// entry is a record in a distributor's custody, with the attempts it has failed so far. It has
// four fields at most, so that the compiler copies it field by field (a larger struct is copied
// with a bulk write barrier while the GC marks, which cost more than the rest of the deques).
type entry struct {
	rec     *envelope
	sent    time.Duration // when it was handed to a worker (since the run started)
	attempt uint32
	marks   uint8 // markSuspect, markShared
}

const (
	// markSuspect marks a record held by a worker that died without saying which record killed
	// it (a plugin process crashing). Suspects are retried alone, on an idle worker, so that if
	// one kills its worker again, it is known for certain to be the culprit.
	markSuspect uint8 = 1 << iota
	// markShared marks a record taken back from a worker that died: a goroutine of that worker
	// may still read its envelope (a Func past its timeout goes on running), so its envelope is
	// never written again (see emit).
	markShared
)

func (e *entry) suspect() bool { return e.marks&markSuspect != 0 }
func (e *entry) shared() bool  { return e.marks&markShared != 0 }

// slot is the distributor's view of one worker.
type slot struct {
	pid   *actor.PID
	name  string
	token uint64
	up    bool
	held  heldQueue // what the worker holds, in the order it received it
	bytes int       // the bytes of what it holds (see recordBytes)
}

// pendingQueue is the records waiting for a worker: those that go first (retries, records
// taken back from a dead worker), one entry each, then the batches received, as they came (an
// entry a record, pushed and popped, cost more than the rest of a cheap stage's bookkeeping).
type pendingQueue struct {
	retry deque[entry]
	fresh deque[freshBatch]
	n     int // records
}

// freshBatch is the records of a batch received that wait for a worker: recs[off:]. slice is
// the batch's slice, handed back to the run once its records are out (see putBatchSlice).
type freshBatch struct {
	recs  []*envelope
	off   int
	slice []*envelope
}

func (q *pendingQueue) len() int { return q.n }

func (q *pendingQueue) pushFront(e entry) {
	q.retry.pushFront(e)
	q.n++
}

// pushBatch queues recs, fresh records; slice is the batch's slice that holds them.
func (q *pendingQueue) pushBatch(recs, slice []*envelope) {
	q.fresh.pushBack(freshBatch{recs: recs, slice: slice})
	q.n += len(recs)
}

// popFront takes out the first record (there must be one).
func (q *pendingQueue) popFront(r *run) entry {
	q.n--
	if q.retry.len() > 0 {
		return q.retry.popFront()
	}
	b := q.fresh.front()
	e := entry{rec: b.recs[b.off]}
	b.off++
	if b.off == len(b.recs) {
		r.putBatchSlice(b.slice)
		q.fresh.popFront()
	}
	return e
}

// at returns the i-th record.
func (q *pendingQueue) at(i int) *envelope {
	if i < q.retry.len() {
		return q.retry.at(i).rec
	}
	i -= q.retry.len()
	for j := 0; ; j++ {
		b := q.fresh.ref(j)
		if left := len(b.recs) - b.off; i >= left {
			i -= left
			continue
		}
		return b.recs[b.off+i]
	}
}

// heldQueue is what a worker holds: the work it was sent, one sentWork a message rather than an
// entry a record (pushing and popping an entry per record, at every stage, cost more than the
// rest of a cheap stage's bookkeeping). A held record's entry is made again when it is taken out:
// its attempt is its envelope's (send makes them equal), its marks its work's.
type heldQueue struct {
	q deque[sentWork]
	n int // records
}

// sentWork is the records of one work message that await their outcomes: recs[off:]. recs is
// the slice the worker was sent; neither the worker nor the distributor writes it until the
// worker hands it back with the outcomes that finish it (see recycle).
type sentWork struct {
	recs    []*envelope
	off     int
	sent    time.Duration
	suspect bool // recs holds one record, a suspect (see markSuspect)
}

func (h *heldQueue) len() int { return h.n }

func (h *heldQueue) push(recs []*envelope, sent time.Duration, suspect bool) {
	h.q.pushBack(sentWork{recs: recs, sent: sent, suspect: suspect})
	h.n += len(recs)
}

// frontSuspect reports whether the oldest record held is a suspect.
func (h *heldQueue) frontSuspect() bool {
	if h.n == 0 {
		return false
	}
	w := h.q.front()
	return w.suspect && w.off == 0
}

func (w *sentWork) entry(i int) entry {
	r := w.recs[i]
	e := entry{rec: r, sent: w.sent, attempt: r.Attempt}
	if w.suspect && i == 0 {
		e.marks = markSuspect
	}
	return e
}

// popFront takes out the oldest record held (there must be one).
func (h *heldQueue) popFront() entry {
	w := h.q.front()
	e := w.entry(w.off)
	w.off++
	h.n--
	if w.off == len(w.recs) {
		h.q.popFront()
	}
	return e
}

// at returns the i-th oldest record held.
func (h *heldQueue) at(i int) entry {
	for j := 0; ; j++ {
		w := h.q.ref(j)
		if left := len(w.recs) - w.off; i >= left {
			i -= left
			continue
		}
		return w.entry(w.off + i)
	}
}

// drain takes out every record held, oldest first.
func (h *heldQueue) drain() []entry {
	out := make([]entry, 0, h.n)
	for h.n > 0 {
		out = append(out, h.popFront())
	}
	h.q.head = 0
	return out
}

// holds reports whether recs is the slice of work still held.
func (h *heldQueue) holds(recs []*envelope) bool {
	for j := 0; j < h.q.len(); j++ {
		if w := h.q.at(j); len(w.recs) > 0 && &w.recs[0] == &recs[0] {
			return true
		}
	}
	return false
}

// distributor hands a stage's records to its workers and passes their outputs on.
type distributor struct {
	run       *run
	st        *stageRun
	next      *actor.PID // the next stage's distributor, or the collector
	collector *actor.PID

	pending  pendingQueue
	suspects pendingQueue
	slots    []slot
	end      *envelope // the END marker, held until the stage is empty

	fwd     []*envelope // outputs for the next stage, sent once per message handled
	dropped []*envelope // DROPPED markers for the collector
	// spareRecs are work slices the workers have handed back (see results.recs), cleared, for
	// the next ones (maxSpareRecs a worker), so that a batch's slice is not garbage made per
	// batch.
	spareRecs [][]*envelope
	// outs counts the outputs emitted while handling a message: the stage's Out counter is
	// updated once per message (flush), not once per record.
	outs int64
	// latN records whose latency was latD wait to be added to the stage's histogram: the
	// records of a batch share their latency, and are added at once (see latency).
	latD time.Duration
	latN int64

	// faulted holds the distinct records charged with the death of a worker since the stage's
	// last success (see brokenAfter); lastFault is the last such death's reason.
	faulted   map[recordID]struct{}
	lastFault string
	broken    bool // the stage was declared broken: nothing more is dispatched or dead-lettered
	// ownFaults counts the workers that died by their own (their backend's) fault, charging no
	// record, since the stage's last results (see maxOwnFaults).
	ownFaults int
	// parked holds records that used up their attempts killing workers while no record of the
	// stage succeeded: poison records, or the victims of a broken stage. They are dead-lettered
	// when a success shows the stage works, or when the stage has nothing else to try; they are
	// left in flight if the stage is declared broken.
	parked []parkedEntry
}

type parkedEntry struct {
	e      entry
	reason string
}

// brokenAfter is how many distinct records may kill a stage's workers (a panic, a backend
// failure, a hang past the timeout, a protocol violation) with no record of the stage succeeding
// in between, before the stage is declared broken and the run aborted. A poison record counts
// once however many attempts it takes, and any success starts the count again, so a few poison
// records among good ones, or workers killed at random, never add up to it; a stage that kills
// its worker whatever the record gets there after about ten restarts, in seconds, instead of
// dead-lettering the whole input one restart at a time.
const brokenAfter = 10

// maxOwnFaults is how many times in a row, without a result in between, a stage's workers may
// die by their own fault (a backend that broke its protocol or hung without credit) before the
// stage is declared broken: those deaths charge no record, so brokenAfter never counts them, and
// a backend broken for good would otherwise be restarted forever with the same records.
const maxOwnFaults = 5

func newDistributor(r *run, st *stageRun) *distributor {
	d := &distributor{run: r, st: st, next: st.next, collector: r.collector}
	d.slots = make([]slot, st.cfg.Workers)
	for i := range d.slots {
		d.slots[i].name = workerName(i)
	}
	return d
}

func (d *distributor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		// What a previous incarnation held is gone: the source resends its window.
		d.run.resync(ctx)
	case *batch:
		d.receive(m)
	case workerUp:
		s := &d.slots[m.index]
		if s.up && s.token != m.token {
			// The previous incarnation died without a word (e.g. abandoned while hung).
			d.requeue(s, false, nil, errors.New("worker restarted"))
		}
		s.pid, s.token, s.up = m.pid, m.token, true
	case workerResults:
		s := &d.slots[m.index]
		if !s.up || s.token != m.token {
			return // from an incarnation that is gone: its records were requeued
		}
		d.results(s, m.res)
		d.recycle(s, m.res)
	case workerDown:
		s := &d.slots[m.index]
		if !s.up || s.token != m.token {
			return
		}
		s.up = false
		if !m.charge && !errors.Is(m.reason, supervisor.ErrShutdown) {
			d.ownFault(m.reason)
		}
		d.requeue(s, m.charge, m.culprit, m.reason)
	default:
		return
	}
	d.dispatch(ctx)
	d.flush(ctx)
	d.observe()
}

func (d *distributor) receive(b *batch) {
	recs := b.Records
	for i, r := range recs {
		if r.Flag == flagEnd {
			d.end = r
			// Seldom: the END marker comes last, or alone.
			recs = append(recs[:i:i], recs[i+1:]...)
			break
		}
	}
	d.st.counters.in.Add(int64(len(recs)))
	if len(recs) == 0 {
		d.run.putBatchSlice(b.Records)
		return
	}
	d.pending.pushBatch(recs, b.Records)
}

// results takes a worker's outcomes for the oldest records it holds.
func (d *distributor) results(s *slot, res *results) {
	d.ownFaults = 0
	if len(res.Counts) > s.held.len() {
		d.run.fail(fmt.Errorf("stage %s: worker %s reported %d outcomes for %d records", d.st.cfg.Name, s.name, len(res.Counts), s.held.len()))
		return
	}
	if res.Combined {
		d.combined(s, res)
		return
	}
	errs := res.Errors
	now := d.run.now()
	if d.fwd == nil {
		d.fwd = d.run.batchSlice(len(res.Outputs))
	}
	// The outputs' envelopes that cannot be the inputs' own (see emit), in one allocation per
	// message, made when first needed.
	var slab []envelope
	off := 0
	for i, n := range res.Counts {
		e, ok := d.outcome(s, i, &errs, now)
		if !ok {
			continue
		}
		if off+int(n) > len(res.Outputs) {
			d.run.fail(fmt.Errorf("stage %s: worker %s reported more outputs than it sent", d.st.cfg.Name, s.name))
			return
		}
		ok = d.emit(e, res.Outputs[off:off+int(n)], &slab, len(res.Outputs)-off)
		off += int(n)
		if ok && (len(d.faulted) > 0 || len(d.parked) > 0) {
			d.works()
		}
	}
	d.st.putSpare(res.Outputs)
}

// recycle keeps what a worker's results hand back for later batches: the work slice, and
// the outcomes' counts (for the stage's workers, see takeCounts).
func (d *distributor) recycle(s *slot, res *results) {
	if recs := res.recs; len(recs) > 0 && len(d.spareRecs) < maxSpareRecs*len(d.slots) && !s.held.holds(recs) {
		clear(recs) // let go of the envelopes
		d.spareRecs = append(d.spareRecs, recs[:0])
	}
	if res.Counts != nil && d.st.spareCounts != nil {
		select {
		case d.st.spareCounts <- res.Counts[:0]:
		default:
		}
	}
}

// batchSlice returns an empty slice with room for n records, for a batch: a spare one (see
// putBatchSlice) if one is large enough.
func (r *run) batchSlice(n int) []*envelope {
	select {
	case b := <-r.spareBatches:
		if cap(b) >= n {
			return b
		}
	default:
	}
	return make([]*envelope, 0, 1<<bits.Len(uint(max(n, 16)-1)))
}

// putBatchSlice takes back the records' slice of a batch that its receiver has taken the records
// out of (nothing refers to it any more), for a later batch.
func (r *run) putBatchSlice(b []*envelope) {
	if cap(b) < 16 {
		return
	}
	clear(b) // let go of the envelopes
	select {
	case r.spareBatches <- b[:0]:
	default:
	}
}

// maxSpareRecs bounds the spare work slices a distributor keeps, per worker: about as many as a
// worker may have in its mailbox (cleared slices of pointers: a few KiB each).
const maxSpareRecs = 16

// workSlice returns a slice of n records for a worker's work, a spare one if one is large
// enough.
func (d *distributor) workSlice(n int) []*envelope {
	for i := len(d.spareRecs) - 1; i >= 0; i-- {
		if recs := d.spareRecs[i]; cap(recs) >= n {
			d.spareRecs[i] = d.spareRecs[len(d.spareRecs)-1]
			d.spareRecs[len(d.spareRecs)-1] = nil
			d.spareRecs = d.spareRecs[:len(d.spareRecs)-1]
			return recs[:n]
		}
	}
	// Rounded up, so that a spare fits the next batches, whose sizes vary.
	return make([]*envelope, n, 1<<bits.Len(uint(n-1)))
}

// takeCounts returns a counts' slice with room for n outcomes: a spare one if one is large
// enough.
func (st *stageRun) takeCounts(n int) []uint32 {
	select {
	case c := <-st.spareCounts: // nil channel: no spares
		if cap(c) >= n {
			return c
		}
	default:
	}
	return make([]uint32, 0, n)
}

// putSpare hands back an outputs' slice whose records have been copied out (into envelopes),
// for a worker's next results, if the stage keeps spares and has room for one more.
func (st *stageRun) putSpare(outs []troupe.Record) {
	if st.spareOutputs == nil || cap(outs) == 0 {
		return
	}
	for i := range outs { // let go of the records' keys, payloads and metadata (see setRecord)
		setRecord(&outs[i], &troupe.Record{})
	}
	select {
	case st.spareOutputs <- outs[:0]:
	default:
	}
}

// takeSpare returns a spare outputs' slice with room for n records, or nil.
func (st *stageRun) takeSpare(n int) []troupe.Record {
	select {
	case outs := <-st.spareOutputs: // nil channel: no spares
		if cap(outs) >= n {
			return outs
		}
	default:
	}
	return nil
}

// outcome takes the oldest record worker s holds, whose outcome is the i-th of its results, and
// reports whether it succeeded: a failed one (errs names it) is charged an attempt here.
func (d *distributor) outcome(s *slot, i int, errs *[]recordError, now time.Duration) (entry, bool) {
	e := s.held.popFront()
	s.bytes -= recordBytes(e.rec)
	d.latency(now - e.sent)
	if len(*errs) > 0 && int((*errs)[0].Index) == i {
		d.failed(e, (*errs)[0].Message)
		*errs = (*errs)[1:]
		return e, false
	}
	return e, true
}

// latency records the latency of a finished record: runs of equal latencies (a batch handed out
// together and reported together) go to the histogram in one addition.
func (d *distributor) latency(l time.Duration) {
	if d.latN > 0 && l != d.latD {
		d.st.counters.latency.recordN(d.latD, d.latN)
		d.latN = 0
	}
	d.latD = l
	d.latN++
}

// emit queues a finished record's outputs, in envelopes that it fills with their identity and
// weight: the runtime's books owe nothing to what the stage returned but the records' Key,
// Payload and Meta. It reports whether the outputs were taken (else the record was charged a
// failed attempt).
//
// A record's single output goes in the record's own envelope when this stage may write it: the
// envelope is owned (a distributor made it for this stage; the source's stay as they are, in its
// window), and no worker but the one that reported it ever held it (shared). Nothing else then
// refers to it: the worker is done with it, and this distributor has let go of its entry.
// Other outputs go in envelopes taken from *slab, which is allocated, when empty, with room for
// the outputs left of the message (left).
func (d *distributor) emit(e entry, outs []troupe.Record, slab *[]envelope, left int) bool {
	in := e.rec
	m := uint64(len(outs))
	if m == 0 {
		d.drop(in)
		return true
	}
	if m == 1 && in.owned && !e.shared() {
		updateRecord(&in.Record, &outs[0])
		in.Attempt = 0
		d.fwd = append(d.fwd, in)
		d.outs++
		return true
	}
	if m > 1 && in.Weight < m && in.Weight != 0 {
		d.failed(e, fmt.Sprintf("stage %s: fan-out of %d outputs is more than the record's remaining weight allows (%d)", d.st.cfg.Name, m, in.Weight))
		return false
	}
	if len(*slab) < len(outs) {
		*slab = make([]envelope, max(left, len(outs)))
	}
	w := in.Weight / m
	for j := range outs {
		o := &(*slab)[j] // zero: fresh from make
		setRecord(&o.Record, &outs[j])
		o.Seq, o.Sub, o.Weight, o.owned = in.Seq, in.Sub, in.Weight, true
		if m > 1 {
			o.Sub, o.Weight = subOf(in.Sub, d.st.index, j), w
			if j == 0 {
				o.Weight += in.Weight - w*m
			}
		}
		d.fwd = append(d.fwd, o)
	}
	*slab = (*slab)[len(outs):]
	d.outs += int64(m)
	return true
}

// drop completes a record the stage filtered out (it returned no output): its weight goes
// to the collector in a DROPPED marker.
func (d *distributor) drop(in *envelope) {
	d.dropped = append(d.dropped, &envelope{Record: troupe.Record{Key: in.Key}, Seq: in.Seq, Sub: in.Sub, Weight: in.Weight, Flag: flagDropped})
	d.run.stats.dropped.Add(1)
	d.st.obs.dropped.Add(1)
}

// failed charges e a failed attempt: it is retried, or dead-lettered when it has none left.
func (d *distributor) failed(e entry, reason string) { d.charge(e, reason, false) }

// charge charges e a failed attempt; fault says that it killed its worker. A record out of
// attempts is dead-lettered, or parked (see parked) when it killed its worker while the stage
// has shown no success since its faults began, or when the stage is broken.
func (d *distributor) charge(e entry, reason string, fault bool) {
	e.attempt++
	if int(e.attempt) >= d.st.cfg.Attempts {
		if d.broken || (fault && len(d.faulted) > 0) {
			d.parked = append(d.parked, parkedEntry{e, reason})
			return
		}
		d.deadLetter(e, reason)
		return
	}
	d.st.counters.retries.Add(1)
	d.run.log.Debug("retrying record", "stage", d.st.cfg.Name, "key", e.rec.Key, "attempt", e.attempt, "error", reason)
	d.pending.pushFront(e)
}

func (d *distributor) deadLetter(e entry, reason string) {
	d.st.counters.failed.Add(1)
	d.run.send(d.collector, &failure{Record: e.rec, Stage: d.st.cfg.Name, Attempts: e.attempt, Error: reason})
}

// works is called when a record of the stage succeeds: the faults so far were the records', not
// the stage's, and the records parked are poison.
func (d *distributor) works() {
	clear(d.faulted)
	for _, p := range d.parked {
		d.deadLetter(p.e, p.reason)
	}
	d.parked = nil
}

// slotIndex is the index of s in d.slots: its worker's index.
func (d *distributor) slotIndex(s *slot) int {
	for i := range d.slots {
		if &d.slots[i] == s {
			return i
		}
	}
	return -1
}

// requeue takes back everything a dead worker held. With charge, the record it was working on
// (culprit, or the oldest when unknown) is charged a failed attempt with reason; the others go
// back as they are.
func (d *distributor) requeue(s *slot, charge bool, culprit *recordID, reason error) {
	if s.held.len() == 0 {
		return
	}
	charged := -1 // index of the record charged
	if charge {
		charged = 0
	}
	if charge && culprit != nil {
		charged = -1
		for i := 0; i < s.held.len(); i++ {
			if idOf(s.held.at(i).rec) == *culprit {
				charged = i
				break
			}
		}
	}
	msg := "worker died"
	if reason != nil {
		msg = reason.Error()
	}
	held := s.held.drain()
	s.bytes = 0
	for i := range held {
		held[i].marks |= markShared
	}
	if charge && culprit == nil && len(held) > 1 {
		// Which one killed it is unknown: isolate them all rather than blame an innocent.
		charged = -1
		for i := range held {
			held[i].marks |= markSuspect
		}
		d.run.log.Debug("worker died holding several records; retrying them one by one", "stage", d.st.cfg.Name, "worker", d.slotIndex(s), "records", len(held), "reason", msg)
	}
	if charged >= 0 && held[charged].attempt == 0 {
		// Only a record's first fault counts: a poison record's retries, which go first,
		// would otherwise pile up into a run of faults with no chance for a success.
		d.fault(idOf(held[charged].rec), msg)
	}
	for i := len(held) - 1; i >= 0; i-- {
		switch {
		case i == charged:
			d.charge(held[i], msg, true)
		case held[i].suspect():
			d.suspects.pushFront(held[i])
		default:
			d.pending.pushFront(held[i])
		}
	}
}

// fault counts the death of a worker charged to record id, and declares the stage broken (the
// run aborts) when brokenAfter distinct records have killed workers with no success in between.
func (d *distributor) fault(id recordID, reason string) {
	if d.faulted == nil {
		d.faulted = map[recordID]struct{}{}
	}
	d.faulted[id] = struct{}{}
	d.lastFault = reason
	if len(d.faulted) >= brokenAfter && !d.broken {
		// What the stage holds stays in flight, reported as such, not dead-lettered.
		d.broken = true
		d.run.fail(fmt.Errorf("stage %s is broken: %d consecutive records failed, each killing its worker, and none succeeded in between; last error: %s",
			d.st.cfg.Name, len(d.faulted), firstLine(reason)))
	}
}

// ownFault counts a worker's death by its own fault, and declares the stage broken (the run
// aborts) after maxOwnFaults of them with no results in between.
func (d *distributor) ownFault(reason error) {
	d.ownFaults++
	if d.ownFaults >= maxOwnFaults && !d.broken {
		d.broken = true
		d.run.fail(fmt.Errorf("stage %s: workers died by their backend's fault %d times in a row, without a result in between; last: %w",
			d.st.cfg.Name, d.ownFaults, reason))
	}
}

// dispatch hands records to the workers. Suspects go one at a time to an idle worker, which gets
// nothing else while it holds one. The rest go to the least-loaded live workers, within their
// credits; when there are fewer records than room, they are spread over the workers rather than
// heaped on one. While suspects wait, the least-loaded worker is left to drain for them.
func (d *distributor) dispatch(ctx actor.Context) {
	if d.broken {
		return
	}
	for i := range d.slots {
		if d.suspects.len() == 0 {
			break
		}
		if s := &d.slots[i]; s.up && s.held.len() == 0 {
			d.send(ctx, s, 1, &d.suspects)
		}
	}
	var reserved *slot
	if d.suspects.len() > 0 {
		reserved = d.leastLoaded(nil)
	}
	up := 0
	for i := range d.slots {
		if d.slots[i].up {
			up++
		}
	}
	if up == 0 {
		return
	}
	// The records waiting now are shared out evenly: a share computed again from what is left
	// after each worker's would halve from one worker to the next (128, 64, 32 ...), and the
	// last stages of a pipeline would move their records in small messages.
	share := max(1, (d.pending.len()+up-1)/up)
	for d.pending.len() > 0 {
		best := d.leastLoaded(reserved)
		if best == nil || best.held.len() >= d.st.cfg.Credits {
			return
		}
		n := min(d.st.cfg.Credits-best.held.len(), d.pending.len(), share)
		n = d.fitBytes(best, n)
		// What a worker can hold of records the size of the next one: its byte credit, not its
		// record credit, is what limits it for large records.
		capacity := d.st.cfg.Credits
		if sz := recordBytes(d.pending.at(0)); sz > 0 {
			capacity = max(1, min(capacity, d.st.cfg.CreditBytes/sz))
		}
		if best.held.len() > 0 && (n == 0 || n < max(1, capacity/4)) {
			// Topping a busy worker up with a few records at a time turns a busy pipeline into a
			// stream of tiny messages. It reports soon, and then gets a fuller batch.
			return
		}
		if d.run.p.Order == troupe.OrderInput {
			// Records derived from one source record stay together on one worker, so they
			// keep their order through the stage (a worker reports in order).
			for n < d.pending.len() && d.pending.at(n).Seq == d.pending.at(n-1).Seq {
				n++
			}
		}
		d.send(ctx, best, n, &d.pending)
	}
}

// fitBytes is how many of the first n pending records fit in worker s's byte credit: at least
// one when s holds nothing, so that a record larger than the credit still goes through.
func (d *distributor) fitBytes(s *slot, n int) int {
	return d.pending.fit(n, d.st.cfg.CreditBytes-s.bytes, s.held.len() == 0)
}

// fit is how many of the first n records fit in room bytes: at least one if atLeastOne.
func (q *pendingQueue) fit(n, room int, atLeastOne bool) int {
	i := 0
	over := func() int {
		if i == 0 && atLeastOne {
			return 1
		}
		return i
	}
	for j := 0; j < q.retry.len() && i < n; j++ {
		if room -= recordBytes(q.retry.at(j).rec); room < 0 {
			return over()
		}
		i++
	}
	for j := 0; j < q.fresh.len() && i < n; j++ {
		b := q.fresh.at(j)
		for _, r := range b.recs[b.off:] {
			if i == n {
				return n
			}
			if room -= recordBytes(r); room < 0 {
				return over()
			}
			i++
		}
	}
	return i
}

// leastLoaded is the live worker, other than skip and those isolating a suspect, that holds the
// fewest records.
func (d *distributor) leastLoaded(skip *slot) *slot {
	var best *slot
	for i := range d.slots {
		s := &d.slots[i]
		if !s.up || s == skip || s.held.frontSuspect() {
			continue
		}
		if best == nil || s.held.len() < best.held.len() {
			best = s
		}
	}
	return best
}

// send hands the first n records of q to worker s. A suspect goes alone (see markSuspect).
func (d *distributor) send(ctx actor.Context, s *slot, n int, q *pendingQueue) {
	recs := d.workSlice(n)
	suspect := false
	for i := range recs {
		if q.retry.len() > 0 && q.retry.front().suspect() {
			if i > 0 {
				recs = recs[:i]
				break
			}
			suspect = true
			recs = recs[:1]
		}
		e := q.popFront(d.run)
		if e.rec.Attempt != e.attempt || e.shared() {
			// Records are immutable once sent; a retry travels as a copy that says so. A
			// record a dead worker held travels as a copy too, which no worker has seen, so
			// that its outputs may be written into it (see emit).
			e.rec = cloneRecord(e.rec)
			e.rec.Attempt = e.attempt
		}
		s.bytes += recordBytes(e.rec)
		recs[i] = e.rec
		if suspect {
			break
		}
	}
	s.held.push(recs, d.run.now(), suspect)
	ctx.Send(s.pid, work{token: s.token, recs: recs})
}

// flush sends what this message produced, and the END marker once the stage is empty.
func (d *distributor) flush(ctx actor.Context) {
	if len(d.parked) > 0 && !d.broken && d.busy() == 0 {
		// Nothing is left to try (at the end of input, or while input is slow to come): what is
		// parked is taken for poison rather than kept waiting for a success that may not come
		// (parked records fill the source's window).
		d.works()
	}
	if d.end != nil && d.empty() {
		d.fwd = append(d.fwd, d.end)
		d.end = nil
	}
	if d.latN > 0 {
		d.st.counters.latency.recordN(d.latD, d.latN)
		d.latN = 0
	}
	if d.outs > 0 {
		d.st.counters.out.Add(d.outs)
		d.outs = 0
	}
	if len(d.fwd) > 0 {
		ctx.Send(d.next, &batch{Records: d.fwd})
		d.fwd = nil
	}
	if len(d.dropped) > 0 {
		ctx.Send(d.collector, &batch{Records: d.dropped})
		d.dropped = nil
	}
}

func (d *distributor) empty() bool { return d.busy() == 0 && len(d.parked) == 0 }

// busy is how many records the stage has queued or at its workers.
func (d *distributor) busy() int {
	n := d.pending.len() + d.suspects.len()
	for i := range d.slots {
		n += d.slots[i].held.len()
	}
	return n
}

// cloneRecord is a shallow copy: payload and metadata are shared (they are never modified).
func cloneRecord(r *envelope) *envelope {
	c := *r
	c.owned = true // the stage's own
	return &c
}

// subOf is the identity of output j of a split at stage index k of a record with identity parent:
// deterministic, so that a record processed twice yields the same identities; never 0.
func subOf(parent uint64, k, j int) uint64 {
	x := parent ^ (uint64(k+1) << 48) ^ uint64(j+1)*0x9E3779B97F4A7C15
	// splitmix64 finaliser
	x ^= x >> 30
	x *= 0xBF58476D1CE4E5B9
	x ^= x >> 27
	x *= 0x94D049BB133111EB
	x ^= x >> 31
	return x | 1
}
