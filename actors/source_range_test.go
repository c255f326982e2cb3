package actors

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"testing"
)

// Keys are the records' indexes, also across a change in the number of digits inside a batch,
// and payloads depend on the index only, whatever the batches.
func TestRangeSourceKeysAndPayloads(t *testing.T) {
	for _, batch := range []int{1, 7, 256} {
		src := NewRangeSource(12345, 16)
		want := make([]byte, 16)
		i := int64(0)
		for {
			recs, err := src.Read(context.Background(), batch)
			for _, r := range recs {
				if r.Key != strconv.FormatInt(i, 10) {
					t.Fatalf("batch %d: record %d has key %q", batch, i, r.Key)
				}
				rangePayload(want, i)
				if !bytes.Equal(r.Payload, want) {
					t.Fatalf("batch %d: record %d has payload %x, want %x", batch, i, r.Payload, want)
				}
				i++
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if i != 12345 {
			t.Fatalf("batch %d: %d records, want 12345", batch, i)
		}
	}
}
