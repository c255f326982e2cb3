package ipc

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
	"unsafe"

	"github.com/troupe-dev/troupe"
)

// FrameReader decodes frames from a stream. It reads into chunks of chunkSize bytes, and the
// body of a frame that fits in a chunk is a sub-slice of it: decoded records alias the chunk
// (their payloads are capacity-limited sub-slices), which is never written again once a frame
// in it has been handed out; the reader moves on to a new chunk instead. So reading costs no
// copy and one allocation per chunk, not per frame (a frame over maxInPlace bytes gets a body of
// its own: the end of a chunk too short for the next frame is wasted, so in-place frames are
// kept small against the chunk). It is not safe for concurrent use.
type FrameReader struct {
	r     io.Reader
	max   int
	buf   []byte // the current chunk
	start int    // unread data is buf[start:end]
	end   int
	// shared is set when a body handed out aliases buf: its bytes before end are not to be
	// overwritten (the reader moves to a new chunk instead of compacting).
	shared bool
}

const (
	// chunkSize is the size of the reader's chunks.
	chunkSize = 256 << 10
	// minRead is the least room the reader leaves for a read.
	minRead = 16 << 10
	// maxInPlace is the largest frame handed out in place.
	maxInPlace = chunkSize / 8
)

// NewFrameReader returns a FrameReader refusing frames over maxFrame bytes (0: DefaultMaxFrame).
func NewFrameReader(r io.Reader, maxFrame int) *FrameReader {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	return &FrameReader{r: r, max: maxFrame, buf: make([]byte, chunkSize)}
}

// room makes buf hold at least n bytes from start: it moves the unread data to the front of
// buf, or to a new chunk when buf is too small or shared.
func (r *FrameReader) room(n int) {
	if len(r.buf)-r.start >= n {
		return
	}
	if !r.shared && len(r.buf) >= n {
		r.end = copy(r.buf, r.buf[r.start:r.end])
		r.start = 0
		return
	}
	nb := make([]byte, max(chunkSize, n))
	r.end = copy(nb, r.buf[r.start:r.end])
	r.start, r.buf, r.shared = 0, nb, false
}

