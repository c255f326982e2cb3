// Command plugin is the image converter (package stages/imgconv) as a troupe plugin: the same
// stage as the in-process one, run in a separate process per worker, so that a decoder bug, a
// leak or a hang on a hostile image costs one process, not the pipeline. Build it with
//
//	go build -o examples/imgconv/bin/imgconv-plugin ./examples/imgconv/plugin
//
// and run examples/imgconv/plugin.yaml. The stage's options are parsed once per process with
// imgconv.ParseOptions; invalid options fail the worker's start with the parser's message.
package main

import (
	"context"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/plugins/sdk"
	"github.com/troupe-dev/troupe/stages/imgconv"
)

func main() {
	var convert troupe.Func
	sdk.Serve(sdk.Stage{
		Setup: func(opts map[string]any) error {
			o, err := imgconv.ParseOptions(opts)
			if err != nil {
				return err
			}
			convert = imgconv.Stage(o)
			return nil
		},
		Process: func(ctx context.Context, rec troupe.Record) ([]troupe.Record, error) {
			return convert(ctx, rec)
		},
	})
}
