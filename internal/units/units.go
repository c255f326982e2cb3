// Package units holds the scalar types of troupe's configuration that have a syntax of their
// own: sizes in bytes (512MiB) and CPU shares in percent (150%). They read themselves from text
// (encoding.TextUnmarshaler), so that the spec decodes them and the packages owning the values
// (plugins) use them without knowing anything of YAML.
package units

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sizeUnits maps a size suffix (lower case) to its multiplier. KB, MB, GB and TB are decimal;
// KiB, MiB, GiB, TiB, and the bare K, M, G, T (as in ulimit and container runtimes) are binary.
var sizeUnits = map[string]float64{
	"":    1,
	"b":   1,
	"k":   1 << 10,
	"ki":  1 << 10,
	"kib": 1 << 10,
	"kb":  1e3,
	"m":   1 << 20,
	"mi":  1 << 20,
	"mib": 1 << 20,
	"mb":  1e6,
	"g":   1 << 30,
	"gi":  1 << 30,
	"gib": 1 << 30,
	"gb":  1e9,
	"t":   1 << 40,
	"ti":  1 << 40,
	"tib": 1 << 40,
	"tb":  1e12,
}

var errSizeSyntax = errors.New(`expected a size like 512MiB, 1GB, 100M or a number of bytes`)

// ParseSize parses a size in bytes: a plain number of bytes, or a number (possibly fractional)
// followed by a unit: B; KB, MB, GB, TB (powers of 1000); KiB, MiB, GiB, TiB or K, M, G, T
// (powers of 1024). Units are case-insensitive.
func ParseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.' || t[i] == '_') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if num == "" {
		return 0, errSizeSyntax
	}
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("unknown size unit %q (want B, KB, MB, GB, TB, KiB, MiB, GiB, TiB, K, M, G or T)", t[i:])
	}
	num = strings.ReplaceAll(num, "_", "")
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseUint(num, 10, 64)
		if err != nil {
			return 0, errSizeSyntax
		}
		if n != 0 && uint64(mult) > math.MaxUint64/n {
			return 0, errors.New("size too large")
		}
		return n * uint64(mult), nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, errSizeSyntax
	}
	v := math.Round(f * mult)
	if v >= math.MaxUint64 {
		return 0, errors.New("size too large")
	}
	return uint64(v), nil
}

// ParsePercent parses a CPU share such as "150%" (one and a half cores) into 150.
func ParsePercent(s string) (float64, error) {
	t := strings.TrimSpace(s)
	num, ok := strings.CutSuffix(t, "%")
	if !ok {
		return 0, errors.New(`expected a percentage like 150%`)
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, errors.New(`expected a percentage like 150%`)
	}
	return f, nil
}

// Size is a number of bytes, written as a plain number or with a unit (see ParseSize).
type Size uint64

// UnmarshalText reads a size such as 512MiB.
func (s *Size) UnmarshalText(text []byte) error {
	v, err := ParseSize(string(text))
	if err != nil {
		return fmt.Errorf("bad size %q: %v", text, err)
	}
	*s = Size(v)
	return nil
}

// SchemaType names the type in the spec reference.
func (Size) SchemaType() string { return "size (bytes, or 512MiB, 1GB, 100M)" }

// Percent is a CPU share in percent of one core: 150 is one and a half cores.
type Percent float64

// UnmarshalText reads a percentage such as 150% or 150.
func (p *Percent) UnmarshalText(text []byte) error {
	t := strings.TrimSpace(string(text))
	if !strings.HasSuffix(t, "%") {
		t += "%"
	}
	v, err := ParsePercent(t)
	if err != nil {
		return fmt.Errorf("bad percentage %q (want a percentage like 150%%)", text)
	}
	*p = Percent(v)
	return nil
}

// SchemaType names the type in the spec reference.
func (Percent) SchemaType() string { return "percentage (150% is 1.5 cores)" }
