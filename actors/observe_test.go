package actors

import (
	"testing"
	"time"
)

// The cumulative view of the latency histogram that /metrics exposes: each bound counts the
// values at most it (within the histogram's ~6%), and the sum is near the true one.
func TestHistogramCumulative(t *testing.T) {
	var h histogram
	values := []time.Duration{50 * time.Microsecond, 900 * time.Microsecond, 3 * time.Millisecond, 3 * time.Millisecond, 40 * time.Millisecond, 2 * time.Second}
	var sum time.Duration
	for _, v := range values {
		h.record(v)
		sum += v
	}
	bounds := []time.Duration{10 * time.Microsecond, 100 * time.Microsecond, time.Millisecond, 5 * time.Millisecond, 100 * time.Millisecond, time.Second, 10 * time.Second}
	got, n, s := h.cumulative(bounds)
	want := []uint64{0, 1, 2, 4, 5, 5, 6}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("bound %v: %d, want %d (all: %v)", bounds[i], got[i], want[i], got)
		}
	}
	if n != uint64(len(values)) {
		t.Fatalf("count %d, want %d", n, len(values))
	}
	if d := float64(s-sum) / float64(sum); d > 0.07 || d < -0.07 {
		t.Fatalf("sum %v, want about %v", s, sum)
	}
	if c, n, s := new(histogram).cumulative(bounds); n != 0 || s != 0 || c[len(c)-1] != 0 {
		t.Fatalf("empty histogram: %v %d %v", c, n, s)
	}
}
