package schema

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// textSize reads itself from text only (encoding.TextUnmarshaler), as a type does that must not
// import YAML.
type textSize int64

func (s *textSize) UnmarshalText(b []byte) error {
	n, err := strconv.ParseInt(strings.TrimSuffix(string(b), "K"), 10, 64)
	if err != nil {
		return fmt.Errorf("bad size %q", b)
	}
	if strings.HasSuffix(string(b), "K") {
		n *= 1024
	}
	*s = textSize(n)
	return nil
}

func (textSize) SchemaType() string { return "size" }

// A TextUnmarshaler is given any scalar's text, never a mapping, a list or null; its bounds and
// default apply; the reference names it by SchemaType.
func TestDecodeTextUnmarshaler(t *testing.T) {
	type doc struct {
		A textSize `yaml:"a" min:"1" max:"4K" doc:"A size."`
		B textSize `yaml:"b" default:"2K" doc:"Another."`
	}
	for _, c := range []struct{ src, want string }{
		{"a: 3K", ""},
		{"a: 12", ""},
		{"a: lots", `1:4: a: bad size "lots"`},
		{"a: 0", "1:4: a: must be at least 1, got 0"},
		{"a: 5K", "1:4: a: must be at most 4K, got 5K"},
		{"a: [1]", "1:4: a: want size, got a list"},
		{"a: ~", "1:4: a: want size, got null"},
	} {
		root, errs := Parse([]byte(c.src))
		var d doc
		if errs == nil {
			errs = Decode(root, &d)
		}
		if got := errs.Error(); got != c.want {
			t.Errorf("%s: errors %q, want %q", c.src, got, c.want)
		}
		if c.want == "" && (d.A == 0 || d.B != 2048) {
			t.Errorf("%s: decoded %+v", c.src, d)
		}
	}
	if err := Lint(reflect.TypeFor[doc]()); err != nil {
		t.Error(err)
	}
	if ref := Reference(reflect.TypeFor[doc]()); ref[0].Type != "size" || ref[1].Default != "2K" {
		t.Errorf("reference = %+v", ref)
	}
}
