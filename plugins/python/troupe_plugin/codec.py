"""The data frames of troupe's stage protocol 1.0 (ipc/README.md, section 4), in pure Python.

    frame  = length:uvarint  type:byte  body:(length-1 bytes)
    record = seq:uvarint sub:uvarint weight:uvarint attempt:uvarint flag:uvarint
             key:string payload:bytes nmeta:uvarint (meta_key:string meta_value:string){nmeta}

    Batch   (1, host -> plugin): id:uvarint n:uvarint record{n}
    Results (2, plugin -> host): n:uvarint count:uvarint{n} m:uvarint record{m}
                                 e:uvarint (index:uvarint message:string){e}
    Credit  (3, plugin -> host): n:uvarint

This module needs nothing but the standard library; the Go side is ipc/frame.go. Decoding checks
everything the Go decoder checks (lengths within the frame, counts that fit the bytes left, no
trailing bytes), and a frame's length is checked against the limit before anything is allocated.
"""

BATCH = 1
RESULTS = 2
CREDIT = 3

DEFAULT_MAX_FRAME = 64 << 20

# The smallest encoded record and error (see ipc/frame.go): used to bound counts read from the
# wire before allocating.
_MIN_RECORD = 8
_MIN_ERROR = 2


class FrameError(Exception):
    """A malformed frame, or one over the size limit: a protocol error."""


class Record:
    """A record: key (str), payload (bytes), meta (dict of str to str), and attempt, the number
    of failed attempts at the record before this one (0 the first time).

    A stage returns records as its outputs; the input itself, modified, is the cheapest output.
    The record's identity on the wire (seq, sub, weight) is the SDK's business: every output of an
    input carries the input's, whatever record object it is.
    """

    # A decoded record keeps the bytes an output with its key starts with (_pre: seq, sub,
    # weight, attempt 0, flag 0, key) and decodes its key and identity from them when asked: the
    # decoder sets five slots, and an input returned with its key unchanged is encoded by
    # concatenation. _key is the key, or while it is not decoded yet its offset in _pre (an int);
    # _id is (seq, sub, weight, attempt, flag), None when it is _pre's with attempt and flag 0.
    # Setting the key drops _pre.
    __slots__ = ("_pre", "payload", "_meta", "_key", "_id")

    def __init__(self, key="", payload=b"", meta=None, attempt=0, seq=0, sub=0, weight=0, flag=0):
        if type(key) is int:
            raise TypeError("a record's key is a str, not %r" % (key,))
        self._pre = None
        self._key = key
        self.payload = payload
        self._meta = meta  # None: no metadata yet (the meta property makes a dict)
        self._id = (seq, sub, weight, attempt, flag)

    @property
    def key(self):
        """The record's key (str; bytes that are not UTF-8 decode with surrogateescape)."""
        k = self._key
        if type(k) is int:
            k = self._key = self._pre[k:].decode("utf-8", "surrogateescape")
        return k

    @key.setter
    def key(self, value):
        if self._id is None:
            self._id = self._ident()
        if type(value) is int:
            raise TypeError("a record's key is a str, not %r" % (value,))
        self._pre = None
        self._key = value

    @property
    def meta(self):
        """The record's metadata, a dict of str to str."""
        m = self._meta
        if m is None:
            m = self._meta = {}
        return m

    @meta.setter
    def meta(self, value):
        self._meta = value

    def _ident(self):
        i = self._id
        if i is None:
            seq, sub, weight = _split_pre(self._pre)[2]
            i = (seq, sub, weight, 0, 0)
        return i

    def _set(self, k, v):
        i = list(self._ident())
        i[k] = v
        self._id = tuple(i)

    seq = property(lambda self: self._ident()[0], lambda self, v: self._set(0, v),
                   doc="The host's number for the record (an output gets its input's).")
    sub = property(lambda self: self._ident()[1], lambda self, v: self._set(1, v))
    weight = property(lambda self: self._ident()[2], lambda self, v: self._set(2, v))
    attempt = property(lambda self: 0 if self._id is None else self._id[3], lambda self, v: self._set(3, v),
                       doc="The number of failed attempts at the record before this one.")
    flag = property(lambda self: 0 if self._id is None else self._id[4], lambda self, v: self._set(4, v))

    def __repr__(self):
        return "Record(key=%r, payload=%r, meta=%r, attempt=%d, seq=%d)" % (
            self.key, self.payload, self.meta, self.attempt, self.seq)

    def __eq__(self, other):
        if not isinstance(other, Record):
            return NotImplemented
        return (self.key, self.payload, self.meta, self._ident()) == (
            other.key, other.payload, other.meta, other._ident())


