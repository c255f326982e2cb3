package troupe

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/plugins"
	"github.com/troupe-dev/troupe/supervisor"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestLoadSpecFull(t *testing.T) {
	s, err := LoadSpec("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	testdata, _ := filepath.Abs("testdata")
	if s.Name != "everything" || s.File != "testdata/full.yaml" || s.Dir != testdata {
		t.Errorf("name, file, dir = %q, %q, %q", s.Name, s.File, s.Dir)
	}
	wantSrc := FilesSourceSpec{Pos: Pos{"testdata/full.yaml", 3, 23}, Dir: filepath.Join(testdata, "input"), Glob: "*.png", Recursive: true}
	if s.Source.Files == nil || *s.Source.Files != wantSrc || s.Source.Lines != nil || s.Source.Range != nil {
		t.Errorf("source = %+v, want files %+v", s.Source, wantSrc)
	}
	if got := s.Source.Pos.String(); got != "testdata/full.yaml:3:10" {
		t.Errorf("source position = %s", got)
	}
	if len(s.Stages) != 3 {
		t.Fatalf("got %d stages, want 3", len(s.Stages))
	}
	shout := s.Stages[0]
	wantShout := StageSpec{
		Pos: Pos{"testdata/full.yaml", 5, 5}, Name: "shout", Builtin: "upper",
		Workers: 2, Credits: 16, Attempts: 5, Timeout: 90 * time.Second,
		OptionsPos: Pos{"testdata/full.yaml", 5, 5},
		Restart: actors.Restart{Intensity: 3, Period: 20 * time.Second,
			Backoff: supervisor.Backoff{Min: 10 * time.Millisecond, Max: 2 * time.Second}},
	}
	if !reflect.DeepEqual(shout, wantShout) {
		t.Errorf("stage shout =\n%+v\nwant\n%+v", shout, wantShout)
	}
	conv := s.Stages[1]
	wantPlugin := &PluginSpec{
		Pos:    Pos{"testdata/full.yaml", 14, 7},
		Cmd:    []string{filepath.Join(testdata, "bin", "imgconv-plugin"), "--fast"},
		SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		Env:    map[string]string{"MODE": "fast", "LEVEL": "3"},
		Limits: plugins.Limits{RSS: 512 << 20, CPU: 150, Startup: 10 * time.Second},
	}
	if !reflect.DeepEqual(conv.Plugin, wantPlugin) {
		t.Errorf("plugin =\n%+v\nwant\n%+v", conv.Plugin, wantPlugin)
	}
	wantOpts := map[string]any{"quality": 90, "sizes": []any{64, 128},
		"crop": map[string]any{"w": 10, "h": 2.5}, "strip": true, "note": nil}
	if !reflect.DeepEqual(conv.Options, wantOpts) {
		t.Errorf("options = %#v, want %#v", conv.Options, wantOpts)
	}
	if got := conv.OptionsPos.String(); got != "testdata/full.yaml:17:14" {
		t.Errorf("options position = %s", got)
	}
	if keep := s.Stages[2]; keep.Builtin != "grep" || !reflect.DeepEqual(keep.Options, map[string]any{"pattern": "^x", "invert": true}) {
		t.Errorf("stage keep = %+v", keep)
	}
	strategy, err := supervisor.ParseStrategy("one_for_all")
	if err != nil {
		t.Fatal(err)
	}
	wantSup := DefaultSupervision
	wantSup.Strategy, wantSup.Intensity, wantSup.Period = strategy, 4, 30*time.Second
	wantSup.Backoff = supervisor.Backoff{Min: time.Second, Max: time.Minute}
	if !reflect.DeepEqual(s.Supervision, wantSup) {
		t.Errorf("supervision = %+v, want %+v", s.Supervision, wantSup)
	}
	if s.Order != actors.OrderInput {
		t.Errorf("order = %v", s.Order)
	}
	if s.Sink.Files == nil || *s.Sink.Files != (FilesSinkSpec{Pos: Pos{"testdata/full.yaml", 24, 21}, Dir: "/tmp/troupe-out", Ext: ".jpg"}) {
		t.Errorf("sink = %+v", s.Sink)
	}
	if s.DeadLetter == nil || s.DeadLetter.Path != filepath.Join(testdata, "dead", "dead.jsonl") {
		t.Errorf("dead letter = %+v", s.DeadLetter)
	}
}

func TestParseSpecDefaults(t *testing.T) {
	s, err := ParseSpec([]byte("source: {range: {count: 5}}\nsink: {discard: }\n"), "dir/job.yml")
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs("dir")
	if s.Name != "job" || s.Dir != dir || len(s.Stages) != 0 || s.DeadLetter != nil || s.Order != actors.OrderAny {
		t.Errorf("spec = %+v", s)
	}
	if *s.Source.Range != (RangeSpec{Count: 5}) || !s.Sink.Discard {
		t.Errorf("source, sink = %+v, %+v", s.Source, s.Sink)
	}
	if !reflect.DeepEqual(s.Supervision, DefaultSupervision) {
		t.Errorf("supervision = %+v, want the defaults", s.Supervision)
	}
}

func TestParseSpecLinesAndMerge(t *testing.T) {
	src := `
defaults: &defaults {workers: 3, attempts: 2}
source: {lines: {path: "-"}}
stages:
  - <<: *defaults
    name: a
    builtin: identity
  - <<: *defaults
    name: b
    builtin: sum
    workers: 1
sink: {lines: {path: out/result.txt}}
`
	_, err := ParseSpec([]byte(src), "/specs/x.yaml")
	want := `/specs/x.yaml:2:1: unknown key "defaults" in spec (known keys: name, source, stages, supervision, order, sink, dead_letter)`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	// Anchors may live inside a stage's options instead.
	src = strings.Replace(src, "defaults: &defaults {workers: 3, attempts: 2}\n", "", 1)
	src = strings.Replace(src, "stages:\n  - <<: *defaults", "stages:\n  - &a {name: z, builtin: identity, workers: 3, attempts: 2}\n  - <<: *a", 1)
	src = strings.Replace(src, "  - <<: *defaults", "  - <<: *a", 1)
	s, err := ParseSpec([]byte(src), "/specs/x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Stages) != 3 {
		t.Fatalf("%d stages", len(s.Stages))
	}
	if a := s.Stages[1]; a.Name != "a" || a.Workers != 3 || a.Attempts != 2 || a.Builtin != "identity" {
		t.Errorf("stage a = %+v", a)
	}
	if b := s.Stages[2]; b.Name != "b" || b.Workers != 1 || b.Attempts != 2 || b.Builtin != "sum" || !b.IsReduce() {
		t.Errorf("stage b = %+v", b)
	}
	if s.Source.Lines.Path != "-" || s.Sink.Lines.Path != "/specs/out/result.txt" || s.Sink.Lines.Pos != (Pos{"/specs/x.yaml", 12, 22}) {
		t.Errorf("source %+v sink %+v", s.Source.Lines, s.Sink.Lines)
	}
}

func TestParseSpecErrors(t *testing.T) {
	const ok = "source: {range: {count: 1}}\nsink: {discard: {}}\n"
	tests := []struct{ name, src, want string }{
		{"empty", "", `s.yaml:1:1: empty spec: want a mapping with source, stages and sink`},
		{"not a mapping", "- a\n", `s.yaml:1:1: a spec is a mapping with source, stages and sink, got a sequence`},
		{"syntax", "source: x\n  sink: y: z\n", `s.yaml:2:3: invalid YAML: mapping values are not allowed in this context`},
		{"two documents", ok + "---\nname: x\n", `s.yaml:3:1: a spec is a single YAML document; found another one here`},
		{"missing source and sink", "name: x\n", "s.yaml:1:1: missing source (one of files, lines, range)\ns.yaml:1:1: missing sink (one of files, lines, discard)"},
		{"no source kind", "source: {}\nsink: {discard: {}}\n", `s.yaml:1:9: source: want exactly one of files, lines, range`},
		{"two sink kinds", "source: {range: {count: 1}}\nsink:\n  discard: {}\n  lines: {path: x}\n", `s.yaml:4:3: sink: want exactly one of files, lines, discard, got lines and discard`},
		{"wrong type", ok + "stages: [{name: a, builtin: upper, workers: two}]\n", `s.yaml:3:45: workers: expected an integer, got string "two"`},
		{"float workers", ok + "stages: [{name: a, builtin: upper, workers: 2.5}]\n", `s.yaml:3:45: workers: expected an integer, got float 2.5`},
		{"unknown key", ok + "stages: [{name: a, builtin: upper, credts: 3}]\n", `s.yaml:3:36: unknown key "credts" in stage (did you mean "credits"?)`},
		{"unknown key far", ok + "colour: red\n", `s.yaml:3:1: unknown key "colour" in spec (known keys: name, source, stages, supervision, order, sink, dead_letter)`},
		{"duplicate key", ok + "order: any\norder: input\n", `s.yaml:4:1: duplicate key "order" in spec (first at line 3)`},
		{"duplicate stage", ok + "stages:\n  - {name: a, builtin: upper}\n  - {name: a, builtin: lower}\n", `s.yaml:5:12: duplicate stage name "a" (first defined at line 4)`},
		{"unknown builtin", ok + "stages: [{name: a, builtin: shout}]\n", `s.yaml:3:29: builtin: unknown builtin "shout" (known: ` + strings.Join(Builtins(), ", ") + `)`},
		{"neither", ok + "stages: [{name: a}]\n", `s.yaml:3:10: stage a: want exactly one of builtin and plugin`},
		{"both", ok + "stages: [{name: a, builtin: upper, plugin: {cmd: [x]}}]\n", `s.yaml:3:36: stage a: has both builtin and plugin; want exactly one`},
		{"bad duration", ok + "stages: [{name: a, builtin: upper, timeout: 3 s}]\n", `s.yaml:3:45: timeout: bad duration "3 s" (expected a duration like 30s or 1m30s)`},
		{"bad size", ok + "stages: [{name: a, plugin: {cmd: [x]}, limits: {rss: lots}}]\n", `s.yaml:3:54: rss: bad size "lots": expected a size like 512MiB, 1GB, 100M or a number of bytes`},
		{"bad percent string", ok + "stages: [{name: a, plugin: {cmd: [x]}, limits: {cpu: 15O%}}]\n", `s.yaml:3:54: cpu: bad percentage "15O%" (expected a percentage like 150%)`},
		{"zero percent", ok + "stages: [{name: a, plugin: {cmd: [x]}, limits: {cpu: 0%}}]\n", `s.yaml:3:54: cpu: must be above 0%, got 0%`},
		{"limits on builtin", ok + "stages: [{name: a, builtin: upper, limits: {rss: 1G}}]\n", `s.yaml:3:36: limits: only plugin stages have resource limits (stage a is builtin upper)`},
		{"bad order", ok + "order: sorted\n", `s.yaml:3:8: order: unknown order "sorted" (want any or input)`},
		{"bad strategy", ok + "supervision: {strategy: all_for_one}\n", ``},
		{"period zero", ok + "supervision: {period: 0}\n", `s.yaml:3:23: period: must be above zero`},
		{"negative intensity", ok + "supervision: {intensity: -1}\n", `s.yaml:3:26: intensity: must be between 0 and 2147483647, got -1`},
		{"intensity too large", ok + "supervision: {intensity: 2147483648}\n", `s.yaml:3:26: intensity: must be between 0 and 2147483647, got 2147483648`},
		{"stage intensity too large", ok + "stages: [{name: a, builtin: upper, restart: {intensity: 99999999999}}]\n", `s.yaml:3:57: intensity: must be between 0 and 2147483647, got 99999999999`},
		{"workers zero", ok + "stages: [{name: a, builtin: upper, workers: 0}]\n", `s.yaml:3:45: workers: must be at least 1, got 0`},
		{"credits zero", ok + "stages: [{name: a, builtin: upper, credits: 0}]\n", `s.yaml:3:45: credits: must be at least 1, got 0`},
		{"attempts zero", ok + "stages: [{name: a, builtin: upper, attempts: 0}]\n", `s.yaml:3:46: attempts: must be at least 1, got 0`},
		{"reduce workers", ok + "stages: [{name: a, builtin: count, workers: 2}]\n", `s.yaml:3:45: workers: a reduce stage (builtin count) runs exactly 1 worker, got 2`},
		{"builtin options", ok + "stages:\n  - name: a\n    builtin: grep\n    options: {pattern: x, colour: red}\n", `s.yaml:6:14: stage a: builtin grep: unknown option "colour" (known: pattern, invert)`},
		{"options on optionless", ok + "stages: [{name: a, builtin: upper, options: {x: 1, y: 2}}]\n", `s.yaml:3:45: stage a: builtin upper: unknown options "x", "y" (takes no options)`},
		{"empty cmd", ok + "stages: [{name: a, plugin: {cmd: []}}]\n", `s.yaml:3:34: cmd: must name a program`},
		{"stdin for dead letters", ok + "dead_letter: {path: \"-\"}\n", `s.yaml:3:21: path: "-" (standard input or output) is not allowed here`},
		{"stages mapping", ok + "stages: {a: 1}\n", `s.yaml:3:9: stages: expected a sequence, got a mapping`},
		{"negative count", "source: {range: {count: -1}}\nsink: {discard: {}}\n", `s.yaml:1:25: count: must not be negative, got -1`},
		{"bad glob", "source: {files: {dir: d, glob: \"[\"}}\nsink: {discard: {}}\n", `s.yaml:1:32: glob: bad pattern "[": syntax error in pattern`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSpec([]byte(tt.src), "s.yaml")
			if err == nil {
				t.Fatalf("no error, want %s", tt.want)
			}
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("error %T is not a *SpecError: %v", err, err)
			}
			if tt.want == "" { // the message comes from another package; check its position only
				if !strings.HasPrefix(err.Error(), "s.yaml:3:") || len(se.Errors) != 1 {
					t.Errorf("err = %v", err)
				}
				return
			}
			if err.Error() != tt.want {
				t.Errorf("err =\n%s\nwant\n%s", err, tt.want)
			}
		})
	}
}

