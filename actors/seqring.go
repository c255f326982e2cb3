package actors

import "github.com/troupe-dev/troupe"

// seqRing maps sequence numbers to values, for keys that are dense and, roughly, increasing:
// the source's window (records sent and not yet acked, in any order) and the collector's
// complete records above its base. It is a ring indexed by seq, so a lookup, an insert and a
// delete cost an index, not a hash: the runtime does several of each per record. Every key
// present lies in [lo, hi), and hi-lo never exceeds the ring's size, which doubles as needed;
// the span is bounded by the window, since both users drop their lowest keys as they go. The
// zero value of T means absent, and is never stored. The zero seqRing is empty.
type seqRing[T comparable] struct {
	buf    []T
	lo, hi uint64
	n      int
}

func (q *seqRing[T]) len() int { return q.n }

func (q *seqRing[T]) get(seq uint64) T {
	if seq < q.lo || seq >= q.hi {
		var zero T
		return zero
	}
	return q.buf[seq&uint64(len(q.buf)-1)]
}

// put stores v (not the zero value) at seq.
func (q *seqRing[T]) put(seq uint64, v T) {
	if q.n == 0 {
		q.lo, q.hi = seq, seq
	}
	lo, hi := min(q.lo, seq), max(q.hi, seq+1)
	if hi-lo > uint64(len(q.buf)) {
		q.grow(hi - lo)
	}
	q.lo, q.hi = lo, hi
	i := seq & uint64(len(q.buf)-1)
	var zero T
	if q.buf[i] == zero {
		q.n++
	}
	q.buf[i] = v
}

// del removes seq, reporting whether it was there.
func (q *seqRing[T]) del(seq uint64) bool {
	var zero T
	if seq < q.lo || seq >= q.hi {
		return false
	}
	mask := uint64(len(q.buf) - 1)
	if q.buf[seq&mask] == zero {
		return false
	}
	q.buf[seq&mask] = zero
	q.n--
	if q.n == 0 {
		q.lo = q.hi
		return true
	}
	for q.buf[q.lo&mask] == zero { // some key is present, so this stops below hi
		q.lo++
	}
	for q.buf[(q.hi-1)&mask] == zero {
		q.hi--
	}
	return true
}

// grow makes room for a span of at least span keys.
func (q *seqRing[T]) grow(span uint64) {
	n := max(uint64(len(q.buf)), 64)
	for n < span {
		n *= 2
	}
	buf := make([]T, n)
	if q.n > 0 {
		var zero T
		for s := q.lo; s < q.hi; s++ {
			if v := q.buf[s&uint64(len(q.buf)-1)]; v != zero {
				buf[s&(n-1)] = v
			}
		}
	}
	q.buf = buf
}

// each calls f on every key present and its value, in increasing order of key.
func (q *seqRing[T]) each(f func(seq uint64, v T)) {
	var zero T
	for s := q.lo; s < q.hi; s++ {
		if v := q.get(s); v != zero {
			f(s, v)
		}
	}
}

// windowRing is the source's window: the records sent on and not yet acked, by Seq, held by
// value in the ring itself. The envelopes that carry them downstream are then the stages' own
// (see envelope.owned): nothing here refers to them. Like seqRing, every key present lies in
// [lo, hi), and hi-lo never exceeds the ring's size, which doubles as needed.
type windowRing struct {
	buf    []windowSlot
	lo, hi uint64
	n      int
}

// windowSlot is one record of the window: a copy of what the source read, or the END marker.
type windowSlot struct {
	rec  troupe.Record
	used bool
	end  bool
}

func (q *windowRing) len() int { return q.n }

// get returns seq's slot, or nil when seq is not in the window.
func (q *windowRing) get(seq uint64) *windowSlot {
	if seq < q.lo || seq >= q.hi {
		return nil
	}
	s := &q.buf[seq&uint64(len(q.buf)-1)]
	if !s.used {
		return nil
	}
	return s
}

// put stores a copy of rec (nil for END) at seq, which must be absent.
func (q *windowRing) put(seq uint64, rec *troupe.Record, end bool) {
	if q.n == 0 {
		q.lo, q.hi = seq, seq
	}
	lo, hi := min(q.lo, seq), max(q.hi, seq+1)
	if hi-lo > uint64(len(q.buf)) {
		q.grow(hi - lo)
	}
	q.lo, q.hi = lo, hi
	s := &q.buf[seq&uint64(len(q.buf)-1)]
	if !s.used {
		q.n++
	}
	if rec != nil {
		setRecord(&s.rec, rec)
	}
	s.used, s.end = true, end
}

// del removes seq, reporting whether it was there.
func (q *windowRing) del(seq uint64) bool {
	s := q.get(seq)
	if s == nil {
		return false
	}
	setRecord(&s.rec, &troupe.Record{}) // let go of its key, payload and metadata
	s.used, s.end = false, false
	q.n--
	if q.n == 0 {
		q.lo = q.hi
		return true
	}
	mask := uint64(len(q.buf) - 1)
	for !q.buf[q.lo&mask].used { // some key is present, so this stops below hi
		q.lo++
	}
	for !q.buf[(q.hi-1)&mask].used {
		q.hi--
	}
	return true
}

// grow makes room for a span of at least span keys.
func (q *windowRing) grow(span uint64) {
	n := max(uint64(len(q.buf)), 64)
	for n < span {
		n *= 2
	}
	buf := make([]windowSlot, n)
	if q.n > 0 {
		for s := q.lo; s < q.hi; s++ {
			if old := &q.buf[s&uint64(len(q.buf)-1)]; old.used {
				buf[s&(n-1)] = *old
			}
		}
	}
	q.buf = buf
}

// each calls f on every key present and its slot, in increasing order of key.
func (q *windowRing) each(f func(seq uint64, s *windowSlot)) {
	for seq := q.lo; seq < q.hi; seq++ {
		if s := q.get(seq); s != nil {
			f(seq, s)
		}
	}
}
