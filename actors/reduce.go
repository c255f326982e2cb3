package actors

import (
	"bytes"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/troupe-dev/troupe"
)

// reduceState holds a reduce stage's aggregates, by key. It lives in the run, so a restart of
// the reduce actor keeps them.
type reduceState struct {
	index  *strIndex // the keys, numbered as their aggregates in vals
	vals   [][]byte
	broken bool // a merge failed (see merge): the run is aborting
}

func newReduceState() *reduceState {
	return &reduceState{index: newStrIndex(1024)}
}

// get returns key's aggregate (nil if it has none) and its place, or -1 and its hash (for set).
func (rs *reduceState) get(key string) ([]byte, int, uint64) {
	i, h := rs.index.find(key)
	if i >= 0 {
		return rs.vals[i], i, h
	}
	return nil, -1, h
}

// set sets the aggregate at place i (from get), or, for -1, adds key's (h is its hash, from
// get). A new key is copied: it may be a substring of something much larger (split's keys
// share their line).
func (rs *reduceState) set(i int, h uint64, key string, acc []byte) {
	if i < 0 {
		key = strings.Clone(key)
	}
	rs.put(i, h, key, acc)
}

// put is set for a key that is the reducer's own.
func (rs *reduceState) put(i int, h uint64, key string, acc []byte) {
	if i >= 0 {
		rs.vals[i] = acc
		return
	}
	rs.index.add(key, h)
	rs.vals = append(rs.vals, acc)
}

// reducer folds each record into its key's aggregate and, when END arrives (after every record),
// emits one record per key in key order. A folded record is complete: its weight goes to the
// collector.
type reducer struct {
	run  *run
	st   *stageRun
	fwd  []*envelope
	done []*envelope
}

func (a *reducer) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.run.resync(ctx)
	case *batch:
		if a.done == nil {
			a.done = make([]*envelope, 0, len(m.Records))
		}
		for _, r := range m.Records {
			switch r.Flag {
			case flagEnd:
				a.end(r)
			case flagPartial:
				a.merge(r)
			case flagDropped:
				// A record the stage before folded into the partials ahead of it (see combine):
				// they are merged, so it is complete.
				a.done = append(a.done, r)
			default:
				a.fold(r)
			}
		}
		if len(a.done) > 0 {
			ctx.Send(a.run.collector, &batch{Records: a.done})
			a.done = nil
		}
		if len(a.fwd) > 0 {
			ctx.Send(a.st.next, &batch{Records: a.fwd})
			a.fwd = nil
		}
	}
}

func (a *reducer) fold(r *envelope) {
	a.st.counters.in.Add(1)
	rs := a.st.reduce
	acc, at, h := rs.get(r.Key)
	var err error
	for attempt := 0; attempt < a.st.cfg.Attempts; attempt++ {
		var next []byte
		if next, err = a.call(r.Key, acc, r); err == nil {
			rs.set(at, h, r.Key, next)
			a.done = append(a.done, &envelope{Record: troupe.Record{Key: r.Key}, Seq: r.Seq, Sub: r.Sub, Weight: r.Weight, Flag: flagDropped})
			return
		}
		if attempt+1 < a.st.cfg.Attempts {
			a.st.counters.retries.Add(1)
		}
	}
	a.st.counters.failed.Add(1)
	a.run.send(a.run.collector, &failure{Record: r, Stage: a.st.cfg.Name, Attempts: uint32(a.st.cfg.Attempts), Error: err.Error()})
}

