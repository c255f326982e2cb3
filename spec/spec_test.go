package spec

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/plugins"
	"github.com/troupe-dev/troupe/stages"
	"github.com/troupe-dev/troupe/supervisor"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestLoadSpecFull(t *testing.T) {
	s, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	testdata, _ := filepath.Abs("testdata")
	if s.Name != "everything" || s.File != "testdata/full.yaml" || s.Dir != testdata {
		t.Errorf("name, file, dir = %q, %q, %q", s.Name, s.File, s.Dir)
	}
	src := s.Source.Files
	if src == nil || src.Dir != filepath.Join(testdata, "input") || src.Glob != "*.png" || !src.Recursive || s.Source.Lines != nil || s.Source.Range != nil {
		t.Errorf("source = %+v, files %+v", s.Source, src)
	}
	if got := s.pos(src.At, "dir").String(); got != "testdata/full.yaml:3:23" {
		t.Errorf("source dir position = %s", got)
	}
	if len(s.Stages) != 3 {
		t.Fatalf("got %d stages, want 3", len(s.Stages))
	}
	shout := s.Stages[0]
	if shout.Name != "shout" || shout.Builtin != "upper" || shout.Workers != 2 || shout.Credits != 16 ||
		shout.Attempts != 5 || shout.Timeout != 90*time.Second || shout.Options != nil || shout.Plugin != nil {
		t.Errorf("stage shout = %+v", shout)
	}
	wantRestart := troupe.Restart{Intensity: 3, Period: 20 * time.Second,
		Backoff: supervisor.Backoff{Min: 10 * time.Millisecond, Max: 2 * time.Second}}
	if got := shout.Restart.Restart(); got != wantRestart {
		t.Errorf("restart = %+v, want %+v", got, wantRestart)
	}
	if got := s.pos(shout.At, "").String(); got != "testdata/full.yaml:5:5" {
		t.Errorf("stage position = %s", got)
	}
	conv := s.Stages[1]
	wantPlugin := plugins.Config{
		Cmd:    []string{filepath.Join(testdata, "bin", "imgconv-plugin"), "--fast"},
		SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		Env:    map[string]string{"MODE": "fast", "LEVEL": "3"},
		Limits: plugins.Limits{RSS: 512 << 20, CPU: 150, Startup: 10 * time.Second},
	}
	if got := conv.PluginConfig(); !reflect.DeepEqual(got, wantPlugin) {
		t.Errorf("plugin =\n%+v\nwant\n%+v", got, wantPlugin)
	}
	wantOpts := map[string]any{"quality": 90, "sizes": []any{64, 128},
		"crop": map[string]any{"w": 10, "h": 2.5}, "strip": true, "note": nil}
	if !reflect.DeepEqual(conv.Options, wantOpts) {
		t.Errorf("options = %#v, want %#v", conv.Options, wantOpts)
	}
	if got := s.pos(conv.At, "options").String(); got != "testdata/full.yaml:17:14" {
		t.Errorf("options position = %s", got)
	}
	if keep := s.Stages[2]; keep.Builtin != "grep" || !reflect.DeepEqual(keep.Options, map[string]any{"pattern": "^x", "invert": true}) {
		t.Errorf("stage keep = %+v", keep)
	}
	strategy, err := supervisor.ParseStrategy("one_for_all")
	if err != nil {
		t.Fatal(err)
	}
	wantSup := supervisor.Flags{Strategy: strategy, Intensity: 4, Period: 30 * time.Second,
		Backoff: supervisor.Backoff{Min: time.Second, Max: time.Minute}}
	if got := s.Supervision.Flags(); !reflect.DeepEqual(got, wantSup) {
		t.Errorf("supervision = %+v, want %+v", got, wantSup)
	}
	if s.order() != troupe.OrderInput {
		t.Errorf("order = %v", s.Order)
	}
	if f := s.Sink.Files; f == nil || f.Dir != "/tmp/troupe-out" || f.Ext != ".jpg" || s.pos(f.At, "dir").String() != "testdata/full.yaml:24:21" {
		t.Errorf("sink = %+v", s.Sink)
	}
	if s.DeadLetter == nil || s.DeadLetter.Path != filepath.Join(testdata, "dead", "dead.jsonl") {
		t.Errorf("dead letter = %+v", s.DeadLetter)
	}
}

