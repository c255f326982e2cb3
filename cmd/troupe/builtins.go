package main

import (
	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/stages/imgconv"
)

// The command's own builtins, on top of the generic ones of package troupe.
func init() {
	// imgconv converts images to JPEG (see package stages/imgconv for its options).
	troupe.Register("imgconv", troupe.Builtin{New: func(opts map[string]any) (actors.Func, error) {
		o, err := imgconv.ParseOptions(opts)
		if err != nil {
			return nil, err
		}
		return imgconv.Stage(o), nil
	}})
}