// merge merges the partial aggregates of a map-side combine (packed, see packPartials) into
// their keys' aggregates. Combine failing on aggregates its own stage made is a broken stage:
// the run aborts, rather than carry on with a count it knows to be wrong.
func (a *reducer) merge(r *envelope) {
	a.st.counters.in.Add(int64(r.Weight)) // the records they fold: the stage's In is as without combine
	rs := a.st.reduce
	if rs.broken {
		return
	}
	var key string
	err := func() (err error) {
		defer func() {
			if v := recover(); v != nil {
				err = fmt.Errorf("panic: %v\n%s", v, debug.Stack())
			}
		}()
		// The partials go a group at a time: their keys' places in the index are read for the
		// whole group first, so that the cache misses of a large index overlap.
		var ks, ps [mergeGroup][]byte
		var hs [mergeGroup]uint64
		for p := r.Payload; len(p) > 0; {
			g := 0
			for ; g < mergeGroup && len(p) > 0; g++ {
				var ok bool
				if ks[g], ps[g], p, ok = nextPartial(p); !ok {
					key = ""
					return errors.New("corrupt packed partials")
				}
				hs[g] = rs.index.hashBytes(ks[g])
			}
			rs.touch(hs[:g])
			for j := range g {
				at := rs.index.findHashed(ks[j], hs[j])
				var acc []byte
				if at >= 0 {
					key, acc = rs.index.key(at), rs.vals[at]
				} else {
					key = string(ks[j])
				}
				next, err := a.st.cfg.Combine(key, acc, ps[j])
				if err != nil {
					return err
				}
				if aliases(next, ps[j]) {
					// The aggregate must not hold on to the message the partial came in.
					next = bytes.Clone(next)
				}
				rs.put(at, hs[j], key, next)
			}
		}
		return nil
	}()
	if err != nil {
		rs.broken = true
		a.st.counters.failed.Add(1)
		a.run.fail(fmt.Errorf("stage %s: merging partial aggregates of key %q: %w", a.st.cfg.Name, key, err))
	}
}

// mergeGroup is how many partials merge reads the index for at a time.
const mergeGroup = 16

// touch reads, for keys with hashes hs, their first slots in the index and what those point at
// (the key, its data, the aggregate), so that the lookups that follow find them in the cache:
// loads that do not depend on one another overlap. It returns nothing of use.
//
//go:noinline
func (rs *reduceState) touch(hs []uint64) int {
	t := rs.index
	mask := uint64(len(t.slots) - 1)
	sum := 0
	for _, h := range hs {
		if s := t.slots[h&mask]; s != 0 {
			n := int(uint32(s)) - 1
			if k := t.keys[n]; len(k) > 0 {
				sum += int(k[0])
			}
			if v := rs.vals[n]; len(v) > 0 {
				sum += int(v[0])
			}
		}
	}
	return sum
}

// aliases says whether a and b share their backing array's end: whether a is b or was resliced
// from it.
func aliases(a, b []byte) bool {
	return cap(a) > 0 && cap(b) > 0 && &a[:cap(a)][cap(a)-1] == &b[:cap(b)][cap(b)-1]
}

// call runs the reduce function, turning a panic into an error: the aggregate of the key is left
// as it was, so a failed fold changes nothing.
func (a *reducer) call(key string, acc []byte, r *envelope) (out []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v\n%s", v, debug.Stack())
		}
	}()
	return a.st.cfg.Reduce(key, acc, userCopy(r))
}

func (a *reducer) end(end *envelope) {
	rs := a.st.reduce
	if rs.broken {
		// A merge failed: the run is aborting, and aggregates missing what that merge held
		// must not reach the sink.
		return
	}
	order := make([]int, rs.index.len())
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int { return strings.Compare(rs.index.key(i), rs.index.key(j)) })
	// The aggregates' envelopes, in one allocation.
	slab := make([]envelope, len(order))
	for j, i := range order {
		// Aggregates carry no weight: END, which follows them through every later stage as a
		// barrier, keeps the whole weight of the last source number and completes it at the
		// collector after all of them have arrived.
		slab[j] = envelope{Record: troupe.Record{Key: rs.index.key(i), Payload: rs.vals[i]}, Seq: end.Seq, Sub: subOf(end.Sub, a.st.index, j)}
		a.fwd = append(a.fwd, &slab[j])
	}
	a.st.counters.out.Add(int64(len(order)))
	a.fwd = append(a.fwd, end)
}
