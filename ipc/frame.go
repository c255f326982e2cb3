package ipc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"unsafe"
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

func frameHeader(dst []byte, t FrameType, body, max int) ([]byte, error) {
	l := 1 + body
	if max <= 0 {
		max = DefaultMaxFrame
	}
	if l > max {
		return dst, fmt.Errorf("%w: %s frame of %d bytes > max %d", ErrFrameTooLarge, t, l, max)
	}
	dst = grow(dst, uvarintSize(uint64(l))+l)
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
	body := uvarintSize(uint64(len(res.Counts)))
	for _, c := range res.Counts {
		body += uvarintSize(uint64(c))
	}
	body += uvarintSize(uint64(len(res.Outputs)))
	for _, r := range res.Outputs {
		body += recordSize(r)
	}
	body += uvarintSize(uint64(len(res.Errors)))
	for _, e := range res.Errors {
		body += uvarintSize(uint64(e.Index)) + bytesSize(len(e.Message))
	}
	out, err := frameHeader(dst, FrameResults, body, maxFrame)
	if err != nil {
		return dst, err
	}
	out = binary.AppendUvarint(out, uint64(len(res.Counts)))
	for _, c := range res.Counts {
		out = binary.AppendUvarint(out, uint64(c))
	}
	out = binary.AppendUvarint(out, uint64(len(res.Outputs)))
	for _, r := range res.Outputs {
		out = appendRecord(out, r)
	}
	out = binary.AppendUvarint(out, uint64(len(res.Errors)))
	for _, e := range res.Errors {
		out = binary.AppendUvarint(out, uint64(e.Index))
		out = appendString(out, e.Message)
	}
	return out, nil
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

// FrameReader decodes frames from a stream. Decoded records alias one buffer per frame (their
// payloads are capacity-limited sub-slices of it), so a frame costs one body allocation plus the
// records themselves. It is not safe for concurrent use.
type FrameReader struct {
	r     io.Reader
	max   int
	buf   []byte // read buffer
	start int    // unread data is buf[start:end]
	end   int
	small [16]byte
}

// NewFrameReader returns a FrameReader refusing frames over maxFrame bytes (0: DefaultMaxFrame).
func NewFrameReader(r io.Reader, maxFrame int) *FrameReader {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	return &FrameReader{r: r, max: maxFrame, buf: make([]byte, 64<<10)}
}

// fill reads more data into the buffer, compacting it first. It returns io.EOF only when no
// data at all is buffered.
func (r *FrameReader) fill() error {
	if r.start > 0 {
		n := copy(r.buf, r.buf[r.start:r.end])
		r.start, r.end = 0, n
	}
	for {
		n, err := r.r.Read(r.buf[r.end:])
		r.end += n
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// readUvarint reads the length prefix from the buffered stream.
func (r *FrameReader) readUvarint() (uint64, error) {
	for {
		v, n := binary.Uvarint(r.buf[r.start:r.end])
		if n > 0 {
			r.start += n
			return v, nil
		}
		if n < 0 {
			return 0, fmt.Errorf("%w: length prefix overflows 64 bits", ErrMalformedFrame)
		}
		had := r.end - r.start
		if err := r.fill(); err != nil {
			if err == io.EOF && had > 0 {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, err
		}
	}
}

// readFull fills dst from the buffered stream.
func (r *FrameReader) readFull(dst []byte) error {
	n := copy(dst, r.buf[r.start:r.end])
	r.start += n
	if n == len(dst) {
		return nil
	}
	_, err := io.ReadFull(r.r, dst[n:])
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// Next reads and decodes the next frame. It returns io.EOF at a clean end of stream (between
// frames), io.ErrUnexpectedEOF inside a frame, an error wrapping ErrFrameTooLarge for a length
// prefix over the limit (before allocating), and one wrapping ErrMalformedFrame for a body that
// does not decode.
func (r *FrameReader) Next() (Frame, error) {
	l, err := r.readUvarint()
	if err != nil {
		return Frame{}, err
	}
	if l == 0 {
		return Frame{}, fmt.Errorf("%w: empty frame", ErrMalformedFrame)
	}
	if l > uint64(r.max) {
		return Frame{}, fmt.Errorf("%w: %d bytes > max %d", ErrFrameTooLarge, l, r.max)
	}
	var body []byte
	if l <= uint64(len(r.small)) {
		body = r.small[:l]
	} else {
		body = make([]byte, l)
	}
	if err := r.readFull(body); err != nil {
		return Frame{}, err
	}
	if len(body) <= len(r.small) && FrameType(body[0]) != FrameCredit {
		// Decoded records alias their body, so only credit frames may use the scratch buffer.
		body = append([]byte(nil), body...)
	}
	f, err := decodeBody(body)
	if err != nil {
		return Frame{}, err
	}
	return f, nil
}

// DecodeFrame decodes one frame from the front of b and returns it with the number of bytes it
// used. It applies the same checks as FrameReader.Next; the frame's records alias b.
func DecodeFrame(b []byte, maxFrame int) (Frame, int, error) {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	l, n := binary.Uvarint(b)
	switch {
	case n == 0:
		return Frame{}, 0, io.ErrUnexpectedEOF
	case n < 0:
		return Frame{}, 0, fmt.Errorf("%w: length prefix overflows 64 bits", ErrMalformedFrame)
	case l == 0:
		return Frame{}, 0, fmt.Errorf("%w: empty frame", ErrMalformedFrame)
	case l > uint64(maxFrame):
		return Frame{}, 0, fmt.Errorf("%w: %d bytes > max %d", ErrFrameTooLarge, l, maxFrame)
	case l > uint64(len(b)-n):
		return Frame{}, 0, io.ErrUnexpectedEOF
	}
	f, err := decodeBody(b[n : n+int(l) : n+int(l)])
	if err != nil {
		return Frame{}, 0, err
	}
	return f, n + int(l), nil
}

// decoder reads a frame body. The first error sticks; later reads return zero values.
type decoder struct {
	b   []byte
	pos int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformedFrame}, args...)...)
	}
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.pos:])
	if n <= 0 {
		d.fail("bad %s varint at byte %d", what, d.pos)
		return 0
	}
	d.pos += n
	return v
}

