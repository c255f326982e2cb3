package actors

import (
	"context"
	"errors"
	"io"
	"maps"
	"sync"

	"github.com/troupe-dev/troupe"
)

// Sources for a program that has its input in hand (a server's request): a slice, a channel,
// an io.Reader. They live here, beside the file sources, because they are plain troupe.Source
// values that actors.Run takes as well as an engine does.

// memSliceSource reads the records of a slice, in order.
type memSliceSource struct {
	mu   sync.Mutex
	recs []troupe.Record
	next int
}

// NewSliceSource returns a Source of recs, in order (Sized: its total is len(recs)). Each
// record is copied when the source is made: the caller may reuse recs afterwards.
func NewSliceSource(recs []troupe.Record) troupe.Source {
	own := make([]troupe.Record, len(recs))
	for i, r := range recs {
		own[i] = copyRecord(r)
	}
	return &memSliceSource{recs: own}
}

// NewStringsSource returns a Source with one record per string, its payload the string and its
// key its 1-based index in decimal (as a lines source numbers lines).
func NewStringsSource(payloads []string) troupe.Source {
	recs := make([]troupe.Record, len(payloads))
	for i, p := range payloads {
		recs[i] = troupe.Record{Key: itoa(i + 1), Payload: []byte(p)}
	}
	return &memSliceSource{recs: recs}
}

func (s *memSliceSource) Read(_ context.Context, max int) ([]troupe.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := min(max, len(s.recs)-s.next)
	out := s.recs[s.next : s.next+n : s.next+n]
	s.next += n
	if s.next == len(s.recs) {
		return out, io.EOF
	}
	return out, nil
}

func (s *memSliceSource) Total() (int64, bool) { return int64(len(s.recs)), true }
func (s *memSliceSource) Close() error         { return nil }

// chanSource reads the records sent on a channel until it is closed.
type chanSource struct {
	ch <-chan troupe.Record
}

// NewChanSource returns a Source of the records sent on ch, until ch is closed (the end of
// input). A Read waits for the first record of its batch (or for its context: a stop is never
// held up by a silent channel), then takes what else is ready without waiting. Records are
// copied as they are read: the sender may reuse what it sent.
func NewChanSource(ch <-chan troupe.Record) troupe.Source { return &chanSource{ch: ch} }

func (s *chanSource) Read(ctx context.Context, max int) ([]troupe.Record, error) {
	var out []troupe.Record
	select {
	case r, ok := <-s.ch:
		if !ok {
			return nil, io.EOF
		}
		out = append(out, copyRecord(r))
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for len(out) < max {
		select {
		case r, ok := <-s.ch:
			if !ok {
				return out, io.EOF
			}
			out = append(out, copyRecord(r))
		default:
			return out, nil
		}
	}
	return out, nil
}

func (s *chanSource) Close() error { return nil }

// NewReaderSource returns a Source with one record per line read from r, as NewLinesSource
// makes of a file (keys are line numbers; see there). Close does not close r.
func NewReaderSource(r io.Reader) troupe.Source {
	if r == nil {
		r = eofReader{}
	}
	return newLinesSource("reader", nil, r)
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// cloneRecord copies r's payload and metadata.
func copyRecord(r troupe.Record) troupe.Record {
	r.Payload = append([]byte(nil), r.Payload...)
	if r.Meta != nil {
		r.Meta = maps.Clone(r.Meta)
	}
	return r
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			break
		}
	}
	return string(b[n:])
}

var errSinkClosed = errors.New("sink is closed")

// sizeHint is the size of the next record (see sizeHinter).
func (s *memSliceSource) sizeHint() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next >= len(s.recs) {
		return 0
	}
	return len(s.recs[s.next].Key) + len(s.recs[s.next].Payload)
}
