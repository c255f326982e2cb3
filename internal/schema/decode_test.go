package schema

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// decodeText parses src and decodes it into dst, returning the errors as they are printed.
func decodeText(t *testing.T, src string, dst any) string {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatalf("bad test YAML: %v", err)
	}
	return Decode(&n, dst).Format("s.yaml")
}

// A document without problems decodes in full, and every absent key takes its default.
func TestDecodeFull(t *testing.T) {
	src := `name: demo
source: {files: {dir: in}}
stages:
  - name: shout
    builtin: upper
    timeout: 1m30s
    ratio: 0.5
    small: 255
    tags: [a, b]
  - name: conv
    plugin: {cmd: [./p, --fast], env: {MODE: fast, LEVEL: 3}}
    workers: 4
    options: {quality: 90, sizes: [64, 128], crop: {w: 10, h: 2.5}, strip: true, note: null, big: 99999999999999999999}
    limits: {rss: 512MiB, cpu: 150%}
supervision: {backoff: {max: 2s}}
dead_letter: {path: dead.jsonl}
labels: {team: x}
`
	var s testSpec
	if got := decodeText(t, src, &s); got != "" {
		t.Fatalf("errors:\n%s", got)
	}
	s.Positions, s.Stages[0].At, s.Stages[1].At = Positions{}, Positions{}, Positions{}
	want := testSpec{
		Name:   "demo",
		Source: testSource{Files: &testFiles{Dir: "in", Glob: "*"}},
		Stages: []testStage{
			{Name: "shout", Builtin: "upper", Workers: 1, Timeout: 90 * time.Second, Ratio: 0.5, Small: 255,
				testTags: testTags{Tags: []string{"a", "b"}}},
			{Name: "conv", Plugin: &testPlugin{Cmd: []string{"./p", "--fast"}, Env: map[string]string{"MODE": "fast", "LEVEL": "3"}},
				Workers: 4,
				Options: map[string]any{"quality": 90, "sizes": []any{64, 128}, "crop": map[string]any{"w": 10, "h": 2.5},
					"strip": true, "note": nil, "big": 1e20},
				Limits: &testLimits{RSS: 512 << 20, CPU: 150}},
		},
		Order: "any",
		Supervision: testSupervision{Strategy: "one_for_one", Intensity: 10, Period: time.Minute,
			Backoff: testBackoff{Min: 10 * time.Millisecond, Max: 2 * time.Second}},
		DeadLetter: &testDeadLetter{Path: "dead.jsonl"},
		Labels:     map[string]string{"team": "x"},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", s, want)
	}
}

// Defaults come from the same declaration whether the document is nearly empty or the key is
// left out; a key given explicitly wins.
func TestDecodeDefaults(t *testing.T) {
	var s testSpec
	if got := decodeText(t, "source: {range: {count: 5}}\n", &s); got != "" {
		t.Fatal(got)
	}
	if *s.Source.Range != (testRange{Count: 5, Size: 1024}) || s.Order != "any" || s.Stages != nil || s.DeadLetter != nil {
		t.Errorf("spec = %+v, range %+v", s, s.Source.Range)
	}
	wantSup := testSupervision{Strategy: "one_for_one", Intensity: 10, Period: time.Minute,
		Backoff: testBackoff{Min: 10 * time.Millisecond, Max: time.Second}}
	if s.Supervision != wantSup {
		t.Errorf("supervision = %+v, want %+v", s.Supervision, wantSup)
	}
}

// Merge keys (<<) and aliases are read as YAML defines them: explicit keys win over merged
// ones, and a problem in a merged mapping is reported where it is written.
func TestDecodeMergeAndAlias(t *testing.T) {
	src := `source: {range: {count: 1}}
stages:
  - &base {name: a, builtin: x, workers: 3}
  - <<: *base
    name: b
  - <<: [{workers: 5}, *base]
    name: c
`
	var s testSpec
	if got := decodeText(t, src, &s); got != "" {
		t.Fatal(got)
	}
	for i, want := range []testStage{{Name: "a", Builtin: "x", Workers: 3}, {Name: "b", Builtin: "x", Workers: 3}, {Name: "c", Builtin: "x", Workers: 5}} {
		got := s.Stages[i]
		got.At = Positions{}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("stage %d = %+v, want %+v", i, got, want)
		}
	}
	src = "source: {range: {count: 1}}\nstages:\n  - <<: {wrkers: 2}\n    name: b\n    builtin: x\n"
	want := `s.yaml:3:10: stages[0]: unknown key "wrkers" (did you mean "workers"?)`
	if got := decodeText(t, src, &s); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// Each problem is reported once, at its position, naming the key path; the table is the