func (d *decoder) u32(what string) uint32 {
	v := d.uvarint(what)
	if v > math.MaxUint32 {
		d.fail("%s %d overflows 32 bits", what, v)
		return 0
	}
	return uint32(v)
}

// count reads an element count and checks that the remaining body can hold that many elements
// of at least min bytes each, so a hostile count cannot make us allocate.
func (d *decoder) count(what string, min int) int {
	v := d.uvarint(what)
	if d.err != nil {
		return 0
	}
	if v > uint64((len(d.b)-d.pos)/min) {
		d.fail("%s %d does not fit in the remaining %d bytes", what, v, len(d.b)-d.pos)
		return 0
	}
	return int(v)
}

func (d *decoder) bytes(what string) []byte {
	if d.err != nil {
		return nil
	}
	// Not d.uvarint(what + " length"): that would build the string for every field decoded.
	n, k := binary.Uvarint(d.b[d.pos:])
	if k <= 0 {
		d.fail("bad %s length varint at byte %d", what, d.pos)
		return nil
	}
	d.pos += k
	if n > uint64(len(d.b)-d.pos) {
		d.fail("%s length %d exceeds the remaining %d bytes", what, n, len(d.b)-d.pos)
		return nil
	}
	end := d.pos + int(n)
	b := d.b[d.pos:end:end]
	d.pos = end
	return b
}

// str returns a string aliasing the frame body. Frame bodies are never written after decoding
// (payloads alias them only through capacity-limited slices, which cannot overlap a key), so the
// aliasing is safe and saves an allocation per string.
func (d *decoder) str(what string) string {
	b := d.bytes(what)
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func (d *decoder) record(r *Record) {
	r.Seq = d.uvarint("seq")
	r.Sub = d.uvarint("sub")
	r.Weight = d.uvarint("weight")
	r.Attempt = d.u32("attempt")
	flag := d.u32("flag")
	if flag > math.MaxInt32 {
		d.fail("flag %d out of range", flag)
	}
	r.Flag = Flag(flag)
	r.Key = d.str("key")
	if p := d.bytes("payload"); len(p) > 0 {
		r.Payload = p
	}
	nmeta := d.count("meta count", 2)
	if nmeta > 0 {
		r.Meta = make(map[string]string, nmeta)
		for i := 0; i < nmeta && d.err == nil; i++ {
			k := d.str("meta key")
			r.Meta[k] = d.str("meta value")
		}
	}
}

func (d *decoder) records(what string) []*Record {
	n := d.count(what, minRecordSize)
	if d.err != nil || n == 0 {
		return nil
	}
	slab := make([]Record, n)
	out := make([]*Record, n)
	for i := range slab {
		out[i] = &slab[i]
		d.record(out[i])
		if d.err != nil {
			return nil
		}
	}
	return out
}

func decodeBody(body []byte) (Frame, error) {
	f := Frame{Type: FrameType(body[0])}
	d := decoder{b: body, pos: 1}
	switch f.Type {
	case FrameBatch:
		f.BatchID = d.uvarint("batch id")
		f.Records = d.records("record count")
	case FrameResults:
		res := &Results{}
		if n := d.count("result count", 1); n > 0 {
			res.Counts = make([]uint32, n)
			for i := range res.Counts {
				res.Counts[i] = d.u32("output count")
			}
		}
		res.Outputs = d.records("output record count")
		if n := d.count("error count", minErrorSize); n > 0 {
			res.Errors = make([]*RecordError, n)
			errs := make([]RecordError, n)
			for i := range errs {
				errs[i].Index = d.u32("error index")
				errs[i].Message = d.str("error message")
				res.Errors[i] = &errs[i]
			}
		}
		if d.err == nil {
			if err := CheckResults(res); err != nil {
				d.fail("%v", err)
			}
		}
		f.Results = res
	case FrameCredit:
		f.Credit = d.u32("credit")
	default:
		// Unknown type from a later minor version: the body is skipped unparsed.
		return f, nil
	}
	if d.err != nil {
		return Frame{}, fmt.Errorf("%s frame: %w", f.Type, d.err)
	}
	if d.pos != len(body) {
		return Frame{}, fmt.Errorf("%w: %s frame has %d trailing bytes", ErrMalformedFrame, f.Type, len(body)-d.pos)
	}
	return f, nil
}

// CheckResults checks that res is self-consistent: the counts add up to the outputs, and errors
// name distinct inputs, in increasing order, whose count is 0.
func CheckResults(res *Results) error {
	var sum uint64
	for _, c := range res.Counts {
		sum += uint64(c)
	}
	if sum != uint64(len(res.Outputs)) {
		return fmt.Errorf("counts add up to %d outputs, frame has %d", sum, len(res.Outputs))
	}
	next := uint64(0)
	for _, e := range res.Errors {
		i := uint64(e.Index)
		if i < next || i >= uint64(len(res.Counts)) {
			return fmt.Errorf("error index %d out of order or out of range (%d results)", e.Index, len(res.Counts))
		}
		if res.Counts[i] != 0 {
			return fmt.Errorf("error index %d has %d outputs", e.Index, res.Counts[i])
		}
		next = i + 1
	}
	return nil
}