def _split_pre(pre):
    """A decoded record's _pre as (head, key bytes, (seq, sub, weight)): head is the encoded seq,
    sub, weight, attempt 0 and flag 0 of its outputs."""
    seq, i = uvarint(pre, 0)
    sub, i = uvarint(pre, i)
    weight, i = uvarint(pre, i)
    i += 2  # attempt 0, flag 0
    head = pre[:i]
    n, i = uvarint(pre, i)
    return head, pre[i:i + n], (seq, sub, weight)


def put_uvarint(x):
    """The unsigned LEB128 encoding of x >= 0 (300 -> b'\\xac\\x02')."""
    if x < 0x80:
        if x < 0:
            raise ValueError("negative uvarint %d" % x)
        return _SMALL[x]
    out = bytearray()
    while x >= 0x80:
        out.append((x & 0x7F) | 0x80)
        x >>= 7
    out.append(x)
    return bytes(out)


_SMALL = [bytes((i,)) for i in range(0x80)]


def uvarint(b, i, end=None):
    """Decodes a uvarint from b at i (not past end); returns (value, next index)."""
    if end is None:
        end = len(b)
    x = 0
    s = 0
    while True:
        if i >= end:
            raise FrameError("truncated varint")
        c = b[i]
        i += 1
        if c < 0x80:
            if s >= 63 and (s > 63 or c > 1):
                raise FrameError("varint overflows 64 bits")
            return x | (c << s), i
        x |= (c & 0x7F) << s
        s += 7
        if s > 63:
            raise FrameError("varint overflows 64 bits")


def _string(b, i, end, what):
    n, i = uvarint(b, i, end)
    j = i + n
    if j > end:
        raise FrameError("%s length %d exceeds the remaining %d bytes" % (what, n, end - i))
    return j, i


def _encode_str(s):
    return s.encode("utf-8", "surrogateescape")


def _decode_str(b):
    return b.decode("utf-8", "surrogateescape")


def decode_records(b, i, end, n):
    """Decodes n records from b[i:end] (bytes that end at end); returns (list of Record, next
    index). A field running past end raises IndexError (decode_body makes it a FrameError): every
    field is followed by one read with an index, which fails when a slice before it came short."""
    if n > (end - i) // _MIN_RECORD:
        raise FrameError("record count %d does not fit in the remaining %d bytes" % (n, end - i))
    if len(b) != end:
        raise ValueError("decode_records: b must end at end")
    out = []
    append = out.append
    new = Record.__new__
    R = Record
    Z4 = b"\x00\x00\x00\x00"
    for _ in range(n):
        start = i
        # seq: skipped here (the seq property decodes it from _pre), inlined up to four bytes.
        if b[i] < 0x80:
            i += 1
        elif b[i + 1] < 0x80:
            i += 2
        elif b[i + 2] < 0x80:
            i += 3
        elif b[i + 3] < 0x80:
            i += 4
        else:
            _, i = uvarint(b, i, end)
        r = new(R)
        if b[i:i + 4] == Z4:
            # sub, weight, attempt and flag 0, one byte each: what this host sends a record's
            # first attempt. The output prefix is the bytes as they came.
            i += 4
            c = b[i]
            if c < 0x80:
                r._key = i + 1 - start
                i += 1 + c
            else:
                j, i = _string(b, i, end, "key")
                r._key = i - start
                i = j
            r._pre = b[start:i]
            r._id = None
        else:
            i = _decode_ident(r, b, start, end)
        # payload
        c = b[i]
        if c < 0x80:
            i += 1
            j = i + c
        else:
            j, i = _string(b, i, end, "payload")
        r.payload = b[i:j]
        # meta
        if b[j] == 0:
            r._meta = None
            i = j + 1
        else:
            r._meta, i = _decode_meta(b, j, end)
        append(r)
    return out, i


