package imgconv

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"

	"github.com/troupe-dev/troupe"
)

// Metadata keys that Stage adds to each output record.
const (
	// MetaFormat holds the input's format, as Info.Format ("png", "jpeg", ...).
	MetaFormat = "format"
	// MetaWidth and MetaHeight hold the image's dimensions in pixels, in decimal.
	MetaWidth  = "width"
	MetaHeight = "height"
)

// Stage returns an in-process stage that converts each record's payload to JPEG with Convert.
//
// For each record it returns exactly one record with the same Key, a copy of the input's Meta
// plus MetaFormat, MetaWidth and MetaHeight, and the JPEG as Payload. The input record is not
// modified. Errors name the record's key, as in "decode input/a.png: truncated PNG: unexpected
// EOF". Conversion errors are deterministic: retrying only delays the record's way to the
// dead-letter output.
//
// The function checks ctx before and after the conversion, which itself cannot be interrupted:
// a stage timeout bounds how long a caller waits for a result, not how long the conversion runs.
//
// If o is invalid (see Options.Validate), every call fails with that error.
func Stage(o Options) troupe.Func {
	o, optErr := o.withDefaults()
	return func(ctx context.Context, rec troupe.Record) ([]troupe.Record, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if optErr != nil {
			return nil, optErr
		}
		jpg, info, err := Convert(rec.Payload, o)
		if err != nil {
			verb := "convert"
			if errors.Is(err, ErrNotImage) || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTooLarge) {
				verb = "decode"
			}
			return nil, fmt.Errorf("%s %s: %w", verb, rec.Key, err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		meta := make(map[string]string, len(rec.Meta)+3)
		maps.Copy(meta, rec.Meta)
		meta[MetaFormat] = info.Format
		meta[MetaWidth] = strconv.Itoa(info.Width)
		meta[MetaHeight] = strconv.Itoa(info.Height)
		return []troupe.Record{{Key: rec.Key, Payload: jpg, Meta: meta}}, nil
	}
}
