// Package ipc is troupe's wire to plugin processes, and nothing else: the data frames (a
// hand-written codec of plain Go structs, described once in README.md), the gRPC control service
// (stage.proto and its generated code) and the handshake's constants. It knows nothing of
// pipelines, supervision or processes; packages above it give the messages their meaning. The
// runtime's own messages between actors are package actors' and never cross the wire.
package ipc
