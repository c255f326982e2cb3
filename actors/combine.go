package actors

import (
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
// its rules. sc, if not nil, is the calling worker's scratch: its key index is reused, and the
// outputs' slice, which no longer leaves the worker once folded, is handed back in it for the
// worker's next results.
func (st *stageRun) combine(res *results, sc *combineScratch) {
	if st.combineFold == nil || res.Combined || len(res.Outputs) == 0 {
		return
	}
	var index map[string]int32
	if sc != nil && sc.index != nil {
		index = sc.index
		clear(index)
	} else {
		index = make(map[string]int32, len(res.Outputs)/4)
		if sc != nil {
			sc.index = index
		}
	}
	parts, folded, ok := foldAll(st.combineFold, res.Outputs, index)
	if !ok {
		return
	}
	if sc != nil {
		clear(res.Outputs) // what it points to is folded: let it go
		sc.spare = res.Outputs[:0]
	}
	res.Partials, res.Folded, res.Outputs, res.Combined = parts, folded, nil, true
}

// foldAll folds outs per key with f, into one partial per key in the order the keys first
// appear, with how many outputs each folds; index is an empty map to keep the keys' places in.
// It reports false if f failed (returned an error or panicked) on any of them.
func foldAll(f troupe.ReduceFunc, outs []troupe.Record, index map[string]int32) (parts []troupe.Record, folded []uint32, ok bool) {
	defer func() {
		if v := recover(); v != nil {
			ok = false
		}
	}()
	parts = make([]troupe.Record, 0, len(outs)/4)
	folded = make([]uint32, 0, len(outs)/4)
	for _, o := range outs {
		i, seen := index[o.Key]
		if !seen {
			i = int32(len(parts))
			index[o.Key] = i
			parts = append(parts, troupe.Record{Key: o.Key})
			folded = append(folded, 0)
		}
		folded[i]++
		acc, err := f(o.Key, parts[i].Payload, o)
		if err != nil {
			return nil, nil, false
		}
		parts[i].Payload = acc
	}
	return parts, folded, true
}

// combineScratch is what a worker keeps from one combine to the next (see combine).
type combineScratch struct {
	index map[string]int32
	spare []troupe.Record
}

// combined takes a worker's combined results: like results, but the outputs are partials.
func (d *distributor) combined(s *slot, res *results) {
	errs := res.Errors
	now := d.run.now()
	// The partials' envelopes and the markers, in one allocation.
	slab := make([]envelope, len(res.Partials), len(res.Partials)+len(res.Counts))
	for i, p := range res.Partials {
		slab[i] = envelope{Record: p, Weight: uint64(res.Folded[i]), Flag: flagPartial}
	}
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
