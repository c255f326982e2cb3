package actors

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"sync"
	"unsafe"

	"github.com/troupe-dev/troupe"
)

// syntheticSource produces count synthetic records.
type syntheticSource struct {
	count int64
	size  int

	mu     sync.Mutex
	next   int64
	closed bool
	done   func(key string) bool // set by Resume: records to skip
}

// NewRangeSource returns a Source of count synthetic records, for tests and benchmarks. Record i
// (0 <= i < count) has the key strconv.FormatInt(i, 10), a payload of size bytes that depends
// only on i (the little-endian output of a SplitMix64 generator seeded with i), and no metadata.
// The source implements Sized, and troupe.Resumable (a record is named by its index). It panics if count or size is negative.
//
// Read is cheap: a batch's records, keys and payloads are allocated in one block each.
func NewRangeSource(count int64, size int) troupe.Source {
	if count < 0 {
		panic(fmt.Sprintf("actors.NewRangeSource: negative count %d", count))
	}
	if size < 0 {
		panic(fmt.Sprintf("actors.NewRangeSource: negative size %d", size))
	}
	return &syntheticSource{count: count, size: size}
}

// rangePayload fills p with the deterministic payload of record i of a range source: the output
// of a SplitMix64 generator seeded with i, little-endian. Tests use it to check what reached a
// sink.
func rangePayload(p []byte, i int64) {
	x := uint64(i)
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, splitMix64(&x))
		p = p[8:]
	}
	if len(p) > 0 {
		var tail [8]byte
		binary.LittleEndian.PutUint64(tail[:], splitMix64(&x))
		copy(p, tail[:])
	}
}

// splitMix64 advances the state and returns the next output of the SplitMix64 generator.
func splitMix64(x *uint64) uint64 {
	*x += 0x9e3779b97f4a7c15
	z := *x
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Read returns the next up to max records, with io.EOF together with the last batch. Every
// call allocates fresh memory: nothing a previous batch handed out is written again.
func (s *syntheticSource) Read(ctx context.Context, max int) ([]troupe.Record, error) {
	var recs []troupe.Record
	return recs, s.read(ctx, max, func(n int) func(int) *troupe.Record {
		recs = make([]troupe.Record, n)
		return func(i int) *troupe.Record { return &recs[i] }
	}, func(resumed []troupe.Record) { recs = resumed })
}

// readEnvelopes is Read into the runtime's envelopes (see envelopeReader).
func (s *syntheticSource) readEnvelopes(ctx context.Context, max int) ([]envelope, error) {
	var envs []envelope
	return envs, s.read(ctx, max, func(n int) func(int) *troupe.Record {
		envs = make([]envelope, n)
		return func(i int) *troupe.Record { return &envs[i].Record }
	}, func(resumed []troupe.Record) {
		envs = make([]envelope, len(resumed))
		for i := range resumed {
			setRecord(&envs[i].Record, &resumed[i])
		}
	})
}

// read reads the next up to max records: into the n records that alloc(n) makes room for, or,
// for a resumed source, in a slice it hands to resumed.
func (s *syntheticSource) read(ctx context.Context, max int, alloc func(n int) func(int) *troupe.Record, resumed func([]troupe.Record)) error {
	if max <= 0 {
		return fmt.Errorf("range source: read: max must be positive, got %d", max)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("range source: read after close")
	}
	if s.done != nil {
		recs, err := s.readResumed(max)
		resumed(recs)
		return err
	}
	n := int(min(int64(max), s.count-s.next))
	if n == 0 {
		return io.EOF
	}
	first := s.next
	rec := alloc(n)
	payloads := make([]byte, n*s.size)
	// All keys of the batch live in one string; each key is a substring of it. The digits are
	// written once and never again, so the string is made on them without a copy.
	digits := make([]byte, 0, n*(len(strconv.FormatInt(first+int64(n)-1, 10))))
	for i := range n {
		digits = strconv.AppendInt(digits, first+int64(i), 10)
	}
	keys := unsafe.String(unsafe.SliceData(digits), len(digits))
	start, width, next := 0, len(strconv.FormatInt(first, 10)), int64(1)
	for range width {
		next *= 10 // the first number with one digit more
	}
	for i := range n {
		if first+int64(i) == next {
			width, next = width+1, next*10
		}
		r := rec(i)
		r.Key = keys[start : start+width]
		start += width
		p := payloads[i*s.size : (i+1)*s.size : (i+1)*s.size]
		rangePayload(p, first+int64(i))
		r.Payload = p
	}
	s.next += int64(n)
	if s.next == s.count {
		return io.EOF
	}
	return nil
}

// readResumed is Read for a resumed source: it passes over the records done says are done.
func (s *syntheticSource) readResumed(max int) ([]troupe.Record, error) {
	var recs []troupe.Record
	for len(recs) < max && s.next < s.count {
		i := s.next
		s.next++
		key := strconv.FormatInt(i, 10)
		if s.done(key) {
			continue
		}
		p := make([]byte, s.size)
		rangePayload(p, i)
		recs = append(recs, troupe.Record{Key: key, Payload: p})
	}
	if s.next == s.count {
		return recs, io.EOF
	}
	return recs, nil
}

// Fingerprint describes the range: its count and record size.
func (s *syntheticSource) Fingerprint() string {
	return fmt.Sprintf("range of %d records of %d bytes", s.count, s.size)
}

// Resume makes the source pass over the records done says are done; a record's resume key is
// its index (its key).
func (s *syntheticSource) Resume(done func(key string) bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = done
	return nil
}

// ResumeKey returns the record's index.
func (s *syntheticSource) ResumeKey(rec troupe.Record) string { return rec.Key }

// Total returns count.
func (s *syntheticSource) Total() (int64, bool) {
	return s.count, true
}

// Close ends the source; a later Read fails. Calling it again does nothing.
func (s *syntheticSource) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// sizeHint is a record's size: its payload and a key of a few digits.
func (s *syntheticSource) sizeHint() int { return s.size + 8 }
