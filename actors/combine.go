package actors

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/internal/callctx"
)

// A map-side combine: when a reduce stage has a Combine function, the workers of the stage
// before it fold their outputs per key with the reduce stage's function before reporting them
// (combine, on the worker's goroutine), and report one partial aggregate per key instead. The
// distributor sends the partials on, followed, in the same message, by one marker per input
// record carrying its completion weight (flagDropped); the reducer merges the partials with
// Combine and only then passes the markers to the collector, so a record is complete only once
// what it produced is in the aggregate. A record's outputs are folded in the results that
// report it, which the distributor takes as a whole: a worker that dies has its unreported
// records redelivered, and their outputs were never folded.

// combineWith is, for a stage followed by a reduce stage that can merge partial aggregates,
// that stage's fold; nil otherwise.
func combineWith(stages []*stageRun, i int) troupe.ReduceFunc {
	st := stages[i]
	if st.cfg.Reduce != nil || i+1 >= len(stages) {
		return nil
	}
	next := stages[i+1].cfg
	if next.Reduce == nil || next.Combine == nil {
		return nil
	}
	return next.Reduce
}

// combine folds res's outputs per key into partial aggregates, in the order the keys first
// appear. If the fold fails (an error or a panic of the reduce function), res is left as it is:
// its outputs then go to the reduce stage one by one, which retries or dead-letters them by
// its rules. sc, if not nil, is the calling worker's scratch: the outputs it took through
// collect are folded already.
func (st *stageRun) combine(res *results, sc *combineScratch) {
	if st.combineFold == nil || res.Combined {
		return
	}
	if sc != nil && sc.active {
		sc.finish(res)
		return
	}
	if len(res.Outputs) == 0 {
		return
	}
	var tmp combineScratch
	tmp.start()
	tmp.fold(st.combineFold, res.Outputs)
	tmp.finish(res)
}

// collect adds the outputs of record in to res, as a worker gathers them: when the stage
// combines, it folds them at once into sc's partials (they are in the cache now, and never
// copied into res), keeping the slice for the fallback if a later fold fails (or, if they are
// in the slice lent for them, see lend, the record, to run again then); combine then hands the
// partials over.
func (st *stageRun) collect(res *results, in *envelope, outs []troupe.Record, sc *combineScratch) {
	if st.combineFold == nil || res.Combined {
		res.Outputs = appendRecords(res.Outputs, outs)
		return
	}
	st.collectFolding(res, in, outs, sc)
}

func (st *stageRun) collectFolding(res *results, in *envelope, outs []troupe.Record, sc *combineScratch) {
	if !sc.active {
		sc.start()
		if len(res.Outputs) > 0 { // outputs gathered before: fold them first
			sc.keep(res.Outputs)
			sc.fold(st.combineFold, res.Outputs)
			res.Outputs = nil
		}
	}
	if lentEnd := cap(sc.lentPtr); len(outs) > 0 && lentEnd > 0 && &outs[:cap(outs)][cap(outs)-1] == &sc.lentPtr[:lentEnd][lentEnd-1] {
		// The lent slice (as the call left it, grown perhaps): the next call writes over it.
		// Keep the record instead.
		sc.lent = sc.lentPtr[:0]
		sc.again = append(sc.again, rerun{in: in, at: len(sc.kept)})
	} else {
		sc.keep(outs)
	}
	sc.fold(st.combineFold, outs)
}

// lend offers the next call of the stage's Func a slice to build its outputs in (see
// callctx.Info.Outs), when it combines them at once: builtins then make no slice per record.
// A Func's outputs there are folded before its next call (see collect); if the fold fails,
// the records whose outputs were there are run again, without it, for the fallback: only the
// runtime's own builtins, which always give the same outputs for a record, use it.
func (st *stageRun) lend(sc *combineScratch, info *callctx.Info, ctx context.Context) {
	if st.combineFold != nil { // else nothing is ever lent
		st.lendTo(sc, info, ctx)
	}
}

func (st *stageRun) lendTo(sc *combineScratch, info *callctx.Info, ctx context.Context) {
	if sc.noLend {
		info.Outs = nil
		return
	}
	if sc.lent == nil {
		sc.lent = make([]troupe.Record, 0, 64)
	}
	sc.lentPtr, sc.info, sc.ctx, sc.fn = sc.lent[:0], info, ctx, st.cfg.Func
	info.Outs = &sc.lentPtr
}

// combineScratch is a worker's fold in progress (see collect), and what it reuses from one
// results to the next.
type combineScratch struct {
	active bool              // a fold for the current results is under way
	failed bool              // it failed: the outputs go on as they are
	index  *strIndex         // the partials' keys, numbered as in parts
	parts  []troupe.Record   // the partial aggregates, by key, in the order keys first came
	kept   [][]troupe.Record // the outputs folded, for the fallback
	n      int               // how many outputs were folded
	// The records whose outputs were in the lent slice (see lend), with where their outputs
	// go among kept's for the fallback.
	again []rerun

	lent    []troupe.Record // the slice lent to calls, grown to what they needed
	lentPtr []troupe.Record // what the call is given (see callctx.Info.Outs)
	info    *callctx.Info
	ctx     context.Context
	fn      troupe.Func
	noLend  bool // a fallback ran the records again: lend no more (a fold that failed once may again)
}

type rerun struct {
	in *envelope
	at int // how many of kept's slices come before its outputs
}

