package units

import "testing"

func TestParseSize(t *testing.T) {
	good := map[string]uint64{
		"0": 0, "4096": 4096, "512MiB": 512 << 20, "1GB": 1e9, "100M": 100 << 20, "1.5KiB": 1536,
		"2 kb": 2000, "3Gi": 3 << 30, "1tb": 1e12, "10B": 10, "1_000": 1000,
	}
	for in, want := range good {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1XB", "1.2.3M", "99999999999999999999", "20000000TiB", "1e3"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestParsePercent(t *testing.T) {
	for in, want := range map[string]float64{"150%": 150, "12.5 %": 12.5, "0%": 0} {
		if got, err := ParsePercent(in); err != nil || got != want {
			t.Errorf("ParsePercent(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"150", "%", "x%", "NaN%"} {
		if _, err := ParsePercent(in); err == nil {
			t.Errorf("ParsePercent(%q): want an error", in)
		}
	}
}
