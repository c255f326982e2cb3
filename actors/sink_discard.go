package actors

import "github.com/troupe-dev/troupe"

// discardSink accepts every record and keeps nothing.
type discardSink struct{}

// NewDiscardSink returns a Sink that accepts every record and stores nothing, for benchmarks and
// for pipelines whose stages have their own effects. It counts nothing: the run's Summary does.
func NewDiscardSink() troupe.Sink { return discardSink{} }

// Write drops rec.
func (discardSink) Write(troupe.Record) error { return nil }

// Flush does nothing.
func (discardSink) Flush() error { return nil }

// Close does nothing.
func (discardSink) Close() error { return nil }
