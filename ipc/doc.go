// Package ipc is troupe's wire: the protobuf messages that move records between actors and across
// the process boundary to plugins, and nothing else. It knows nothing of pipelines, supervision or
// processes; packages above it give the messages their meaning.
package ipc
