package actors

import (
	"context"
	"fmt"
	"sync"

	"github.com/troupe-dev/troupe"
)

// Sinks for a program that wants the results in hand: a callback, a channel, memory. Each hands
// over copies (the runtime's records may share their payload with records still in flight).

// funcSink calls a function for every record.
type funcSink struct{ fn func(troupe.Record) error }

// NewFuncSink returns a Sink that calls fn with a copy of each record (fn may keep it). fn is
// called from one goroutine at a time; an error refuses the record (it goes to the dead letters
// with it), as a Sink's Write does.
func NewFuncSink(fn func(troupe.Record) error) troupe.Sink { return funcSink{fn: fn} }

func (s funcSink) Write(rec troupe.Record) error { return s.fn(copyRecord(rec)) }
func (funcSink) Flush() error                    { return nil }
func (funcSink) Close() error                    { return nil }

// chanSink sends every record on a channel.
type chanSink struct {
	ctx context.Context
	ch  chan<- troupe.Record
	mu  sync.Mutex
	// closed: Close has closed ch.
	closed bool
}

// NewChanSink returns a Sink that sends a copy of each record on ch and closes ch when the run
// closes it, so that a consumer ranging over ch ends with the run. A full channel holds up the
// run (the pipeline's back-pressure reaches its source); when ctx ends while a send waits, the
// run is aborted with ctx's error, so that a consumer that went away never holds a run forever.
func NewChanSink(ctx context.Context, ch chan<- troupe.Record) troupe.Sink {
	return &chanSink{ctx: ctx, ch: ch}
}

func (s *chanSink) Write(rec troupe.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return &outputError{fmt.Errorf("channel sink: %w", errSinkClosed)}
	}
	select {
	case s.ch <- copyRecord(rec):
		return nil
	case <-s.ctx.Done():
		return &outputError{fmt.Errorf("channel sink: the consumer went away: %w", s.ctx.Err())}
	}
}

func (s *chanSink) Flush() error { return nil }

func (s *chanSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
	return nil
}

// MemorySink collects a run's output in memory, up to a limit. Records become visible (Records,
// Wait) once flushed, which is when the run counts them as out.
type MemorySink struct {
	limit int64

	mu      sync.Mutex
	pending []troupe.Record
	recs    []troupe.Record
	bytes   int64
	closed  bool
	changed chan struct{} // closed and replaced whenever recs grows or the sink closes
}

// NewMemorySink returns a sink that keeps a copy of each record. limit bounds the bytes kept
// (keys and payloads; 0 means 64 MiB): the Write that would cross it fails the run (an output
// failure, as a full disk is), with an error naming the limit and the record, rather than let
// the output grow without bound.
func NewMemorySink(limit int64) *MemorySink {
	if limit <= 0 {
		limit = 64 << 20
	}
	return &MemorySink{limit: limit, changed: make(chan struct{})}
}

// ErrOutputLimit is what a run whose in-memory output crossed its limit fails with (errors.Is).
var ErrOutputLimit = fmt.Errorf("in-memory output limit exceeded")

// Write keeps a copy of rec, or fails the run when it would cross the limit.
func (s *MemorySink) Write(rec troupe.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return &outputError{fmt.Errorf("memory sink: %w", errSinkClosed)}
	}
	n := int64(len(rec.Key) + len(rec.Payload))
	if s.bytes+n > s.limit {
		return &outputError{fmt.Errorf("%w: record %q (%d bytes) would bring the output to %d bytes, over the limit of %d", ErrOutputLimit, rec.Key, n, s.bytes+n, s.limit)}
	}
	s.bytes += n
	s.pending = append(s.pending, copyRecord(rec))
	return nil
}

// Flush makes the records written so far visible.
func (s *MemorySink) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) > 0 {
		s.recs = append(s.recs, s.pending...)
		s.pending = nil
		s.notifyLocked()
	}
	return nil
}

// Close ends the output: Wait returns done once it has seen every record.
func (s *MemorySink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.notifyLocked()
	}
	return nil
}

func (s *MemorySink) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Records returns the records flushed so far, in the order written. The slice is the caller's;
// the records' payloads are shared and must not be changed.
func (s *MemorySink) Records() []troupe.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]troupe.Record(nil), s.recs...)
}

// Bytes is how many bytes (keys and payloads) the sink holds.
func (s *MemorySink) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// Next returns the flushed records from index from on, waiting until there is at least one, the
// sink is closed (done is then true once every record has been returned), or ctx ends (its
// error). It is how a reader follows the output while the run goes on.
func (s *MemorySink) Next(ctx context.Context, from int) (recs []troupe.Record, done bool, err error) {
	for {
		s.mu.Lock()
		if from < len(s.recs) {
			recs = append([]troupe.Record(nil), s.recs[from:]...)
			s.mu.Unlock()
			return recs, false, nil
		}
		if s.closed {
			s.mu.Unlock()
			return nil, true, nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}
