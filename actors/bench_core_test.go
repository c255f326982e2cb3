package actors

import (
	"context"
	"testing"
)

// The copy a worker makes of each record for its Func (see funcCopy), against the cost per
// record of a whole in-process stage: the copy must stay a small share of it.
func BenchmarkFuncCopy(b *testing.B) {
	for _, tc := range []struct {
		name string
		meta map[string]string
	}{{"no-meta", nil}, {"meta-2", map[string]string{"path": "a/b.png", "size": "123"}}} {
		b.Run(tc.name, func(b *testing.B) {
			r := &Record{Key: "key", Payload: make([]byte, 64), Meta: tc.meta, Seq: 1, Weight: fullWeight}
			b.ReportAllocs()
			for b.Loop() {
				sinkRecord = funcCopy(r)
			}
		})
	}
}

var sinkRecord *Record

func BenchmarkIdentityStage(b *testing.B) {
	identity := func(_ context.Context, r *Record) ([]*Record, error) { return []*Record{r}, nil }
	b.ReportAllocs()
	p := &Pipeline{Source: NewRangeSource(int64(b.N), 64), Stages: []Stage{{Name: "id", Func: identity, Workers: 2}}, Sink: NewDiscardSink()}
	b.ResetTimer()
	if _, err := p.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
}
