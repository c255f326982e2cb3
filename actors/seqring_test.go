package actors

import (
	"math/rand/v2"
	"testing"
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
