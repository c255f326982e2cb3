package actors

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/troupe-dev/troupe"
)

const (
	// linesReadBuffer is the lines source's read buffer; longer lines are assembled piecewise.
	linesReadBuffer = 64 << 10
	// linesArenaChunk is the size of the blocks that short payloads are copied into, so that a
	// batch of short lines costs a few allocations rather than one per line.
	linesArenaChunk = 32 << 10
	// linesLinger is how long a Read that has lines waits for more input before it hands on
	// what it has: the lines of a slow producer reach the pipeline at once, while a fast input
	// still comes in whole batches.
	linesLinger = 5 * time.Millisecond
)

// linesSource produces one record per line of a file or of standard input.
type linesSource struct {
	name string     // the path, or "stdin"
	in   *lineInput // the input, read in a goroutine of its own
	r    *bufio.Reader

	fileMu     sync.Mutex
	file       *os.File // nil when reading standard input, which the source does not own
	fileClosed bool
	opening    chan struct{} // while the input goroutine opens the named pipe: closed when it is done

	quit      chan struct{} // closed by Close: a Read waiting for input gives up
	closeOnce sync.Once

	mu     sync.Mutex
	line   int64  // number of the last line produced
	long   []byte // a line being assembled across buffer-fulls or interrupted by a read error
	arena  []byte // tail of the current payload block; only its unused capacity is ever written
	err    error  // a read error to report on the next Read, after the records read before it
	eof    bool
	closed bool

	// Set by Resume: which lines to pass over (by their offset), the input's bytes taken by the
	// lines read so far, the last line's length in the input, and the last Read's lines' offsets.
	done     func(key string) bool
	consumed int64
	raw      int64
	offsets  map[string]int64

	keys lineKeys
	recs []troupe.Record // the last Read's slice, for the next
}

// lineKeys makes the lines' keys, their numbers in decimal, a block of consecutive numbers at a
// time: one string holds the block's keys, so that a line's key is not an allocation of its own.
type lineKeys struct {
	first int64    // the block's first number
	text  string   // its numbers, one after the other
	ends  []uint32 // where each ends in text
	buf   []byte
}

const lineKeysBlock = 512

// of returns the key of line n; lines are asked for in increasing order.
func (k *lineKeys) of(n int64) string {
	i := n - k.first
	if k.text == "" || i < 0 || i >= int64(len(k.ends)) {
		k.first, i = n, 0
		k.ends = k.ends[:0]
		b := k.buf[:0]
		for m := n; m < n+lineKeysBlock; m++ {
			b = strconv.AppendInt(b, m, 10)
			k.ends = append(k.ends, uint32(len(b)))
		}
		k.text, k.buf = string(b), b
	}
	start := uint32(0)
	if i > 0 {
		start = k.ends[i-1]
	}
	return k.text[start:k.ends[i]]
}

func newLinesSource(name string, file *os.File, r io.Reader) *linesSource {
	s := &linesSource{name: name, file: file, quit: make(chan struct{})}
	s.in = &lineInput{src: r, quit: s.quit, next: make(chan struct{}, 1), res: make(chan lineChunk)}
	s.r = bufio.NewReaderSize(s.in, linesReadBuffer)
	return s
}

// errLinger and errSourceClosed are what lineInput.Read returns when it gives up waiting.
var (
	errLinger       = errors.New("linger passed")
	errSourceClosed = errors.New("source closed")
)

// lineInput hands the input's bytes to the source's bufio.Reader. It reads the input in a
// goroutine of its own, so that a Read waiting for input can give up (its context is cancelled,
// the linger passed, the source was closed) even when the input's own Read blocks where nothing
// can interrupt it (a silent terminal or pipe). Such a goroutine is left behind by Close, and
// ends when its Read returns. It reads at most one buffer ahead of the records produced.
type lineInput struct {
	src  io.Reader
	open func() (io.Reader, error) // when src is nil: opens it, in the goroutine
	quit <-chan struct{}
	next chan struct{}  // asks the goroutine for one more read
	res  chan lineChunk // its answers

	started bool
	waiting bool   // a read was asked for and not yet answered
	pending []byte // what the last answer brought and the bufio.Reader has not yet taken
	pendErr error  // the error of the last answer, returned once pending is taken
	eof     bool

	// For the Read in progress: its context, and when to stop waiting for more input (zero:
	// wait as long as it takes).
	ctx      context.Context
	deadline time.Time
	timer    *time.Timer
}

type lineChunk struct {
	data []byte
	err  error
}

func (in *lineInput) loop() {
	buf := make([]byte, linesReadBuffer)
	for {
		select {
		case <-in.next:
		case <-in.quit:
			return
		}
		if in.src == nil {
			r, err := in.open()
			if err != nil {
				select {
				case in.res <- lineChunk{nil, err}:
					continue // a later Read tries again
				case <-in.quit:
					return
				}
			}
			in.src = r
		}
		n, err := in.src.Read(buf)
		select {
		case in.res <- lineChunk{buf[:n], err}:
		case <-in.quit:
			return
		}
		if err == io.EOF {
			return
		}
	}
}

