package actors

import (
	"strconv"
	"testing"
)

// The lines source's keys are the line numbers in decimal, across the blocks they are made in,
// from wherever the first line starts (a resumed source passes over lines).
func TestLineKeys(t *testing.T) {
	for _, first := range []int64{1, 7, 999, lineKeysBlock - 1} {
		var k lineKeys
		for n := first; n < first+3*lineKeysBlock+5; n++ {
			if got := k.of(n); got != strconv.FormatInt(n, 10) {
				t.Fatalf("key of line %d (from %d) = %q", n, first, got)
			}
			if n%5 == 0 {
				n += 3 // lines passed over
			}
		}
	}
}
