package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/ipc"
	"github.com/troupe-dev/troupe/stages"
	"github.com/troupe-dev/troupe/stages/imgconv"
)

func init() {
	// poison fails every attempt on a record whose payload contains "poison".
	stages.Register("test-poison", stages.Func("Fails every attempt on a record whose payload contains poison.",
		func(*stages.None) (troupe.Func, error) {
			return func(ctx context.Context, rec troupe.Record) ([]troupe.Record, error) {
				if bytes.Contains(rec.Payload, []byte("poison")) {
					return nil, fmt.Errorf("poisoned record %s", rec.Key)
				}
				return []troupe.Record{rec}, nil
			}, nil
		}))
}

// cli runs the command line in-process and returns its exit status and output.
func cli(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func write(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func readJSON(t *testing.T, path string) summaryJSON {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s summaryJSON
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s
}

func sortedLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	slices.Sort(lines)
	return lines
}

func TestRunWordCount(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "words.txt"), "the quick brown fox\njumps over the lazy dog\n\nthe end\n")
	spec := write(t, filepath.Join(dir, "wc.yaml"), `
name: wordcount
source: {lines: {path: words.txt}}
stages:
  - {name: words, builtin: split, options: {key_from: field}}
  - {name: count, builtin: count}
  - {name: format, builtin: format, options: {template: "{key} {payload}"}}
sink: {lines: {path: out/counts.txt}}
`)
	summary := filepath.Join(dir, "summary.json")
	code, stdout, stderr := cli(t, "", "run", spec, "--summary-json", summary, "--progress", "none")
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if stdout != "" {
		t.Errorf("stdout = %q", stdout)
	}
	want := []string{"brown 1", "dog 1", "end 1", "fox 1", "jumps 1", "lazy 1", "over 1", "quick 1", "the 3"}
	if got := sortedLines(t, filepath.Join(dir, "out", "counts.txt")); !slices.Equal(got, want) {
		t.Errorf("counts = %q, want %q", got, want)
	}
	s := readJSON(t, summary)
	if s.Status != "ok" || s.RecordsIn != 4 || s.RecordsOut != 9 || s.DeadLetters != 0 || s.Name != "wordcount" {
		t.Errorf("summary = %+v", s)
	}
	var names []string
	for _, st := range s.Stages {
		names = append(names, st.Name)
	}
	if !slices.Equal(names, []string{"words", "count", "format"}) || s.Stages[0].In != 4 || s.Stages[0].Out != 11 ||
		s.Stages[1].In != 11 || s.Stages[1].Out != 9 || s.Stages[2].Out != 9 {
		t.Errorf("stages = %+v", s.Stages)
	}
	// The summary table: a header, a row per stage, the totals.
	for _, frag := range []string{"stage", "p99", "words", "count", "format", "total: 4 in, 9 out, 0 dead letters"} {
		if !strings.Contains(stderr, frag) {
			t.Errorf("stderr lacks %q:\n%s", frag, stderr)
		}
	}
}

func TestRunStdinStdout(t *testing.T) {
	dir := t.TempDir()
	spec := write(t, filepath.Join(dir, "up.yaml"), `
source: {lines: {path: "-"}}
stages: [{name: up, builtin: upper}, {name: nox, builtin: grep, options: {pattern: X, invert: true}}]
order: input
sink: {lines: {path: "-"}}
`)
	code, stdout, stderr := cli(t, "a\nbx\nc\n", "run", "--progress=none", spec)
	if code != exitOK || stdout != "A\nC\n" {
		t.Errorf("exit %d, stdout %q\n%s", code, stdout, stderr)
	}
}

func TestRunFilesToFiles(t *testing.T) {
	dir := t.TempDir()
	for i := range 5 {
		write(t, filepath.Join(dir, "in", fmt.Sprintf("f%d.txt", i)), fmt.Sprintf("file %d\n", i))
	}
	write(t, filepath.Join(dir, "in", "skip.dat"), "not matched")
	spec := write(t, filepath.Join(dir, "job.yaml"), `
source: {files: {dir: in, glob: "*.txt"}}
stages: [{name: shout, builtin: upper, workers: 2}]
sink: {files: {dir: out, ext: .up}}
`)
	code, _, stderr := cli(t, "", "run", "--progress=none", spec)
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 5 {
		t.Errorf("%d outputs, want 5", len(entries))
	}
	for i := range 5 {
		got, err := os.ReadFile(filepath.Join(dir, "out", fmt.Sprintf("f%d.up", i)))
		if err != nil || string(got) != fmt.Sprintf("FILE %d\n", i) {
			t.Errorf("output %d = %q, %v", i, got, err)
		}
	}
}

