package actors

import (
	"encoding/binary"
	"slices"

	"github.com/troupe-dev/troupe"
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

// collect adds the outputs of one record to res, as a worker gathers them: when the stage
// combines, it folds them at once into sc's partials (they are in the cache now, and never
// copied into res), keeping the slice for the fallback if a later fold fails; combine then
// hands the partials over.
func (st *stageRun) collect(res *results, outs []troupe.Record, sc *combineScratch) {
	if st.combineFold == nil || res.Combined {
		res.Outputs = append(res.Outputs, outs...)
		return
	}
	if !sc.active {
		sc.start()
		if len(res.Outputs) > 0 { // outputs gathered before: fold them first
			sc.keep(res.Outputs)
			sc.fold(st.combineFold, res.Outputs)
			res.Outputs = nil
		}
	}
	sc.keep(outs)
	sc.fold(st.combineFold, outs)
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
	size   int               // the bytes of the partials' keys and aggregates (see packPartials)
}

func (sc *combineScratch) start() {
	if sc.index == nil {
		sc.index = newStrIndex(256)
	} else {
		sc.index.reset()
	}
	sc.active, sc.failed, sc.n, sc.size = true, false, 0, 0
	sc.parts, sc.kept = sc.parts[:0], sc.kept[:0]
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
		for _, outs := range sc.kept {
			res.Outputs = append(res.Outputs, outs...)
		}
	case sc.n > 0:
		res.Partials, res.Folded, res.Outputs, res.Combined = packPartials(sc.parts), uint64(sc.n), nil, true
	}
	clear(sc.kept) // let go of the outputs
	clear(sc.parts)
	sc.active, sc.kept, sc.parts = false, sc.kept[:0], sc.parts[:0]
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