// specification of the messages.
func TestDecodeErrors(t *testing.T) {
	const ok = "source: {range: {count: 1}}\n"
	tests := []struct{ name, src, want string }{
		// The document.
		{"empty", "", `s.yaml:1:1: missing key "source" (one of: files | lines | range)`},
		{"not a mapping", "- a\n", `s.yaml:1:1: want a mapping, got a list`},
		{"unknown key far", ok + "colour: red\n",
			`s.yaml:2:1: unknown key "colour" (want one of: name, source, stages, order, supervision, dead_letter, labels)`},
		{"unknown key near", ok + "stages: [{name: a, builtin: x, workrs: 3}]\n",
			`s.yaml:2:32: stages[0]: unknown key "workrs" (did you mean "workers"?)`},
		{"duplicate key", ok + "order: any\norder: input\n", `s.yaml:3:1: duplicate key "order" (first at line 2)`},
		{"key not a string", ok + "labels: {~: x}\n", `s.yaml:2:10: labels: keys must be strings, got null`},
		{"missing required", ok + "stages: [{builtin: x}]\n", `s.yaml:2:10: stages[0]: missing key "name"`},
		{"missing in null", ok + "dead_letter:\n", `s.yaml:2:13: dead_letter: missing key "path"`},
		// Unions.
		{"union none", "source: {}\n", `s.yaml:1:9: source: want exactly one of files, lines, range`},
		{"union null", "source:\n", `s.yaml:1:8: source: want exactly one of files, lines, range`},
		{"union several", "source:\n  range: {count: 1}\n  lines: {path: x}\n",
			`s.yaml:3:3: source: want exactly one of files, lines, range, got lines and range`},
		{"stage union", ok + "stages: [{name: a}]\n", `s.yaml:2:10: stages[0]: want exactly one of builtin, plugin`},
		// Scalars.
		{"string for int", ok + "stages: [{name: a, builtin: x, workers: two}]\n",
			`s.yaml:2:41: stages[0].workers: want an integer, got string "two"`},
		{"float for int", ok + "stages: [{name: a, builtin: x, workers: 2.5}]\n",
			`s.yaml:2:41: stages[0].workers: want an integer, got float 2.5`},
		{"int overflow", ok + "stages: [{name: a, builtin: x, workers: 99999999999999999999}]\n",
			`s.yaml:2:41: stages[0].workers: integer 99999999999999999999 out of range (want -9223372036854775808 to 9223372036854775807)`},
		{"uint8 overflow", ok + "stages: [{name: a, builtin: x, small: 256}]\n",
			`s.yaml:2:39: stages[0].small: integer 256 out of range (want 0 to 255)`},
		{"uint negative", ok + "stages: [{name: a, builtin: x, small: -1}]\n",
			`s.yaml:2:39: stages[0].small: want an integer of at least 0, got -1`},
		{"bool for number", ok + "stages: [{name: a, builtin: x, ratio: true}]\n",
			`s.yaml:2:39: stages[0].ratio: want a number, got boolean true`},
		{"nan", ok + "stages: [{name: a, builtin: x, ratio: .nan}]\n",
			`s.yaml:2:39: stages[0].ratio: want a finite number, got .nan`},
		{"yes is no bool", "source: {files: {dir: d, recursive: yes}}\n",
			`s.yaml:1:37: source.files.recursive: want true or false, got string "yes"`},
		{"bool for string", ok + "name: true\n", `s.yaml:2:7: name: want a string, got boolean true`},
		{"mapping for string", ok + "name: {a: 1}\n", `s.yaml:2:7: name: want a string, got a mapping`},
		{"null for string", ok + "name:\n", `s.yaml:2:6: name: want a string, got null`},
		{"duration unitless", ok + "stages: [{name: a, builtin: x, timeout: 30}]\n",
			`s.yaml:2:41: stages[0].timeout: want a duration like 30s or 1m30s, got integer 30`},
		{"duration bad", ok + "stages: [{name: a, builtin: x, timeout: 3 s}]\n",
			`s.yaml:2:41: stages[0].timeout: bad duration "3 s" (want a duration like 30s or 1m30s)`},
		// Enums and bounds.
		{"enum near", ok + "order: inptu\n", `s.yaml:2:8: order: unknown value "inptu" (did you mean "input"?)`},
		{"enum far", ok + "order: sorted\n", `s.yaml:2:8: order: unknown value "sorted" (want one of: any, input)`},
		{"min int", ok + "stages: [{name: a, builtin: x, workers: 0}]\n",
			`s.yaml:2:41: stages[0].workers: must be at least 1, got 0`},
		{"min duration", ok + "supervision: {period: 0}\n", `s.yaml:2:23: supervision.period: must be at least 1ns, got 0`},
		{"min negative duration", ok + "stages: [{name: a, builtin: x, timeout: -1s}]\n",
			`s.yaml:2:41: stages[0].timeout: must be at least 0s, got -1s`},
		{"max custom", "source: {range: {count: 1, size: 2GiB}}\n", `s.yaml:1:34: source.range.size: must be at most 1GiB, got 2GiB`},
		// Custom scalars speak for themselves.
		{"custom message", ok + "stages: [{name: a, plugin: {cmd: [x]}, limits: {rss: lots}}]\n",
			`s.yaml:2:54: stages[0].limits.rss: bad size "lots": want a size like 512MiB`},
		{"custom sees the tag", ok + "stages: [{name: a, plugin: {cmd: [x]}, limits: {cpu: \"150\"}}]\n",
			`s.yaml:2:54: stages[0].limits.cpu: want a percentage like 150%, got string "150"`},
		{"custom given a mapping", ok + "stages: [{name: a, plugin: {cmd: [x]}, limits: {rss: {a: 1}}}]\n",
			`s.yaml:2:54: stages[0].limits.rss: want bytes, got a mapping`},
		{"custom min", ok + "stages: [{name: a, plugin: {cmd: [x]}, limits: {rss: 0}}]\n",
			`s.yaml:2:54: stages[0].limits.rss: must be at least 1, got 0`},
		{"empty string", ok + "stages: [{name: \"\", builtin: x}]\n", `s.yaml:2:17: stages[0].name: must not be empty`},
		// Lists and maps.
		{"empty list", ok + "stages: [{name: a, plugin: {cmd: []}}]\n", `s.yaml:2:34: stages[0].plugin.cmd: must not be empty`},
		{"null list", ok + "stages: [{name: a, plugin: {cmd: }}]\n", `s.yaml:2:34: stages[0].plugin.cmd: must not be empty`},
		{"scalar for list", ok + "stages: [{name: a, builtin: x, tags: x}]\n",
			`s.yaml:2:38: stages[0].tags: want a list of string, got string "x"`},
		{"list element", ok + "stages: [{name: a, plugin: {cmd: [x, [y]]}}]\n",
			`s.yaml:2:38: stages[0].plugin.cmd[1]: want a string, got a list`},
		{"list for map", ok + "labels: [a]\n", `s.yaml:2:9: labels: want a mapping of string to string, got a list`},
		{"map value", ok + "labels: {a: {b: c}}\n", `s.yaml:2:13: labels.a: want a string, got a mapping`},
		{"quoted path", ok + "labels: {\"a.b\": [x]}\n", `s.yaml:2:17: labels["a.b"]: want a string, got a list`},
		{"stages mapping", ok + "stages: {a: 1}\n", `s.yaml:2:9: stages: want a list of mapping, got a mapping`},
		{"free-form duplicate", ok + "stages: [{name: a, builtin: x, options: {k: 1, k: 2}}]\n",
			`s.yaml:2:48: stages[0].options: duplicate key "k" (first at line 2)`},
		// Check methods.
		{"check with positions", ok + "stages:\n  - {name: a, builtin: x}\n  - {name: a, builtin: y}\n",
			`s.yaml:4:12: stages[1].name: duplicate stage name "a" (first at line 3)`},
		{"check anchors a field", ok + "supervision: {backoff: {min: 5s, max: 1s}}\n",
			`s.yaml:2:39: supervision.backoff.max: must not be below min (5s), got 1s`},
		{"check anchors an absent field at its mapping", ok + "supervision: {backoff: {min: 5s}}\n",
			`s.yaml:2:24: supervision.backoff.max: must not be below min (5s), got 1s`},
		{"check across fields", ok + "stages: [{name: a, builtin: x, limits: {rss: 1}}]\n",
			`s.yaml:2:40: stages[0].limits: only plugin stages have resource limits (stage a is builtin x)`},
		{"check plain error", ok + "stages: [{name: explode, builtin: x}]\n",
			`s.yaml:2:10: stages[0]: stage explode: refused by its owner`},
		{"check leaves out what failed to decode", ok + "stages: [{name: a, builtin: x, limits: {rss: lots}}]\n",
			`s.yaml:2:46: stages[0].limits.rss: bad size "lots": want a size like 512MiB`},
		{"check keeps what is unrelated", ok + "stages: [{name: a, builtin: x, workers: two, limits: {rss: 1}}]\n",
			"s.yaml:2:41: stages[0].workers: want an integer, got string \"two\"\n" +
				`s.yaml:2:54: stages[0].limits: only plugin stages have resource limits (stage a is builtin x)`},
		{"check on the whole leaves out a struct with a failed key", ok + "stages: [{name: explode, builtin: x, workers: two}]\n",
			`s.yaml:2:47: stages[0].workers: want an integer, got string "two"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s testSpec
			if got := decodeText(t, tt.src, &s); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// All the problems of a document come at once, in the order they are written.
func TestDecodeAllErrors(t *testing.T) {
	src := `name: broken
source:
  files: {dir: input, recursive: yes}
  lines: {path: x}
stages:
  - name: convert
    builtin: upper
    workers: two
    workrs: 3
    timeout: 30
  - builtin: nope
    plugin: {cmd: [./p]}
    limits: {rss: 512XB, cpu: 150}
supervision: {strategy: one_for_none, intensity: -2, period: 0}
order: random
sinks: {discard: {}}
dead_letter: {}
`
	want := strings.Join([]string{
		`s.yaml:3:34: source.files.recursive: want true or false, got string "yes"`,
		`s.yaml:4:3: source: want exactly one of files, lines, range, got files and lines`,
		`s.yaml:8:14: stages[0].workers: want an integer, got string "two"`,
		`s.yaml:9:5: stages[0]: unknown key "workrs" (did you mean "workers"?)`,
		`s.yaml:10:14: stages[0].timeout: want a duration like 30s or 1m30s, got integer 30`,
		`s.yaml:11:5: stages[1]: missing key "name"`,
		`s.yaml:12:5: stages[1]: want exactly one of builtin, plugin, got builtin and plugin`,
		`s.yaml:13:19: stages[1].limits.rss: bad size "512XB": want a size like 512MiB`,
		`s.yaml:13:31: stages[1].limits.cpu: want a percentage like 150%, got integer 150`,
		`s.yaml:14:25: supervision.strategy: unknown value "one_for_none" (did you mean "one_for_one"?)`,
		`s.yaml:14:50: supervision.intensity: must be at least 0, got -2`,
		`s.yaml:14:62: supervision.period: must be at least 1ns, got 0`,
		`s.yaml:15:8: order: unknown value "random" (want one of: any, input)`,
		`s.yaml:16:1: unknown key "sinks" (want one of: name, source, stages, order, supervision, dead_letter, labels)`,
		`s.yaml:17:14: dead_letter: missing key "path"`,
	}, "\n")
	var s testSpec
	if got := decodeText(t, src, &s); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// Aliases cannot blow a small document up into a huge one, nor loop.
func TestDecodeAliasBombs(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 8; i++ {
		b.WriteString("a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	src := "source: {range: {count: 1}}\nstages: [{name: a, builtin: x, options: {" + strings.ReplaceAll(strings.TrimSuffix(b.String(), "\n"), "\n", ", ") + "}}]\n"
	var s testSpec
	got := decodeText(t, src, &s)
	if !strings.Contains(got, "too large: more than 100000 values") || strings.Count(got, "\n") != 0 {
		t.Errorf("got %q, want one error saying the document is too large", got)
	}
}

// A pointer field left out stays nil; a nested struct field gets its defaults; a value set
// before decoding survives when its key is absent and it has no default.
func TestDecodeKeepsUnsetFields(t *testing.T) {
	s := testSpec{Name: "preset", Supervision: testSupervision{Intensity: 3}}
	if got := decodeText(t, "source: {lines: {path: x}}\n", &s); got != "" {
		t.Fatal(got)
	}
	if s.Name != "preset" || s.Supervision.Intensity != 10 || s.DeadLetter != nil || s.Source.Files != nil {
		t.Errorf("spec = %+v", s)
	}
}

// Merges of merges of aliases take linear time, not exponential.
func TestDecodeMergeBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("source: {range: {count: 1}}\nlabels:\n  <<: &m0 {a: x}\n")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&b, "  <<: &m%d {<<: [*m%d, *m%d, *m%d]}\n", i, i-1, i-1, i-1)
	}
	var s testSpec
	if got := decodeText(t, b.String(), &s); got != "" || !reflect.DeepEqual(s.Labels, map[string]string{"a": "x"}) {
		t.Errorf("errors %q, labels %v", got, s.Labels)
	}
}

// A union member may be an empty struct: its key alone is the choice.
func TestDecodeEmptyStruct(t *testing.T) {
	type sink struct {
		Discard *struct{}  `yaml:"discard" oneof:"kind" doc:"Drop records."`
		Lines   *testLines `yaml:"lines" oneof:"kind" doc:"Write lines."`
	}
	for _, c := range []struct{ src, want string }{
		{"discard:\n", ""},
		{"discard: {}\n", ""},
		{"discard: {x: 1}\n", `s.yaml:1:11: discard: unknown key "x" (takes none)`},
		{"discard: 1\n", `s.yaml:1:10: discard: want a mapping, got integer 1`},
	} {
		var s sink
		if got := decodeText(t, c.src, &s); got != c.want || c.want == "" && s.Discard == nil {
			t.Errorf("%q: got %q (discard %v), want %q", c.src, got, s.Discard, c.want)
		}
	}
}

// Decode may run concurrently: the analysis of types and tags is shared.
func TestDecodeConcurrent(t *testing.T) {
	type fresh struct {
		N time.Duration `yaml:"n" default:"2s" min:"1s" doc:"d"`
	}
	done := make(chan string)
	for range 8 {
		go func() {
			var s testSpec
			var f fresh
			var n yaml.Node
			_ = yaml.Unmarshal([]byte("source: {range: {count: 1}}\norder: inptu\n"), &n)
			got := Decode(&n, &s).Format("s.yaml")
			if Decode(nil, &f) != nil || f.N != 2*time.Second {
				got = "fresh"
			}
			done <- got
		}()
	}
	for range 8 {
		if got := <-done; got != `s.yaml:2:8: order: unknown value "inptu" (did you mean "input"?)` {
			t.Errorf("got %s", got)
		}
	}
}

// point decodes itself from any node, as a yaml.Unmarshaler.
type point struct{ X, Y int }

func (p *point) UnmarshalYAML(n *yaml.Node) error {
	var xy []int
	if err := n.Decode(&xy); err != nil || len(xy) != 2 {
		return fmt.Errorf("want a point like [1, 2], got %s", describe(n))
	}
	p.X, p.Y = xy[0], xy[1]
	return nil
}

func TestDecodeYAMLUnmarshaler(t *testing.T) {
	type doc struct {
		At     point   `yaml:"at" doc:"Where."`
		Others []point `yaml:"others" doc:"Where else."`
	}
	var d doc
	if got := decodeText(t, "at: &p [1, 2]\nothers: [*p, [3, 4]]\n", &d); got != "" || d.At != (point{1, 2}) || d.Others[1] != (point{3, 4}) {
		t.Errorf("errors %q, decoded %+v", got, d)
	}
	if got, want := decodeText(t, "at: {x: 1}\n", &d), `s.yaml:1:5: at: want a point like [1, 2], got a mapping`; got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	if got := Markdown(Reference(reflect.TypeFor[doc]())); !strings.Contains(got, "| `at` | point |") || !strings.Contains(got, "| `others` | list of point |") {
		t.Errorf("reference:\n%s", got)
	}
}

// Defaults is what a document that says nothing decodes to, required keys aside.
func TestDefaults(t *testing.T) {
	var sup testSupervision
	Defaults(&sup)
	want := testSupervision{Strategy: "one_for_one", Intensity: 10, Period: time.Minute,
		Backoff: testBackoff{Min: 10 * time.Millisecond, Max: time.Second}}
	if sup != want {
		t.Errorf("Defaults = %+v, want %+v", sup, want)
	}
	var s testSpec
	Defaults(&s)
	if s.Order != "any" || s.Supervision != want || s.Source.Range != nil || s.Stages != nil {
		t.Errorf("Defaults = %+v", s)
	}
}
