package ipc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/troupe-dev/troupe"
)

// The stage protocol's version (see stage.proto and README.md). Hosts and plugins with different
// majors refuse each other; minors add only what the other side may ignore.
const (
	ProtocolMajor   = 1
	ProtocolMinor   = 0
	ProtocolVersion = "1.0"
)

// DefaultMaxFrame is the default limit on a data frame's length prefix: 64 MiB.
const DefaultMaxFrame = 64 << 20

// FrameType is the first byte of a frame's body.
type FrameType byte

// Frame types of protocol 1.0. Receivers skip frames of other types (a later minor may add some).
const (
	// FrameBatch carries records from the host to the plugin.
	FrameBatch FrameType = 1
	// FrameResults carries per-record outcomes from the plugin to the host, in submission order.
	FrameResults FrameType = 2
	// FrameCredit grants the receiver permission to send n more records (plugin to host). The host
	// does not send credit in 1.0; a plugin must accept and ignore credit frames.
	FrameCredit FrameType = 3
)

// String names the frame type.
func (t FrameType) String() string {
	switch t {
	case FrameBatch:
		return "batch"
	case FrameResults:
		return "results"
	case FrameCredit:
		return "credit"
	}
	return fmt.Sprintf("frame-type-%d", byte(t))
}

// ErrFrameTooLarge is returned (wrapped, with the sizes) for a frame over the size limit, by
// the reader before it allocates anything and by the writer before it sends anything.
var ErrFrameTooLarge = errors.New("frame too large")

// ErrMalformedFrame is returned (wrapped, with the reason) for a frame whose body does not decode.
var ErrMalformedFrame = errors.New("malformed frame")

// Frame is one decoded data frame. Which fields are set depends on Type; a frame of an unknown
// type has only Type set.
type Frame struct {
	Type    FrameType
	BatchID uint64    // FrameBatch
	Records []*Record // FrameBatch
	Results *Results  // FrameResults
	Credit  uint32    // FrameCredit
}

// Minimum encoded sizes, used to bound counts read from the wire before allocating.
const (
	minRecordSize = 8 // five varints, two empty length-prefixed strings, a meta count
	minErrorSize  = 2 // index, empty message
)

