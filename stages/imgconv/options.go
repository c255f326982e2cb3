package imgconv

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

const (
	// DefaultQuality is the JPEG quality used when Options.Quality is zero.
	DefaultQuality = 90
	// DefaultMaxPixels is the largest image, in pixels (width × height), that Convert decodes when
	// Options.MaxPixels is zero: 100 megapixels, about 400 MB once decoded to RGBA.
	DefaultMaxPixels int64 = 100_000_000
)

// Options configure Convert and Stage. The zero value is ready to use: a zero field takes its
// default.
type Options struct {
	// Quality is the JPEG quality, 1 (smallest, worst) to 100 (largest, best); 0 means
	// DefaultQuality.
	Quality int
	// MaxPixels is the largest width × height that Convert will decode; larger images are refused
	// after reading only their header, so a small file claiming a huge size (a decompression
	// bomb) costs next to nothing. 0 means DefaultMaxPixels.
	MaxPixels int64
}

// DefaultOptions returns the options used for a stage configured with no options.
func DefaultOptions() Options {
	return Options{Quality: DefaultQuality, MaxPixels: DefaultMaxPixels}
}

// Validate reports whether o is usable: Quality 0 or 1..100, MaxPixels 0 or positive.
func (o Options) Validate() error {
	var errs []error
	if o.Quality < 0 || o.Quality > 100 {
		errs = append(errs, fmt.Errorf("imgconv: quality must be between 1 and 100, got %d", o.Quality))
	}
	if o.MaxPixels < 0 {
		errs = append(errs, fmt.Errorf("imgconv: max_pixels must be positive, got %d", o.MaxPixels))
	}
	return errors.Join(errs...)
}

// withDefaults validates o and fills its zero fields with the defaults.
func (o Options) withDefaults() (Options, error) {
	if err := o.Validate(); err != nil {
		return o, err
	}
	if o.Quality == 0 {
		o.Quality = DefaultQuality
	}
	if o.MaxPixels == 0 {
		o.MaxPixels = DefaultMaxPixels
	}
	return o, nil
}

// Option keys understood by ParseOptions.
const (
	keyQuality   = "quality"
	keyMaxPixels = "max_pixels"
)

// ParseOptions reads a stage's options as decoded from YAML or JSON, starting from
// DefaultOptions. It understands:
//
//   - "quality": an integer 1..100. Integral floats (JSON numbers decode as float64) and
//     json.Number are accepted.
//   - "max_pixels": a positive integer, or a string with an optional decimal K, M or G suffix,
//     optionally followed by P for pixels: "100M", "2.5MP", "40000000".
//
// An unknown key, a value of the wrong type or out of range is an error naming the key; all such
// problems are reported together. A nil map yields the defaults.
func ParseOptions(m map[string]any) (Options, error) {
	o := DefaultOptions()
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys) // deterministic error order
	var errs []error
	for _, k := range keys {
		v := m[k]
		switch k {
		case keyQuality:
			q, err := integer(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("imgconv: option %q: %w", k, err))
				continue
			}
			if q < 1 || q > 100 {
				errs = append(errs, fmt.Errorf("imgconv: option %q must be between 1 and 100, got %d", k, q))
				continue
			}
			o.Quality = int(q)
		case keyMaxPixels:
			var (
				n   int64
				err error
			)
			if s, ok := v.(string); ok {
				n, err = parsePixels(s)
			} else {
				n, err = integer(v)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("imgconv: option %q: %w", k, err))
				continue
			}
			if n < 1 {
				errs = append(errs, fmt.Errorf("imgconv: option %q must be positive, got %d", k, n))
				continue
			}
			o.MaxPixels = n
		default:
			errs = append(errs, fmt.Errorf("imgconv: unknown option %q (known: %s, %s)", k, keyMaxPixels, keyQuality))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Options{}, err
	}
	return o, nil
}

// integer converts the numeric types that YAML and JSON decoders produce to an int64.
func integer(v any) (int64, error) {
	switch n := v.(type) {
	case int:
		return int64(n), nil
	case int8:
		return int64(n), nil
	case int16:
		return int64(n), nil
	case int32:
		return int64(n), nil
	case int64:
		return n, nil
	case uint:
		return fromUint(uint64(n))
	case uint8:
		return int64(n), nil
	case uint16:
		return int64(n), nil
	case uint32:
		return int64(n), nil
	case uint64:
		return fromUint(n)
	case float32:
		return fromFloat(float64(n))
	case float64:
		return fromFloat(n)
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return i, nil
		}
		f, err := n.Float64()
		if err != nil {
			return 0, fmt.Errorf("want an integer, got json.Number %q", n.String())
		}
		return fromFloat(f)
	default:
		return 0, fmt.Errorf("want an integer, got %T", v)
	}
}

func fromUint(u uint64) (int64, error) {
	if u > math.MaxInt64 {
		return 0, fmt.Errorf("%d is out of range", u)
	}
	return int64(u), nil
}

func fromFloat(f float64) (int64, error) {
	// 2^63 is exactly representable; every float64 below it converts without overflow.
	if f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
		return 0, fmt.Errorf("want an integer, got %v", f)
	}
	return int64(f), nil
}

// parsePixels parses "40000000", "100M", "2.5MP", "1g" (decimal multipliers).
func parsePixels(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.ReplaceAll(t, "_", "")
	mult := 1.0
	t = strings.TrimSuffix(t, "P")
	switch {
	case strings.HasSuffix(t, "K"):
		mult = 1e3
	case strings.HasSuffix(t, "M"):
		mult = 1e6
	case strings.HasSuffix(t, "G"):
		mult = 1e9
	}
	if mult != 1 {
		t = strings.TrimSpace(t[:len(t)-1])
	}
	bad := fmt.Errorf(`cannot parse %q: want a positive integer with an optional K, M or G suffix, like "100M"`, s)
	if t == "" || strings.ContainsAny(t, "+-EXN") { // no signs, exponents, hex, Inf or NaN
		return 0, bad
	}
	if mult == 1 {
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil {
			return 0, bad
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil {
		return 0, bad
	}
	n, err := fromFloat(math.Round(f * mult))
	if err != nil {
		return 0, bad
	}
	return n, nil
}
