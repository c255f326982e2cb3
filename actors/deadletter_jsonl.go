package actors

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"unicode/utf8"

	"github.com/troupe-dev/troupe"
)

// jsonlDeadLetter is the JSON form of a DeadLetter, one per line.
type jsonlDeadLetter struct {
	Key string `json:"key"`
	// KeyB64 holds the key's bytes, base64, when the key is not valid UTF-8: JSON strings can
	// only carry UTF-8, and Key then holds an approximation.
	KeyB64   []byte            `json:"key_b64,omitempty"`
	Seq      uint64            `json:"seq"`
	Stage    string            `json:"stage"`
	Attempts int               `json:"attempts"`
	Error    string            `json:"error"`
	Payload  []byte            `json:"payload_b64"` // encoding/json writes []byte as base64
	Meta     map[string]string `json:"meta,omitempty"`
}

// jsonlDeadLetters appends dead letters to a file as JSON lines.
type jsonlDeadLetters struct {
	path string
	file *os.File

	mu      sync.Mutex
	w       *bufio.Writer
	out     countingWriter // under w: counts the bytes that reached the file
	good    int64          // size of the file at the last successful Flush: whole lines only
	broken  error          // the first write error; nothing is written after it
	enc     *json.Encoder
	dirty   bool // written to the file since the last fsync
	regular bool // a regular file, which can be fsynced and cut back
	closed  bool
}

// NewJSONLDeadLetters returns a DeadLetterSink that appends one JSON object per line to the file
// at path, creating the file and its parent directories. Each line has the fields "key", "seq",
// "stage", "attempts", "error", "payload_b64" (the payload, standard base64, so binary payloads
// survive) and "meta" (omitted when empty); a key that is not valid UTF-8 also gets
// "key_b64", its exact bytes in base64.
//
// An existing file is appended to, never truncated: dead letters of earlier runs are data too.
// If it ends in a partial line (a crash during a write), a newline is added first so that the
// next object starts a line of its own.
//
// Writes are buffered (64 KiB). Flush writes the buffer out and, if anything was written since
// the previous Flush, fsyncs the file. Close flushes and closes the file.
//
// A write or sync that fails (the device is full, say) breaks the output: the file is cut back
// to its size at the last successful Flush, so it never ends in half a line and holds exactly
// the dead letters flushed; every later Write, Flush and Close returns the same error (Close then
// only closes the file). The file must have no other writer while the output is open.
func NewJSONLDeadLetters(path string) (troupe.DeadLetterSink, error) {
	f, err := createFile(path, os.O_APPEND)
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	d := &jsonlDeadLetters{path: path, file: f, out: countingWriter{w: f}}
	d.w = bufio.NewWriterSize(&d.out, linesWriteBuffer)
	d.enc = json.NewEncoder(d.w)
	d.enc.SetEscapeHTML(false)
	if err := d.endPartialLine(); err != nil {
		f.Close()
		return nil, fmt.Errorf("dead letters %s: %w", path, err)
	}
	return d, nil
}

// endPartialLine writes a newline if the file is a non-empty regular file that does not end
// with one, and notes whether the file can be fsynced (a regular file, not a pipe or terminal).
func (d *jsonlDeadLetters) endPartialLine() error {
	st, err := d.file.Stat()
	if err != nil {
		return err
	}
	d.regular = st.Mode().IsRegular()
	if !d.regular || st.Size() == 0 {
		return nil
	}
	d.good = st.Size()
	// The file is open write-only; read its last byte through a second descriptor.
	r, err := os.Open(d.path)
	if err != nil {
		return fmt.Errorf("check last line: %w", err)
	}
	defer r.Close()
	var last [1]byte
	if _, err := r.ReadAt(last[:], st.Size()-1); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // truncated meanwhile
		}
		return fmt.Errorf("check last line: %w", err)
	}
	if last[0] == '\n' {
		return nil
	}
	if _, err := d.file.Write([]byte{'\n'}); err != nil {
		return fmt.Errorf("end partial last line: %w", err)
	}
	d.good++
	return nil
}

