package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"image/jpeg"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/troupe-dev/troupe/spec"
	"github.com/troupe-dev/troupe/stages/imgconv"
)

// The example runs its pipeline in this process: nothing may be left running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRun runs the example as `go run ./examples/imgconv/run -in DIR -out DIR` would, on sample
// images and one broken file: every image becomes a JPEG, the broken file a dead letter with its
// reason, and the exit status says so.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	if _, err := imgconv.Generate(in, 6, 1); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in, "broken.png"), []byte("\x89PNG\r\n\x1a\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	var stderr bytes.Buffer
	rc := run([]string{"-spec", filepath.Join("..", "pipeline.yaml"), "-in", in, "-out", out, "-workers", "2"}, &stderr)
	t.Logf("stderr:\n%s", stderr.String())
	if rc != 3 {
		t.Fatalf("exit status %d, want 3 (one dead letter)", rc)
	}

	jpgs, err := filepath.Glob(filepath.Join(out, "*.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range jpgs {
		names = append(names, filepath.Base(p))
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		_, err = jpeg.DecodeConfig(f)
		f.Close()
		if err != nil {
			t.Errorf("%s is not a JPEG: %v", p, err)
		}
	}
	want := []string{"img-0001.jpg", "img-0002.jpg", "img-0003.jpg", "img-0004.jpg", "img-0005.jpg", "img-0006.jpg"}
	if !slices.Equal(names, want) {
		t.Errorf("outputs %v, want %v", names, want)
	}

	dead, err := os.ReadFile(filepath.Join(out, "dead.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for sc := bufio.NewScanner(bytes.NewReader(dead)); sc.Scan(); {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 1 || !json.Valid([]byte(lines[0])) || !strings.Contains(lines[0], "broken.png") || !strings.Contains(lines[0], "truncated PNG") {
		t.Errorf("dead.jsonl = %q, want one JSON line for broken.png with its reason", dead)
	}

	for _, s := range []string{"stage convert", "6 images converted, 1 dead letters", "dead letters (with reasons) in " + filepath.Join(out, "dead.jsonl")} {
		if !strings.Contains(stderr.String(), s) {
			t.Errorf("stderr lacks %q", s)
		}
	}
}

// TestRunGeneratesSamplesOnlyIntoEmptyInput checks the first-run path: an empty (or missing)
// input folder gets sample images, one with files is left alone.
func TestRunGeneratesSamplesOnlyIntoEmptyInput(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "input")
	var stderr bytes.Buffer
	if err := ensureSamples(&stderr, dir, 3); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 3 {
		t.Fatalf("after generating into a missing folder: %d entries, %v; want 3", len(entries), err)
	}
	if err := os.WriteFile(filepath.Join(dir, "mine.png"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ensureSamples(&stderr, dir, 10); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 4 {
		t.Errorf("a folder with files got samples: %d entries, want 4", len(entries))
	}
}

func TestRunBadUsage(t *testing.T) {
	var stderr bytes.Buffer
	if rc := run([]string{"-no-such-flag"}, &stderr); rc != 2 {
		t.Errorf("unknown flag: exit status %d, want 2", rc)
	}
	stderr.Reset()
	if rc := run([]string{"-spec", filepath.Join(t.TempDir(), "missing.yaml")}, &stderr); rc != 2 || !strings.Contains(stderr.String(), "missing.yaml") {
		t.Errorf("missing spec: exit status %d, stderr %q; want 2 naming the file", rc, stderr.String())
	}
}

// TestFreshCloneLayout checks what a fresh clone has before anything ran: the input folder
// exists (kept by input/.gitkeep), so `troupe validate examples/imgconv/pipeline.yaml` passes;
// the specs' glob skips that hidden file, and the example still generates its samples into a
// folder that holds nothing else.
func TestFreshCloneLayout(t *testing.T) {
	if _, err := os.Stat(filepath.Join("..", "input", ".gitkeep")); err != nil {
		t.Fatalf("the input folder is not kept in the repository: %v", err)
	}
	s, err := spec.Load(filepath.Join("..", "pipeline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil {
		t.Fatalf("pipeline.yaml does not validate as cloned: %v", err)
	}

	in := filepath.Join(t.TempDir(), "input")
	if err := os.MkdirAll(in, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in, ".gitkeep"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if rc := run([]string{"-spec", filepath.Join("..", "pipeline.yaml"), "-in", in, "-out", filepath.Join(t.TempDir(), "out")}, &stderr); rc != 0 || !strings.Contains(stderr.String(), "0 images converted, 0 dead letters") {
		t.Errorf("a folder holding only .gitkeep: exit status %d, stderr:\n%s", rc, stderr.String())
	}
	if err := ensureSamples(&stderr, in, 2); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(in); len(entries) != 3 {
		t.Errorf("ensureSamples into a folder holding only .gitkeep: %d entries, want 3", len(entries))
	}
}