// The defaults a spec's tags declare are the runtime's: a spec that leaves a key out runs as a
// Pipeline that leaves the field zero.
func TestDefaultsAreTheRuntimes(t *testing.T) {
	s, err := Parse([]byte("source: {range: {count: 1}}\nstages: [{name: a, builtin: upper}]\nsink: {discard: }\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	st := s.Stages[0]
	if int(st.CreditBytes) != actors.DefaultCreditBytes {
		t.Errorf("stage default credit_bytes %d; want %d", st.CreditBytes, actors.DefaultCreditBytes)
	}
	// Absent credits stay 0: the runtime picks them by the stage's kind (actors.DefaultCredits
	// in-process, actors.DefaultBackendCredits for a plugin).
	if st.Restart.Restart() != actors.DefaultRestart || st.Credits != 0 || st.Attempts != actors.DefaultAttempts {
		t.Errorf("stage defaults: restart %+v, credits %d, attempts %d; want %+v, 0, %d", st.Restart.Restart(),
			st.Credits, st.Attempts, actors.DefaultRestart, actors.DefaultAttempts)
	}
	// troupe.Pipeline documents its zero Supervision as one_for_one, intensity 10 in 60s.
	want := supervisor.Flags{Strategy: supervisor.OneForOne, Intensity: 10, Period: time.Minute}
	if got := s.Supervision.Flags(); got != want {
		t.Errorf("supervision defaults = %+v, want %+v", got, want)
	}
}

func TestParseSpecDefaults(t *testing.T) {
	s, err := Parse([]byte("source: {range: {count: 5}}\nsink: {discard: }\n"), "dir/job.yml")
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs("dir")
	if s.Name != "job" || s.Dir != dir || len(s.Stages) != 0 || s.DeadLetter != nil || s.order() != troupe.OrderAny {
		t.Errorf("spec = %+v", s)
	}
	if *s.Source.Range != (RangeSpec{Count: 5}) || s.Sink.Discard == nil {
		t.Errorf("source, sink = %+v, %+v", s.Source, s.Sink)
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
	_, err := Parse([]byte(src), "/specs/x.yaml")
	want := `/specs/x.yaml:2:1: unknown key "defaults" (want one of: name, source, stages, supervision, order, sink, dead_letter, cluster, journal)`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	// Anchors may live inside a stage's options instead.
	src = strings.Replace(src, "defaults: &defaults {workers: 3, attempts: 2}\n", "", 1)
	src = strings.Replace(src, "stages:\n  - <<: *defaults", "stages:\n  - &a {name: z, builtin: identity, workers: 3, attempts: 2}\n  - <<: *a", 1)
	src = strings.Replace(src, "  - <<: *defaults", "  - <<: *a", 1)
	s, err := Parse([]byte(src), "/specs/x.yaml")
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
	if s.Source.Lines.Path != "-" || s.Sink.Lines.Path != "/specs/out/result.txt" || s.pos(s.Sink.Lines.At, "path") != (Pos{"/specs/x.yaml", 12, 22}) {
		t.Errorf("source %+v sink %+v", s.Source.Lines, s.Sink.Lines)
	}
}

func TestParseSpecErrors(t *testing.T) {
	const ok = "source: {range: {count: 1}}\nsink: {discard: {}}\n"
	tests := []struct{ name, src, want string }{
		{"empty", "", "s.yaml:1:1: missing key \"source\" (one of: files | lines | range)\ns.yaml:1:1: missing key \"sink\" (one of: files | lines | discard)"},
		{"not a mapping", "- a\n", `s.yaml:1:1: want a mapping, got a list`},
		{"syntax", "source: x\n  sink: y: z\n", `s.yaml:2:3: invalid YAML: mapping values are not allowed in this context`},
		{"two documents", ok + "---\nname: x\n", `s.yaml:3:1: want a single YAML document; found another one here`},
		{"missing source and sink", "name: x\n", "s.yaml:1:1: missing key \"source\" (one of: files | lines | range)\ns.yaml:1:1: missing key \"sink\" (one of: files | lines | discard)"},
		{"no source kind", "source: {}\nsink: {discard: {}}\n", `s.yaml:1:9: source: want exactly one of files, lines, range`},
		{"two sink kinds", "source: {range: {count: 1}}\nsink:\n  discard: {}\n  lines: {path: x}\n", `s.yaml:4:3: sink: want exactly one of files, lines, discard, got lines and discard`},
		{"wrong type", ok + "stages: [{name: a, builtin: upper, workers: two}]\n", `s.yaml:3:45: stages[0].workers: want an integer, got string "two"`},
		{"float workers", ok + "stages: [{name: a, builtin: upper, workers: 2.5}]\n", `s.yaml:3:45: stages[0].workers: want an integer, got float 2.5`},
		{"unknown key", ok + "stages: [{name: a, builtin: upper, credts: 3}]\n", `s.yaml:3:36: stages[0]: unknown key "credts" (did you mean "credits"?)`},
		{"unknown key far", ok + "colour: red\n", `s.yaml:3:1: unknown key "colour" (want one of: name, source, stages, supervision, order, sink, dead_letter, cluster, journal)`},
		{"duplicate key", ok + "order: any\norder: input\n", `s.yaml:4:1: duplicate key "order" (first at line 3)`},
		{"duplicate stage", ok + "stages:\n  - {name: a, builtin: upper}\n  - {name: a, builtin: lower}\n", `s.yaml:5:12: stages[1].name: duplicate stage name "a" (first defined at line 4)`},
		{"unknown builtin", ok + "stages: [{name: a, builtin: shout}]\n", `s.yaml:3:29: stages[0].builtin: unknown builtin "shout" (known: ` + strings.Join(stages.Names(), ", ") + `)`},
		{"neither", ok + "stages: [{name: a}]\n", `s.yaml:3:10: stages[0]: want exactly one of builtin, plugin`},
		{"both", ok + "stages: [{name: a, builtin: upper, plugin: {cmd: [x]}}]\n", `s.yaml:3:36: stages[0]: want exactly one of builtin, plugin, got builtin and plugin`},
		{"bad duration", ok + "stages: [{name: a, builtin: upper, timeout: 3 s}]\n", `s.yaml:3:45: stages[0].timeout: bad duration "3 s" (want a duration like 30s or 1m30s)`},
		{"bad size", ok + "stages: [{name: a, plugin: {cmd: [x]}, limits: {rss: lots}}]\n", `s.yaml:3:54: stages[0].limits.rss: bad size "lots": expected a size like 512MiB, 1GB, 100M or a number of bytes`},
		{"bad percent string", ok + "stages: [{name: a, plugin: {cmd: [x]}, limits: {cpu: 15O%}}]\n", `s.yaml:3:54: stages[0].limits.cpu: bad percentage "15O%" (want a percentage like 150%)`},
		{"negative percent", ok + "stages: [{name: a, plugin: {cmd: [x]}, limits: {cpu: -5%}}]\n", `s.yaml:3:54: stages[0].limits.cpu: must be at least 0, got -5%`},
		{"limits on builtin", ok + "stages: [{name: a, builtin: upper, limits: {rss: 1G}}]\n", `s.yaml:3:44: stages[0].limits: only plugin stages have resource limits (stage a is builtin upper)`},
		{"bad order", ok + "order: sorted\n", `s.yaml:3:8: order: unknown value "sorted" (want one of: any, input)`},
		{"bad strategy", ok + "supervision: {strategy: all_for_one}\n", ``},
		{"period zero", ok + "supervision: {period: 0}\n", `s.yaml:3:23: supervision.period: must be positive, got 0s`},
		{"negative intensity", ok + "supervision: {intensity: -1}\n", `s.yaml:3:26: supervision.intensity: must not be negative, got -1`},
		{"intensity too large", ok + "supervision: {intensity: 2147483648}\n", `s.yaml:3:26: supervision.intensity: must be at most 2147483647, got 2147483648`},
		{"stage intensity too large", ok + "stages: [{name: a, builtin: upper, restart: {intensity: 99999999999}}]\n", `s.yaml:3:57: stages[0].restart.intensity: must be at most 2147483647, got 99999999999`},
		{"workers zero", ok + "stages: [{name: a, builtin: upper, workers: 0}]\n", `s.yaml:3:45: stages[0].workers: must be at least 1, got 0`},
		{"credits zero", ok + "stages: [{name: a, builtin: upper, credits: 0}]\n", `s.yaml:3:45: stages[0].credits: must be at least 1, got 0`},
		{"attempts zero", ok + "stages: [{name: a, builtin: upper, attempts: 0}]\n", `s.yaml:3:46: stages[0].attempts: must be at least 1, got 0`},
		{"reduce workers", ok + "stages: [{name: a, builtin: count, workers: 2}]\n", `s.yaml:3:45: stages[0].workers: a reduce stage (builtin count) runs exactly 1 worker, got 2`},
		{"builtin options", ok + "stages:\n  - name: a\n    builtin: grep\n    options: {pattern: x, colour: red}\n", `s.yaml:6:27: stages[0].options: builtin grep: unknown key "colour" (want one of: pattern, invert)`},
		{"options on optionless", ok + "stages: [{name: a, builtin: upper, options: {x: 1, y: 2}}]\n", "s.yaml:3:46: stages[0].options: builtin upper: unknown key \"x\" (takes none)\ns.yaml:3:52: stages[0].options: builtin upper: unknown key \"y\" (takes none)"},
		{"empty cmd", ok + "stages: [{name: a, plugin: {cmd: []}}]\n", `s.yaml:3:34: stages[0].plugin.cmd: must not be empty`},
		{"stdin for dead letters", ok + "dead_letter: {path: \"-\"}\n", `s.yaml:3:21: dead_letter.path: "-" (standard input or output) is not allowed here`},
		{"stages mapping", ok + "stages: {a: 1}\n", `s.yaml:3:9: stages: want a list of mapping, got a mapping`},
		{"negative count", "source: {range: {count: -1}}\nsink: {discard: {}}\n", `s.yaml:1:25: source.range.count: must be at least 0, got -1`},
		{"bad sha256", ok + "stages: [{name: a, plugin: {cmd: [x], sha256: abc}}]\n", `s.yaml:3:28: stages[0].plugin: plugin: sha256 "abc" is not 64 hex digits`},
		{"bad env name", ok + "stages: [{name: a, plugin: {cmd: [x], env: {\"A=B\": c}}}]\n", `s.yaml:3:44: stages[0].plugin.env: bad variable name "A=B"`},
		{"spares on builtin", ok + "stages: [{name: a, builtin: upper, spares: 1}]\n", `s.yaml:3:44: stages[0].spares: only plugin stages keep warm spare processes (stage a is builtin upper)`},
		{"missing option", ok + "stages: [{name: a, builtin: grep}]\n", `s.yaml:3:10: stages[0].options: builtin grep: missing key "pattern"`},
		{"bad option value", ok + "stages:\n  - name: a\n    builtin: sleep\n    options: {duration: soon}\n", `s.yaml:6:25: stages[0].options.duration: builtin sleep: bad duration "soon" (want a duration like 30s or 1m30s)`},
		{"bad glob", "source: {files: {dir: d, glob: \"[\"}}\nsink: {discard: {}}\n", `s.yaml:1:32: source.files.glob: bad pattern "[": syntax error in pattern`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.src), "s.yaml")
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
	_, err := Load("testdata/invalid.yaml")
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

// A plugin next to a spec loaded by a relative name resolves to that file, not to a $PATH lookup.
func TestRelativePluginPathIsAbsolute(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile("spec.yaml", []byte("source: {range: {count: 1, size: 1}}\nstages:\n  - name: up\n    plugin: {cmd: [./upper-plugin]}\nsink: {discard: {}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load("spec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Stages[0].Plugin.Cmd[0], filepath.Join(dir, "upper-plugin"); got != want {
		t.Fatalf("cmd resolved to %q, want %q", got, want)
	}
}

// An interpreter's script next to the spec (cmd: [python3, ./stage.py]) resolves against the
// spec's directory, so the spec runs from any working directory; arguments naming no file next
// to the spec, flags and plain words stay as written.
func TestPluginScriptArgumentResolved(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "ex")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sub, "stage.py"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sub, "spec.yaml"), []byte("source: {range: {count: 1, size: 1}}\nstages:\n  - name: up\n    plugin: {cmd: [python3, ./stage.py, ex/other.py, --opt=a/b, word]}\nsink: {discard: {}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	s, err := Load("ex/spec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"python3", filepath.Join(sub, "stage.py"), "ex/other.py", "--opt=a/b", "word"}
	if got := s.Stages[0].Plugin.Cmd; !slices.Equal(got, want) {
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
		s, err := Parse([]byte(spec), filepath.Join(dir, "job.yaml"))
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

// A builtin's options reached through a merge are checked where they were written.
func TestOptionsThroughMerge(t *testing.T) {
	src := "source: {range: {count: 1}}\nsink: {discard: {}}\nstages:\n" +
		"  - &a {name: a, builtin: grep, options: {pattern: x, invrt: true}}\n" +
		"  - <<: *a\n    name: b\n"
	_, err := Parse([]byte(src), "s.yaml")
	want := "s.yaml:4:55: stages[0].options: builtin grep: unknown key \"invrt\" (did you mean \"invert\"?)\n" +
		"s.yaml:4:55: stages[1].options: builtin grep: unknown key \"invrt\" (did you mean \"invert\"?)"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}

// Counts that no machine could start are refused, as before the spec was declared with tags.
func TestHugeCountsRefused(t *testing.T) {
	const ok = "source: {range: {count: 1}}\nsink: {discard: {}}\n"
	_, err := Parse([]byte(ok+"stages: [{name: a, builtin: upper, workers: 99999999999}]\n"), "s.yaml")
	if want := "s.yaml:3:45: stages[0].workers: must be at most 2147483647, got 99999999999"; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}
