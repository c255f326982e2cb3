package ipc

import (
	"strconv"

	"github.com/troupe-dev/troupe"
)

// The values the data frames carry (README.md, section 4, is their one description; frame.go
// encodes and decodes them). They are plain Go structs: nothing generates them.

// Flag says what a wire record is. Plugins only ever see and return FlagData; the values are
// kept on the wire for compatibility with protocol 1.0.
type Flag uint32

const (
	FlagData    Flag = 0
	FlagEnd     Flag = 1
	FlagDropped Flag = 2
)

// Record is a record on the wire: the user's Record and the host's bookkeeping about it. Seq is
// the host's identity for the record (a plugin copies it to the outputs; the host checks it), Sub,
// Weight and Flag are kept for protocol 1.0 (the host sends 0 and checks what comes back), and
// Attempt counts the failed attempts before this one.
type Record struct {
	troupe.Record
	Seq     uint64
	Sub     uint64
	Weight  uint64
	Attempt uint32
	Flag    Flag
}

// Results is the body of a Results frame: the outcomes of the oldest records not yet reported,
// in order. Record i produced Counts[i] outputs, laid out one after the other in Outputs; Errors
// name the records (by index, increasing, each with count 0) whose attempt failed.
type Results struct {
	Counts  []uint32
	Outputs []*Record
	Errors  []*RecordError
}

// RecordError is the failure of the attempt at record Index of a Results frame.
type RecordError struct {
	Index   uint32
	Message string
}

var flagNames = [...]string{"DATA", "END", "DROPPED"}

func (f Flag) String() string {
	if int(f) < len(flagNames) {
		return flagNames[f]
	}
	return "Flag(" + strconv.FormatUint(uint64(f), 10) + ")"
}
