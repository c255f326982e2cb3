package schema

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// The reference lists every key of a schema with its type, default and doc, as a user reads
// them: it is what a spec's documentation is generated from.
func TestReferenceMarkdown(t *testing.T) {
	want := "| Key | Type | Default | Description |\n|---|---|---|---|\n" + strings.Join([]string{
		"| `name` | string |  | The pipeline's name. |",
		"| `source` | one of: files \\| lines \\| range | required | Where records come from. |",
		"| `source.files` | mapping |  | One record per file. Exactly one of files, lines, range. |",
		"| `source.files.dir` | string | required | The directory. |",
		"| `source.files.glob` | string | `'*'` | Which names. |",
		"| `source.files.recursive` | boolean |  | Whether to descend. |",
		"| `source.lines` | mapping |  | One record per line. Exactly one of files, lines, range. |",
		"| `source.lines.path` | string | required | The file; - is standard input. |",
		"| `source.range` | mapping |  | Synthetic records. Exactly one of files, lines, range. |",
		"| `source.range.count` | integer, at least 0 | required | How many records. |",
		"| `source.range.size` | bytes, at most 1GiB | `1KiB` | Bytes per record. |",
		"| `stages` | list of mapping |  | What happens to records, in order. |",
		"| `stages[].name` | string, not empty | required | The stage's name. |",
		"| `stages[].builtin` | string |  | An in-process stage. Exactly one of builtin, plugin. |",
		"| `stages[].plugin` | mapping |  | An out-of-process stage. Exactly one of builtin, plugin. |",
		"| `stages[].plugin.cmd` | list of string, not empty | required | Program and arguments. |",
		"| `stages[].plugin.env` | mapping of string to string |  | Environment. |",
		"| `stages[].workers` | integer, at least 1 | `1` | Workers for the stage. |",
		"| `stages[].timeout` | duration, at least 0s |  | Deadline per record. |",
		"| `stages[].ratio` | number |  | A number. |",
		"| `stages[].small` | integer |  | A small number. |",
		"| `stages[].options` | mapping (free-form) |  | Handed to the stage as-is. |",
		"| `stages[].limits` | mapping |  | Resource limits of plugin stages. |",
		"| `stages[].limits.rss` | bytes, at least 1 |  | Resident set size. |",
		"| `stages[].limits.cpu` | testpercent |  | CPU share. |",
		"| `stages[].tags` | list of string |  | Labels, inline from another struct. |",
		"| `order` | string: any \\| input | `any` | The order records reach the sink in. |",
		"| `supervision` | mapping |  | The root supervisor. |",
		"| `supervision.strategy` | string: one_for_one \\| one_for_all \\| rest_for_one | `one_for_one` | What a crash restarts. |",
		"| `supervision.intensity` | integer, at least 0 | `10` | Restarts allowed within period. |",
		"| `supervision.period` | duration, at least 1ns | `1m` | The window of intensity. |",
		"| `supervision.backoff` | mapping |  | Delay between restarts. |",
		"| `supervision.backoff.min` | duration, at least 0s | `10ms` | The first delay. |",
		"| `supervision.backoff.max` | duration, at least 0s | `1s` | The longest delay. |",
		"| `dead_letter` | mapping |  | Where dead letters go. |",
		"| `dead_letter.path` | string | required | The JSON lines file. |",
		"| `labels` | mapping of string to string |  | Free labels. |",
	}, "\n") + "\n"
	if got := Markdown(Reference(reflect.TypeFor[*testSpec]())); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestReferenceFields(t *testing.T) {
	ref := Reference(reflect.TypeFor[testSpec]())
	byPath := map[string]Field{}
	for _, f := range ref {
		byPath[f.Path] = f
	}
	want := Field{Path: "order", Type: "string", Enum: []string{"any", "input"}, Default: "any",
		Doc: "The order records reach the sink in."}
	if got := byPath["order"]; !reflect.DeepEqual(got, want) {
		t.Errorf("order = %+v, want %+v", got, want)
	}
	want = Field{Path: "source.lines", Type: "mapping", OneOf: []string{"files", "lines", "range"}, Doc: "One record per line."}
	if got := byPath["source.lines"]; !reflect.DeepEqual(got, want) {
		t.Errorf("source.lines = %+v, want %+v", got, want)
	}
}

type tree struct {
	Name     string  `yaml:"name" doc:"A node."`
	Children []tree  `yaml:"children" doc:"Its children."`
	Next     *tree   `yaml:"next" doc:"Its sibling."`
	Weights  []int64 `yaml:"weights" doc:"Numbers."`
}

// A recursive type is listed once, and decodes as deep as the document goes (within bounds).
func TestReferenceRecursive(t *testing.T) {
	var paths []string
	for _, f := range Reference(reflect.TypeFor[tree]()) {
		paths = append(paths, f.Path)
	}
	if got, want := strings.Join(paths, " "), "name children next weights"; got != want {
		t.Errorf("paths = %s, want %s", got, want)
	}
	var tr tree
	if got := decodeText(t, "name: a\nchildren: [{name: b, next: {name: c}}]\n", &tr); got != "" || tr.Children[0].Next.Name != "c" {
		t.Errorf("errors %q, tree %+v", got, tr)
	}
	// An alias cycle stops at the depth bound with one error.
	got := decodeText(t, "&a {name: a, next: *a}\n", &tr)
	if !strings.HasSuffix(got, "nested too deeply (more than 100 levels)") || strings.Contains(got, "\n") {
		t.Errorf("cycle: %q", got)
	}
}

func TestLint(t *testing.T) {
	if err := Lint(reflect.TypeFor[testSpec]()); err != nil {
		t.Errorf("the test schema: %v", err)
	}
	type inner struct {
		A int `yaml:"a" default:"x" doc:"d"`
	}
	type bad struct {
		NoDoc    int            `yaml:"nodoc"`
		Def      time.Duration  `yaml:"def" default:"soon" doc:"d"`
		Enum     []string       `yaml:"enum" enum:"a|b" doc:"d"`
		EnumDef  string         `yaml:"enumdef" enum:"a|b" default:"c" doc:"d"`
		Min      string         `yaml:"min" min:"1" doc:"d"`
		Below    int            `yaml:"below" min:"5" default:"1" doc:"d"`
		Req      int            `yaml:"req" required:"yes" doc:"d"`
		NonEmpty int            `yaml:"nonempty" nonempty:"true" doc:"d"`
		ReqDef   int            `yaml:"reqdef" required:"true" default:"1" doc:"d"`
		Lonely   *int           `yaml:"lonely" oneof:"g" doc:"d"`
		Dup      int            `yaml:"nodoc" doc:"d"`
		Chan     chan int       `yaml:"chan" doc:"d"`
		IntKeys  map[int]string `yaml:"intkeys" doc:"d"`
		Flag     int            `yaml:"flag,omitempty" doc:"d"`
		BadYAML  int            `yaml:"badyaml" default:"[" doc:"d"`
		Inner    inner          `yaml:"inner" doc:"d"`
		NotInner int            `yaml:",inline"`
	}
	err := Lint(reflect.TypeFor[bad]())
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"bad.Enum: enum on []string, which is not a scalar",
		"bad.Min: min on string, which is not a number",
		`bad.Req: required:"yes", want "true"`,
		"bad.NonEmpty: nonempty on int, which is no string, list or map",
		"bad.ReqDef: a required key has no default",
		`bad: oneof group "g" has a single field`,
		`bad.Dup: key "nodoc" declared twice`,
		"bad.Chan: unsupported type chan int",
		"bad.IntKeys: map keys must be strings, not int",
		`bad.Flag: unsupported yaml flag "omitempty"`,
		`bad.BadYAML: default:"[": yaml: line 1: did not find expected node content`,
		"bad.NotInner: only a struct can be inline",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in\n%v", want, err)
		}
	}
	// Tags that parse are then checked against their field: these are reported once the
	// struct's own problems are fixed.
	type bad2 struct {
		NoDoc   int           `yaml:"nodoc"`
		Def     time.Duration `yaml:"def" default:"soon" doc:"d"`
		EnumDef string        `yaml:"enumdef" enum:"a|b" default:"c" doc:"d"`
		Below   int           `yaml:"below" min:"5" default:"1" doc:"d"`
		Inner   inner         `yaml:"inner" doc:"d"`
	}
	err = Lint(reflect.TypeFor[bad2]())
	for _, want := range []string{
		"bad2.NoDoc: no doc",
		`bad2.Def: default:"soon": bad duration "soon" (want a duration like 30s or 1m30s)`,
		`bad2.EnumDef: default:"c": unknown value "c" (want one of: a, b)`,
		`bad2.Below: default:"1": must be at least 5, got 1`,
		`inner.A: default:"x": want an integer, got string "x"`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in\n%v", want, err)
		}
	}
	// Decode refuses a schema with bad tags, loudly: it is a programming error.
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "unsupported type chan int") {
			t.Errorf("Decode with bad tags: recovered %v", r)
		}
	}()
	var b bad
	decodeText(t, "a: 1\n", &b)
}

// The values of a map and the elements of a list are documented under the map's or list's key.
func TestReferenceContainers(t *testing.T) {
	type item struct {
		X int `yaml:"x" doc:"A number."`
	}
	type doc struct {
		ByName map[string]item `yaml:"by_name" doc:"Items by name."`
		Nested [][]*item       `yaml:"nested" doc:"Lists of lists."`
	}
	var got []string
	for _, f := range Reference(reflect.TypeFor[doc]()) {
		got = append(got, f.Path+": "+f.Type)
	}
	want := []string{"by_name: mapping of string to mapping", "by_name.<name>.x: integer",
		"nested: list of list of mapping", "nested[][].x: integer"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	var d doc
	if errs := decodeText(t, "by_name: {a: {x: 1}}\nnested: [[{x: 2}], [{y: 3}]]\n", &d); errs != `s.yaml:2:22: nested[1][0]: unknown key "y" (want one of: x)` {
		t.Errorf("errors: %s", errs)
	}
	if d.ByName["a"].X != 1 || d.Nested[0][0].X != 2 {
		t.Errorf("decoded %+v", d)
	}
}