// Read gives what the input goroutine read, asking it for more (and waiting) when everything
// was taken. The goroutine reuses its buffer only once pending is empty.
func (in *lineInput) Read(p []byte) (int, error) {
	if len(in.pending) == 0 && in.pendErr == nil {
		if in.eof {
			return 0, io.EOF
		}
		if !in.waiting {
			if !in.started {
				in.started = true
				go in.loop()
			}
			in.next <- struct{}{}
			in.waiting = true
		}
		var linger <-chan time.Time
		if !in.deadline.IsZero() {
			d := time.Until(in.deadline)
			if d <= 0 {
				return 0, errLinger
			}
			if in.timer == nil {
				in.timer = time.NewTimer(d)
			} else {
				in.timer.Reset(d)
			}
			defer in.timer.Stop()
			linger = in.timer.C
		}
		select {
		case c := <-in.res:
			in.waiting = false
			in.pending, in.pendErr = c.data, c.err
		case <-in.ctx.Done():
			return 0, in.ctx.Err()
		case <-linger:
			return 0, errLinger
		case <-in.quit:
			return 0, errSourceClosed
		}
	}
	n := copy(p, in.pending)
	in.pending = in.pending[n:]
	if len(in.pending) == 0 && in.pendErr != nil {
		err := in.pendErr
		in.pendErr = nil
		in.eof = err == io.EOF
		return n, err
	}
	return n, nil
}

