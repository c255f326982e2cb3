"""Unit tests of the data loop's record handling (troupe_plugin._serve): the outcomes of a mix of
records, through process and process_batch, decoded from the frames the plugin sends and checked
against what the stage returned."""
import os
import random
import unittest

from troupe_plugin import _serve, codec
from troupe_plugin.codec import Record


class Sock:
    """Collects what the plugin sends."""

    def __init__(self):
        self.data = bytearray()

    def sendall(self, b):
        self.data += b


class Chunks:
    def __init__(self, data):
        self.data, self.pos = bytes(data), 0

    def recv_into(self, view):
        n = min(len(view), len(self.data) - self.pos)
        view[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n


def decode_all(data, max_frame=codec.DEFAULT_MAX_FRAME):
    r = codec.FrameReader(Chunks(data), max_frame)
    frames = []
    while True:
        f = r.next()
        if f is None:
            return frames
        frames.append(f)


def behaviour(rec):
    """What the test stage does with rec, decided by its payload's first byte: the expected
    outcome is ("ok", [(key, payload, meta)]) or ("err", text)."""
    c = rec.payload[:1]
    if c == b"e":
        raise ValueError("bad %s" % rec.key)
    if c == b"f":
        return []  # filtered
    if c == b"k":
        rec.key = rec.key + "!"
        rec.payload = rec.payload.upper()
        return [rec]
    if c == b"m":
        rec.meta["m"] = "v"
        return [rec]
    if c == b"s":
        return [Record(rec.key + "#0", b"a"), Record(rec.key + "#1", b"b" * 300, {"x": "y"})]
    if c == b"b":
        return [rec.payload + b"!"]  # bytes: the input's key and meta
    if c == b"o":
        return rec  # one Record, not in a list
    if c == b"g":
        return (r for r in [rec, rec])
    if c == b"t":
        return 42  # not a valid result
    rec.payload = rec.payload.upper()
    return [rec]


def expected(key, payload, meta, attempt):
    rec = Record(key, payload, dict(meta), attempt=attempt)
    try:
        outs = behaviour(rec)
    except ValueError as e:
        return ("err", str(e))
    if outs is None:
        return ("ok", [])
    if isinstance(outs, Record):
        outs = [outs]
    if outs == 42:
        return ("err", "TypeError")
    res = []
    for o in outs:
        if isinstance(o, bytes):
            res.append((key, o, dict(meta)))
        else:
            res.append((o.key, o.payload, dict(o.meta)))
    return ("ok", res)


def make_inputs(n, seed):
    rnd = random.Random(seed)
    kinds = b"....eefkmsbogt"
    ins = []
    for i in range(n):
        kind = kinds[rnd.randrange(len(kinds))]
        size = rnd.choice([0, 5, 64, 127, 128, 300, 20000])
        payload = (bytes([kind]) + os.urandom(size))[:max(size, 1)]
        key = rnd.choice(["", "k%d" % i, "\u00e9%d" % i, "x" * 200])
        meta = {} if rnd.random() < 0.8 else {"in": str(i)}
        attempt = 0 if rnd.random() < 0.9 else rnd.randrange(1, 300)
        seq = 1 + i + (0 if rnd.random() < 0.9 else 1 << rnd.choice([7, 14, 21, 28, 35]))
        ins.append(Record(key, payload, meta, attempt=attempt, seq=seq, sub=rnd.choice([0, 0, 0, 3])))
    return ins


class TestRecordHandling(unittest.TestCase):
    def run_stage(self, mode, ins, batch_size=256, max_frame=codec.DEFAULT_MAX_FRAME, check=True):
        if mode == "each":
            stage = _serve._Stage(behaviour, None, None, None, batch_size)
        else:
            def batch(recs):
                out = []
                for r in recs:
                    try:
                        out.append(behaviour(r))
                    except ValueError as e:
                        out.append(e)
                return out
            stage = _serve._Stage(None, batch, None, None, batch_size)
        srv = _serve._Server(stage)
        srv.sock = Sock()
        srv.credits = 1 << 30
        srv.max_frame = max_frame
        budget = max_frame - 64
        results = codec.ResultsBuilder()
        # The inputs as the plugin gets them: decoded from batch frames of up to 100 records.
        recs = []
        for lo in range(0, len(ins), 100):
            recs.extend(decode_all(codec.encode_batch(1, ins[lo:lo + 100]))[0].records)
        srv.in_flight = len(recs)
        for lo in range(0, len(recs), 333):
            if mode == "each":
                srv._run_each(recs[lo:lo + 333], results, budget)
            else:
                srv._run_batch(recs[lo:lo + 333], results, budget)
        srv._flush(results)
        got = []
        for f in decode_all(srv.sock.data, max_frame):  # refuses a frame over max_frame
            if f.type == codec.CREDIT:
                continue
            self.assertEqual(f.type, codec.RESULTS)
            errs = dict(f.errors)
            k = 0
            for i, c in enumerate(f.counts):
                outs = f.outputs[k:k + c]
                k += c
                inp = ins[len(got)]
                for o in outs:
                    self.assertEqual((o.seq, o.sub, o.weight, o.attempt, o.flag), (inp.seq, inp.sub, inp.weight, 0, 0))
                if i in errs:
                    got.append(("err", errs[i]))
                else:
                    got.append(("ok", [(o.key, o.payload, o.meta) for o in outs]))
        self.assertEqual(len(got), len(ins))
        if not check:
            return got
        for i, (inp, g) in enumerate(zip(ins, got)):
            want = expected(inp.key, inp.payload, inp.meta, inp.attempt)
            if want[0] == "err":
                self.assertEqual(g[0], "err", "record %d" % i)
                self.assertIn(want[1], g[1], "record %d" % i)
            else:
                self.assertEqual(g, want, "record %d" % i)
        return srv

    def test_each(self):
        for seed in range(4):
            with self.subTest(seed=seed):
                self.run_stage("each", make_inputs(1500, seed))

    def test_batch(self):
        for seed in range(4):
            with self.subTest(seed=seed):
                self.run_stage("batch", make_inputs(1500, seed), batch_size=[1, 7, 256, 100000][seed])

    def test_all_fast(self):
        ins = [Record("k%d" % i, b"p%d" % i, seq=i + 1) for i in range(5000)]
        for mode in ("each", "batch"):
            with self.subTest(mode=mode):
                self.run_stage(mode, ins, batch_size=100000)

    def test_small_max_frame(self):
        # Frames stay within a small max_frame: results are flushed before they would pass it;
        # an output that cannot fit in a frame fails its record, and only it.
        ins = [Record("k%d" % i, b"." + b"p" * 3000, seq=i + 1) for i in range(300)]
        big = {7, 150, 299}
        for i in big:
            ins[i].payload = b"." + b"p" * (100 << 10)
        for mode in ("each", "batch"):
            with self.subTest(mode=mode):
                got = self.run_stage(mode, ins, max_frame=64 << 10, check=False)
                for i, g in enumerate(got):
                    if i in big:
                        self.assertEqual(g[0], "err")
                        self.assertIn("over the max frame", g[1])
                    else:
                        self.assertEqual(g, ("ok", [("k%d" % i, ins[i].payload.upper(), {})]))

    def test_frame_counts_bounded(self):
        # No Results frame reports more than MAX_RESULTS_PER_FRAME records.
        ins = [Record("", b"", seq=i + 1) for i in range(70000)]
        srv = self.run_stage("batch", ins, batch_size=100000)
        for f in decode_all(srv.sock.data):
            if f.type == codec.RESULTS:
                self.assertLessEqual(len(f.counts), _serve.MAX_RESULTS_PER_FRAME)


if __name__ == "__main__":
    unittest.main()
