package schema

import "testing"

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"abc", "", 3}, {"workrs", "workers", 1}, {"kitten", "sitting", 3}} {
		if got := editDistance(c.a, c.b); got != c.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.d)
		}
	}
}

func TestUnknown(t *testing.T) {
	known := []string{"name", "builtin", "plugin", "workers", "credits"}
	for _, c := range []struct{ word, want string }{
		{"workrs", `unknown key "workrs" (did you mean "workers"?)`},
		{"Credits", `unknown key "Credits" (did you mean "credits"?)`},
		{"plugni", `unknown key "plugni" (did you mean "plugin"?)`},
		{"colour", `unknown key "colour" (want one of: name, builtin, plugin, workers, credits)`},
		{"n", `unknown key "n" (want one of: name, builtin, plugin, workers, credits)`},
	} {
		if got := unknown("key", c.word, known); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}
}
