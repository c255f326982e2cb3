package imgconv

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestParseOptions(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]any
		want Options
	}{
		{"nil", nil, DefaultOptions()},
		{"empty", map[string]any{}, Options{Quality: 90, MaxPixels: 100_000_000}},
		{"int", map[string]any{"quality": 75, "max_pixels": 5000}, Options{75, 5000}},
		{"int64 and uint8", map[string]any{"quality": uint8(1), "max_pixels": int64(1)}, Options{1, 1}},
		{"integral floats", map[string]any{"quality": 100.0, "max_pixels": 2e6}, Options{100, 2_000_000}},
		{"json.Number", map[string]any{"quality": json.Number("80"), "max_pixels": json.Number("3e6")}, Options{80, 3_000_000}},
		{"M suffix", map[string]any{"max_pixels": "100M"}, Options{90, 100_000_000}},
		{"MP suffix, fraction, space", map[string]any{"max_pixels": " 2.5 MP "}, Options{90, 2_500_000}},
		{"lower-case k", map[string]any{"max_pixels": "640k"}, Options{90, 640_000}},
		{"G suffix", map[string]any{"max_pixels": "1G"}, Options{90, 1_000_000_000}},
		{"digits with underscores", map[string]any{"max_pixels": "40_000_000"}, Options{90, 40_000_000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOptions(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseOptionsErrors(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]any
		want []string // substrings of the error
	}{
		{"unknown key", map[string]any{"qualty": 80}, []string{`unknown option "qualty"`, "quality"}},
		{"string quality", map[string]any{"quality": "80"}, []string{`"quality"`, "got string"}},
		{"nil quality", map[string]any{"quality": nil}, []string{`"quality"`, "got <nil>"}},
		{"list", map[string]any{"max_pixels": []any{1}}, []string{`"max_pixels"`, "got []interface {}"}},
		{"bool", map[string]any{"quality": true}, []string{`"quality"`, "got bool"}},
		{"fractional quality", map[string]any{"quality": 92.5}, []string{`"quality"`, "got 92.5"}},
		{"NaN", map[string]any{"quality": math.NaN()}, []string{`"quality"`, "NaN"}},
		{"huge float", map[string]any{"max_pixels": 1e300}, []string{`"max_pixels"`}},
		{"quality 0", map[string]any{"quality": 0}, []string{`"quality" must be between 1 and 100, got 0`}},
		{"quality 101", map[string]any{"quality": 101}, []string{`"quality" must be between 1 and 100, got 101`}},
		{"negative max_pixels", map[string]any{"max_pixels": -1}, []string{`"max_pixels" must be positive, got -1`}},
		{"zero max_pixels", map[string]any{"max_pixels": 0}, []string{`"max_pixels" must be positive, got 0`}},
		{"uint64 overflow", map[string]any{"max_pixels": uint64(math.MaxUint64)}, []string{`"max_pixels"`, "out of range"}},
		{"bad suffix", map[string]any{"max_pixels": "100X"}, []string{`"max_pixels"`, `cannot parse "100X"`}},
		{"negative string", map[string]any{"max_pixels": "-5M"}, []string{`cannot parse "-5M"`}},
		{"exponent string", map[string]any{"max_pixels": "1e6"}, []string{`cannot parse "1e6"`}},
		{"inf string", map[string]any{"max_pixels": "InfM"}, []string{`cannot parse "InfM"`}},
		{"empty string", map[string]any{"max_pixels": ""}, []string{`cannot parse ""`}},
		{"suffix only", map[string]any{"max_pixels": "MP"}, []string{`cannot parse "MP"`}},
		{"string overflow", map[string]any{"max_pixels": "99999999999G"}, []string{`cannot parse "99999999999G"`}},
		{"several", map[string]any{"quality": "x", "zoom": 2}, []string{`"quality"`, `unknown option "zoom"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOptions(tt.in)
			if err == nil {
				t.Fatalf("no error; got %+v", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestParseOptionsFromDecoders feeds ParseOptions what the YAML and JSON decoders actually
// produce.
func TestParseOptionsFromDecoders(t *testing.T) {
	want := Options{Quality: 85, MaxPixels: 50_000_000}
	var fromYAML map[string]any
	if err := yaml.Unmarshal([]byte("quality: 85\nmax_pixels: 50M\n"), &fromYAML); err != nil {
		t.Fatal(err)
	}
	var fromJSON map[string]any
	if err := json.Unmarshal([]byte(`{"quality": 85, "max_pixels": 50000000}`), &fromJSON); err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]map[string]any{"yaml": fromYAML, "json": fromJSON} {
		got, err := ParseOptions(m)
		if err != nil || got != want {
			t.Errorf("%s: got %+v, %v; want %+v", name, got, err, want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, o := range []Options{{}, DefaultOptions(), {Quality: 1, MaxPixels: 1}, {Quality: 100}} {
		if err := o.Validate(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
	for _, o := range []Options{{Quality: -1}, {Quality: 101}, {MaxPixels: -1}} {
		if err := o.Validate(); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}
