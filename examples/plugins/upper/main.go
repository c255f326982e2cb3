// Command upper is the smallest troupe plugin: it uppercases each record's payload.
//
// Build it and use it from a spec:
//
//	go build -o bin/upper ./examples/plugins/upper
//
//	stages:
//	  - name: shout
//	    plugin: {cmd: [./bin/upper]}
//
// Run directly, it explains that it is a plugin and exits: the troupe host starts it, one
// process per worker, and talks to it over the stage protocol (see plugins/sdk).
package main

import (
	"bytes"
	"context"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/plugins/sdk"
)

func main() {
	sdk.Serve(sdk.Stage{Process: func(_ context.Context, rec troupe.Record) ([]troupe.Record, error) {
		rec.Payload = bytes.ToUpper(rec.Payload)
		return []troupe.Record{rec}, nil
	}})
}
