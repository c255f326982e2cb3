package schema

import "testing"

func TestParse(t *testing.T) {
	for _, c := range []struct{ name, src, want string }{
		{"syntax", "source: x\n  sink: y: z\n", `s.yaml:2:3: invalid YAML: mapping values are not allowed in this context`},
		{"two documents", "a: 1\n---\nb: 2\n", `s.yaml:2:1: want a single YAML document; found another one here`},
		{"bad second document", "a: 1\n---\n[\n", `s.yaml:3:1: invalid YAML: did not find expected node content`},
		{"tab", "a:\n\tb: 1\n", `s.yaml:2:2: invalid YAML: found character that cannot start any token`},
	} {
		n, errs := Parse([]byte(c.src))
		if got := errs.Format("s.yaml"); got != c.want || n != nil {
			t.Errorf("%s: got %q, node %v\nwant %s", c.name, got, n, c.want)
		}
	}
	for _, empty := range []string{"", "# nothing\n", "---\n"} {
		n, errs := Parse([]byte(empty))
		if n != nil || errs != nil {
			t.Errorf("Parse(%q) = %v, %v; want nothing", empty, n, errs)
		}
		var s testSpec
		if got := Decode(n, &s).Format("s.yaml"); got != `s.yaml:1:1: missing key "source" (one of: files | lines | range)` {
			t.Errorf("Decode(empty) = %s", got)
		}
	}
	n, errs := Parse([]byte("source: {lines: {path: x}}\n"))
	var s testSpec
	if errs != nil || Decode(n, &s) != nil || s.Source.Lines.Path != "x" {
		t.Errorf("errs %v, spec %+v", errs, s)
	}
}