func uvarintSize(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

func bytesSize(n int) int { return uvarintSize(uint64(n)) + n }

// recordSize is the encoded size of r.
func recordSize(r *Record) int {
	n := uvarintSize(r.Seq) + uvarintSize(r.Sub) + uvarintSize(r.Weight) +
		uvarintSize(uint64(r.Attempt)) + uvarintSize(uint64(r.Flag)) +
		bytesSize(len(r.Key)) + bytesSize(len(r.Payload)) + uvarintSize(uint64(len(r.Meta)))
	for k, v := range r.Meta {
		n += bytesSize(len(k)) + bytesSize(len(v))
	}
	return n
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendBytes(dst []byte, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendRecord(dst []byte, r *Record) []byte {
	dst = binary.AppendUvarint(dst, r.Seq)
	dst = binary.AppendUvarint(dst, r.Sub)
	dst = binary.AppendUvarint(dst, r.Weight)
	dst = binary.AppendUvarint(dst, uint64(r.Attempt))
	dst = binary.AppendUvarint(dst, uint64(r.Flag))
	dst = appendString(dst, r.Key)
	dst = appendBytes(dst, r.Payload)
	dst = binary.AppendUvarint(dst, uint64(len(r.Meta)))
	for k, v := range r.Meta {
		dst = appendString(dst, k)
		dst = appendString(dst, v)
	}
	return dst
}

// grow makes room for n more bytes in dst without changing its length.
func grow(dst []byte, n int) []byte {
	if cap(dst)-len(dst) >= n {
		return dst
	}
	c := 2 * cap(dst)
	if c < len(dst)+n {
		c = len(dst) + n
	}
	out := make([]byte, len(dst), c)
	copy(out, dst)
	return out
}

// frameHeader appends the length prefix and type of a frame whose body takes body bytes, and
// makes room in dst for the body.
func frameHeader(dst []byte, t FrameType, body, max int) ([]byte, error) {
	out, err := frameHead(dst, t, body, max)
	if err != nil {
		return dst, err
	}
	return grow(out, body), nil
}

// frameHead appends the length prefix and type of a frame whose body takes body bytes, or fails
// with ErrFrameTooLarge, leaving dst unchanged, when the frame would exceed max (0:
// DefaultMaxFrame).
func frameHead(dst []byte, t FrameType, body, max int) ([]byte, error) {
	l := 1 + body
	if max <= 0 {
		max = DefaultMaxFrame
	}
	if l > max {
		return dst, fmt.Errorf("%w: %s frame of %d bytes > max %d", ErrFrameTooLarge, t, l, max)
	}
	dst = binary.AppendUvarint(dst, uint64(l))
	return append(dst, byte(t)), nil
}

// BatchFrameSize is the encoded size of a batch frame of recs, length prefix included.
func BatchFrameSize(id uint64, recs []*Record) int {
	body := uvarintSize(id) + uvarintSize(uint64(len(recs)))
	for _, r := range recs {
		body += recordSize(r)
	}
	return uvarintSize(uint64(body+1)) + body + 1
}

// RecordFrameSize is the number of bytes rec adds to a batch or results frame.
func RecordFrameSize(rec *Record) int { return recordSize(rec) }

// AppendBatch appends a batch frame carrying recs to dst. It fails with ErrFrameTooLarge, leaving
// dst unchanged, if the frame would exceed maxFrame (0 means DefaultMaxFrame).
func AppendBatch(dst []byte, maxFrame int, id uint64, recs []*Record) ([]byte, error) {
	body := uvarintSize(id) + uvarintSize(uint64(len(recs)))
	for _, r := range recs {
		body += recordSize(r)
	}
	out, err := frameHeader(dst, FrameBatch, body, maxFrame)
	if err != nil {
		return dst, err
	}
	out = binary.AppendUvarint(out, id)
	out = binary.AppendUvarint(out, uint64(len(recs)))
	for _, r := range recs {
		out = appendRecord(out, r)
	}
	return out, nil
}

// AppendResults appends a results frame to dst. It fails with ErrFrameTooLarge, leaving dst
// unchanged, if the frame would exceed maxFrame (0 means DefaultMaxFrame).
func AppendResults(dst []byte, maxFrame int, res *Results) ([]byte, error) {
	outputs := 0
	for _, r := range res.Outputs {
		outputs += recordSize(r)
	}
	var errs []RecordError
	for _, e := range res.Errors {
		errs = append(errs, *e)
	}
	out, err := AppendResultsHead(dst, maxFrame, res.Counts, len(res.Outputs), outputs, errs)
	if err != nil {
		return dst, err
	}
	out = grow(out, outputs)
	for _, r := range res.Outputs {
		out = appendRecord(out, r)
	}
	return AppendResultsTail(out, errs), nil
}

// AppendOutput appends rec to dst as an output record of a Results frame: with its input's
// identity (seq, sub, weight, flag) and attempt 0. A plugin encodes each output as soon as it
// has it, and AppendResultsEncoded frames them.
func AppendOutput(dst []byte, rec *troupe.Record, seq, sub, weight uint64, flag Flag) []byte {
	dst = binary.AppendUvarint(dst, seq)
	dst = binary.AppendUvarint(dst, sub)
	dst = binary.AppendUvarint(dst, weight)
	dst = append(dst, 0) // attempt
	dst = binary.AppendUvarint(dst, uint64(flag))
	dst = appendString(dst, rec.Key)
	dst = appendBytes(dst, rec.Payload)
	dst = binary.AppendUvarint(dst, uint64(len(rec.Meta)))
	if len(rec.Meta) > 0 {
		for k, v := range rec.Meta {
			dst = appendString(dst, k)
			dst = appendString(dst, v)
		}
	}
	return dst
}

// AppendResultsEncoded appends to dst a results frame for len(counts) records whose m outputs
// are already encoded back to back in outputs (AppendOutput): the bytes AppendResults writes
// for the same outcomes. It fails with ErrFrameTooLarge, leaving dst unchanged, if the frame
// would exceed maxFrame (0 means DefaultMaxFrame).
func AppendResultsEncoded(dst []byte, maxFrame int, counts []uint32, m int, outputs []byte, errs []RecordError) ([]byte, error) {
	out, err := AppendResultsHead(dst, maxFrame, counts, m, len(outputs), errs)
	if err != nil {
		return dst, err
	}
	out = append(out, outputs...)
	return AppendResultsTail(out, errs), nil
}

// AppendResultsHead appends to dst the part of a results frame before its outputs, for
// len(counts) records whose m outputs take outputsLen bytes (AppendOutput): a writer sends the
// head, the outputs and AppendResultsTail (errs) as they are, without copying the outputs into
// one buffer. It fails with ErrFrameTooLarge, leaving dst unchanged, if the frame would exceed
// maxFrame (0 means DefaultMaxFrame).
func AppendResultsHead(dst []byte, maxFrame int, counts []uint32, m, outputsLen int, errs []RecordError) ([]byte, error) {
	body := uvarintSize(uint64(len(counts)))
	for _, c := range counts {
		body += uvarintSize(uint64(c))
	}
	body += uvarintSize(uint64(m)) + outputsLen + uvarintSize(uint64(len(errs)))
	for i := range errs {
		body += uvarintSize(uint64(errs[i].Index)) + bytesSize(len(errs[i].Message))
	}
	out, err := frameHead(dst, FrameResults, body, maxFrame)
	if err != nil {
		return dst, err
	}
	out = binary.AppendUvarint(out, uint64(len(counts)))
	for _, c := range counts {
		if c < 0x80 {
			out = append(out, byte(c))
		} else {
			out = binary.AppendUvarint(out, uint64(c))
		}
	}
	return binary.AppendUvarint(out, uint64(m)), nil
}

// AppendResultsTail appends to dst the part of a results frame after its outputs: the errors.
func AppendResultsTail(dst []byte, errs []RecordError) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(errs)))
	for i := range errs {
		dst = binary.AppendUvarint(dst, uint64(errs[i].Index))
		dst = appendString(dst, errs[i].Message)
	}
	return dst
}

