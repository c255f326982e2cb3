package actors

import (
	"strconv"
	"testing"
)

// strIndex numbers keys densely in the order they come, finds each again as a string and as
// bytes across its growth, and forgets them all on reset.
func TestStrIndex(t *testing.T) {
	x := newStrIndex(4)
	for round := 0; round < 2; round++ {
		const n = 5000
		for i := 0; i < n; i++ {
			k := "k" + strconv.Itoa(i)
			if got, _ := x.find(k); got != -1 {
				t.Fatalf("round %d: %q found (%d) before it was added", round, k, got)
			}
			_, h := x.find(k)
			if got := x.add(k, h); got != i {
				t.Fatalf("round %d: %q numbered %d, want %d", round, k, got, i)
			}
		}
		if x.len() != n {
			t.Fatalf("round %d: len %d, want %d", round, x.len(), n)
		}
		for i := 0; i < n; i++ {
			k := "k" + strconv.Itoa(i)
			a, _ := x.find(k)
			b, _ := x.findBytes([]byte(k))
			if a != i || b != i || x.key(i) != k {
				t.Fatalf("round %d: %q found at %d and %d, key(%d) = %q", round, k, a, b, i, x.key(i))
			}
		}
		if got, _ := x.find(""); got != -1 {
			t.Fatalf("the empty key was found")
		}
		x.reset()
		if got, _ := x.find("k1"); got != -1 || x.len() != 0 {
			t.Fatalf("reset kept keys: k1 at %d, len %d", got, x.len())
		}
	}
}
