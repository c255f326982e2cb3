"""The plugin side of troupe's stage protocol 1.0 (ipc/README.md): the go-plugin handshake, the
gRPC health and Stage services, and the data frames on fd 3. Imported by serve() only: it needs
grpc and protobuf."""

import ctypes
import json
import logging
import os
import select
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from concurrent import futures

import grpc

from . import codec
from .codec import Record
from ._gen import health_pb2, health_pb2_grpc, stage_pb2, stage_pb2_grpc

MAJOR, MINOR = 1, 0
COOKIE_KEY = "TROUPE_PLUGIN_MAGIC_COOKIE"
COOKIE_VALUE = "d3c1b8a0-troupe-stage-plugin"
DEFAULT_CREDITS = 64
# A results frame goes out when no input is waiting, when it holds FLUSH_BYTES, or when its
# oldest result is FLUSH_DELAY seconds old (the Go SDK's policy).
FLUSH_BYTES = 256 << 10
FLUSH_DELAY = 0.002
MAX_RESULTS_PER_FRAME = 0xFFFF
PARENT_POLL = 0.2

log = logging.getLogger("troupe_plugin")
_stderr_fd = 2


def _say(msg):
    """Writes one line to the real stderr, ignoring a closed pipe (the host may be gone)."""
    try:
        os.write(_stderr_fd, ("troupe plugin: %s\n" % msg).encode("utf-8", "replace"))
    except OSError:
        pass


_profile = None  # a cProfile.Profile of the data loop, with TROUPE_PLUGIN_PROFILE set


def _exit(code, msg=None):
    """Exits the process at once (no thread is waited for), saying why."""
    if msg:
        _say(msg)
    if _profile is not None:
        try:
            _profile.disable()
            _profile.dump_stats("%s.%d" % (os.environ["TROUPE_PLUGIN_PROFILE"], os.getpid()))
        except Exception as e:
            _say("profile: %s" % e)
    try:
        logging.shutdown()
    except Exception:
        pass
    os._exit(code)


def _describe(e):
    """The message of a record's failed attempt: the exception and where it was raised."""
    msg = "%s: %s" % (type(e).__name__, e) if str(e) else type(e).__name__
    tb = traceback.extract_tb(e.__traceback__)
    if tb:
        f = tb[-1]
        msg += " (at %s:%d in %s)" % (os.path.basename(f.filename), f.lineno, f.name)
    return msg


class _Stage:
    """The user's stage, as functions (any may be None except one of process and batch)."""

    def __init__(self, process, batch, setup, teardown, batch_size):
        obj = process
        if obj is not None and not callable(obj):
            process = getattr(obj, "process", None)
            batch = batch or getattr(obj, "process_batch", None)
            setup = setup or getattr(obj, "setup", None)
            teardown = teardown or getattr(obj, "teardown", None)
        if process is None and batch is None:
            raise TypeError("troupe_plugin.serve: give a process function, a batch function, or an object with a "
                            "process or process_batch method")
        self.process, self.batch, self.setup, self.teardown = process, batch, setup, teardown
        self.batch_size = max(1, int(batch_size))


def _outputs(inp, outs):
    """Normalizes what process returned for inp into a list of Record."""
    if outs is None:
        return ()
    t = type(outs)
    if t is list or t is tuple:
        lst = outs
    elif t is Record:
        return (outs,)
    elif t is bytes or t is str:
        lst = (outs,)
    else:
        lst = list(outs)  # a generator, any iterable
    for o in lst:
        if type(o) is not Record:
            break
    else:
        return lst
    fixed = []
    for o in lst:
        if type(o) is Record:
            fixed.append(o)
        elif isinstance(o, (bytes, bytearray, memoryview, str)):
            fixed.append(Record(inp.key, o, inp.meta))
        elif isinstance(o, Record):
            fixed.append(o)
        else:
            raise TypeError("output %r is not a Record or bytes" % (o,))
    return fixed