// AppendCredit appends a credit frame granting n records to dst.
func AppendCredit(dst []byte, n uint32) []byte {
	body := uvarintSize(uint64(n))
	dst, _ = frameHeader(dst, FrameCredit, body, math.MaxInt)
	return binary.AppendUvarint(dst, uint64(n))
}

// FrameWriter buffers encoded frames in memory and writes them to an io.Writer on Flush (or
// when the buffer passes a high-water mark). It is not safe for concurrent use.
type FrameWriter struct {
	w   io.Writer
	max int
	buf []byte
	// HighWater is the buffered size past which a write flushes by itself; 0 means 1 MiB.
	HighWater int
}

// NewFrameWriter returns a FrameWriter refusing frames over maxFrame bytes (0: DefaultMaxFrame).
func NewFrameWriter(w io.Writer, maxFrame int) *FrameWriter {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	return &FrameWriter{w: w, max: maxFrame, buf: make([]byte, 0, 64<<10)}
}

func (w *FrameWriter) maybeFlush() error {
	hw := w.HighWater
	if hw <= 0 {
		hw = 1 << 20
	}
	if len(w.buf) >= hw {
		return w.Flush()
	}
	return nil
}

// WriteBatch buffers a batch frame.
func (w *FrameWriter) WriteBatch(id uint64, recs []*Record) error {
	var err error
	if w.buf, err = AppendBatch(w.buf, w.max, id, recs); err != nil {
		return err
	}
	return w.maybeFlush()
}

