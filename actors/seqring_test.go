package actors

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/troupe-dev/troupe"
)

// seqRing against a map, on the patterns of its users: keys put in increasing order, or in any
// order within a window above a base, and deleted in any order; and in-order iteration.
func TestSeqRingMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		var q seqRing[int]
		m := map[uint64]int{}
		next := uint64(rng.IntN(1000))
		window := 1 + rng.IntN(300)
		for step := range 5000 {
			switch {
			case len(m) < window && rng.IntN(2) == 0:
				seq := next + uint64(rng.IntN(3)) // mostly increasing, with gaps
				next = seq + 1
				q.put(seq, step+1)
				m[seq] = step + 1
			case len(m) > 0:
				// Delete a random present key (or, now and then, an absent one).
				var seq uint64
				for k := range m {
					seq = k
					break
				}
				if rng.IntN(10) == 0 {
					seq = next + 5
				}
				_, want := m[seq]
				if got := q.del(seq); got != want {
					t.Fatalf("round %d step %d: del(%d) = %v, want %v", round, step, seq, got, want)
				}
				delete(m, seq)
			}
			if q.len() != len(m) {
				t.Fatalf("round %d step %d: len %d, want %d", round, step, q.len(), len(m))
			}
			probe := next - uint64(rng.IntN(400)) // may wrap below 0: absent then
			if got := q.get(probe); got != m[probe] {
				t.Fatalf("round %d step %d: get(%d) = %d, want %d", round, step, probe, got, m[probe])
			}
		}
		var last uint64
		n := 0
		q.each(func(seq uint64, v int) {
			if n > 0 && seq <= last {
				t.Fatalf("each: %d after %d", seq, last)
			}
			if m[seq] != v {
				t.Fatalf("each: %d = %d, want %d", seq, v, m[seq])
			}
			last = seq
			n++
		})
		if n != len(m) {
			t.Fatalf("each visited %d, want %d", n, len(m))
		}
	}
}

// A key put below the lowest present one (the collector completing a record below those
// already complete) keeps the others.
func TestSeqRingPutBelow(t *testing.T) {
	var q seqRing[bool]
	for s := uint64(100); s < 200; s++ {
		q.put(s, true)
	}
	q.put(10, true)
	for s := uint64(100); s < 200; s++ {
		if !q.get(s) {
			t.Fatalf("lost %d", s)
		}
	}
	if !q.get(10) || q.get(50) || q.len() != 101 {
		t.Fatalf("get(10)=%v get(50)=%v len=%d", q.get(10), q.get(50), q.len())
	}
}

// windowRing against a map, as the source uses it: records put in increasing order (END last),
// acked in any order; the copies it holds stay what was put, whatever happens to the original.
func TestWindowRingMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 50 {
		var q windowRing
		m := map[uint64]string{}
		next := uint64(rng.IntN(1000))
		window := 1 + rng.IntN(300)
		for range 5000 {
			switch {
			case len(m) < window && rng.IntN(2) == 0:
				seq := next
				next++
				rec := troupe.Record{Key: strconv.FormatUint(seq, 10), Payload: []byte("p")}
				q.put(seq, &rec, false)
				rec.Key = "changed" // the window holds a copy
				m[seq] = strconv.FormatUint(seq, 10)
			case len(m) > 0:
				var seq uint64
				for k := range m {
					seq = k
					break
				}
				if rng.IntN(10) == 0 {
					seq = next + 5
				}
				_, want := m[seq]
				if got := q.del(seq); got != want {
					t.Fatalf("round %d: del(%d) = %v, want %v", round, seq, got, want)
				}
				delete(m, seq)
			}
			if q.len() != len(m) {
				t.Fatalf("round %d: len %d, want %d", round, q.len(), len(m))
			}
			probe := next - uint64(rng.IntN(400))
			s := q.get(probe)
			if key, ok := m[probe]; ok != (s != nil) || (ok && s.rec.Key != key) {
				t.Fatalf("round %d: get(%d) = %+v, want %q (present %v)", round, probe, s, key, ok)
			}
		}
		n := 0
		var last uint64
		q.each(func(seq uint64, s *windowSlot) {
			if n > 0 && seq <= last {
				t.Fatalf("each: %d after %d", seq, last)
			}
			if s.rec.Key != m[seq] {
				t.Fatalf("each: %d holds %q, want %q", seq, s.rec.Key, m[seq])
			}
			last = seq
			n++
		})
		if n != len(m) {
			t.Fatalf("each visited %d, want %d", n, len(m))
		}
	}
	var q windowRing
	q.put(7, nil, true)
	if s := q.get(7); s == nil || !s.end {
		t.Fatalf("END marker: %+v", s)
	}
}
