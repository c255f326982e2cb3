package actors

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
)

const (
	// linesReadBuffer is the lines source's read buffer; longer lines are assembled piecewise.
	linesReadBuffer = 64 << 10
	// linesArenaChunk is the size of the blocks that short payloads are copied into, so that a
	// batch of short lines costs a few allocations rather than one per line.
	linesArenaChunk = 32 << 10
)

// linesSource produces one record per line of a file or of standard input.
type linesSource struct {
	name string   // the path, or "stdin"
	file *os.File // nil when reading standard input, which the source does not own
	r    *bufio.Reader

	mu     sync.Mutex
	line   int64  // number of the last line produced
	long   []byte // a line being assembled across buffer-fulls or interrupted by a read error
	arena  []byte // tail of the current payload block; only its unused capacity is ever written
	err    error  // a read error to report on the next Read, after the records read before it
	eof    bool
	closed bool
}

// NewLinesSource returns a Source with one record per line of the file at path, or of stdin
// when path is "-". A record's key is its 1-based line number in decimal, its payload the line
// without its terminating "\n" or "\r\n" (a lone "\r" is kept); it has no metadata. Lines may
// be of any length. A last line without a newline is a line; an empty input has no records.
//
// The total is unknown, so the source does not implement Sized. Close closes the file; it never
// closes stdin. A read from stdin that blocks is not interrupted by the context of Read: the
// context is checked between lines.
func NewLinesSource(path string, stdin io.Reader) (Source, error) {
	if path == "-" {
		if stdin == nil {
			return nil, errors.New("lines source: path is \"-\" but no standard input was given")
		}
		return &linesSource{name: "stdin", r: bufio.NewReaderSize(stdin, linesReadBuffer)}, nil
	}
	if path == "" {
		return nil, errors.New("lines source: empty path")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("lines source: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lines source: %w", err)
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("lines source: %s is a directory", path)
	}
	return &linesSource{name: path, file: f, r: bufio.NewReaderSize(f, linesReadBuffer)}, nil
}

// Read returns the next up to max lines. It returns io.EOF together with the last batch. A read
// error is returned (naming the input and the line) after the lines read before it have been
// returned; a line interrupted by the error is kept, and a later Read resumes it.
func (s *linesSource) Read(ctx context.Context, max int) ([]*Record, error) {
	if max <= 0 {
		return nil, fmt.Errorf("lines source %s: read: max must be positive, got %d", s.name, max)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("lines source %s: read after close", s.name)
	}
	if s.err != nil {
		err := s.err
		s.err = nil
		return nil, err
	}
	if s.eof {
		return nil, io.EOF
	}
	var recs []Record
	out := make([]*Record, 0, min(max, 1024))
	for len(out) < max {
		if err := ctx.Err(); err != nil {
			if len(out) > 0 {
				return out, nil
			}
			return nil, err
		}
		payload, ok, err := s.nextLine()
		if ok {
			if len(recs) == 0 {
				// Records are allocated in blocks: sized for what max still allows but capped,
				// since max is a permission and the input may be nearly done.
				recs = make([]Record, min(max-len(out), 1024))
			}
			r := &recs[0]
			recs = recs[1:]
			s.line++
			r.Key = strconv.FormatInt(s.line, 10)
			r.Payload = payload
			out = append(out, r)
		}
		if err == io.EOF {
			s.eof = true
			return out, io.EOF
		}
		if err != nil {
			err = fmt.Errorf("lines source %s: read line %d: %w", s.name, s.line+1, err)
			if len(out) > 0 {
				s.err = err
				return out, nil
			}
			return nil, err
		}
	}
	return out, nil
}

// nextLine reads one line and returns its payload (owned by the caller) with ok set, or ok unset
// when no line was completed. err is io.EOF at the end of input (possibly with a final line that
// had no newline) or a read error (with the partial line kept in s.long).
func (s *linesSource) nextLine() ([]byte, bool, error) {
	for {
		frag, err := s.r.ReadSlice('\n')
		switch {
		case err == nil:
			line := frag[:len(frag)-1] // without "\n"
			owned := false
			if s.long != nil {
				// frag ends a long line. Its "\r", if any, may be the last byte of s.long.
				line, owned = append(s.long, line...), true
				s.long = nil
			}
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			if owned {
				return line[:len(line):len(line)], true, nil
			}
			return s.own(line), true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			s.long = append(s.long, frag...)
		case err == io.EOF:
			if s.long != nil {
				s.long = append(s.long, frag...)
				long := s.long
				s.long = nil
				return long[:len(long):len(long)], true, io.EOF
			}
			if len(frag) > 0 {
				return s.own(frag), true, io.EOF
			}
			return nil, false, io.EOF
		default:
			// Keep what was read so far; a retry continues the same line.
			if len(frag) > 0 {
				s.long = append(s.long, frag...)
			}
			return nil, false, err
		}
	}
}

// own copies a short line into the current block, or into its own slice if it is long. The
// result's capacity ends where it does, so appending to one payload never touches another.
func (s *linesSource) own(line []byte) []byte {
	n := len(line)
	if n > linesArenaChunk/4 {
		return append(make([]byte, 0, n), line...)
	}
	if cap(s.arena)-len(s.arena) < n {
		s.arena = make([]byte, 0, linesArenaChunk)
	}
	start := len(s.arena)
	s.arena = append(s.arena, line...)
	return s.arena[start:len(s.arena):len(s.arena)]
}

// Close closes the file (never stdin). Calling it again does nothing.
func (s *linesSource) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.arena, s.long = nil, nil
	if s.file != nil {
		if err := s.file.Close(); err != nil {
			return fmt.Errorf("lines source: close %s: %w", s.name, err)
		}
	}
	return nil
}
