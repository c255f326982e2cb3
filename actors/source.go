package actors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/supervisor"
)

// fullWeight is a source record's completion weight (see the package doc).
const fullWeight uint64 = 1 << 62

// sourceState is the source's part of a run: the reader, the window of records read and not yet
// complete, and the numbering. It outlives restarts of the source actor.
type sourceState struct {
	window      int // records in flight at most
	windowBytes int // their bytes (keys and payloads) at most, but see minFlight
	// minFlight is how many records may be in flight whatever their bytes: one for each worker
	// of the pipeline and one waiting, so that records larger than the byte window keep every
	// worker busy (a worker takes one record past its byte credit when it holds nothing).
	minFlight   int
	flightBytes int   // bytes of the records in flight
	readRecs    int64 // records read so far, and their bytes: the average sizes asks
	readBytes   int64
	hint        int // the source's size hint, if any (see sizeHinter)

	reader   *reader
	inflight windowRing        // by Seq: what has been sent and not yet acked (copies)
	unread   map[uint64]string // by Seq: records in flight the source could not read, why
	nextSeq  uint64
	// keys holds, with a journal, the resume keys of the records read and not yet journalled.
	keys     map[uint64]string
	asked    int  // records requested from the reader and not yet delivered
	eof      bool // no more input (end reached, or a drain was asked for)
	endSent  bool
	finished bool
}

// reader runs Source.Read in its own goroutine, so that a slow or blocking read (stdin, a slow
// disk) never holds up the source actor, which must keep taking acks. The actor asks for records
// without ever blocking (want and wake); every delivery says how many of them it answers.
type reader struct {
	src   troupe.Source
	batch int // records read at a time at most
	// unread holds, for the records of the last delivery that the source could not read (see
	// unreadableSource), the reason; the actor takes them when the delivery arrives.
	unreadMu sync.Mutex
	unread   map[*envelope]string
	// unreadable says that src can hand on records it could not read (see unreadableSource):
	// without it, unread stays empty and takeUnread need not take the lock, once per record.
	unreadable bool
	// slices, if set, makes an empty slice with room for n records (see run.batchSlice): a
	// delivery's slice travels on as the first stage's batch, which hands it back.
	slices func(n int) []*envelope
	want   atomic.Int64 // records asked for and not yet being read
	wake   chan struct{}
	stop   context.CancelFunc
	ctx    context.Context
	done   chan struct{}

	startOnce sync.Once
	started   atomic.Bool

	// With a journal: the source's resume keys, and whether a key is done (the source must
	// not produce such records; what it produces anyway is passed over here).
	resume troupe.Resumable
	isDone func(key string) bool
}

// newReader makes the reader of src; it reads nothing before start. Asks made before then wait
// for it.
func newReader(src troupe.Source, batch int) *reader {
	ctx, cancel := context.WithCancel(context.Background())
	_, unreadable := src.(unreadableSource)
	return &reader{src: src, batch: batch, unreadable: unreadable, wake: make(chan struct{}, 1), stop: cancel, ctx: ctx, done: make(chan struct{})}
}

// start starts reading, delivering to deliver; only the first call does anything. The run calls
// it once the supervisor has handed over the source actor's PID, so that every delivery has a
// receiver.
func (r *reader) start(deliver func(sourceRead)) {
	r.startOnce.Do(func() {
		r.started.Store(true)
		go r.loop(deliver)
	})
}

func (r *reader) loop(deliver func(sourceRead)) {
	defer close(r.done)
	ctx := r.ctx
	for {
		n := int(min(r.want.Load(), int64(r.batch)))
		if n == 0 || ctx.Err() != nil {
			select {
			case <-ctx.Done():
				// Answer whatever was asked: the actor waits for every ask to be answered.
				deliver(sourceRead{err: ctx.Err()})
				return
			case <-r.wake:
				continue
			}
		}
		r.want.Add(int64(-n))
		recs, keys, err := r.read(n)
		deliver(sourceRead{recs: recs, keys: keys, err: err, asked: n})
		if err != nil {
			return
		}
	}
}

