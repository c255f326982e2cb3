package actors

import (
	"context"
	"sync"
	"testing"

	"github.com/troupe-dev/troupe"
)

func BenchmarkChanBaseline(b *testing.B) {
	identity := func(_ context.Context, r troupe.Record) ([]troupe.Record, error) { return []troupe.Record{r}, nil }
	n, batch, w := b.N, 64, 2
	src := make(chan []troupe.Record, 64)
	go func() {
		for i := 0; i < n; i += batch {
			k := min(batch, n-i)
			recs := make([]troupe.Record, k)
			payloads := make([]byte, 64*k)
			for j := range recs {
				recs[j].Payload = payloads[64*j : 64*(j+1) : 64*(j+1)]
			}
			src <- recs
		}
		close(src)
	}()
	in := src
	for range 3 {
		stageIn, out := in, make(chan []troupe.Record, 64)
		var wg sync.WaitGroup
		for range w {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := range stageIn {
					res := make([]troupe.Record, 0, len(b))
					for _, r := range b {
						o, _ := identity(context.Background(), r)
						res = append(res, o...)
					}
					out <- res
				}
			}()
		}
		go func() { wg.Wait(); close(out) }()
		in = out
	}
	got := 0
	for b := range in {
		got += len(b)
	}
	if got != n {
		b.Fatal(got)
	}
}
