package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe/engine"
)

// A job may name a journal (the spec's journal key): a second job over the same source and
// journal skips what the first finished, and its output file holds every line once.
func TestJobWithJournalResumes(t *testing.T) {
	dir := t.TempDir()
	var in strings.Builder
	for i := range 50 {
		in.WriteString(strings.Repeat("x", i%7) + "line\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "in.txt"), []byte(in.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := []byte(`source: {lines: {path: in.txt}}
stages: [{name: up, builtin: upper}]
sink: {lines: {path: out.txt}}
journal: {path: run.journal}
`)
	e := newEngine(t, engine.Options{})
	for round, wantSkipped := range []int64{0, 50} {
		j, err := e.Submit(context.Background(), engine.JobSpec{Spec: spec, SpecFile: filepath.Join(dir, "job.yaml")})
		if err != nil {
			t.Fatal(err)
		}
		s, err := waitJob(t, j)
		if err != nil {
			t.Fatal(err)
		}
		if s.Skipped != wantSkipped || s.RecordsOut+s.Skipped != 50 {
			t.Fatalf("job %d: %d skipped, %d out; want %d skipped of 50", round+1, s.Skipped, s.RecordsOut, wantSkipped)
		}
	}
	out, err := os.ReadFile(filepath.Join(dir, "out.txt"))
	if err != nil {
		t.Fatal(err)
	}
	got, want := strings.Split(string(out), "\n"), strings.Split(strings.ToUpper(in.String()), "\n")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("output after the second job (sorted):\n%q\nwant\n%q", got, want)
	}
}
