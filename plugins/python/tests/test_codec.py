"""Unit tests of troupe_plugin.codec (run by plugins/python's Go tests:
/usr/bin/python3 -m unittest discover -s tests -t . from plugins/python)."""
import unittest

from troupe_plugin import codec
from troupe_plugin.codec import FrameError, Record

# ipc/README.md's example, which ipc's ExampleAppendBatch checks on the Go side.
README_BATCH = bytes.fromhex("0e 01 01 01 07 00 00 00 00 01 61 02 68 69 00")
README_RESULTS = bytes.fromhex("10 02 01 01 01 07 00 00 00 00 01 61 02 48 49 00 00")
README_CREDIT = bytes.fromhex("02 03 01")


class Chunks:
    """A socket stand-in delivering data in chunks of the given size."""

    def __init__(self, data, size=7):
        self.data, self.size, self.pos = data, size, 0

    def recv_into(self, view):
        n = min(self.size, len(view), len(self.data) - self.pos)
        view[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n


class TestVarint(unittest.TestCase):
    def test_round_trip(self):
        for x in [0, 1, 127, 128, 300, 16383, 16384, 2**32 - 1, 2**63, 2**64 - 1]:
            b = codec.put_uvarint(x)
            self.assertEqual(codec.uvarint(b, 0), (x, len(b)))
        self.assertEqual(codec.put_uvarint(300), b"\xac\x02")

    def test_bad(self):
        with self.assertRaises(FrameError):
            codec.uvarint(b"\x80\x80", 0)
        with self.assertRaises(FrameError):
            codec.uvarint(b"\xff" * 10 + b"\x01", 0)  # over 64 bits
        with self.assertRaises(ValueError):
            codec.put_uvarint(-1)


class TestReadme(unittest.TestCase):
    def test_batch(self):
        rec = Record("a", b"hi", seq=7)
        self.assertEqual(codec.encode_batch(1, [rec]), README_BATCH)
        f = codec.FrameReader(Chunks(README_BATCH, 3)).next()
        self.assertEqual(f.type, codec.BATCH)
        self.assertEqual(f.batch_id, 1)
        self.assertEqual(f.records, [rec])
        self.assertIs(type(f.records[0].payload), bytes)

    def test_results_and_credit(self):
        inp = codec.FrameReader(Chunks(README_BATCH)).next().records[0]
        inp.payload = inp.payload.upper()
        rb = codec.ResultsBuilder()
        rb.add(inp, [inp])
        self.assertEqual(rb.frame(), README_RESULTS)
        self.assertEqual(codec.encode_credit(1), README_CREDIT)
        out = Record("a", b"HI", seq=7)
        self.assertEqual(codec.encode_results([1], [out], []), README_RESULTS)


class TestFastPath(unittest.TestCase):
    """ResultsBuilder.add_one: the input returned with a new payload, and other single outputs."""

    def decode(self, recs):
        return codec.FrameReader(Chunks(codec.encode_batch(1, recs))).next().records

    def test_readme(self):
        inp = self.decode([Record("a", b"hi", seq=7)])[0]
        inp.payload = inp.payload.upper()
        rb = codec.ResultsBuilder()
        self.assertTrue(rb.add_one(inp, inp, 1 << 20))
        self.assertEqual(rb.frame(), README_RESULTS)

    def test_identity_and_changes(self):
        ins = self.decode([Record("k%d" % i, b"p", seq=1000 + i, attempt=i % 2) for i in range(6)])
        ins[2].key = "new"
        ins[3].meta["m"] = "v"
        rb = codec.ResultsBuilder()
        for i, r in enumerate(ins):
            r.payload = b"P%d" % i
            out = ins[0] if i == 4 else r  # a record answered with another record's key
            if not rb.add_one(r, out, 1 << 20):
                rb.add(r, [out])
        f = codec.FrameReader(Chunks(rb.frame())).next()
        self.assertEqual(f.counts, [1] * 6)
        got = [(o.key, o.payload, o.meta, o.seq, o.attempt) for o in f.outputs]
        self.assertEqual(got, [
            ("k0", b"P0", {}, 1000, 0), ("k1", b"P1", {}, 1001, 0), ("new", b"P2", {}, 1002, 0),
            ("k3", b"P3", {"m": "v"}, 1003, 0), ("k0", b"P0", {}, 1004, 0), ("k5", b"P5", {}, 1005, 0)])

    def test_budget(self):
        inp = self.decode([Record("a", b"hi", seq=7)])[0]
        rb = codec.ResultsBuilder()
        self.assertFalse(rb.add_one(inp, inp, 5))
        self.assertEqual(rb.n, 0)


class TestRoundTrip(unittest.TestCase):
    def records(self):
        return [
            Record("", b"", seq=1),
            Record("k\u00e9y", b"\x00\xff" * 200, {"a": "b", "\u00fc": ""}, attempt=2, seq=300, sub=5, weight=9),
            Record("x" * 1000, b"p" * 70000, seq=2**40),
            Record("bad-\udcff", b"raw", seq=3),  # a key that is not UTF-8 survives the trip
        ]

    def test_batch(self):
        recs = self.records()
        data = codec.encode_batch(42, recs) + README_CREDIT + codec.encode_batch(43, recs[:1])
        r = codec.FrameReader(Chunks(data, 1000), bufsize=64)
        f = r.next()
        self.assertEqual((f.type, f.batch_id), (codec.BATCH, 42))
        self.assertEqual(f.records, recs)
        self.assertEqual(r.next().credit, 1)
        self.assertEqual(r.next().records, recs[:1])
        self.assertIsNone(r.next())

    def test_results_builder(self):
        recs = self.records()
        rb = codec.ResultsBuilder()
        rb.add(recs[0], [])
        rb.fail(b"boom")
        rb.add(recs[1], [Record("o1", b"1", {"m": "v"}), Record("o2", b"2")])
        rb.add(recs[2], [recs[2]])
        f = codec.FrameReader(Chunks(rb.frame())).next()
        self.assertEqual(f.type, codec.RESULTS)
        self.assertEqual(f.counts, [0, 0, 2, 1])
        self.assertEqual(f.errors, [(1, "boom")])
        # Outputs carry their input's seq, sub and weight, attempt 0, flag 0.
        o = f.outputs
        self.assertEqual([(x.key, x.seq, x.sub, x.weight, x.attempt, x.flag) for x in o],
                         [("o1", 300, 5, 9, 0, 0), ("o2", 300, 5, 9, 0, 0), ("x" * 1000, 2**40, 0, 0, 0, 0)])
        self.assertEqual(o[0].meta, {"m": "v"})
        self.assertEqual(o[2].payload, b"p" * 70000)
        self.assertEqual(rb.n, 0)

    def test_decoded_fields(self):
        # Every field of a decoded record reads as sent, whichever way it was decoded (fast:
        # sub, weight, attempt and flag 0; general: any of them set), and keeps reading so after
        # the key is read or set.
        recs = self.records() + [Record("k" * 200, b"v", seq=2**21 + 5), Record("a", b"", seq=2**35, attempt=1)]
        got = codec.FrameReader(Chunks(codec.encode_batch(1, recs))).next().records
        for want, r in zip(recs, got):
            with self.subTest(key=want.key[:10]):
                self.assertEqual((r.key, r.payload, r.meta, r.seq, r.sub, r.weight, r.attempt, r.flag),
                                 (want.key, want.payload, want.meta, want.seq, want.sub, want.weight,
                                  want.attempt, want.flag))
                r.key = r.key + "!"
                self.assertEqual((r.key, r.seq, r.sub, r.weight, r.attempt), (want.key + "!", want.seq, want.sub,
                                                                             want.weight, want.attempt))
                r.attempt = 9
                self.assertEqual((r.seq, r.attempt), (want.seq, 9))
        with self.assertRaises(TypeError):
            Record(5, b"")

    def test_unknown_type_skipped(self):
        data = codec.frame(99, b"whatever") + README_CREDIT
        r = codec.FrameReader(Chunks(data))
        self.assertEqual(r.next().type, 99)
        self.assertEqual(r.next().credit, 1)


class TestRefusals(unittest.TestCase):
    def read(self, data, max_frame=codec.DEFAULT_MAX_FRAME):
        return codec.FrameReader(Chunks(data), max_frame).next()

    def test_empty_frame(self):
        with self.assertRaises(FrameError):
            self.read(b"\x00")

    def test_too_large_before_allocating(self):
        class NoData:
            def recv_into(self, view):
                raise AssertionError("read past a refused length prefix")
        # 2**40 bytes announced: refused from the prefix alone.
        r = codec.FrameReader(NoData(), 1 << 20)
        r.buf[:6] = codec.put_uvarint(1 << 40)
        r.end = 6
        with self.assertRaises(FrameError):
            r.next()
        with self.assertRaises(FrameError):
            self.read(codec.put_uvarint(2000) + b"\x01", max_frame=1024)

    def test_truncated(self):
        with self.assertRaises(EOFError):
            self.read(README_BATCH[:-3])
        self.assertIsNone(self.read(b""))

    def test_malformed_bodies(self):
        bad = [
            codec.frame(codec.BATCH, b"\x01\x05"),                      # 5 records in 0 bytes
            codec.frame(codec.BATCH, b"\x01\x01\x07\x00\x00\x00\x00\x09a\x00\x00"),  # key overruns
            README_BATCH[:-1] + b"\x00\x00",                            # wrong length: reframe below
            codec.frame(codec.RESULTS, b"\x01\x02\x01" + codec.encode_record(Record(seq=1)) + b"\x00"),  # counts != outputs
            codec.frame(codec.RESULTS, b"\x01\x00\x00\x01\x05\x00"),    # error index out of range
            codec.frame(codec.CREDIT, b"\x01\x00"),                     # trailing byte
            codec.frame(codec.BATCH, b"\x01\x01\x07\x00\x00\x00\x00\x00\x00\x05"),  # meta count overruns
        ]
        bad[2] = codec.frame(codec.BATCH, README_BATCH[2:] + b"\x00")   # trailing byte in a batch
        for data in bad:
            with self.subTest(data=data.hex()):
                with self.assertRaises(FrameError):
                    self.read(data)


if __name__ == "__main__":
    unittest.main()
