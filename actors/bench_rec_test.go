package actors

import (
	"context"
	"testing"

	"github.com/troupe-dev/troupe"
)

// The cost per record of a whole 1:1 in-process stage (source, distributor, worker, collector,
// discarding sink), for a Func that returns its input and for one that returns a new record.
func BenchmarkStage1to1(b *testing.B) {
	for _, tc := range []struct {
		name string
		fn   troupe.Func
	}{
		{"identity", func(_ context.Context, r troupe.Record) ([]troupe.Record, error) { return []troupe.Record{r}, nil }},
		{"new", func(_ context.Context, r troupe.Record) ([]troupe.Record, error) {
			return []troupe.Record{{Key: r.Key, Payload: r.Payload}}, nil
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			p := &troupe.Pipeline{Source: NewRangeSource(int64(b.N), 64), Stages: []troupe.Stage{{Name: "s", Func: tc.fn, Workers: 2}}, Sink: NewDiscardSink()}
			b.ResetTimer()
			if _, err := Run(context.Background(), p); err != nil {
				b.Fatal(err)
			}
		})
	}
}
