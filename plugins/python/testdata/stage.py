"""A test stage for plugins/python's Go tests: it uppercases payloads, and its options make it
misbehave (see setup)."""
import logging
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from troupe_plugin import serve  # noqa: E402

log = logging.getLogger("teststage")


class Stage:
    """Options:
      refuse: setup raises (the options are refused);
      pidfile: append this process's pid to the file at setup;
      marker: a file; exit_at / leak_at act only in a process that creates it (the first one);
      fail_on: raise ValueError for a record whose payload contains this text;
      exit_at: os._exit(7) at the n-th record this process sees;
      leak_at, leak_mb: hold leak_mb MiB at the n-th record, then wait to be killed;
      sleep: seconds to spend on each record;
      split: emit this many outputs per record (key#i);
      batch: use process_batch (set before serve, from the TEST_BATCH environment variable).
    """

    def setup(self, opts):
        if opts.get("refuse"):
            raise ValueError("refused option %r" % opts["refuse"])
        self.opts = opts
        self.seen = 0
        self.first = False
        self.leak = []
        if opts.get("pidfile"):
            with open(opts["pidfile"], "a") as f:
                f.write("%d\n" % os.getpid())
        if opts.get("marker"):
            try:
                fd = os.open(opts["marker"], os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                os.close(fd)
                self.first = True
            except FileExistsError:
                pass
        log.info("teststage ready in pid %d (first=%s)", os.getpid(), self.first)

    def process(self, rec):
        o = self.opts
        self.seen += 1
        if self.first and self.seen == o.get("exit_at"):
            os._exit(7)
        if self.first and self.seen == o.get("leak_at"):
            self.leak.append(b"x" * (o.get("leak_mb", 256) << 20))
            time.sleep(60)
        if o.get("sleep"):
            time.sleep(o["sleep"])
        if o.get("fail_on") and o["fail_on"].encode() in rec.payload:
            raise ValueError("bad record %s" % rec.key)
        rec.payload = rec.payload.upper()
        n = o.get("split")
        if n:
            return (Record_like(rec, i) for i in range(n))
        return [rec]

    def teardown(self):
        log.info("teststage teardown in pid %d", os.getpid())


def Record_like(rec, i):
    from troupe_plugin import Record
    return Record("%s#%d" % (rec.key, i), rec.payload, dict(rec.meta, part=str(i)))


class BatchStage(Stage):
    def process_batch(self, recs):
        out = []
        for r in recs:
            try:
                out.append(self.process(r))
            except Exception as e:
                out.append(e)
        return out


if __name__ == "__main__":
    serve(BatchStage() if os.environ.get("TEST_BATCH") else Stage())
