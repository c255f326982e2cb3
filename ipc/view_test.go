package ipc

import (
	"bytes"
	"errors"
	"maps"
	"reflect"
	"testing"

	"github.com/troupe-dev/troupe"
)

// TestAppendTaskBatchMatchesAppendBatch checks that the host's encoder writes the bytes of the
// wire records it stands for.
func TestAppendTaskBatchMatchesAppendBatch(t *testing.T) {
	tasks := []troupe.Task{
		{Record: troupe.Record{Key: "a", Payload: []byte("hi")}, Attempt: 1},
		{Record: troupe.Record{Key: "", Payload: nil}, Attempt: 0},
		{Record: troupe.Record{Key: "k", Payload: make([]byte, 300), Meta: map[string]string{"m": "v"}}, Attempt: 200},
	}
	recs := make([]*Record, len(tasks))
	for i, tk := range tasks {
		recs[i] = &Record{Record: tk.Record, Seq: uint64(1000 + i), Attempt: uint32(max(tk.Attempt-1, 0))}
	}
	want, err := AppendBatch([]byte("x"), 0, 7, recs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := AppendTaskBatch([]byte("x"), 0, 7, 1000, tasks)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendTaskBatch:\n%x\nAppendBatch:\n%x", got, want)
	}
	for i := range tasks {
		if TaskRecordSize(&tasks[i], uint64(1000+i)) != RecordFrameSize(recs[i]) {
			t.Fatalf("TaskRecordSize of task %d differs from RecordFrameSize", i)
		}
	}
	big := []troupe.Task{{Record: troupe.Record{Payload: make([]byte, 2000)}}}
	if _, err := AppendTaskBatch(nil, 1024, 1, 1, big); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("a batch over max frame: %v, want ErrFrameTooLarge", err)
	}
}

// TestNextViewMatchesNext decodes the same frames with Next and NextView.
func TestNextViewMatchesNext(t *testing.T) {
	res := []*Results{
		{Counts: []uint32{1, 0, 2, 0}, Outputs: []*Record{
			{Record: troupe.Record{Key: "a", Payload: []byte("A")}, Seq: 1},
			{Record: troupe.Record{Key: "b", Meta: map[string]string{"x": "y"}}, Seq: 3, Sub: 4, Flag: FlagEnd},
			{Record: troupe.Record{Key: "c", Payload: []byte("C")}, Seq: 3, Weight: 9},
		}, Errors: []*RecordError{{Index: 1, Message: "bad"}}},
		{Counts: []uint32{0}},
	}
	var stream []byte
	for _, r := range res {
		var err error
		if stream, err = AppendResults(stream, 0, r); err != nil {
			t.Fatal(err)
		}
		stream = AppendCredit(stream, 5)
	}
	r1 := NewFrameReader(bytes.NewReader(stream), 0)
	r2 := NewFrameReader(bytes.NewReader(stream), 0)
	var rv ResultsView
	for range 2 * len(res) {
		f1, err1 := r1.Next()
		f2, err2 := r2.NextView(&rv)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if f1.Type != f2.Type || f1.Credit != f2.Credit {
			t.Fatalf("Next %v, NextView %v", f1, f2)
		}
		if f1.Type != FrameResults {
			continue
		}
		want := f1.Results
		if !reflect.DeepEqual(want.Counts, rv.Counts) || len(want.Outputs) != len(rv.Outputs) || len(want.Errors) != len(rv.Errors) {
			t.Fatalf("Next %+v, NextView %+v", want, rv)
		}
		for i, o := range want.Outputs {
			v := rv.Outputs[i]
			id := Identity{Seq: o.Seq, Sub: o.Sub, Weight: o.Weight, Flag: o.Flag}
			if v.Key != o.Key || !bytes.Equal(v.Payload, o.Payload) || !maps.Equal(v.Meta, o.Meta) || rv.Ident[i] != id {
				t.Fatalf("output %d: Next %+v, NextView %+v %+v", i, o, v, rv.Ident[i])
			}
		}
		for i, e := range want.Errors {
			if *e != rv.Errors[i] {
				t.Fatalf("error %d: Next %+v, NextView %+v", i, e, rv.Errors[i])
			}
		}
	}
	// A frame that is not self-consistent is refused as malformed, as Next refuses it.
	bad, _ := AppendResults(nil, 0, &Results{Counts: []uint32{2}, Outputs: []*Record{{Seq: 1}}})
	if _, err := NewFrameReader(bytes.NewReader(bad), 0).NextView(&rv); !errors.Is(err, ErrMalformedFrame) {
		t.Fatalf("inconsistent counts: %v, want ErrMalformedFrame", err)
	}
	trunc := append([]byte(nil), stream[:10]...)
	trunc[0] = 9 // shorter length: the body ends inside a record
	if _, err := NewFrameReader(bytes.NewReader(trunc), 0).NextView(&rv); !errors.Is(err, ErrMalformedFrame) {
		t.Fatalf("truncated body: %v, want ErrMalformedFrame", err)
	}
}