def _decode_ident(r, b, start, end):
    """Decodes the identity and key of a record at start the general way, into r; returns the
    index of its payload."""
    seq, i = uvarint(b, start, end)
    sub, i = uvarint(b, i, end)
    weight, i = uvarint(b, i, end)
    attempt, i = uvarint(b, i, end)
    flag, i = uvarint(b, i, end)
    if attempt > 0xFFFFFFFF or flag > 0x7FFFFFFF:
        raise FrameError("attempt %d or flag %d out of range" % (attempt, flag))
    k = i
    j, i = _string(b, i, end, "key")
    pv = put_uvarint
    head = pv(seq) + pv(sub) + pv(weight) + b"\x00\x00"
    r._pre = head + b[k:j]
    r._key = len(head) + i - k
    r._id = (seq, sub, weight, attempt, flag)
    return j


def _decode_meta(b, i, end):
    """Decodes a record's metadata at i; returns (dict, next index)."""
    nmeta, i = uvarint(b, i, end)
    if nmeta > (end - i) // 2:
        raise FrameError("meta count %d does not fit in the remaining %d bytes" % (nmeta, end - i))
    meta = {}
    for _ in range(nmeta):
        j, i = _string(b, i, end, "meta key")
        k = b[i:j].decode("utf-8", "surrogateescape")
        i = j
        j, i = _string(b, i, end, "meta value")
        meta[k] = b[i:j].decode("utf-8", "surrogateescape")
        i = j
    return meta, i


def encode_record(r, seq=None, sub=None, weight=None, attempt=None, flag=None):
    """The encoding of r; keyword arguments override its identity fields."""
    parts = []
    _append_record(parts, r.seq if seq is None else seq, r.sub if sub is None else sub,
                   r.weight if weight is None else weight, r.attempt if attempt is None else attempt,
                   r.flag if flag is None else flag, r)
    return b"".join(parts)


def _append_record(parts, seq, sub, weight, attempt, flag, r):
    """Appends the encoding of a record to parts (a list of bytes)."""
    key = r.key
    if type(key) is str:
        key = key.encode("utf-8", "surrogateescape")
    payload = r.payload
    if type(payload) is str:
        payload = payload.encode("utf-8")
    meta = r.meta
    pv = put_uvarint
    parts.append(pv(seq) + pv(sub) + pv(weight) + pv(attempt) + pv(flag) + pv(len(key)) + key + pv(len(payload)))
    parts.append(payload)
    if meta:
        mp = [pv(len(meta))]
        for k, v in meta.items():
            k = _encode_str(k)
            v = _encode_str(v)
            mp.append(pv(len(k)) + k + pv(len(v)) + v)
        parts.append(b"".join(mp))
    else:
        parts.append(b"\x00")


def frame(ftype, body):
    """A whole frame of type ftype with body (bytes)."""
    return put_uvarint(len(body) + 1) + _SMALL[ftype] + body


def encode_batch(batch_id, records, max_frame=DEFAULT_MAX_FRAME):
    """A Batch frame (the host's side: tests and tools use it)."""
    parts = [put_uvarint(batch_id), put_uvarint(len(records))]
    for r in records:
        _append_record(parts, r.seq, r.sub, r.weight, r.attempt, r.flag, r)
    return _frame_of(BATCH, parts, max_frame)