// WriteResults buffers a results frame.
func (w *FrameWriter) WriteResults(res *Results) error {
	var err error
	if w.buf, err = AppendResults(w.buf, w.max, res); err != nil {
		return err
	}
	return w.maybeFlush()
}

// WriteCredit buffers a credit frame.
func (w *FrameWriter) WriteCredit(n uint32) error {
	w.buf = AppendCredit(w.buf, n)
	return w.maybeFlush()
}

// Buffered is the number of bytes waiting for Flush.
func (w *FrameWriter) Buffered() int { return len(w.buf) }

// Flush writes everything buffered.
func (w *FrameWriter) Flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.w.Write(w.buf)
	if cap(w.buf) > 4<<20 { // do not pin a huge buffer after one big frame
		w.buf = make([]byte, 0, 64<<10)
	} else {
		w.buf = w.buf[:0]
	}
	return err
}

// The host's encoder: a batch straight from the runtime's tasks, without a wire Record per task.

// taskAttempt is the wire's attempt for a task: the failed attempts before this one (a Task's
// Attempt counts from 1).
func taskAttempt(t *troupe.Task) uint64 { return uint64(max(t.Attempt-1, 0)) }

// TaskRecordSize is the number of bytes task t adds to a batch frame as the record seq (sub,
// weight and flag 0, attempt t.Attempt-1): what AppendTaskBatch encodes.
func TaskRecordSize(t *troupe.Task, seq uint64) int {
	r := &t.Record
	n := uvarintSize(seq) + 3 + uvarintSize(taskAttempt(t)) +
		bytesSize(len(r.Key)) + bytesSize(len(r.Payload)) + uvarintSize(uint64(len(r.Meta)))
	if len(r.Meta) > 0 { // ranging over even an empty map costs an iterator
		for k, v := range r.Meta {
			n += bytesSize(len(k)) + bytesSize(len(v))
		}
	}
	return n
}

// AppendTaskBatch appends a batch frame carrying tasks to dst, task i as the record firstSeq+i
// (sub, weight and flag 0, attempt Attempt-1): the bytes AppendBatch would write for the same
// records, without building them. It fails with ErrFrameTooLarge, leaving dst unchanged, if
// the frame would exceed maxFrame (0 means DefaultMaxFrame).
func AppendTaskBatch(dst []byte, maxFrame int, id, firstSeq uint64, tasks []troupe.Task) ([]byte, error) {
	size := 0
	for i := range tasks {
		size += TaskRecordSize(&tasks[i], firstSeq+uint64(i))
	}
	return AppendTaskBatchSized(dst, maxFrame, id, firstSeq, tasks, size)
}

// AppendTaskBatchSized is AppendTaskBatch for a caller that has already summed the tasks'
// TaskRecordSize into recordsSize (a wrong sum makes a malformed frame).
func AppendTaskBatchSized(dst []byte, maxFrame int, id, firstSeq uint64, tasks []troupe.Task, recordsSize int) ([]byte, error) {
	body := uvarintSize(id) + uvarintSize(uint64(len(tasks))) + recordsSize
	out, err := frameHeader(dst, FrameBatch, body, maxFrame)
	if err != nil {
		return dst, err
	}
	out = binary.AppendUvarint(out, id)
	out = binary.AppendUvarint(out, uint64(len(tasks)))
	for i := range tasks {
		t := &tasks[i]
		out = binary.AppendUvarint(out, firstSeq+uint64(i))
		out = append(out, 0, 0) // sub, weight
		out = binary.AppendUvarint(out, taskAttempt(t))
		out = append(out, 0) // flag
		out = appendString(out, t.Record.Key)
		out = appendBytes(out, t.Record.Payload)
		out = binary.AppendUvarint(out, uint64(len(t.Record.Meta)))
		if len(t.Record.Meta) > 0 {
			for k, v := range t.Record.Meta {
				out = appendString(out, k)
				out = appendString(out, v)
			}
		}
	}
	return out, nil
}
