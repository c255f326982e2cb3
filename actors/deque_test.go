package actors

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// deque against a slice, across growth and wrap-around at both ends.
func TestDequeMatchesSlice(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var q deque[int]
	var want []int
	for step := range 20000 {
		switch op := rng.IntN(5); {
		case op <= 1:
			q.pushBack(step)
			want = append(want, step)
		case op == 2:
			q.pushFront(step)
			want = slices.Insert(want, 0, step)
		case len(want) > 0 && op == 3:
			if got := q.popFront(); got != want[0] {
				t.Fatalf("step %d: popFront %d, want %d", step, got, want[0])
			}
			want = want[1:]
		case len(want) > 0:
			i := rng.IntN(len(want))
			if got := q.at(i); got != want[i] {
				t.Fatalf("step %d: at(%d) %d, want %d", step, i, got, want[i])
			}
		}
		if q.len() != len(want) {
			t.Fatalf("step %d: len %d, want %d", step, q.len(), len(want))
		}
		if step%5000 == 4999 {
			if got := q.drain(); !slices.Equal(got, want) {
				t.Fatalf("step %d: drain %v, want %v", step, got, want)
			}
			want = nil
		}
	}
}