class _Server(stage_pb2_grpc.StageServicer):
    def __init__(self, stage):
        self.stage = stage
        self.mu = threading.Lock()
        self.work = threading.Lock()  # held by the data loop while it processes and reports
        self.configured = False
        self.stopping = False
        self.stopped = False
        self.in_flight = 0
        self.processed = 0
        self.credits = DEFAULT_CREDITS
        self.max_frame = codec.DEFAULT_MAX_FRAME
        self.sock = None
        self.results = None  # the data loop's unreported results
        self.stage_name = ""
        self.done = threading.Event()  # set when the process should exit (status in exit_code)
        self.exit_code = 0

    # The Stage service.

    def Configure(self, req, ctx):
        with self.mu:
            if self.configured:
                ctx.abort(grpc.StatusCode.FAILED_PRECONDITION, "plugin is already configured")
            if req.protocol.major != MAJOR:
                ctx.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          "plugin speaks troupe stage protocol %d.%d, host speaks %d.%d"
                          % (MAJOR, MINOR, req.protocol.major, req.protocol.minor))
            if not req.HasField("data"):
                ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "no data channel in the configuration")
            try:
                raw = bytes(req.options_json).strip()
                opts = json.loads(raw.decode("utf-8")) if raw else {}
                if not isinstance(opts, dict):
                    raise ValueError("not a JSON object")
            except ValueError as e:
                ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "options: %s" % e)
            if self.stage.setup is not None:
                try:
                    self.stage.setup(opts)
                except Exception as e:
                    log.error("setup failed:\n%s", traceback.format_exc().rstrip())
                    ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "setup: %s" % _describe(e))
            fd = req.data.fd
            try:
                sock = socket.socket(fileno=fd)
                os.set_inheritable(sock.fileno(), False)  # children must not hold the data socket
            except OSError as e:
                ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "data fd %d: %s" % (fd, e))
            self.sock = sock
            self.credits = req.credits or DEFAULT_CREDITS
            self.max_frame = req.max_frame or codec.DEFAULT_MAX_FRAME
            self.stage_name = req.stage
            self.configured = True
            threading.Thread(target=self._data_loop, name="troupe-data", daemon=True).start()
            return stage_pb2.ConfigureResponse(protocol=stage_pb2.Version(major=MAJOR, minor=MINOR),
                                               credits=self.credits)

    def Health(self, req, ctx):
        return stage_pb2.HealthResponse(serving=not self.stopping, in_flight=max(self.in_flight, 0),
                                        processed=self.processed)

    def Shutdown(self, req, ctx):
        self.shutdown()
        return stage_pb2.ShutdownResponse()

    def shutdown(self):
        """Stops taking records, waits for the data loop to report what it has done, and runs
        teardown (once)."""
        with self.mu:
            if self.stopped:
                return
            self.stopping = True
        with self.work:  # the data loop stops between records; what is done is reported
            if self.results is not None and self.results.n:
                self._flush(self.results)
        with self.mu:
            if self.stopped:
                return
            self.stopped = True
            configured = self.configured
        if configured and self.stage.teardown is not None:  # only after a setup
            try:
                self.stage.teardown()
            except Exception:
                log.error("teardown failed:\n%s", traceback.format_exc().rstrip())

    # The data connection.

    def _data_loop(self):
        global _profile
        if os.environ.get("TROUPE_PLUGIN_PROFILE"):
            import cProfile
            _profile = cProfile.Profile(time.thread_time)
            _profile.enable()
        try:
            self._data()
        except BaseException as e:  # a bug here must not leave a half-alive plugin
            _exit(1, "data loop: %s" % _describe(e))

    def _data(self):
        reader = codec.FrameReader(self.sock, self.max_frame)
        results = self.results = codec.ResultsBuilder()
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)

        def poll():
            return bool(poller.poll(0))

        budget = self.max_frame - 64
        while True:
            try:
                f = reader.next()
            except (codec.FrameError, EOFError, OSError) as e:
                if self.stopping:
                    self._finish()
                _exit(1, "data connection: %s; exiting" % e)
            if f is None:
                if self.stopping:
                    self._finish()
                _exit(1, "data connection closed by the host; exiting")
            recs = None
            while f is not None:
                if f.type == codec.BATCH and f.records:
                    self.in_flight += len(f.records)
                    if self.in_flight > self.credits:
                        _exit(1, "host sent more than the %d records it was granted; exiting" % self.credits)
                    if recs is None:
                        recs = f.records
                    else:
                        recs.extend(f.records)
                elif f.type == codec.RESULTS:
                    _exit(1, "host sent a results frame; exiting")
                # Credit frames and unknown types are ignored.
                # The whole frames already read are taken together: one pass for all of them.
                try:
                    f = reader.next(block=False) if reader.buffered() else None
                except codec.FrameError as e:
                    _exit(1, "data connection: %s; exiting" % e)
            with self.work:  # Shutdown waits for this block: what is done is reported
                if recs and not self.stopping:
                    if self.stage.batch is not None:
                        self._run_batch(recs, results, budget)
                    else:
                        self._run_each(recs, results, budget)
                # Report when no input is waiting (none decoded, none in the socket), so that a
                # host sending faster than we process gets fewer, larger frames (the size and
                # delay bounds of _run_each and _run_batch still apply); and when stopping.
                if results.n and (self.stopping or (reader.buffered() == 0 and not poll())):
                    self._flush(results)

    def _finish(self):
        """The host closed the connection after Shutdown: exit cleanly."""
        self.shutdown()
        _exit(0)

    def _flush(self, results):
        n = results.n
        if n == 0:
            return
        data = results.frame() + codec.encode_credit(n)
        # Account for the records before the host can see the credit and send more.
        self.in_flight -= n
        self.processed += n
        try:
            self.sock.sendall(data)
        except OSError as e:
            if not self.stopping:
                _exit(1, "sending results: %s; exiting" % e)

    def _add(self, results, rec, outs, budget):
        """Adds rec's outputs (or the error they make) to results, flushing first if they would
        not fit in the frame."""
        try:
            enc = results.encode(rec, outs)
            size = results.encoded_size(enc)
            if size > budget:
                raise ValueError("the record's %d outputs take %d bytes, over the max frame of %d bytes"
                                 % (len(enc) // 3, size, self.max_frame))
        except Exception as e:
            self._fail(results, _describe(e), budget)
            return
        if results.size + size > budget:
            self._flush(results)
        results.commit(enc, size)

    def _fail(self, results, msg, budget):
        msg = msg.encode("utf-8", "replace")
        if len(msg) > budget // 2:
            msg = msg[:budget // 2]
        if results.size + len(msg) + 16 > budget:
            self._flush(results)
        results.fail(msg)

    # Both loops take the common case at speed: an input answered by itself alone ([rec]), its
    # key unchanged, no metadata, a bytes payload. Its encoding is its _pre (the bytes its
    # identity and key came as), the payload's length, the payload and an empty meta: a run of
    # such answers is gathered in a list (four parts each) and joined into results at once
    # (_add_run). Anything else adds the run so far, then goes through _outputs and results.add.
    # A run is added when its payloads (plus 8 bytes a record) reach limit, so that it holds at
    # most limit/8 records and rarely much more than limit bytes; _add_run checks its real size.

    def _run_each(self, recs, results, budget):
        process = self.stage.process
        now = time.monotonic
        small = codec._SMALL
        pv = codec.put_uvarint
        Z = b"\x00"
        limit = min(FLUSH_BYTES, budget // 2)
        first = self._first if results.n else now()
        run = []
        ap = run.append
        psize = 0
        for rec in recs:
            if self.stopping:
                break
            try:
                outs = process(rec)
            except Exception as e:
                outs = e
            if type(outs) is list and len(outs) == 1 and outs[0] is rec:
                pre = rec._pre
                p = rec.payload
                if pre is not None and type(p) is bytes and not rec._meta:
                    if not run and results.n == 0:
                        first = now()
                    n = len(p)
                    ap(pre)
                    ap(small[n] if n < 0x80 else pv(n))
                    ap(p)
                    ap(Z)
                    psize += n + 8
                    if psize >= limit or now() - first >= FLUSH_DELAY:
                        self._add_run(results, run, budget, limit)
                        run = []
                        ap = run.append
                        psize = 0
                        if results.n and now() - first >= FLUSH_DELAY:
                            self._flush(results)
                    continue
            # The general way, after the run so far.
            if run:
                self._add_run(results, run, budget, limit)
                run = []
                ap = run.append
                psize = 0
            if results.n == 0:
                first = now()
            if isinstance(outs, Exception):
                self._fail(results, _describe(outs), budget)
            else:
                try:
                    self._add(results, rec, _outputs(rec, outs), budget)
                except Exception as e:
                    self._fail(results, _describe(e), budget)
            if results.size >= limit or results.n >= MAX_RESULTS_PER_FRAME - 256 or now() - first >= FLUSH_DELAY:
                self._flush(results)
        if run:
            self._add_run(results, run, budget, limit)
        self._first = first

    def _add_run(self, results, run, budget, limit):
        """Adds a run of inputs answered by themselves (four parts each, see above) to results,
        flushing results first when they would pass budget, and after when they reach limit."""
        blob = b"".join(run)
        size = len(blob)
        k = len(run) >> 2
        if results.size + size + k > budget:
            if results.n:
                self._flush(results)
            if size + k > budget:
                # Too large for one frame: one record at a time, as the general way would.
                for i in range(0, len(run), 4):
                    part = run[i:i + 4]
                    size = sum(map(len, part))
                    if size + 2 > budget:
                        self._fail(results, "ValueError: the record's 1 outputs take %d bytes, over the max frame "
                                   "of %d bytes" % (size, self.max_frame), budget)
                        continue
                    if results.size + size + 2 > budget:
                        self._flush(results)
                    results.add_run(b"".join(part), 1, size)
                if results.size >= limit:
                    self._flush(results)
                return
        results.add_run(blob, k, size)
        if results.size >= limit or results.n >= MAX_RESULTS_PER_FRAME - 256:
            self._flush(results)

    def _run_batch(self, recs, results, budget):
        batch, bsize = self.stage.batch, self.stage.batch_size
        now = time.monotonic
        small = codec._SMALL
        pv = codec.put_uvarint
        Z = b"\x00"
        limit = min(FLUSH_BYTES, budget // 2)
        first = self._first if results.n else now()
        for lo in range(0, len(recs), bsize):
            if self.stopping:
                break
            chunk = recs[lo:lo + bsize] if len(recs) > bsize else recs
            if results.n == 0:
                first = now()
            try:
                outs = batch(chunk)
                if type(outs) is not list:
                    outs = list(outs)
                if len(outs) != len(chunk):
                    raise ValueError("process_batch returned %d results for %d records" % (len(outs), len(chunk)))
            except Exception as e:
                msg = _describe(e)
                for _ in chunk:
                    self._fail(results, msg, budget)
            else:
                run = []
                ap = run.append
                psize = 0
                for rec, o in zip(chunk, outs):
                    if type(o) is list and len(o) == 1 and o[0] is rec:
                        pre = rec._pre
                        p = rec.payload
                        if pre is not None and type(p) is bytes and not rec._meta:
                            n = len(p)
                            ap(pre)
                            ap(small[n] if n < 0x80 else pv(n))
                            ap(p)
                            ap(Z)
                            psize += n + 8
                            if psize >= limit:
                                self._add_run(results, run, budget, limit)
                                run = []
                                ap = run.append
                                psize = 0
                            continue
                    if run:
                        self._add_run(results, run, budget, limit)
                        run = []
                        ap = run.append
                        psize = 0
                    if isinstance(o, BaseException):
                        self._fail(results, _describe(o), budget)
                    else:
                        try:
                            self._add(results, rec, _outputs(rec, o), budget)
                        except Exception as e:
                            self._fail(results, _describe(e), budget)
                    if results.size >= limit or results.n >= MAX_RESULTS_PER_FRAME - 256:
                        self._flush(results)
                if run:
                    self._add_run(results, run, budget, limit)
            if results.size >= limit or results.n >= MAX_RESULTS_PER_FRAME - 256 or now() - first >= FLUSH_DELAY:
                self._flush(results)
        self._first = first

    _first = 0.0


class _Health(health_pb2_grpc.HealthServicer):
    def __init__(self, server):
        self.server = server

    def Check(self, req, ctx):
        if req.service not in ("", "plugin"):
            ctx.abort(grpc.StatusCode.NOT_FOUND, "unknown service %r" % req.service)
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


def _set_parent_death_signal(ppid):
    """Asks the kernel to SIGKILL this process when its parent dies (the host sets it too; this
    covers hosts that could not), then checks that the parent did not die before."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            PR_SET_PDEATHSIG = 1
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != ppid:
        _exit(1, "parent process %d is gone; exiting" % ppid)


def _setup_logging(level):
    if level is None or logging.getLogger().handlers:
        return
    logging.basicConfig(stream=sys.stderr, level=level, format="%(levelname)s %(name)s: %(message)s")


def serve(process, batch, setup, teardown, batch_size, log_level):
    if os.environ.get(COOKIE_KEY) != COOKIE_VALUE:
        sys.stderr.write("This program is a troupe stage plugin: a troupe pipeline runs it (a spec's "
                         "`plugin: {cmd: [python3, %s]}`); it does nothing on its own.\n"
                         % (sys.argv[0] if sys.argv else "stage.py"))
        sys.exit(1)
    stage = _Stage(process, batch, setup, teardown, batch_size)
    ppid = os.getppid()
    _set_parent_death_signal(ppid)
    _setup_logging(log_level)

    srv = _Server(stage)
    sockdir = os.environ.get("PLUGIN_UNIX_SOCKET_DIR") or tempfile.mkdtemp(prefix="troupe-plugin-")
    path = os.path.join(sockdir, "plugin-%d.sock" % os.getpid())
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="troupe-grpc"))
    stage_pb2_grpc.add_StageServicer_to_server(srv, server)
    health_pb2_grpc.add_HealthServicer_to_server(_Health(srv), server)
    server.add_insecure_port("unix:" + path)
    server.start()

    def on_term(signum, frame):
        srv.exit_code = 0
        srv.done.set()

    signal.signal(signal.SIGTERM, on_term)

    # The handshake: one line on stdout. After it, stdout is the host's stderr pipe, so that a
    # stray print() reaches the host's log instead of go-plugin's handshake reader.
    sys.stdout.flush()
    os.write(1, ("1|%d|unix|%s|grpc\n" % (MAJOR, path)).encode())
    os.dup2(2, 1)
    try:
        sys.stdout.reconfigure(line_buffering=True)
    except (AttributeError, ValueError):
        pass

    while not srv.done.wait(PARENT_POLL):
        if os.getppid() != ppid:
            _exit(1, "parent process %d is gone; exiting" % ppid)
    # SIGTERM: a graceful shutdown, then exit 0.
    srv.shutdown()
    _exit(srv.exit_code)
