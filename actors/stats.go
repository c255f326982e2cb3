package actors

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// counters are a run's live figures, updated by the actors and read by Progress.
type counters struct {
	in, out, dead, dropped, inflight, restarts, dups atomic.Int64
}

// stageCounters are one stage's live figures.
type stageCounters struct {
	in, out, failed, retries, restarts atomic.Int64
	latency                            histogram
}

// histogram is a lock-free log-linear latency histogram: 16 sub-buckets per power of two of
// nanoseconds, so a quantile is exact to within ~6%.
type histogram struct {
	buckets [64 * subBuckets]atomic.Int64
}

const subBucketBits = 4
const subBuckets = 1 << subBucketBits

func bucketOf(ns int64) int {
	if ns < subBuckets {
		if ns < 0 {
			return 0
		}
		return int(ns)
	}
	exp := bits.Len64(uint64(ns)) - 1 // ns in [2^exp, 2^(exp+1))
	sub := int(uint64(ns)>>(exp-subBucketBits)) & (subBuckets - 1)
	return (exp-subBucketBits+1)*subBuckets + sub
}

// lowerBound is the smallest value that falls in bucket b.
func lowerBound(b int) int64 {
	if b < subBuckets {
		return int64(b)
	}
	exp := b/subBuckets + subBucketBits - 1
	sub := b % subBuckets
	return int64(1)<<exp | int64(sub)<<(exp-subBucketBits)
}

func (h *histogram) record(d time.Duration) { h.buckets[bucketOf(int64(d))].Add(1) }

// recordN records n values d.
func (h *histogram) recordN(d time.Duration, n int64) { h.buckets[bucketOf(int64(d))].Add(n) }

// quantile returns the q-quantile (0 < q ≤ 1) of what was recorded, 0 if nothing was.
func (h *histogram) quantile(q float64) time.Duration {
	var total int64
	for i := range h.buckets {
		total += h.buckets[i].Load()
	}
	if total == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(total)))
	var seen int64
	for i := range h.buckets {
		seen += h.buckets[i].Load()
		if seen >= rank {
			// the bucket's midpoint
			lo, hi := lowerBound(i), lowerBound(i+1)
			return time.Duration(lo + (hi-lo)/2)
		}
	}
	return 0
}
