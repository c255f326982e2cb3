// Command testplugin is the plugin the engine's tests run. Each record's output is its payload
// in upper case, with the serving process's pid in the metadata key "pid". A payload starting
// with "crash" kills the process (a poison record); "sleep:DURATION:rest" sleeps first.
package main

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/plugins/sdk"
)

func main() {
	pid := strconv.Itoa(os.Getpid())
	sdk.Serve(sdk.Stage{Process: func(ctx context.Context, rec troupe.Record) ([]troupe.Record, error) {
		p := string(rec.Payload)
		if strings.HasPrefix(p, "crash") {
			os.Exit(3)
		}
		if rest, ok := strings.CutPrefix(p, "sleep:"); ok {
			d, tail, _ := strings.Cut(rest, ":")
			if dur, err := time.ParseDuration(d); err == nil {
				select {
				case <-time.After(dur):
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			p = tail
		}
		return []troupe.Record{{Key: rec.Key, Payload: bytes.ToUpper([]byte(p)), Meta: map[string]string{"pid": pid}}}, nil
	}})
}
