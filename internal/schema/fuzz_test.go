package schema

import (
	"slices"
	"testing"
)

// FuzzDecode checks that no YAML document makes Parse or Decode panic, and that every error it reports
// is positioned, once, in order.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		"source: {range: {count: 1, size: 2GiB}}\nstages: [{name: a, builtin: x, workers: 0, options: {k: [1, 2.5, true, ~]}}]\n",
		"source: {files: {dir: d}, lines: {path: x}}\nsupervision: {backoff: {min: 5s, max: 1s}, period: 0}\norder: inptu\n",
		"stages:\n  - &a {name: a, plugin: {cmd: [x], env: {A: b}}, limits: {rss: 1MiB, cpu: 50%}}\n  - <<: [*a, {workers: 2}]\n    name: b\n",
		"a0: &a [x, x]\nstages: [{name: a, builtin: x, options: {a: *a, b: [*a, *a]}}]\n",
		"&a {source: *a}\n",
		"labels: {~: x, [a]: b, {c: d}: e, a.b: [x]}\n",
		"- 1\n- 2\n",
		"source: !!binary aGVsbG8=\nname: !custom x\ndead_letter:\n",
		"stages: [{name: a, builtin: x, small: -1, ratio: .inf, timeout: 99999h, workers: 0x10}]\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		n, es := Parse(data)
		if es == nil {
			var s testSpec
			es = Decode(n, &s)
			var tr tree
			Decode(n, &tr)
		}
		for i, e := range es {
			if e.Line < 1 || e.Col < 1 || e.Msg == "" {
				t.Errorf("error without a position or a message: %+v", e)
			}
			if i > 0 && (es[i-1].Line > e.Line || es[i-1].Line == e.Line && es[i-1].Col > e.Col) {
				t.Errorf("errors out of order: %+v before %+v", es[i-1], e)
			}
		}
		if len(slices.Compact(slices.Clone(es))) != len(es) {
			t.Errorf("an error is reported twice: %v", es)
		}
	})
}