func TestRunImgconv(t *testing.T) {
	dir := t.TempDir()
	inputs, err := imgconv.Generate(filepath.Join(dir, "in"), 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) != 4 {
		t.Fatalf("generated %d images", len(inputs))
	}
	spec := write(t, filepath.Join(dir, "img.yaml"), `
source: {files: {dir: in}}
stages: [{name: convert, builtin: imgconv, workers: 2, options: {quality: 80}}]
sink: {files: {dir: out, ext: .jpg}}
`)
	code, _, stderr := cli(t, "", "run", "--progress=none", spec)
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "\nimgconv codec: "+imgconv.Codec()+"\n") {
		t.Errorf("the summary does not say which image codec ran:\n%s", stderr)
	}
	outs, _ := filepath.Glob(filepath.Join(dir, "out", "*.jpg"))
	if len(outs) != 4 {
		t.Errorf("%d outputs, want 4: %v", len(outs), outs)
	}
	for _, o := range outs {
		data, err := os.ReadFile(o)
		if err != nil || !bytes.HasPrefix(data, []byte{0xff, 0xd8}) {
			t.Errorf("%s is not a JPEG (%v)", o, err)
		}
	}
}

func TestRunDeadLetters(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "in.txt"), "a\npoison b\nc\npoison d\n")
	spec := write(t, filepath.Join(dir, "dl.yaml"), `
source: {lines: {path: in.txt}}
stages: [{name: check, builtin: test-poison, attempts: 2}]
sink: {lines: {path: out.txt}}
dead_letter: {path: dead.jsonl}
`)
	summary := filepath.Join(dir, "s.json")
	code, _, stderr := cli(t, "", "run", "--progress=none", "--summary-json", summary, spec)
	if code != exitDeadLetters {
		t.Fatalf("exit %d, want %d\n%s", code, exitDeadLetters, stderr)
	}
	if got := sortedLines(t, filepath.Join(dir, "out.txt")); !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("sink = %q", got)
	}
	dead := sortedLines(t, filepath.Join(dir, "dead.jsonl"))
	if len(dead) != 2 || !strings.Contains(dead[0]+dead[1], "poisoned record 2") {
		t.Errorf("dead letters = %q", dead)
	}
	s := readJSON(t, summary)
	if s.Status != "dead_letters" || s.DeadLetters != 2 || s.RecordsOut != 2 || len(s.Stages) != 1 || s.Stages[0].Failed != 2 {
		t.Errorf("summary = %+v", s)
	}
	if !strings.Contains(stderr, "2 records went to dead letters") {
		t.Errorf("stderr:\n%s", stderr)
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := write(t, filepath.Join(dir, "good.yaml"), "source: {range: {count: 3}}\nstages: [{name: a, builtin: identity}, {name: b, builtin: upper}]\nsink: {discard: {}}\n")
	code, stdout, stderr := cli(t, "", "validate", good)
	if code != exitOK || stdout != "ok: 2 stages\n" || stderr != "" {
		t.Errorf("validate good: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	bad := write(t, filepath.Join(dir, "bad.yaml"), `source: {range: {count: 3}}
stages:
  - name: a
    builtin: imgconv
    options: {qualty: 90}
  - name: a
    builtin: nope
    workers: 0
sink: {discard: {}}
`)
	code, stdout, stderr = cli(t, "", "validate", bad)
	known := strings.Join(stages.Names(), ", ")
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if code != exitUsage || stdout != "" || len(lines) != 5 {
		t.Fatalf("validate bad: exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
	if !strings.HasPrefix(lines[0], bad+":5:15: stages[0].options: builtin imgconv: ") || !strings.Contains(lines[0], "qualty") {
		t.Errorf("line 1 = %q", lines[0])
	}
	want := []string{
		bad + `:6:11: stages[1].name: duplicate stage name "a" (first defined at line 3)`,
		bad + `:7:14: stages[1].builtin: unknown builtin "nope" (known: ` + known + `)`,
		bad + `:8:14: stages[1].workers: must be at least 1, got 0`,
		"troupe: " + bad + ": 4 problems",
	}
	if !slices.Equal(lines[1:], want) {
		t.Errorf("stderr lines =\n%s\nwant\n%s", strings.Join(lines[1:], "\n"), strings.Join(want, "\n"))
	}
	// run refuses the same spec with the same report.
	code, _, stderr2 := cli(t, "", "run", bad)
	if code != exitUsage || stderr2 != stderr {
		t.Errorf("run bad: exit %d, stderr:\n%s", code, stderr2)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"run"},
		{"run", "a.yaml", "b.yaml"},
		{"run", "--nope", "a.yaml"},
		{"run", "--progress", "fancy", "a.yaml"},
		{"frobnicate"},
		{"validate", filepath.Join(t.TempDir(), "missing.yaml")},
		{"plugins"},
	} {
		code, _, stderr := cli(t, "", args...)
		if len(args) == 0 {
			// Bare "troupe" prints help and succeeds, like any cobra program.
			if code != exitOK {
				t.Errorf("troupe: exit %d", code)
			}
			continue
		}
		if code != exitUsage || !strings.HasPrefix(stderr, "troupe: ") {
			t.Errorf("troupe %q: exit %d, stderr %q", args, code, stderr)
		}
	}
}

func TestRunBuildErrorIsPositioned(t *testing.T) {
	dir := t.TempDir()
	spec := write(t, filepath.Join(dir, "j.yaml"), "source: {files: {dir: nowhere}}\nsink: {discard: {}}\n")
	code, _, stderr := cli(t, "", "run", spec)
	if code != exitUsage || !strings.HasPrefix(stderr, spec+":1:23: source.files.dir ") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestPlainProgress(t *testing.T) {
	old := plainInterval
	plainInterval = 20 * time.Millisecond
	defer func() { plainInterval = old }()
	dir := t.TempDir()
	spec := write(t, filepath.Join(dir, "slow.yaml"), `
source: {range: {count: 40}}
stages: [{name: nap, builtin: sleep, workers: 2, options: {duration: 10ms}}]
sink: {discard: {}}
`)
	code, _, stderr := cli(t, "", "run", spec) // stderr is no terminal: auto means plain
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "/40 records (") || !strings.Contains(stderr, "/s  out ") {
		t.Errorf("no progress lines in:\n%s", stderr)
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := cli(t, "", "version")
	if code != exitOK || !strings.HasPrefix(stdout, "troupe ") || !strings.Contains(stdout, runtime.Version()) || !strings.Contains(stdout, "plugin protocol "+ipc.ProtocolVersion) ||
		!strings.Contains(stdout, "image codec: "+imgconv.Codec()) {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
}

// TestInterrupt runs the real binary on a long job and stops it with SIGINT: it must drain and
// exit 1, and the sink must hold each record at most once.
func TestInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "troupe")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	spec := write(t, filepath.Join(dir, "long.yaml"), `
source: {range: {count: 200000, size: 8}}
stages:
  - {name: nap, builtin: sleep, workers: 4, options: {duration: 1ms}}
  - {name: key, builtin: format, options: {template: "{key}"}}
sink: {lines: {path: out.txt}}
`)
	summary := filepath.Join(dir, "s.json")
	cmd := exec.Command(bin, "run", spec, "--summary-json", summary)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until records reach the sink, then interrupt.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if fi, err := os.Stat(filepath.Join(dir, "out.txt")); err == nil && fi.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("no output after 30s; stderr:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("still running 60s after SIGINT; stderr:\n%s", stderr.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitAborted {
		t.Fatalf("exit: %v, want status %d; stderr:\n%s", err, exitAborted, stderr.String())
	}
	if !strings.Contains(stderr.String(), "interrupt") {
		t.Errorf("stderr does not mention the interruption:\n%s", stderr.String())
	}
	f, err := os.Open(filepath.Join(dir, "out.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if seen[sc.Text()] {
			t.Fatalf("record %s written twice", sc.Text())
		}
		seen[sc.Text()] = true
	}
	s := readJSON(t, summary)
	if s.Status != "interrupted" && s.Status != "incomplete" {
		t.Errorf("status %q", s.Status)
	}
	if int64(len(seen)) != s.RecordsOut || s.RecordsOut == 0 || s.RecordsOut >= 200000 {
		t.Errorf("sink has %d records, summary says %d out of %d in", len(seen), s.RecordsOut, s.RecordsIn)
	}
}

// troupe builtins lists every builtin with its options, from the options each declares.
func TestBuiltinsCommand(t *testing.T) {
	code, stdout, stderr := cli(t, "", "builtins")
	if code != exitOK || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, name := range stages.Names() {
		if !strings.Contains(stdout, "\n"+name+": ") && !strings.HasPrefix(stdout, name+": ") &&
			!strings.Contains(stdout, name+" (reduce): ") {
			t.Errorf("builtin %s not listed:\n%s", name, stdout)
		}
	}
	for _, want := range []string{
		"  quality     integer, 1 to 100",
		"default 90",
		"  key_from  string: field | input  default field",
		"  pattern  string   required",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("missing %q in:\n%s", want, stdout)
		}
	}
}