// ask requests n more records; it never blocks.
func (r *reader) ask(n int) {
	r.want.Add(int64(n))
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// read calls the source, turning a panic into an error: the source is user code.
func (r *reader) read(n int) (recs []*envelope, keys []string, err error) {
	defer func() {
		if v := recover(); v != nil {
			recs, keys, err = nil, nil, fmt.Errorf("source panicked: %v\n%s", v, debug.Stack())
		}
	}()
	var envs []envelope
	if er, ok := r.src.(envelopeReader); ok {
		envs, err = er.readEnvelopes(r.ctx, n)
	} else {
		var read []troupe.Record
		read, err = r.src.Read(r.ctx, n)
		if len(read) > n {
			return nil, nil, fmt.Errorf("source returned %d records, more than the %d asked for", len(read), n)
		}
		// The runtime's own copies, in one allocation per read: what the source does with its
		// slice afterwards cannot reach them.
		envs = make([]envelope, len(read))
		for i := range read {
			setRecord(&envs[i].Record, &read[i])
		}
	}
	if len(envs) > n {
		return nil, nil, fmt.Errorf("source returned %d records, more than the %d asked for", len(envs), n)
	}
	if len(envs) == 0 {
		return nil, nil, err
	}
	if r.slices != nil {
		recs = r.slices(len(envs))[:len(envs)]
	} else {
		recs = make([]*envelope, len(envs))
	}
	for i := range envs {
		recs[i] = &envs[i]
	}
	if u, ok := r.src.(unreadableSource); ok {
		for i, rec := range recs {
			if why := u.unreadable(i); why != nil {
				r.unreadMu.Lock()
				if r.unread == nil {
					r.unread = map[*envelope]string{}
				}
				r.unread[rec] = why.Error()
				r.unreadMu.Unlock()
			}
		}
	}
	if r.resume != nil {
		return r.resumeKeys(recs, err)
	}
	return recs, nil, err
}

// resumeKeys asks the source for the resume key of each record it just read, and passes over
// those an earlier run finished (a source that produced them anyway broke its word, but the
// runtime need not do them twice).
func (r *reader) resumeKeys(recs []*envelope, err error) ([]*envelope, []string, error) {
	keys := make([]string, 0, len(recs))
	kept := recs[:0:len(recs)]
	for _, rec := range recs {
		k := r.resume.ResumeKey(rec.Record)
		if k == "" {
			return nil, nil, fmt.Errorf("source: ResumeKey returned an empty key for record %q", rec.Key)
		}
		if r.isDone(k) {
			r.takeUnread(rec)
			continue
		}
		kept = append(kept, rec)
		keys = append(keys, k)
	}
	return kept, keys, err
}

// envelopeReader is implemented by the runtime's own sources that can read their records into
// the runtime's envelopes (fresh ones, which they keep no reference to) rather than into records
// the reader then copies: the same records, a copy and an allocation fewer each.
type envelopeReader interface {
	readEnvelopes(ctx context.Context, max int) ([]envelope, error)
}

// unreadableSource is implemented by sources that hand on, in its place, a record they could
// not read (a files source's listed file that is no longer a regular file): the runtime sends
// it straight to the dead letters, stage "source", rather than through the stages.
type unreadableSource interface {
	// unreadable returns why record i of the batch Read just returned could not be read, or
	// nil; it is asked once per record, from the goroutine that called Read.
	unreadable(i int) error
}

// takeUnread returns (and forgets) why rec could not be read, or "".
func (r *reader) takeUnread(rec *envelope) string {
	if !r.unreadable {
		return ""
	}
	r.unreadMu.Lock()
	defer r.unreadMu.Unlock()
	if len(r.unread) == 0 {
		return ""
	}
	why := r.unread[rec]
	delete(r.unread, rec)
	return why
}

// readerCloseTimeout bounds how long closing waits for a Read in progress, and then for the
// source's Close. A Read that does not honour its context (the built-in sources do, even on a
// silent stdin) is left behind rather than hang the run's end; it returns when its input does.
const readerCloseTimeout = 2 * time.Second

func (r *reader) close() bool {
	r.stop()
	// Stop any later start; a reader that never started has nothing to wait for.
	r.startOnce.Do(func() {})
	if !r.started.Load() {
		return true
	}
	select {
	case <-r.done:
		return true
	case <-time.After(readerCloseTimeout):
		return false
	}
}

// closeWithin closes a source whose Read is stuck, waiting at most d: its Close may wait for
// that Read. A Close that does not return in time is left behind, as the Read was.
func closeWithin(c io.Closer, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return fmt.Errorf("its Close did not return within %s (waiting, it seems, for the Read that did not return); left behind", d)
	}
}

