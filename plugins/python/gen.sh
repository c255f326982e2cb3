#!/bin/sh
# Regenerates troupe_plugin/_gen from ../../ipc/stage.proto and proto/health.proto.
# Messages: Debian's protoc (protobuf-compiler, 3.21.12), which matches Debian's python3-protobuf
# (python3-grpc-tools bundles protoc 3.5.1, whose message code python3-protobuf 3.21 refuses).
# Services: python3-grpc-tools' grpc_python plugin.
#   apt-get install -y protobuf-compiler python3-grpc-tools
set -eu
cd "$(dirname "$0")"
out=troupe_plugin/_gen
protoc -I ../../ipc -I proto --python_out="$out" stage.proto health.proto
/usr/bin/python3 -m grpc_tools.protoc -I ../../ipc -I proto --grpc_python_out="$out" stage.proto health.proto
# The generated service modules import their messages as top-level modules: make it relative.
sed -i 's/^import \(stage\|health\)_pb2 as/from . import \1_pb2 as/' "$out/stage_pb2_grpc.py" "$out/health_pb2_grpc.py"