// fill reads more data into the buffer (at least one byte, or the read's error).
func (r *FrameReader) fill() error {
	if len(r.buf)-r.end < minRead {
		r.room(r.end - r.start + minRead)
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
	body, err := r.body()
	if err != nil {
		return Frame{}, err
	}
	return decodeBody(body)
}

// body reads the next frame's body (type byte included), with Next's checks on its length.
func (r *FrameReader) body() ([]byte, error) {
	l, err := r.readUvarint()
	if err != nil {
		return nil, err
	}
	if l == 0 {
		return nil, fmt.Errorf("%w: empty frame", ErrMalformedFrame)
	}
	if l > uint64(r.max) {
		return nil, fmt.Errorf("%w: %d bytes > max %d", ErrFrameTooLarge, l, r.max)
	}
	n := int(l)
	if n > maxInPlace {
		// A large frame gets a body of its own, read straight into it.
		body := make([]byte, n)
		if err := r.readFull(body); err != nil {
			return nil, err
		}
		return body, nil
	}
	r.room(n)
	for r.end-r.start < n {
		if err := r.fill(); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	body := r.buf[r.start : r.start+n : r.start+n]
	r.start += n
	switch FrameType(body[0]) {
	case FrameBatch, FrameResults:
		r.shared = true // decoded records alias the body
	}
	return body, nil
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
	// Fast path, inlined: a one-byte varint (the common case for every counter a record has).
	if d.pos < len(d.b) && d.b[d.pos] < 0x80 && d.err == nil {
		v := uint64(d.b[d.pos])
		d.pos++
		return v
	}
	return d.uvarintSlow(what)
}

func (d *decoder) uvarintSlow(what string) uint64 {
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
	// Fast path: a one-byte length that fits in what remains.
	if p := d.pos; p < len(d.b) && d.b[p] < 0x80 && d.err == nil {
		end := p + 1 + int(d.b[p])
		if end <= len(d.b) {
			d.pos = end
			return d.b[p+1 : end : end]
		}
	}
	return d.bytesSlow(what)
}

func (d *decoder) bytesSlow(what string) []byte {
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

// uv decodes the varint at b[p:], returning it and the position after it, or p < 0 when it
// does not decode.
func uv(b []byte, p int) (uint64, int) {
	if uint(p) < uint(len(b)) {
		if c := b[p]; c < 0x80 {
			return uint64(c), p + 1
		}
	}
	return uvSlow(b, p)
}

func uvSlow(b []byte, p int) (uint64, int) {
	if p >= len(b) {
		return 0, -1
	}
	v, n := binary.Uvarint(b[p:])
	if n <= 0 {
		return 0, -1
	}
	return v, p + n
}

// recordFast decodes a well-formed record without meta in one pass over local variables. It
// changes nothing and returns false for anything else (a malformed record, meta), which
// record then decodes, or refuses with the precise reason, field by field.
func (d *decoder) recordFast(r *Record) bool {
	return d.recordFastTo(&r.Record, &r.Seq, &r.Sub, &r.Weight, &r.Attempt, &r.Flag)
}

// recordFastTo is recordFast writing the fields where the caller keeps them.
func (d *decoder) recordFastTo(rec *troupe.Record, seqTo, subTo, weightTo *uint64, attemptTo *uint32, flagTo *Flag) bool {
	b, p := d.b, d.pos
	var seq, sub, weight, attempt, flag, kl, pl, nmeta uint64
	if seq, p = uv(b, p); p < 0 {
		return false
	}
	if sub, p = uv(b, p); p < 0 {
		return false
	}
	if weight, p = uv(b, p); p < 0 {
		return false
	}
	if attempt, p = uv(b, p); p < 0 || attempt > math.MaxUint32 {
		return false
	}
	if flag, p = uv(b, p); p < 0 || flag > math.MaxInt32 {
		return false
	}
	if kl, p = uv(b, p); p < 0 || kl > uint64(len(b)-p) {
		return false
	}
	ks := p
	p += int(kl)
	if pl, p = uv(b, p); p < 0 || pl > uint64(len(b)-p) {
		return false
	}
	ps := p
	p += int(pl)
	if nmeta, p = uv(b, p); p < 0 || nmeta != 0 {
		return false
	}
	*seqTo, *subTo, *weightTo, *attemptTo, *flagTo = seq, sub, weight, uint32(attempt), Flag(flag)
	var key string
	var payload []byte
	if kl > 0 {
		key = unsafe.String(&b[ks], int(kl))
	}
	if pl > 0 {
		e := ps + int(pl)
		payload = b[ps:e:e]
	}
	*rec = troupe.Record{Key: key, Payload: payload}
	d.pos = p
	return true
}

func (d *decoder) record(r *Record) {
	if d.err == nil && d.recordFast(r) {
		return
	}
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
	r.Payload, r.Meta = nil, nil
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
	errs := make([]RecordError, len(res.Errors))
	for i, e := range res.Errors {
		errs[i] = *e
	}
	return checkCounts(res.Counts, len(res.Outputs), errs)
}

func checkCounts(counts []uint32, outputs int, errs []RecordError) error {
	var sum uint64
	for _, c := range counts {
		sum += uint64(c)
	}
	if sum != uint64(outputs) {
		return fmt.Errorf("counts add up to %d outputs, frame has %d", sum, outputs)
	}
	next := uint64(0)
	for _, e := range errs {
		i := uint64(e.Index)
		if i < next || i >= uint64(len(counts)) {
			return fmt.Errorf("error index %d out of order or out of range (%d results)", e.Index, len(counts))
		}
		if counts[i] != 0 {
			return fmt.Errorf("error index %d has %d outputs", e.Index, counts[i])
		}
		next = i + 1
	}
	return nil
}

// ResultsView is a Results frame decoded for the host without a wire Record per output: the
// outputs as the user's records (their keys, payloads and meta alias the frame body) and, by
// the same index, the wire identity the host checks. FrameReader.NextView fills it.
type ResultsView struct {
	Counts  []uint32
	Outputs []troupe.Record
	Ident   []Identity
	Errors  []RecordError
}

// Identity is the host's bookkeeping carried by an output record on the wire.
type Identity struct {
	Seq, Sub, Weight uint64
	Flag             Flag
}

// NextView reads the next frame like Next, but decodes a Results frame into rv instead of
// Frame.Results (which stays nil). rv's Counts, Ident and Errors are reused from call to call;
// Outputs is a new slice for every frame (it is handed on). rv is checked like a Results frame
// (CheckResults).
func (r *FrameReader) NextView(rv *ResultsView) (Frame, error) {
	body, err := r.body()
	if err != nil {
		return Frame{}, err
	}
	if FrameType(body[0]) != FrameResults {
		return decodeBody(body)
	}
	d := decoder{b: body, pos: 1}
	rv.Counts, rv.Ident, rv.Errors, rv.Outputs = rv.Counts[:0], rv.Ident[:0], rv.Errors[:0], nil
	if n := d.count("result count", 1); n > 0 {
		rv.Counts = slices.Grow(rv.Counts, n)
		for range n {
			rv.Counts = append(rv.Counts, d.u32("output count"))
		}
	}
	if n := d.count("output record count", minRecordSize); n > 0 {
		rv.Outputs = make([]troupe.Record, n)
		rv.Ident = slices.Grow(rv.Ident, n)[:n]
		var w Record
		var attempt uint32
		for i := 0; i < n && d.err == nil; i++ {
			id := &rv.Ident[i]
			if d.err == nil && d.recordFastTo(&rv.Outputs[i], &id.Seq, &id.Sub, &id.Weight, &attempt, &id.Flag) {
				continue // decoded in place: no copy of the record
			}
			d.record(&w)
			rv.Outputs[i] = w.Record
			*id = Identity{Seq: w.Seq, Sub: w.Sub, Weight: w.Weight, Flag: w.Flag}
		}
	}
	if n := d.count("error count", minErrorSize); n > 0 {
		rv.Errors = slices.Grow(rv.Errors, n)
		for range n {
			e := RecordError{Index: d.u32("error index")}
			e.Message = d.str("error message")
			rv.Errors = append(rv.Errors, e)
		}
	}
	if d.err == nil && d.pos != len(body) {
		d.fail("%d trailing bytes", len(body)-d.pos)
	}
	if d.err == nil {
		if err := checkCounts(rv.Counts, len(rv.Outputs), rv.Errors); err != nil {
			d.fail("%v", err)
		}
	}
	if d.err != nil {
		return Frame{}, fmt.Errorf("%s frame: %w", FrameResults, d.err)
	}
	return Frame{Type: FrameResults}, nil
}

// RecordBuffers is storage for the records of batch frames, reused from frame to frame by
// FrameReader.NextBatch: the records themselves and the pointers Frame.Records holds.
type RecordBuffers struct {
	Slab []Record
	Ptrs []*Record
	// used is how many records of Slab (from the start) may reference a frame body: those of
	// the last frame decoded into it. bodyLen is that body's length.
	used, bodyLen int
}

// keepBodyBytes is the largest frame body a reset RecordBuffers may keep referenced: clearing
// the records of a small frame costs more (a store with a write barrier per field while the GC
// marks) than keeping its body alive until the buffers are reused.
const keepBodyBytes = 64 << 10

// Reset makes the buffers ready for reuse. The records of a large frame are cleared, so that
// pooled buffers do not keep its body alive; those of a small one stay until NextBatch
// overwrites or clears them.
func (rb *RecordBuffers) Reset() {
	if rb.bodyLen > keepBodyBytes {
		clear(rb.Slab[:rb.used])
		rb.used, rb.bodyLen = 0, 0
	}
	rb.Slab, rb.Ptrs = rb.Slab[:0], rb.Ptrs[:0]
}

// NextBatch reads the next frame like Next, but decodes a Batch frame's records into rb
// (growing it when needed): Frame.Records is rb.Ptrs, valid until rb is reused.
func (r *FrameReader) NextBatch(rb *RecordBuffers) (Frame, error) {
	body, err := r.body()
	if err != nil {
		return Frame{}, err
	}
	if FrameType(body[0]) != FrameBatch {
		return decodeBody(body)
	}
	f := Frame{Type: FrameBatch}
	d := decoder{b: body, pos: 1}
	f.BatchID = d.uvarint("batch id")
	n := d.count("record count", minRecordSize)
	if n > 0 {
		if cap(rb.Slab) < n || cap(rb.Ptrs) < n {
			// Fresh storage: every pointer is set once here, not per frame.
			rb.Slab = make([]Record, n, max(n, 2*cap(rb.Slab)))
			all := rb.Slab[:cap(rb.Slab)]
			rb.Ptrs = make([]*Record, len(all))
			for i := range all {
				rb.Ptrs[i] = &all[i]
			}
			rb.used = 0
		}
		rb.Slab, rb.Ptrs = rb.Slab[:n], rb.Ptrs[:n]
		if rb.used > n {
			clear(rb.Slab[n:rb.used]) // records of an older frame: do not keep its body alive
		}
		rb.used, rb.bodyLen = n, len(body)
		for i := range rb.Slab {
			r := &rb.Slab[i]
			if rb.Ptrs[i] != r { // only if a caller changed it: a store costs a write barrier
				rb.Ptrs[i] = r
			}
			d.record(r) // sets every field
			if d.err != nil {
				break
			}
		}
		f.Records = rb.Ptrs
	}
	if d.err != nil {
		return Frame{}, fmt.Errorf("%s frame: %w", FrameBatch, d.err)
	}
	if d.pos != len(body) {
		return Frame{}, fmt.Errorf("%w: %s frame has %d trailing bytes", ErrMalformedFrame, FrameBatch, len(body)-d.pos)
	}
	return f, nil
}
