package ipc

import (
	"bytes"
	"errors"
	"io"
	reflect "reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe"
)

func sampleRecords() []*Record {
	return []*Record{
		{Record: troupe.Record{Key: "a", Payload: []byte("hello")}, Seq: 1, Weight: 1 << 40},
		{Record: troupe.Record{Meta: map[string]string{"k": "v", "": "empty"}}, Seq: 1<<63 + 5, Sub: 99, Attempt: 2, Flag: FlagEnd},
		{},
		{Record: troupe.Record{Key: strings.Repeat("k", 300), Payload: bytes.Repeat([]byte{0xff}, 70000)}},
	}
}

func TestFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewFrameWriter(&buf, 0)
	recs := sampleRecords()
	res := &Results{
		Counts:  []uint32{2, 0, 1, 0},
		Outputs: []*Record{recs[0], recs[1], recs[3]},
		Errors:  []*RecordError{{Index: 1, Message: "boom"}, {Index: 3}},
	}
	if err := w.WriteBatch(7, recs); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteCredit(64); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteResults(res); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteBatch(8, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	r := NewFrameReader(&buf, 0)
	f, err := r.Next()
	if err != nil || f.Type != FrameBatch || f.BatchID != 7 || len(f.Records) != len(recs) {
		t.Fatalf("batch: %v %+v", err, f)
	}
	for i := range recs {
		if !reflect.DeepEqual(f.Records[i], recs[i]) {
			t.Fatalf("record %d: got %v want %v", i, f.Records[i], recs[i])
		}
	}
	if f, err = r.Next(); err != nil || f.Type != FrameCredit || f.Credit != 64 {
		t.Fatalf("credit: %v %+v", err, f)
	}
	if f, err = r.Next(); err != nil || f.Type != FrameResults || !reflect.DeepEqual(f.Results, res) {
		t.Fatalf("results: %v %v", err, f.Results)
	}
	if f, err = r.Next(); err != nil || f.Type != FrameBatch || f.BatchID != 8 || len(f.Records) != 0 {
		t.Fatalf("empty batch: %v %+v", err, f)
	}
	if _, err = r.Next(); err != io.EOF {
		t.Fatalf("want io.EOF at the end, got %v", err)
	}
}

func TestPayloadAppendDoesNotClobberNeighbours(t *testing.T) {
	b, err := AppendBatch(nil, 0, 1, []*Record{{Record: troupe.Record{Key: "k1", Payload: []byte("ab")}}, {Record: troupe.Record{Key: "k2", Payload: []byte("cd")}}})
	if err != nil {
		t.Fatal(err)
	}
	f, _, err := DecodeFrame(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	_ = append(f.Records[0].Payload, "XXXXXXXX"...)
	if f.Records[1].Key != "k2" || string(f.Records[1].Payload) != "cd" {
		t.Fatalf("append to one payload changed the next record: %v", f.Records[1])
	}
}

func TestOversizedFrames(t *testing.T) {
	big := []*Record{{Record: troupe.Record{Payload: make([]byte, 1000)}}}
	if _, err := AppendBatch(nil, 500, 1, big); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("writer: want ErrFrameTooLarge, got %v", err)
	}
	b, _ := AppendBatch(nil, 0, 1, big)
	r := NewFrameReader(bytes.NewReader(b), 500)
	_, err := r.Next()
	if !errors.Is(err, ErrFrameTooLarge) || !strings.Contains(err.Error(), "> max 500") {
		t.Fatalf("reader: want ErrFrameTooLarge naming the sizes, got %v", err)
	}
	// A length prefix claiming 2^62 bytes must be refused without allocating.
	huge := []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40, byte(FrameBatch)}
	fr := NewFrameReader(bytes.NewReader(huge), 0)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = fr.Next()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("huge prefix: %v", err)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 { // nowhere near the 2^62 bytes claimed
		t.Fatalf("refusing a huge frame allocated %d bytes", d)
	}
}

func TestMalformedFrames(t *testing.T) {
	cases := map[string][]byte{
		"empty":            {0},
		"truncated body":   {5, byte(FrameBatch), 1},
		"hostile count":    {4, byte(FrameBatch), 0, 0xff, 0x7f},
		"trailing bytes":   {3, byte(FrameCredit), 1, 1},
		"counts mismatch":  {4, byte(FrameResults), 1, 1, 0},
		"error with count": {7, byte(FrameResults), 1, 1, 1, 1, 1, 0},
	}
	for name, b := range cases {
		_, err := NewFrameReader(bytes.NewReader(b), 0).Next()
		if err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
	// Unknown frame types are skipped.
	f, err := NewFrameReader(bytes.NewReader([]byte{3, 42, 1, 2}), 0).Next()
	if err != nil || f.Type != 42 {
		t.Fatalf("unknown type: %v %+v", err, f)
	}
}

func TestEncodeAllocations(t *testing.T) {
	recs := make([]*Record, 64)
	for i := range recs {
		recs[i] = &Record{Record: troupe.Record{Key: "key", Payload: make([]byte, 64)}, Seq: uint64(i)}
	}
	w := NewFrameWriter(io.Discard, 0)
	allocs := testing.AllocsPerRun(100, func() {
		_ = w.WriteBatch(1, recs)
		_ = w.WriteCredit(3)
		_ = w.Flush()
	})
	if allocs != 0 {
		t.Fatalf("encoding a batch allocated %v times", allocs)
	}
}

func FuzzDecodeFrame(f *testing.F) {
	recs := sampleRecords()
	seed, _ := AppendBatch(nil, 0, 3, recs[:3])
	f.Add(seed)
	seed, _ = AppendResults(nil, 0, &Results{Counts: []uint32{1, 0}, Outputs: recs[:1], Errors: []*RecordError{{Index: 1, Message: "x"}}})
	f.Add(seed)
	f.Add(AppendCredit(nil, 17))
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewFrameReader(bytes.NewReader(data), 1<<16)
		for i := 0; i < 100; i++ {
			fr, err := r.Next()
			if err != nil {
				return
			}
			// Whatever decodes must re-encode and decode to the same frame.
			var b []byte
			switch fr.Type {
			case FrameBatch:
				b, err = AppendBatch(nil, 0, fr.BatchID, fr.Records)
			case FrameResults:
				b, err = AppendResults(nil, 0, fr.Results)
			case FrameCredit:
				b = AppendCredit(nil, fr.Credit)
			default:
				continue
			}
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			again, n, err := DecodeFrame(b, 0)
			if err != nil || n != len(b) || again.Type != fr.Type || again.BatchID != fr.BatchID || again.Credit != fr.Credit {
				t.Fatalf("round trip: %v %d/%d %+v %+v", err, n, len(b), again, fr)
			}
			if len(again.Records) != len(fr.Records) {
				t.Fatalf("round trip records: %d vs %d", len(again.Records), len(fr.Records))
			}
			for j := range fr.Records {
				if !reflect.DeepEqual(again.Records[j], fr.Records[j]) {
					t.Fatalf("round trip record %d", j)
				}
			}
			if fr.Results != nil && !reflect.DeepEqual(again.Results, fr.Results) {
				t.Fatalf("round trip results")
			}
		}
	})
}