def _frame_of(ftype, parts, max_frame):
    body = b"".join(parts)
    if len(body) + 1 > max_frame:
        raise FrameError("frame of %d bytes > max %d" % (len(body) + 1, max_frame))
    return put_uvarint(len(body) + 1) + _SMALL[ftype] + body


def encode_credit(n):
    """A Credit frame granting n records."""
    body = put_uvarint(n)
    return put_uvarint(len(body) + 1) + b"\x03" + body


def _head(inp):
    """The encoded seq, sub, weight, attempt 0 and flag 0 of inp's outputs."""
    if inp._pre is not None:
        return _split_pre(inp._pre)[0]
    seq, sub, weight = inp._ident()[:3]
    return put_uvarint(seq) + put_uvarint(sub) + put_uvarint(weight) + b"\x00\x00"


def _key_bytes(o):
    """o's key as it goes on the wire."""
    if o._pre is not None:
        return _split_pre(o._pre)[1]
    key = o._key
    return key.encode("utf-8", "surrogateescape") if type(key) is str else bytes(key)


class ResultsBuilder:
    """Accumulates the outcomes of consecutive input records into one Results frame.

    add(input, outputs) records outputs (a list of Record) for input; fail(message) records an
    error; add_run adds inputs answered each by itself, encoded by the caller. Every output is
    encoded with the input's seq, sub and weight, attempt 0 and flag 0 (the host checks seq, sub
    and flag). size is the encoded size so far; frame() returns the frame and resets the builder.
    """

    __slots__ = ("counts", "outputs", "errors", "size", "n", "m")

    def __init__(self):
        self.reset()

    def reset(self):
        self.counts = bytearray()  # the encoded counts
        self.outputs = []
        self.errors = []
        self.size = 0
        self.n = 0
        self.m = 0

    def encode(self, inp, outs):
        """The encoding of outs (a list of Record) as inp's outputs: a list of bytes, three per
        output. It changes nothing; commit adds it."""
        enc = []
        head = _head(inp)
        for o in outs:
            if o is inp and o._pre is not None:
                h = o._pre
            else:
                key = _key_bytes(o)
                h = head + put_uvarint(len(key)) + key
            payload = o.payload
            if type(payload) is not bytes:
                payload = payload.encode("utf-8") if type(payload) is str else bytes(payload)
            h += put_uvarint(len(payload))
            meta = o._meta
            if meta:
                mp = [put_uvarint(len(meta))]
                for k, v in meta.items():
                    k = _encode_str(k)
                    v = _encode_str(v)
                    mp.append(put_uvarint(len(k)) + k + put_uvarint(len(v)) + v)
                enc.append(h)
                enc.append(payload)
                enc.append(b"".join(mp))
            else:
                enc.append(h)
                enc.append(payload)
                enc.append(b"\x00")
        return enc

    def add_one(self, inp, o, budget):
        """The fast path of add for one output record: adds it and returns True, or returns False
        (changing nothing) when it does not fit in budget bytes or is not a plain Record."""
        if type(o) is not Record or o._meta:
            return False
        payload = o.payload
        if type(payload) is not bytes:
            return False
        if o is inp and o._pre is not None:
            h = o._pre
        else:
            key = o._key
            if o._pre is not None or type(key) is not str:
                return False
            key = key.encode("utf-8", "surrogateescape")
            h = _head(inp) + put_uvarint(len(key)) + key
        n = len(payload)
        h += _SMALL[n] if n < 0x80 else put_uvarint(n)
        size = len(h) + n + 1
        if self.size + size + 2 > budget:
            return False
        out = self.outputs
        out.append(h)
        out.append(payload)
        out.append(b"\x00")
        self.counts.append(1)
        self.m += 1
        self.n += 1
        self.size += size + 2
        return True

    def add_run(self, blob, k, size):
        """Adds k inputs with one output each, blob (bytes of size bytes) being the outputs'
        encodings one after the other."""
        self.outputs.append(blob)
        self.counts += _ONES[:k] if k <= len(_ONES) else b"\x01" * k
        self.m += k
        self.n += k
        self.size += size + k

    @staticmethod
    def encoded_size(enc):
        """The number of bytes of an encoding returned by encode."""
        return sum(map(len, enc))

    def commit(self, enc, size):
        """Adds an encoding returned by encode, of size bytes, as the next input's outputs."""
        k = len(enc) // 3
        self.outputs.extend(enc)
        self.counts += _SMALL[k] if k < 0x80 else put_uvarint(k)
        self.m += k
        self.n += 1
        self.size += size + 2

    def add(self, inp, outs):
        """Adds outs (a list of Record) as the outputs of inp; returns their size in bytes."""
        enc = self.encode(inp, outs)
        size = self.encoded_size(enc)
        self.commit(enc, size)
        return size

    def fail(self, message):
        """Records an error for the next input."""
        if type(message) is not bytes:
            message = str(message).encode("utf-8", "replace")
        self.errors.append(put_uvarint(self.n) + put_uvarint(len(message)) + message)
        self.counts.append(0)
        self.n += 1
        self.size += len(message) + 8

    def frame(self):
        """The Results frame of everything added since the last reset, and resets."""
        parts = [put_uvarint(self.n), bytes(self.counts), put_uvarint(self.m)]
        parts.extend(self.outputs)
        parts.append(put_uvarint(len(self.errors)))
        parts.extend(self.errors)
        body = b"".join(parts)
        self.reset()
        return put_uvarint(len(body) + 1) + b"\x02" + body