// TestNextBatchMatchesNext decodes batch frames into reused buffers, and checks them against
// Next: the second, smaller frame must not show records of the first.
func TestNextBatchMatchesNext(t *testing.T) {
	mk := func(n int) []*Record {
		recs := make([]*Record, n)
		for i := range recs {
			recs[i] = &Record{Record: troupe.Record{Key: string(rune('a' + i)), Payload: []byte{byte(i)}}, Seq: uint64(i + 1), Attempt: uint32(i)}
		}
		if n == 5 {
			recs[0].Meta = map[string]string{"m": "v"}
		}
		return recs
	}
	var stream []byte
	for _, n := range []int{5, 2} {
		var err error
		if stream, err = AppendBatch(stream, 0, uint64(n), mk(n)); err != nil {
			t.Fatal(err)
		}
		stream = AppendCredit(stream, 1)
	}
	r1 := NewFrameReader(bytes.NewReader(stream), 0)
	r2 := NewFrameReader(bytes.NewReader(stream), 0)
	var rb RecordBuffers
	for range 4 {
		f1, err1 := r1.Next()
		f2, err2 := r2.NextBatch(&rb)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if f1.Type != f2.Type || f1.BatchID != f2.BatchID || f1.Credit != f2.Credit || len(f1.Records) != len(f2.Records) {
			t.Fatalf("Next %+v, NextBatch %+v", f1, f2)
		}
		for i, w := range f1.Records {
			g := f2.Records[i]
			if g.Key != w.Key || !bytes.Equal(g.Payload, w.Payload) || !maps.Equal(g.Meta, w.Meta) || g.Seq != w.Seq || g.Attempt != w.Attempt {
				t.Fatalf("record %d: Next %+v, NextBatch %+v", i, w, g)
			}
		}
	}
	bad := []byte{3, byte(FrameBatch), 1, 9} // 9 records in no bytes
	if _, err := NewFrameReader(bytes.NewReader(bad), 0).NextBatch(&rb); !errors.Is(err, ErrMalformedFrame) {
		t.Fatalf("a record count the body cannot hold: %v, want ErrMalformedFrame", err)
	}
}

// TestAppendResultsEncodedMatchesAppendResults checks that a plugin's encoder (outputs encoded
// one by one, then framed) writes the bytes AppendResults writes for the same outcomes.
func TestAppendResultsEncodedMatchesAppendResults(t *testing.T) {
	type input struct {
		seq, sub, weight uint64
		outs             []troupe.Record
	}
	inputs := []input{
		{seq: 5, outs: []troupe.Record{{Key: "a", Payload: []byte("HI")}}},
		{seq: 6},
		{seq: 300, sub: 9, weight: 2, outs: []troupe.Record{
			{Key: "k", Payload: make([]byte, 200), Meta: map[string]string{"m": "v"}},
			{Key: "", Payload: nil},
		}},
		{seq: 301},
	}
	counts := make([]uint32, 200) // enough counts for a multi-byte count varint
	counts[0], counts[2] = 1, 2
	var outs []*Record
	var enc []byte
	for _, in := range inputs {
		for k := range in.outs {
			outs = append(outs, &Record{Record: in.outs[k], Seq: in.seq, Sub: in.sub, Weight: in.weight})
			enc = AppendOutput(enc, &in.outs[k], in.seq, in.sub, in.weight, FlagData)
		}
	}
	errs := []RecordError{{Index: 1, Message: "bad"}, {Index: 150, Message: ""}}
	want, err := AppendResults([]byte("x"), 0, &Results{Counts: counts, Outputs: outs, Errors: []*RecordError{&errs[0], &errs[1]}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := AppendResultsEncoded([]byte("x"), 0, counts, len(outs), enc, errs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendResultsEncoded:\n%x\nAppendResults:\n%x", got, want)
	}
	if _, err := AppendResultsEncoded(nil, 100, counts, len(outs), enc, errs); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("a results frame over max frame: %v, want ErrFrameTooLarge", err)
	}
}

// TestNextBatchReusesBuffers decodes frames of different sizes into the same buffers: each
// frame's records are right, and no record of an older frame stays referenced.
func TestNextBatchReusesBuffers(t *testing.T) {
	var data []byte
	sizes := []int{3, 300, 2, 1, 600, 5}
	for f, n := range sizes {
		recs := make([]*Record, n)
		for i := range recs {
			recs[i] = &Record{Record: troupe.Record{Key: "k", Payload: []byte{byte(f), byte(i)}}, Seq: uint64(i + 1)}
		}
		data, _ = AppendBatch(data, 0, uint64(f+1), recs)
	}
	r := NewFrameReader(bytes.NewReader(data), 0)
	var rb RecordBuffers
	for f, n := range sizes {
		fr, err := r.NextBatch(&rb)
		if err != nil {
			t.Fatal(err)
		}
		if len(fr.Records) != n {
			t.Fatalf("frame %d: %d records, want %d", f, len(fr.Records), n)
		}
		for i, rec := range fr.Records {
			if rec != &rb.Slab[i] || rec.Seq != uint64(i+1) || !bytes.Equal(rec.Payload, []byte{byte(f), byte(i)}) {
				t.Fatalf("frame %d record %d: %+v", f, i, rec)
			}
		}
		for i, rec := range rb.Slab[n:cap(rb.Slab)] {
			if rec.Payload != nil || rec.Key != "" {
				t.Fatalf("frame %d: record %d past the frame still references a body", f, n+i)
			}
		}
		fr.Records[0] = nil // a caller may overwrite its records' pointers
		rb.Reset()
	}
}