// sourceActor numbers records, keeps the window and sends records on to the first stage.
type sourceActor struct {
	run   *run
	st    *sourceState
	next  *actor.PID
	batch int // records asked from the reader at a time
}

func (a *sourceActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		if n, _ := supervisor.Incarnation(ctx); n > 0 {
			a.replay(ctx)
		}
		a.ask()
	case sourceRead:
		if m.err != nil {
			a.st.asked = 0 // the reader stops after an error: nothing more is coming
		} else {
			a.st.asked -= m.asked
		}
		a.accept(ctx, m)
	case *acks:
		a.ack(m)
		a.ask()
		a.checkFinished()
	case resync:
		a.run.log.Info("resending window", "to", m.from, "records", a.st.inflight.len())
		a.replay(ctx)
	case drain:
		a.st.eof = true
		a.st.reader.stop() // a Read in progress returns (sources honour ctx); the reader answers
		a.sendEnd(ctx)
		a.checkFinished()
	}
}

func (a *sourceActor) accept(ctx actor.Context, m sourceRead) {
	st := a.st
	// Records already read are always taken, also after a drain was asked for: a read
	// record that was not sent on would be lost (stdin cannot be read twice).
	if len(m.recs) > 0 {
		b := &batch{Records: m.recs}
		for i, r := range m.recs {
			r.Seq = st.nextSeq
			st.nextSeq++
			r.Sub, r.Weight, r.Attempt, r.Flag = 0, fullWeight, 0, flagData
			// The window keeps its own copy: the envelope is the stages' (see envelope.owned).
			r.owned = true
			st.inflight.put(r.Seq, &r.Record, false)
			st.flightBytes += recordBytes(r)
			st.readBytes += int64(recordBytes(r))
			if st.keys != nil {
				st.keys[r.Seq] = m.keys[i]
			}
			if why := st.reader.takeUnread(r); why != "" {
				if len(b.Records) == len(m.recs) {
					b.Records = slices.Clone(m.recs[:i])
				}
				st.unread[r.Seq] = why
				a.sendUnread(ctx, r)
			} else if len(b.Records) < len(m.recs) {
				b.Records = append(b.Records, r)
			}
		}
		st.readRecs += int64(len(m.recs))
		a.run.stats.in.Add(int64(len(m.recs)))
		a.run.stats.inflight.Add(int64(len(m.recs)))
		if len(b.Records) > 0 {
			ctx.Send(a.next, b)
		}
	}
	switch {
	case m.err == nil:
	case errors.Is(m.err, io.EOF), st.eof && errors.Is(m.err, context.Canceled):
		st.eof = true
	default:
		a.run.fail(fmt.Errorf("source: %w", m.err))
		return
	}
	a.ask()
	a.sendEnd(ctx)
	a.checkFinished()
}

// sendUnread sends a record the source could not read to the dead letters, by way of the
// collector, which completes and acks it like any other.
func (a *sourceActor) sendUnread(ctx actor.Context, r *envelope) {
	ctx.Send(a.run.collector, &failure{Record: r, Stage: "source", Attempts: 1, Error: a.st.unread[r.Seq]})
}

// ask requests more input while the window has room for a whole batch, in records and, at the
// average record size read so far, in bytes. A batch asks for at most a quarter of the byte
// window, so that large records are read a few at a time, and the first ask is for one record;
// when fewer than minFlight records are in flight or asked for, one more is asked for whatever
// its size, so that records larger than the window still flow, to every worker.
func (a *sourceActor) ask() {
	st := a.st
	for !st.eof {
		n, avg := a.batch, 0
		switch {
		case st.readRecs > 0:
			avg = int(max(1, st.readBytes/st.readRecs))
		case st.hint > 0:
			avg = st.hint
		default:
			// Nothing says yet how large records are: a first batch of firstAsk.
			if st.asked > 0 || st.inflight.len() > 0 {
				return
			}
			n = min(n, firstAsk)
		}
		if avg > 0 {
			n = max(1, min(n, st.windowBytes/4/avg))
		}
		idle := st.inflight.len() == 0 && st.asked == 0
		if !idle && st.inflight.len()+st.asked+n > st.window {
			return
		}
		if !idle && st.flightBytes+(st.asked+n)*avg > st.windowBytes {
			// Over the byte window, records are still read one at a time while fewer than
			// minFlight are in flight: a large record at one worker must not leave the others
			// idle (a 5K photo and 2 workers: the other one converts the small ones meanwhile).
			short := st.minFlight - st.inflight.len() - st.asked
			if short <= 0 {
				return
			}
			n = min(n, short)
		}
		st.asked += n
		st.reader.ask(n)
	}
}

