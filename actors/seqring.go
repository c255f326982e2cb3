package actors

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
