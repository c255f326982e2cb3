"""troupe_plugin: write a troupe stage plugin in Python.

A plugin is a script that a troupe host runs, one process per stage worker, and feeds records
over troupe's stage protocol (ipc/README.md). The script defines what to do with a record and
calls serve():

    from troupe_plugin import serve

    def process(rec):                  # rec.key (str), rec.payload (bytes), rec.meta (dict)
        rec.payload = rec.payload.upper()
        return [rec]                   # zero, one or many output records

    serve(process)

process may return a list, a generator, one Record, or None (the record is filtered out); an
output may also be bytes (a copy of the input with that payload). An exception fails that
record's attempt: the host retries it and, after the stage's attempts, dead-letters it with the
exception's text. For speed, serve(batch=f) (or a process_batch method) takes a list of records
and returns one list of outputs (or an Exception) per record. A class with setup(options),
process or process_batch, and teardown() may be served instead of a function.

The plugin exits when its host goes away (the data socket closes, the parent dies or changes)
and forwards logging output to the host's log (stderr lines, which the host tags with the stage,
worker and pid). Needs Debian's python3-grpcio and python3-protobuf; run by another python3
(pyenv, a virtualenv) that cannot import them, it re-executes itself with /usr/bin/python3.
"""

import os
import sys

from .codec import Record  # noqa: F401  (the public record type)

__all__ = ["Record", "serve", "PROTOCOL_VERSION"]

PROTOCOL_VERSION = "1.0"

# Debian's interpreter, the one that sees Debian's python3-grpcio and python3-protobuf.
SYSTEM_PYTHON = "/usr/bin/python3"
_REEXEC_ENV = "TROUPE_PLUGIN_REEXEC"
_COOKIE_KEY = "TROUPE_PLUGIN_MAGIC_COOKIE"


def _need_grpc():
    """Makes sure grpc and protobuf import, re-executing the script with SYSTEM_PYTHON when this
    interpreter cannot see them (the same process: pid, fd 3 and the parent-death signal stay)."""
    try:
        import grpc  # noqa: F401
        import google.protobuf  # noqa: F401
        return
    except ImportError as e:
        err = e
    same = False
    try:
        same = os.path.samefile(sys.executable, SYSTEM_PYTHON)
    except OSError:
        pass
    if not same and not os.environ.get(_REEXEC_ENV) and os.access(SYSTEM_PYTHON, os.X_OK) and sys.argv and sys.argv[0]:
        os.environ[_REEXEC_ENV] = "1"
        sys.stderr.flush()
        os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON] + sys.argv)
    sys.stderr.write(
        "troupe plugin: %s cannot import grpc and protobuf (%s): install Debian's python3-grpcio and "
        "python3-protobuf (apt-get install -y python3-grpcio python3-protobuf) and run the plugin "
        "with %s\n" % (sys.executable, err, SYSTEM_PYTHON))
    sys.exit(1)


if os.environ.get(_COOKIE_KEY):
    # Under a troupe host: switch interpreters now, before the script does any work.
    _need_grpc()


def serve(process=None, *, batch=None, setup=None, teardown=None, batch_size=256, log_level="INFO"):
    """Runs the plugin until the host shuts it down, then exits the process: it never returns.

    process is a function of one record, or an object with some of the methods setup(options),
    process(record), process_batch(records) and teardown(). batch is a function of a list of
    records returning one result per record (a list of outputs, or an Exception for a failed
    record); it is given at most batch_size records at a time. setup is called once with the
    stage's options (a dict) before the first record (an exception refuses the options: the host
    shows it and retries the start); teardown once at a graceful shutdown. log_level is the root
    logger's level when the script configured no logging itself (None leaves logging alone).

    Run directly rather than by a troupe host, it says so and exits with status 1.
    """
    _need_grpc()
    from . import _serve
    _serve.serve(process, batch=batch, setup=setup, teardown=teardown, batch_size=batch_size,
                 log_level=log_level)