// firstAsk is how many records a source that cannot tell their size (see sizeHinter) is first
// asked for, before their size is known. It is at least brokenAfter, so that a stage that kills
// its workers whatever the record is seen to do so on that many records (and declared broken)
// before the first of them could be taken for the only one there is and dead-lettered.
const firstAsk = 16

// sizeHinter is implemented by sources that can tell how large their records are before reading
// them (a files source, by the size of its next file; a range source): the source's first batch
// is then sized like the others.
type sizeHinter interface {
	// sizeHint is the expected size of a record, key and payload, in bytes; 0 if unknown.
	sizeHint() int
}

// recordBytes is what a record counts against byte credits: its key and payload.
func recordBytes(r *envelope) int { return len(r.Key) + len(r.Payload) }

func (a *sourceActor) ack(m *acks) {
	st := a.st
	done := 0
	for _, seq := range m.Seqs {
		w := st.inflight.get(seq)
		if w == nil {
			continue // acked twice (after a resend)
		}
		st.flightBytes -= len(w.rec.Key) + len(w.rec.Payload)
		if !w.end {
			done++
		}
		st.inflight.del(seq)
		if len(st.unread) > 0 {
			delete(st.unread, seq)
		}
	}
	a.run.stats.inflight.Add(int64(-done))
	if len(m.Journal) > 0 && a.run.journal != nil {
		entries := make([]journalEntry, 0, len(m.Journal))
		for i, seq := range m.Journal {
			key, ok := st.keys[seq]
			if !ok {
				continue // END, or journalled already
			}
			delete(st.keys, seq)
			o := byte(outcomeDone)
			if m.Dead[i] {
				o = outcomeDead
			}
			entries = append(entries, journalEntry{key: key, outcome: o})
		}
		a.run.journal.add(entries, m.SinkPos, m.DeadPos)
	}
}

// sendEnd sends the END marker behind the last record, once the input has ended and every read
// asked for has been answered; END is numbered and acked like a record.
func (a *sourceActor) sendEnd(ctx actor.Context) {
	st := a.st
	if st.endSent || !st.eof || st.asked > 0 {
		return
	}
	st.endSent = true
	end := &envelope{Seq: st.nextSeq, Weight: fullWeight, Flag: flagEnd}
	st.inflight.put(end.Seq, nil, true)
	ctx.Send(a.next, &batch{Records: []*envelope{end}})
}

func (a *sourceActor) checkFinished() {
	st := a.st
	if st.eof && st.endSent && st.inflight.len() == 0 && !st.finished {
		st.finished = true
		a.run.finish()
	}
}

// replay resends the window in sequence order, END last, in new envelopes.
func (a *sourceActor) replay(ctx actor.Context) {
	st := a.st
	if st.inflight.len() == 0 {
		return
	}
	b := &batch{}
	envs := make([]envelope, st.inflight.len())
	st.inflight.each(func(s uint64, w *windowSlot) {
		r := &envs[0]
		envs = envs[1:]
		r.Record, r.Seq, r.Weight, r.owned = w.rec, s, fullWeight, true
		if w.end {
			r.Flag = flagEnd
		}
		if _, ok := st.unread[s]; ok {
			a.sendUnread(ctx, r)
			return
		}
		b.Records = append(b.Records, r)
		if len(b.Records) == a.batch {
			ctx.Send(a.next, b)
			b = &batch{}
		}
	})
	if len(b.Records) > 0 {
		ctx.Send(a.next, b)
	}
}
