package imgconv

import (
	"testing"
)

// The options a spec gives imgconv decode by its declaration: defaults, bounds and pixel counts
// with a suffix, as ParseOptions reads them.
func TestSpecOptions(t *testing.T) {
	b := Builtin()
	for _, c := range []struct {
		opts map[string]any
		want Options
		err  string
	}{
		{nil, DefaultOptions(), ""},
		{map[string]any{"quality": 75, "max_pixels": "2.5MP"}, Options{Quality: 75, MaxPixels: 2_500_000}, ""},
		{map[string]any{"max_pixels": 40000000}, Options{Quality: DefaultQuality, MaxPixels: 40_000_000}, ""},
		{map[string]any{"quality": 0}, Options{}, "options: quality: must be at least 1, got 0"},
		{map[string]any{"quality": 101}, Options{}, "options: quality: must be at most 100, got 101"},
		{map[string]any{"max_pixels": "lots"}, Options{}, `options: max_pixels: bad pixel count "lots": `},
		{map[string]any{"qualty": 1}, Options{}, `options: unknown key "qualty" (did you mean "quality"?)`},
	} {
		o, err := b.OptionsFromMap(c.opts)
		if c.err != "" {
			if err == nil || len(err.Error()) < len(c.err) || err.Error()[:len(c.err)] != c.err {
				t.Errorf("%v: error %v, want %s", c.opts, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", c.opts, err)
			continue
		}
		if got := o.(*SpecOptions).Options(); got != c.want {
			t.Errorf("%v: options %+v, want %+v", c.opts, got, c.want)
		}
		if f, _, err := b.Make(o); err != nil || f == nil {
			t.Errorf("%v: Make: %v", c.opts, err)
		}
	}
}
