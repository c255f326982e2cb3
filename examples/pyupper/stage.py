#!/usr/bin/env python3
"""The smallest troupe plugin in Python: it uppercases each record's payload.

A spec runs it like any plugin (see pipeline.yaml):

    stages:
      - name: shout
        plugin: {cmd: [python3, ./stage.py]}

troupe starts one process per worker, feeds it records over the stage protocol and restarts it
(redelivering its records) if it dies. Run directly, it explains that it is a plugin and exits.
"""
import os
import sys

# The SDK lives in the troupe repository (plugins/python); this script finds it from its own
# location, so it runs from any working directory. A plugin kept elsewhere puts the directory
# holding troupe_plugin on sys.path the same way, or sets PYTHONPATH in the spec's `env`.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "plugins", "python"))

from troupe_plugin import serve  # noqa: E402


def process(rec):
    rec.payload = rec.payload.upper()
    return [rec]


if __name__ == "__main__":
    serve(process)
