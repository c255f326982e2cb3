package actors

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/troupe-dev/troupe"
)

// linesWriteBuffer is the write buffer of the lines sink and of the dead-letter writer.
const linesWriteBuffer = 64 << 10

// linesSink writes one line per record to a file or to standard output.
type linesSink struct {
	name    string   // the path, or "stdout"
	file    *os.File // nil when writing standard output, which the sink does not own
	regular bool     // file is a regular file: it can be cut back and synced

	mu     sync.Mutex
	w      *bufio.Writer
	out    countingWriter // under w: counts the bytes that reached the output
	good   int64          // bytes out at the last successful Flush: the end of a whole record
	broken error          // the first write error; the sink takes nothing after it
	closed bool
	// The file is truncated (or, for a resumed run, cut back to resume) when first used.
	begun  bool
	resume int64 // -1: truncate
	synced int64 // bytes out at the last sync
}

// countingWriter passes writes on and counts the bytes written; err is the last write error.
type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err != nil {
		c.err = err
	}
	return n, err
}

// NewLinesSink returns a Sink that writes each record's payload followed by "\n" to the file at
// path, created (with its parent directories) or truncated, or to stdout when path is "-". The
// file is truncated when the sink is first used (written, flushed or closed), not here; a run
// that resumes from a journal keeps instead what the file held at the journal's last batch,
// cutting off what the killed run wrote after it, and appends.
// Payloads are written as they are: one that contains "\n" spans several lines of the output.
//
// Writes are buffered (64 KiB). Flush writes the buffer out (it does not fsync); Close flushes,
// fsyncs a regular file and closes it, but never closes stdout.
//
// A write that fails (the device is full, the file size limit is reached) breaks the sink: a
// regular file is cut back to the end of what the last successful Flush wrote, so it never ends
// in half a record and holds exactly the records flushed before; every later Write and Flush
// returns the same error (which names the file), and so does Close, which then only closes the
// file.
func NewLinesSink(path string, stdout io.Writer) (troupe.Sink, error) {
	if path == "-" {
		if stdout == nil {
			return nil, errors.New("lines sink: path is \"-\" but no standard output was given")
		}
		s := &linesSink{name: "stdout", out: countingWriter{w: stdout}, begun: true}
		s.w = bufio.NewWriterSize(&s.out, linesWriteBuffer)
		return s, nil
	}
	// The file is truncated when first used rather than here, so that a run that resumes from
	// a journal can keep what it holds (see resumeAt).
	f, err := createFile(path, 0)
	if err != nil {
		return nil, fmt.Errorf("lines sink: %w", err)
	}
	s := &linesSink{name: path, file: f, out: countingWriter{w: f}, resume: -1}
	if st, err := f.Stat(); err == nil {
		s.regular = st.Mode().IsRegular()
	}
	s.w = bufio.NewWriterSize(&s.out, linesWriteBuffer)
	return s, nil
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
func (s *linesSink) Write(rec troupe.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("lines sink %s: write after close", s.name)
	}
	if s.broken != nil {
		return s.broken
	}
	if err := s.begin(); err != nil {
		return err
	}
	if _, err := s.w.Write(rec.Payload); err != nil {
		return s.fail(fmt.Sprintf("write record %q", rec.Key), err)
	}
	if err := s.w.WriteByte('\n'); err != nil {
		return s.fail(fmt.Sprintf("write record %q", rec.Key), err)
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
	return s.flush()
}

func (s *linesSink) flush() error {
	if s.broken != nil {
		return s.broken
	}
	if err := s.begin(); err != nil {
		return err
	}
	if err := s.w.Flush(); err != nil {
		return s.fail("flush", err)
	}
	s.good = s.out.n
	return nil
}

// begin truncates a regular file, or cuts it back to where a resumed run resumes, on first use.
func (s *linesSink) begin() error {
	if s.begun {
		return nil
	}
	s.begun = true
	if !s.regular {
		return nil
	}
	at := max(s.resume, 0)
	if err := s.file.Truncate(at); err != nil {
		return s.fail("truncate", err)
	}
	if _, err := s.file.Seek(at, io.SeekStart); err != nil {
		return s.fail("seek", err)
	}
	s.out.n, s.good, s.synced = at, at, at
	return nil
}

// outputName is the file's absolute path; "" for stdout and files that are not regular.
func (s *linesSink) outputName() string {
	if !s.regular {
		return ""
	}
	abs, err := filepath.Abs(s.name)
	if err != nil {
		return s.name
	}
	return abs
}

// syncPos fsyncs what Flush wrote and returns the file's size then.
func (s *linesSink) syncPos() (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != nil {
		return 0, s.broken
	}
	if err := s.begin(); err != nil {
		return 0, err
	}
	if s.good != s.synced {
		if err := s.file.Sync(); err != nil {
			return 0, s.fail("sync", err)
		}
		s.synced = s.good
	}
	return s.good, nil
}

// resumeAt makes the sink keep the file's first size bytes and append after them.
func (s *linesSink) resumeAt(size int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.begun {
		return fmt.Errorf("lines sink %s: resume after the first write", s.name)
	}
	st, err := s.file.Stat()
	if err != nil {
		return fmt.Errorf("lines sink %s: %w", s.name, err)
	}
	if st.Size() < size {
		return fmt.Errorf("lines sink %s holds %d bytes, but the journal says the run it resumes had written %d: the file was changed since (remove the journal to start over)", s.name, st.Size(), size)
	}
	s.resume = size
	return nil
}

// fail breaks the sink after a write error: a regular file is cut back to the last whole
// record flushed, so that what it holds is what was reported flushed.
func (s *linesSink) fail(what string, err error) error {
	err = fmt.Errorf("lines sink %s: %s: %w", s.name, what, err)
	if s.regular {
		if terr := s.file.Truncate(s.good); terr != nil {
			err = fmt.Errorf("%w; cutting the file back to its last whole record (%d bytes) failed too: %v", err, s.good, terr)
		} else {
			err = fmt.Errorf("%w (the file was cut back to its last whole record, %d bytes)", err, s.good)
		}
	}
	s.broken = &outputError{err}
	return s.broken
}

// Close flushes, syncs and closes the file (never stdout). After a write error it only closes
// the file, and returns that error again. Calling it again does nothing.
func (s *linesSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.flush() // after a write error: that error again
	if s.broken == nil {
		if err == nil && s.regular {
			if serr := s.file.Sync(); serr != nil {
				err = fmt.Errorf("lines sink %s: sync: %w", s.name, serr)
			}
		}
	}
	if s.file != nil {
		if cerr := s.file.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("lines sink %s: close: %w", s.name, cerr))
		}
	}
	return err
}
