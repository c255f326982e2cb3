package ipc

import (
	"bytes"
	"testing"

	"github.com/troupe-dev/troupe"
)

// benchFrames returns frames frames of 256 records of 64 B, encoded as a batch (results false)
// or as a results frame with one output per record (results true).
func benchFrames(frames int, results bool) []byte {
	recs := make([]*Record, 256)
	for i := range recs {
		recs[i] = &Record{Record: troupe.Record{Key: "k", Payload: make([]byte, 64)}, Seq: uint64(1000 + i)}
	}
	var out []byte
	for range frames {
		if results {
			counts := make([]uint32, len(recs))
			for i := range counts {
				counts[i] = 1
			}
			out, _ = AppendResults(out, 0, &Results{Counts: counts, Outputs: recs})
		} else {
			out, _ = AppendBatch(out, 0, 1, recs)
		}
	}
	return out
}

// BenchmarkNextView decodes results frames as the host does (ns per record).
func BenchmarkNextView(b *testing.B) {
	data := benchFrames(64, true)
	b.SetBytes(int64(len(data)) / (64 * 256))
	var rv ResultsView
	b.ResetTimer()
	for i := 0; i < b.N; i += 64 * 256 {
		r := NewFrameReader(bytes.NewReader(data), 0)
		for range 64 {
			if _, err := r.NextView(&rv); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkNextBatch decodes batch frames as the plugin SDK does (ns per record).
func BenchmarkNextBatch(b *testing.B) {
	data := benchFrames(64, false)
	b.SetBytes(int64(len(data)) / (64 * 256))
	var rb RecordBuffers
	b.ResetTimer()
	for i := 0; i < b.N; i += 64 * 256 {
		r := NewFrameReader(bytes.NewReader(data), 0)
		for range 64 {
			if _, err := r.NextBatch(&rb); err != nil {
				b.Fatal(err)
			}
			rb.Reset()
		}
	}
}