// TestParseSpecInvalidFixture checks that every problem of a spec is reported, in order.
func TestParseSpecInvalidFixture(t *testing.T) {
	_, err := LoadSpec("testdata/invalid.yaml")
	var se *SpecError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a *SpecError", err)
	}
	got := err.Error() + "\n"
	golden := "testdata/invalid.errors"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, rerr := os.ReadFile(golden)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if got != string(want) {
		t.Errorf("errors:\n%s\nwant:\n%s", got, want)
	}
	for i := 1; i < len(se.Errors); i++ {
		a, b := se.Errors[i-1].Pos, se.Errors[i].Pos
		if a.Line > b.Line || a.Line == b.Line && a.Col > b.Col {
			t.Errorf("errors out of order: %v before %v", a, b)
		}
	}
}

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

// A plugin next to a spec loaded by a relative name resolves to that file, not to a $PATH lookup.
func TestRelativePluginPathIsAbsolute(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile("spec.yaml", []byte("source: {range: {count: 1, size: 1}}\nstages:\n  - name: up\n    plugin: {cmd: [./upper-plugin]}\nsink: {discard: {}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSpec("spec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Stages[0].Plugin.Cmd[0], filepath.Join(dir, "upper-plugin"); got != want {
		t.Fatalf("cmd resolved to %q, want %q", got, want)
	}
}

// A plugin that is missing, not executable or not the binary the spec names is refused when the
// pipeline is built, at the plugin's position in the spec, before anything starts.
func TestPluginProgramCheckedAtBuild(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "plug")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	const sum = "6bd3b1f4d8e1b41e1d0c9d5cb43bd3a1ad0e0a9e20ffba1a6da5e3e3a6c0a9e1" // not the file's
	for _, c := range []struct{ cmd, extra, want string }{
		{"./missing", "", "no such file or directory"},
		{"./plug", ", sha256: " + sum, "the spec requires " + sum},
	} {
		spec := "source: {range: {count: 1, size: 1}}\nstages:\n  - name: p\n    plugin: {cmd: [" + c.cmd + "]" + c.extra + "}\nsink: {discard: {}}\n"
		s, err := ParseSpec([]byte(spec), filepath.Join(dir, "job.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Pipeline(BuildOptions{})
		var pe *PosError
		if !errors.As(err, &pe) || pe.Pos.Line != 4 || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("cmd %s: error %v, want one at line 4 saying %q", c.cmd, err, c.want)
		}
	}
}