_ONES = b"\x01" * 1024


def encode_results(counts, outputs, errors, max_frame=DEFAULT_MAX_FRAME):
    """A Results frame: counts (list of int), outputs (list of Record, encoded as they are),
    errors (list of (index, message))."""
    parts = [put_uvarint(len(counts))]
    parts.extend(put_uvarint(c) for c in counts)
    parts.append(put_uvarint(len(outputs)))
    for r in outputs:
        _append_record(parts, r.seq, r.sub, r.weight, r.attempt, r.flag, r)
    parts.append(put_uvarint(len(errors)))
    for idx, msg in errors:
        if type(msg) is str:
            msg = msg.encode("utf-8")
        parts.append(put_uvarint(idx) + put_uvarint(len(msg)) + msg)
    return _frame_of(RESULTS, parts, max_frame)


class Frame:
    """A decoded frame: type, and batch_id/records (Batch), counts/outputs/errors (Results),
    credit (Credit). A frame of an unknown type has only its type."""

    __slots__ = ("type", "batch_id", "records", "counts", "outputs", "errors", "credit")

    def __init__(self, ftype):
        self.type = ftype
        self.batch_id = 0
        self.records = []
        self.counts = []
        self.outputs = []
        self.errors = []
        self.credit = 0


def decode_body(b, i, end):
    """Decodes the frame whose type byte is b[i] and whose body ends at end."""
    if end != len(b) or type(b) is not bytes:
        b = bytes(b[:end])  # the record decoder reads up to the end of b
    f = Frame(b[i])
    i += 1
    t = f.type
    try:
        if t == BATCH:
            f.batch_id, i = uvarint(b, i, end)
            n, i = uvarint(b, i, end)
            f.records, i = decode_records(b, i, end, n)
        elif t == RESULTS:
            n, i = uvarint(b, i, end)
            if n > end - i:
                raise FrameError("result count %d does not fit in the remaining %d bytes" % (n, end - i))
            counts = []
            for _ in range(n):
                c, i = uvarint(b, i, end)
                if c > 0xFFFFFFFF:
                    raise FrameError("output count %d overflows 32 bits" % c)
                counts.append(c)
            m, i = uvarint(b, i, end)
            f.outputs, i = decode_records(b, i, end, m)
            e, i = uvarint(b, i, end)
            if e > (end - i) // _MIN_ERROR:
                raise FrameError("error count %d does not fit in the remaining %d bytes" % (e, end - i))
            errors = []
            for _ in range(e):
                idx, i = uvarint(b, i, end)
                j, i = _string(b, i, end, "error message")
                errors.append((idx, b[i:j].decode("utf-8", "replace")))
                i = j
            if sum(counts) != m:
                raise FrameError("counts add up to %d outputs, frame has %d" % (sum(counts), m))
            nxt = 0
            for idx, _ in errors:
                if idx < nxt or idx >= n:
                    raise FrameError("error index %d out of order or out of range (%d results)" % (idx, n))
                if counts[idx] != 0:
                    raise FrameError("error index %d has %d outputs" % (idx, counts[idx]))
                nxt = idx + 1
            f.counts, f.errors = counts, errors
        elif t == CREDIT:
            f.credit, i = uvarint(b, i, end)
            if f.credit > 0xFFFFFFFF:
                raise FrameError("credit %d overflows 32 bits" % f.credit)
        else:
            return f  # a later minor version's frame: skipped unparsed
    except IndexError:
        raise FrameError("truncated %s frame" % _NAMES.get(t, t)) from None
    if i != end:
        raise FrameError("%s frame has %d trailing bytes" % (_NAMES.get(t, t), end - i))
    return f


