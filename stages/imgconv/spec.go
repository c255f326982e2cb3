package imgconv

import (
	"fmt"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/stages"
)

// SpecOptions are the stage's options as a spec declares them (`builtin: imgconv`): each key
// with its default, bounds and doc, in the tags of package internal/schema. Options turns them
// into the Options of Convert and Stage.
type SpecOptions struct {
	Quality   int    `yaml:"quality" default:"90" min:"1" max:"100" doc:"JPEG quality, 1 (smallest, worst) to 100 (largest, best)."`
	MaxPixels Pixels `yaml:"max_pixels" default:"100M" min:"1" doc:"The largest image (width × height) that is decoded; larger ones fail after reading only their header."`
}

// Options returns the options of Convert and Stage.
func (o SpecOptions) Options() Options {
	return Options{Quality: o.Quality, MaxPixels: int64(o.MaxPixels)}
}

// Pixels is a pixel count: an integer, or a decimal number with a K, M or G suffix, optionally
// followed by P ("100M", "2.5MP", "40000000").
type Pixels int64

// UnmarshalText reads a pixel count.
func (p *Pixels) UnmarshalText(text []byte) error {
	n, err := parsePixels(string(text))
	if err != nil {
		return fmt.Errorf("bad pixel count %q: %v", text, err)
	}
	*p = Pixels(n)
	return nil
}

// SchemaType names the type in the spec reference.
func (Pixels) SchemaType() string { return "pixels (40000000, 100M, 2.5MP)" }

// Builtin is the stage as a spec's builtin, for stages.Register("imgconv", imgconv.Builtin()):
// the troupe command registers it so.
func Builtin() stages.Builtin {
	return stages.Func("Converts images (PNG, JPEG, GIF, BMP, TIFF, WebP) to baseline JPEG; the input's format and size go to the metadata.",
		func(o *SpecOptions) (troupe.Func, error) {
			opts := o.Options()
			if err := opts.Validate(); err != nil {
				return nil, err
			}
			return Stage(opts), nil
		})
}
