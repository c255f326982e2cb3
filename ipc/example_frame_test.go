package ipc_test

import (
	"bytes"
	"fmt"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/ipc"
)

// The frames of README.md's example: a batch of one record, the results uppercasing it, and the
// credit returned for it.
func ExampleAppendBatch() {
	rec := &ipc.Record{Record: troupe.Record{Key: "a", Payload: []byte("hi")}, Seq: 7}
	batch, _ := ipc.AppendBatch(nil, 0, 1, []*ipc.Record{rec})
	fmt.Printf("% x\n", batch)

	out := &ipc.Record{Record: troupe.Record{Key: "a", Payload: bytes.ToUpper(rec.Payload)}, Seq: 7}
	results, _ := ipc.AppendResults(nil, 0, &ipc.Results{Counts: []uint32{1}, Outputs: []*ipc.Record{out}})
	fmt.Printf("% x\n", results)
	fmt.Printf("% x\n", ipc.AppendCredit(nil, 1))

	f, n, err := ipc.DecodeFrame(results, 0)
	fmt.Println(f.Type, n, err, string(f.Results.Outputs[0].Payload))
	// Output:
	// 0e 01 01 01 07 00 00 00 00 01 61 02 68 69 00
	// 10 02 01 01 01 07 00 00 00 00 01 61 02 48 49 00 00
	// 02 03 01
	// results 17 <nil> HI
}