_NAMES = {BATCH: "batch", RESULTS: "results", CREDIT: "credit"}


class FrameReader:
    """Reads frames from a stream socket (anything with recv_into), refusing a frame longer than
    max_frame before allocating it. next() returns a Frame, or None at a clean end of stream
    (between frames); it raises EOFError inside a frame and FrameError for a bad frame."""

    def __init__(self, sock, max_frame=DEFAULT_MAX_FRAME, bufsize=1 << 20):
        self.sock = sock
        self.max = max_frame
        self.buf = bytearray(bufsize)
        self.view = memoryview(self.buf)
        self.start = 0
        self.end = 0

    def buffered(self):
        """The number of bytes read and not yet decoded."""
        return self.end - self.start

    def _fill(self, need):
        """Reads until at least need bytes are buffered; False at EOF."""
        if self.start > 0 and self.start + need > len(self.buf):
            n = self.end - self.start
            self.buf[:n] = self.buf[self.start:self.end]
            self.start, self.end = 0, n
        if need > len(self.buf):
            self.view.release()
            self.buf.extend(bytes(need - len(self.buf)))
            self.view = memoryview(self.buf)
        while self.end - self.start < need:
            n = self.sock.recv_into(self.view[self.end:])
            if n == 0:
                return False
            self.end += n
        return True

    def next(self, block=True):
        """The next frame; None at EOF between frames, or (block=False) when no whole frame is
        buffered."""
        while True:
            b, i, end = self.buf, self.start, self.end
            # The length prefix.
            x = s = 0
            j = i
            complete = False
            while j < end:
                c = b[j]
                j += 1
                x |= (c & 0x7F) << s
                if c < 0x80:
                    complete = True
                    break
                s += 7
                if s > 63:
                    raise FrameError("length prefix overflows 64 bits")
            if complete:
                if x == 0:
                    raise FrameError("empty frame")
                if x > self.max:
                    raise FrameError("frame of %d bytes > max %d" % (x, self.max))
                if j + x <= end:
                    self.start = j + x
                    # One copy per frame: the records' payloads are bytes of their own, and the
                    # read buffer can be reused.
                    return decode_body(bytes(self.view[j:j + x]), 0, x)
                need = (j - i) + x
            else:
                need = (end - i) + 1
            if not block:
                return None
            had = end - i
            if not self._fill(need):
                if had == 0:
                    return None
                raise EOFError("data connection closed inside a frame")
