package actors

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// linesWriteBuffer is the write buffer of the lines sink and of the dead-letter writer.
const linesWriteBuffer = 64 << 10

// linesSink writes one line per record to a file or to standard output.
type linesSink struct {
	name string   // the path, or "stdout"
	file *os.File // nil when writing standard output, which the sink does not own

	mu     sync.Mutex
	w      *bufio.Writer
	closed bool
}

// NewLinesSink returns a Sink that writes each record's payload followed by "\n" to the file at
// path, created (with its parent directories) or truncated, or to stdout when path is "-".
// Payloads are written as they are: one that contains "\n" spans several lines of the output.
//
// Writes are buffered (64 KiB). Flush writes the buffer out (it does not fsync); Close flushes
// and closes the file, but never closes stdout.
func NewLinesSink(path string, stdout io.Writer) (Sink, error) {
	if path == "-" {
		if stdout == nil {
			return nil, errors.New("lines sink: path is \"-\" but no standard output was given")
		}
		return &linesSink{name: "stdout", w: bufio.NewWriterSize(stdout, linesWriteBuffer)}, nil
	}
	f, err := createFile(path, os.O_TRUNC)
	if err != nil {
		return nil, fmt.Errorf("lines sink: %w", err)
	}
	return &linesSink{name: path, file: f, w: bufio.NewWriterSize(f, linesWriteBuffer)}, nil
}

// createFile opens path for writing, creating it and its parent directories; flag adds
// os.O_TRUNC or os.O_APPEND.
func createFile(path string, flag int) (*os.File, error) {
	if path == "" {
		return nil, errors.New("empty path")
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return nil, fmt.Errorf("create directory for %s: %w", path, err)
		}
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|flag, 0o666)
}

// Write appends rec's payload and a newline to the buffer.
func (s *linesSink) Write(rec *Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("lines sink %s: write after close", s.name)
	}
	if _, err := s.w.Write(rec.Payload); err != nil {
		return fmt.Errorf("lines sink %s: write record %q: %w", s.name, rec.Key, err)
	}
	if err := s.w.WriteByte('\n'); err != nil {
		return fmt.Errorf("lines sink %s: write record %q: %w", s.name, rec.Key, err)
	}
	return nil
}

// Flush writes the buffer out to the file or stdout.
func (s *linesSink) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("lines sink %s: flush after close", s.name)
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("lines sink %s: flush: %w", s.name, err)
	}
	return nil
}

// Close flushes and closes the file (never stdout). Calling it again does nothing.
func (s *linesSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var err error
	if ferr := s.w.Flush(); ferr != nil {
		err = fmt.Errorf("lines sink %s: flush: %w", s.name, ferr)
	}
	if s.file != nil {
		if cerr := s.file.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("lines sink %s: close: %w", s.name, cerr))
		}
	}
	return err
}