// NewLinesSource returns a Source with one record per line of the file at path, or of stdin
// when path is "-". A record's key is its 1-based line number in decimal, its payload the line
// without its terminating "\n" or "\r\n" (a lone "\r" is kept); it has no metadata. Lines may
// be of any length. A last line without a newline is a line; an empty input has no records.
//
// A Read returns as soon as it has max lines; or when it has some, would wait for more input,
// and 5 ms have passed since its first (so the lines of a slow producer are not held back,
// while a fast input still comes in whole batches); or when its context is cancelled or the
// source closed, with the lines it has: a Read waiting on a silent stdin or pipe can always be
// stopped.
//
// A named pipe is opened when it is first read, so that waiting for its writer holds up
// neither the construction nor a stop. Close releases an open still waiting for a writer, and
// returns once it has: no reader of the pipe is left behind to take a later writer's data.
//
// The total is unknown, so the source does not implement Sized. It implements troupe.Resumable
// (a line is named by its byte offset in the file), though a resume of stdin or of a named pipe
// is refused. Close closes the file; it never
// closes stdin (a read of stdin in progress is left to finish on its own).
func NewLinesSource(path string, stdin io.Reader) (troupe.Source, error) {
	if path == "-" {
		if stdin == nil {
			return nil, errors.New("lines source: path is \"-\" but no standard input was given")
		}
		return newLinesSource("stdin", nil, stdin), nil
	}
	if path == "" {
		return nil, errors.New("lines source: empty path")
	}
	if st, err := os.Stat(path); err == nil && st.Mode()&fs.ModeNamedPipe != 0 {
		// Opening a named pipe waits for a writer: the input goroutine does it, where neither
		// the construction nor a stop has to wait for it.
		s := newLinesSource(path, nil, nil)
		s.in.open = s.openFIFO
		return s, nil
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
	return newLinesSource(path, f, f), nil
}

// openFIFO opens the named pipe, waiting for a writer (or for Close). While it is in the open,
// s.opening is set, so that Close knows it must release it; Close waits for it to be done.
func (s *linesSource) openFIFO() (io.Reader, error) {
	s.fileMu.Lock()
	if s.fileClosed {
		s.fileMu.Unlock()
		return nil, errSourceClosed
	}
	opened := make(chan struct{})
	s.opening = opened
	s.fileMu.Unlock()
	defer close(opened) // after the pipe, if opened too late, is closed again (defers run last first)
	if fifoBeforeOpen != nil {
		fifoBeforeOpen()
	}
	f, err := os.Open(s.name)
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	s.opening = nil
	if err != nil {
		return nil, err
	}
	if s.fileClosed {
		f.Close()
		return nil, errSourceClosed
	}
	s.file = f
	return f, nil
}

// fifoBeforeOpen, when set (by tests), is called by openFIFO just before it opens the pipe.
var fifoBeforeOpen func()

// fifoCloseTimeout bounds how long Close tries to release an input goroutine from the pipe's open.
const fifoCloseTimeout = 10 * time.Second

// releaseFIFOOpen is a writer of the named pipe for a moment, again and again, until the input
// goroutine's open (which waits for a writer) has returned. Once is not enough: the goroutine
// may not yet be in the open, and a writer's non-blocking open fails while there is no reader.
func (s *linesSource) releaseFIFOOpen(opened <-chan struct{}) error {
	timeout := time.NewTimer(fifoCloseTimeout)
	defer timeout.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		if w, err := os.OpenFile(s.name, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
		select {
		case <-opened:
			return nil
		case <-timeout.C:
			return fmt.Errorf("lines source: close %s: the named pipe's open did not return within %s; left behind", s.name, fifoCloseTimeout)
		case <-tick.C:
		}
	}
}

// Read returns the next up to max lines. It returns io.EOF together with the last batch. A read
// error is returned (naming the input and the line) after the lines read before it have been
// returned; a line interrupted by the error is kept, and a later Read resumes it. So is a line
// interrupted by the linger, a cancelled ctx or Close.
func (s *linesSource) Read(ctx context.Context, max int) ([]troupe.Record, error) {
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
	s.in.ctx, s.in.deadline = ctx, time.Time{}
	defer func() { s.in.ctx = nil }()
	clear(s.offsets)
	var out []troupe.Record
	for len(out) < max {
		// After a cancellation, the lines already read from the input are still handed on (they
		// cannot be read again); only waiting for more input stops.
		if err := ctx.Err(); err != nil && s.r.Buffered() == 0 && len(s.in.pending) == 0 {
			if len(out) > 0 {
				return out, nil
			}
			return nil, err
		}
		payload, ok, err := s.nextLine()
		if ok && s.done != nil {
			start := s.consumed
			s.consumed += s.raw
			if s.done(strconv.FormatInt(start, 10)) {
				s.line++
				ok = false
			} else {
				s.offsets[strconv.FormatInt(s.line+1, 10)] = start
			}
		}
		if ok {
			if out == nil {
				// The last Read's slice, which the runtime does not keep (see troupe.Source), or
				// one sized for what max allows but capped, since max is a permission and the
				// input may be nearly done.
				if room := min(max, 1024); cap(s.recs) >= room {
					clear(s.recs[:cap(s.recs)]) // let go of the last Read's payloads
					out = s.recs[:0]
				} else {
					out = make([]troupe.Record, 0, room)
					s.recs = out
				}
			}
			s.line++
			out = append(out, troupe.Record{Key: s.keys.of(s.line), Payload: payload})
			if len(out) == 1 {
				s.in.deadline = time.Now().Add(linesLinger)
			}
		}
		switch {
		case err == nil:
		case err == io.EOF:
			s.eof = true
			return out, io.EOF
		case errors.Is(err, errLinger):
			return out, nil
		case errors.Is(err, errSourceClosed):
			return out, fmt.Errorf("lines source %s: closed during read", s.name)
		case ctx.Err() != nil && errors.Is(err, ctx.Err()):
			if len(out) > 0 {
				return out, nil
			}
			return nil, err
		default:
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
		s.raw = int64(len(s.long) + len(frag))
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

// Fingerprint describes the source: the file it reads.
func (s *linesSource) Fingerprint() string {
	if abs, err := filepath.Abs(s.name); err == nil && s.name != "stdin" {
		return "lines of " + abs
	}
	return "lines of " + s.name
}

// Resume makes the source pass over the lines done says are done; a line is named by its byte
// offset in the file. Standard input and a named pipe cannot be resumed: they cannot be read
// again.
func (s *linesSource) Resume(done func(key string) bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil && s.in.open == nil {
		return errors.New("lines source stdin cannot be resumed: standard input cannot be read again (write it to a file and read that)")
	}
	if s.in.open != nil {
		return fmt.Errorf("lines source %s cannot be resumed: it is a named pipe, which cannot be read again", s.name)
	}
	if s.line > 0 {
		return fmt.Errorf("lines source %s: resume after the first read", s.name)
	}
	s.done = done
	s.offsets = map[string]int64{}
	return nil
}

// ResumeKey returns the byte offset of a line the last Read returned, in decimal.
func (s *linesSource) ResumeKey(rec troupe.Record) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if off, ok := s.offsets[rec.Key]; ok {
		return strconv.FormatInt(off, 10)
	}
	return ""
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

// Close closes the file (never stdin). A Read in progress returns at once, with the lines it
// has. Calling it again does nothing.
func (s *linesSource) Close() error {
	s.closeOnce.Do(func() { close(s.quit) })
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.arena, s.long = nil, nil
	s.fileMu.Lock()
	s.fileClosed = true
	f, opening := s.file, s.opening
	s.fileMu.Unlock()
	if f != nil {
		// A read of the file in progress in the input goroutine fails (a pipe's) or finishes
		// (a regular file's), and the goroutine ends.
		if err := f.Close(); err != nil {
			return fmt.Errorf("lines source: close %s: %w", s.name, err)
		}
	} else if opening != nil {
		// The input goroutine is in the pipe's open, waiting for a writer, or about to be:
		// release it. Left there, it would take the data of the next writer of the pipe.
		return s.releaseFIFOOpen(opening)
	}
	return nil
}
