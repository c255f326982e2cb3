// Package clusterpb holds the protobuf messages of troupe's cluster protocol (cluster.proto),
// carried between a coordinator and its nodes by protoactor-go's remote.
package clusterpb

// Generated with protoc 3.21.12 (Debian's protobuf-compiler) and protoc-gen-go v1.36.12
// (go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12):
//
//go:generate protoc --go_out=. --go_opt=paths=source_relative cluster.proto