func (sc *combineScratch) start() {
	if sc.index == nil {
		sc.index = newStrIndex(256)
	} else {
		sc.index.reset()
	}
	sc.active, sc.failed, sc.n = true, false, 0
	sc.parts, sc.kept, sc.again = sc.parts[:0], sc.kept[:0], sc.again[:0]
}

func (sc *combineScratch) keep(outs []troupe.Record) {
	if len(outs) > 0 {
		sc.kept = append(sc.kept, outs)
	}
}

// fold folds outs into the partials; after a failure it only counts them.
func (sc *combineScratch) fold(f troupe.ReduceFunc, outs []troupe.Record) {
	sc.n += len(outs)
	if sc.failed {
		return
	}
	defer func() {
		if v := recover(); v != nil {
			sc.failed = true
		}
	}()
	for _, o := range outs {
		i, h := sc.index.find(o.Key)
		if i < 0 {
			i = sc.index.add(o.Key, h)
			sc.parts = append(sc.parts, troupe.Record{Key: o.Key})
		}
		acc, err := f(o.Key, sc.parts[i].Payload, o)
		if err != nil {
			sc.failed = true
			return
		}
		sc.parts[i].Payload = acc
	}
}

// finish ends the fold under way into res: its partials, packed, or, if it failed, the outputs
// as they are.
func (sc *combineScratch) finish(res *results) {
	switch {
	case sc.failed:
		res.Outputs = make([]troupe.Record, 0, sc.n)
		again := sc.again
		for i, outs := range sc.kept {
			for len(again) > 0 && again[0].at == i {
				res.Outputs = append(res.Outputs, sc.runAgain(again[0].in)...)
				again = again[1:]
			}
			res.Outputs = append(res.Outputs, outs...)
		}
		for _, r := range again {
			res.Outputs = append(res.Outputs, sc.runAgain(r.in)...)
		}
		if len(res.Outputs) != sc.n {
			// A builtin that gave other outputs the second time: the counts would not match.
			panic(fmt.Sprintf("stage %s: a record run again for the fallback of a failed combine gave other outputs", sc.info.Stage))
		}
	case sc.n > 0:
		res.Partials, res.Folded, res.Outputs, res.Combined = packPartials(sc.parts), uint64(sc.n), nil, true
	}
	clear(sc.kept) // let go of the outputs
	clear(sc.parts)
	clear(sc.again)
	sc.active, sc.kept, sc.parts, sc.again = false, sc.kept[:0], sc.parts[:0], sc.again[:0]
}

// runAgain runs the stage's Func on in again, without a lent slice, for the fallback of a fold
// that failed (see lend).
func (sc *combineScratch) runAgain(in *envelope) []troupe.Record {
	sc.noLend = true
	sc.info.Outs = nil
	sc.info.Attempt = int(in.Attempt) + 1
	outs, err := sc.fn(sc.ctx, userCopy(in))
	if err != nil {
		panic(fmt.Sprintf("stage %s: a record run again for the fallback of a failed combine failed: %v", sc.info.Stage, err))
	}
	return outs
}

// packPartials lays partial aggregates out in one buffer, which holds no pointers and takes one
// envelope to the reduce stage: for each, its key's length (uvarint), the key, its aggregate's
// length (uvarint) and the aggregate. nextPartial reads it back.
func packPartials(parts []troupe.Record) []byte {
	size := 0
	for _, p := range parts {
		size += len(p.Key) + len(p.Payload) + 2*binary.MaxVarintLen16
	}
	buf := make([]byte, 0, size)
	for _, p := range parts {
		buf = binary.AppendUvarint(buf, uint64(len(p.Key)))
		buf = append(buf, p.Key...)
		buf = binary.AppendUvarint(buf, uint64(len(p.Payload)))
		buf = append(buf, p.Payload...)
	}
	return buf
}

// nextPartial reads the first partial of packed ones (see packPartials), and returns the rest.
// The aggregate's capacity ends with it, so that appending to it never overwrites the next.
func nextPartial(b []byte) (key, acc, rest []byte, ok bool) {
	n, w := binary.Uvarint(b)
	if w <= 0 || uint64(len(b)-w) < n {
		return nil, nil, nil, false
	}
	key, b = b[w:w+int(n)], b[w+int(n):]
	n, w = binary.Uvarint(b)
	if w <= 0 || uint64(len(b)-w) < n {
		return nil, nil, nil, false
	}
	end := w + int(n)
	return key, b[w:end:end], b[end:], true
}

// combined takes a worker's combined results: like results, but the outputs are partials.
func (d *distributor) combined(s *slot, res *results) {
	errs := res.Errors
	now := d.run.now()
	// The partials' envelope and the markers, in one allocation.
	slab := make([]envelope, 1, 1+len(res.Counts))
	slab[0] = envelope{Record: troupe.Record{Payload: res.Partials}, Weight: res.Folded, Flag: flagPartial}
	var out int64
	for i, n := range res.Counts {
		e, ok := d.outcome(s, i, &errs, now)
		if !ok {
			continue
		}
		in := e.rec
		if n == 0 {
			d.drop(in)
		} else {
			out += int64(n)
			slab = append(slab, envelope{Record: troupe.Record{Key: in.Key}, Seq: in.Seq, Sub: in.Sub, Weight: in.Weight, Flag: flagDropped})
		}
		if len(d.faulted) > 0 || len(d.parked) > 0 {
			d.works()
		}
	}
	d.st.counters.out.Add(out)
	d.fwd = slices.Grow(d.fwd, len(slab))
	for i := range slab {
		d.fwd = append(d.fwd, &slab[i])
	}
}
