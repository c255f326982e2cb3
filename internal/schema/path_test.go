package schema

import (
	"reflect"
	"testing"
)

func TestPathSyntax(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{joinKey("", "stages"), "stages"},
		{joinIndex(joinKey("", "stages"), 1), "stages[1]"},
		{joinKey("stages[1]", "limits"), "stages[1].limits"},
		{joinKey("env", "A.B"), `env["A.B"]`},
		{joinKey("", "a b"), `["a b"]`},
		{joinPath("stages[1]", "limits.rss"), "stages[1].limits.rss"},
		{joinPath("", "limits"), "limits"},
		{joinPath("cmd", "[0]"), "cmd[0]"},
		{joinPath("x", ""), "x"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	want := []segment{{key: "a"}, {index: 2, isIndex: true}, {key: "b.c"}, {key: "d"}}
	if got := parsePath(`a[2]["b.c"].d`); !reflect.DeepEqual(got, want) {
		t.Errorf("parsePath = %+v, want %+v", got, want)
	}
	// A malformed path yields the steps before the fault.
	for _, p := range []string{`a[x]`, `a["b`, `a[2`} {
		if got := parsePath(p); !reflect.DeepEqual(got, []segment{{key: "a"}}) {
			t.Errorf("parsePath(%q) = %+v", p, got)
		}
	}
}

// Positions lets the owner of a decoded struct report a problem found later (a builtin that
// is not registered, a file that does not exist) where the document wrote it.
func TestPositions(t *testing.T) {
	src := `source: {range: {count: 1}}
stages:
  - name: a
    builtin: x
    options:
      k: 1
  - &p {name: b, plugin: {cmd: [x]}}
`
	var s testSpec
	if got := decodeText(t, src, &s); got != "" {
		t.Fatal(got)
	}
	a, b := s.Stages[0].At, s.Stages[1].At
	for _, c := range []struct {
		name string
		got  Pos
		want Pos
	}{
		{"stage", a.Value(""), Pos{3, 5}},
		{"value", a.Value("builtin"), Pos{4, 14}},
		{"key", a.Key("builtin"), Pos{4, 5}},
		{"nested", a.Value("options.k"), Pos{6, 10}},
		{"absent: its mapping", a.Value("workers"), Pos{3, 5}},
		{"absent under present: the mapping, at its first key", a.Value("options.zz"), Pos{6, 7}},
		{"list element", b.Value("plugin.cmd[0]"), Pos{7, 33}},
		{"list element key is the element", b.Key("plugin.cmd[0]"), Pos{7, 33}},
		{"index out of range", b.Value("plugin.cmd[5]"), Pos{7, 32}},
		{"root", s.Positions.Value("stages[1].name"), Pos{7, 15}},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
	if !a.Has("options.k") || a.Has("workers") || a.Has("options.zz") {
		t.Error("Has")
	}
	if got, want := a.Errorf("builtin", "unknown builtin %q", "x").Format("s.yaml"), `s.yaml:4:14: stages[0].builtin: unknown builtin "x"`; got != want {
		t.Errorf("Errorf = %s, want %s", got, want)
	}
	if b.Path("plugin") != "stages[1].plugin" {
		t.Errorf("Path = %s", b.Path("plugin"))
	}
	var zero Positions
	if zero.Has("x") || zero.Value("x") != (Pos{}) || zero.Key("") != (Pos{}) {
		t.Error("the zero Positions should know nothing")
	}
}