// Write appends dl as one JSON line to the buffer.
func (d *jsonlDeadLetters) Write(dl troupe.DeadLetter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("dead letters %s: write after close", d.path)
	}
	if d.broken != nil {
		return d.broken
	}
	j := jsonlDeadLetter{
		Key:      dl.Key,
		Seq:      dl.Seq,
		Stage:    dl.Stage,
		Attempts: dl.Attempts,
		Error:    dl.Error,
		Payload:  dl.Payload,
		Meta:     dl.Meta,
	}
	if j.Payload == nil {
		j.Payload = []byte{} // "" rather than null: the field always holds base64
	}
	if !utf8.ValidString(dl.Key) {
		j.KeyB64 = []byte(dl.Key)
	}
	if err := d.enc.Encode(&j); err != nil {
		if d.out.err != nil { // the file failed, not the encoding
			return d.fail(fmt.Sprintf("write record %q (seq %d)", dl.Key, dl.Seq), err)
		}
		return fmt.Errorf("dead letters %s: write record %q (seq %d): %w", d.path, dl.Key, dl.Seq, err)
	}
	d.dirty = true
	return nil
}

// Flush writes the buffer to the file and fsyncs it (if it is a regular file) if anything was
// written since last time.
func (d *jsonlDeadLetters) Flush() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("dead letters %s: flush after close", d.path)
	}
	return d.flush()
}

func (d *jsonlDeadLetters) flush() error {
	if d.broken != nil {
		return d.broken
	}
	if err := d.w.Flush(); err != nil {
		return d.fail("flush", err)
	}
	if d.dirty && d.regular {
		if err := d.file.Sync(); err != nil {
			return d.fail("sync", err)
		}
		d.dirty = false
	}
	d.good += d.out.n
	d.out.n = 0
	return nil
}

// fail breaks the output after a write error, cutting the file back to the last whole line
// flushed.
func (d *jsonlDeadLetters) fail(what string, err error) error {
	err = fmt.Errorf("dead letters %s: %s: %w", d.path, what, err)
	if d.regular {
		if terr := d.file.Truncate(d.good); terr != nil {
			err = fmt.Errorf("%w; cutting the file back to its last whole line (%d bytes) failed too: %v", err, d.good, terr)
		} else {
			err = fmt.Errorf("%w (the file was cut back to its last whole line, %d bytes)", err, d.good)
		}
	}
	d.broken = &outputError{err}
	return d.broken
}

// outputName is the file's absolute path; "" for a file that is not regular.
func (d *jsonlDeadLetters) outputName() string {
	if !d.regular {
		return ""
	}
	abs, err := filepath.Abs(d.path)
	if err != nil {
		return d.path
	}
	return abs
}

// syncPos returns the file's size at the last Flush, which synced it.
func (d *jsonlDeadLetters) syncPos() (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.broken != nil {
		return 0, d.broken
	}
	return d.good, nil
}

// resumeAt cuts the file back to size (what the killed run wrote after its last journalled
// batch is done again), before anything is written.
func (d *jsonlDeadLetters) resumeAt(size int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.w.Buffered() > 0 || d.out.n > 0 {
		return fmt.Errorf("dead letters %s: resume after the first write", d.path)
	}
	if d.good < size {
		return fmt.Errorf("dead letters %s holds %d bytes, but the journal says the run it resumes had written %d: the file was changed since (remove the journal to start over)", d.path, d.good, size)
	}
	if d.good > size {
		if err := d.file.Truncate(size); err != nil {
			return fmt.Errorf("dead letters %s: cut back to %d bytes: %w", d.path, size, err)
		}
		if err := d.file.Sync(); err != nil {
			return fmt.Errorf("dead letters %s: sync: %w", d.path, err)
		}
		d.good = size
	}
	return nil
}

// Close flushes and closes the file. Calling it again does nothing.
func (d *jsonlDeadLetters) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	err := d.flush() // after a write error: that error again
	if cerr := d.file.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("dead letters %s: close: %w", d.path, cerr))
	}
	return err
}
