package actors

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"
)

// rangeSource is a cheap source of n records of size bytes, for benchmarks.
type rangeSource struct {
	n, next int
	payload []byte
}

func (s *rangeSource) Read(_ context.Context, max int) ([]*Record, error) {
	k := min(max, s.n-s.next)
	recs := make([]Record, k)
	out := make([]*Record, k)
	for i := range recs {
		recs[i].Payload = s.payload
		out[i] = &recs[i]
	}
	s.next += k
	if s.next == s.n {
		return out, io.EOF
	}
	return out, nil
}
func (s *rangeSource) Close() error { return nil }

type nullSink struct{}

func (nullSink) Write(*Record) error { return nil }
func (nullSink) Flush() error        { return nil }
func (nullSink) Close() error        { return nil }

func identity(_ context.Context, r *Record) ([]*Record, error) { return []*Record{r}, nil }

// troupeThreeStages runs n 64-byte records through three identity stages of two workers.
func troupeThreeStages(tb testing.TB, n int) time.Duration {
	p := &Pipeline{
		Source: &rangeSource{n: n, payload: make([]byte, 64)},
		Stages: []Stage{{Name: "a", Func: identity, Workers: 2}, {Name: "b", Func: identity, Workers: 2}, {Name: "c", Func: identity, Workers: 2}},
		Sink:   nullSink{},
	}
	start := time.Now()
	if _, err := p.Run(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return time.Since(start)
}

// channelsThreeStages is the baseline: the same shape on plain channels, batch records at a time,
// with no supervision, acks or redelivery.
func channelsThreeStages(n, batch int) time.Duration {
	payload := make([]byte, 64)
	start := time.Now()
	src := make(chan []*Record, 64)
	go func() {
		for i := 0; i < n; i += batch {
			k := min(batch, n-i)
			recs := make([]Record, k)
			b := make([]*Record, k)
			for j := range recs {
				recs[j].Payload = payload
				b[j] = &recs[j]
			}
			src <- b
		}
		close(src)
	}()
	in := src
	for range 3 {
		out := make(chan []*Record, 64)
		stageIn := in // the goroutines must not see the loop's next stage
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := range stageIn {
					res := make([]*Record, 0, len(b))
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
		panic("baseline lost records")
	}
	return time.Since(start)
}

// BenchmarkThreeStages reports troupe's rate for three in-process stages next to plain channels
// with batches of 1 and 64 records, measured in the same run, and the ratios.
func BenchmarkThreeStages(b *testing.B) {
	const n = 500_000
	var tr, c1, c64 time.Duration
	for range b.N {
		tr += troupeThreeStages(b, n)
		c1 += channelsThreeStages(n, 1)
		c64 += channelsThreeStages(n, 64)
	}
	rate := func(d time.Duration) float64 { return float64(n*b.N) / d.Seconds() }
	b.ReportMetric(rate(tr), "troupe_rec/s")
	b.ReportMetric(rate(c1), "chan1_rec/s")
	b.ReportMetric(rate(c64), "chan64_rec/s")
	b.ReportMetric(rate(tr)/rate(c1), "ratio_vs_chan1")
	b.ReportMetric(rate(tr)/rate(c64), "ratio_vs_chan64")
}
