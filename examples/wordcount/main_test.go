package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/spec"
)

// The example runs its pipelines in this process: nothing may be left running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// goSrc is a real text: a part of the Go source tree the test runs with.
func goSrc(t *testing.T, sub string) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "src", sub)
}

// TestCountMatchesPlainCount runs the map/reduce over the go/... packages of the Go source
// tree (some 80,000 lines) on three map workers, and checks it word by word against the
// single-threaded count.
func TestCountMatchesPlainCount(t *testing.T) {
	files, err := listFiles(goSrc(t, "go"), "*.go")
	if err != nil {
		t.Fatal(err)
	}
	got, sum, err := Count(context.Background(), files, 3)
	if err != nil {
		t.Fatal(err)
	}
	want, err := PlainCount(files)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) < 1000 || want["func"] < 1000 {
		t.Fatalf("the reference count looks wrong: %d distinct words, %d × func", len(want), want["func"])
	}
	if d := Diff(got, want); d != "" {
		t.Fatal(d)
	}
	if sum.RecordsOut != int64(len(want)) || sum.Stages[1].Out != int64(len(want)) {
		t.Errorf("summary: %d out, reduce emitted %d; want %d (one per word)", sum.RecordsOut, sum.Stages[1].Out, len(want))
	}
	t.Logf("%d files, %d lines, %d distinct words in %s", len(files), sum.RecordsIn, len(want), sum.Elapsed)
}

// TestProgram runs the command as `go run ./examples/wordcount -dir … -top 3` would.
func TestProgram(t *testing.T) {
	var stdout, stderr bytes.Buffer
	rc := run(context.Background(), []string{"-dir", goSrc(t, "strings"), "-workers", "2", "-top", "3"}, &stdout, &stderr)
	t.Logf("stderr:\n%s", stderr.String())
	if rc != 0 {
		t.Fatalf("exit status %d", rc)
	}
	if !strings.Contains(stderr.String(), "same counts as the single-threaded count") {
		t.Error("no agreement reported")
	}
	if lines := strings.Split(strings.TrimSpace(stdout.String()), "\n"); len(lines) != 3 {
		t.Errorf("stdout %q: want the 3 most frequent words", stdout.String())
	}
	if rc := run(context.Background(), []string{"-dir", t.TempDir()}, &stdout, &stderr); rc != 2 {
		t.Errorf("an empty tree: exit status %d, want 2", rc)
	}
}

// TestSpec runs wordcount.yaml (lines → split → count → format) on the strings package's
// sources given on standard input, and checks its output against a plain count of the
// whitespace-separated fields.
func TestSpec(t *testing.T) {
	files, err := listFiles(goSrc(t, "strings"), "*.go")
	if err != nil {
		t.Fatal(err)
	}
	var in bytes.Buffer
	want := map[string]int64{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		in.Write(data)
		for _, w := range bytes.Fields(data) {
			want[string(w)]++
		}
	}
	s, err := spec.Load("wordcount.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	p, err := s.Pipeline(spec.BuildOptions{Stdin: &in, Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := actors.Run(context.Background(), p)
	if err != nil || sum.DeadLetters != 0 {
		t.Fatalf("run: %v, %d dead letters", err, sum.DeadLetters)
	}
	got := map[string]int64{}
	for sc := bufio.NewScanner(&out); sc.Scan(); {
		w, n, ok := strings.Cut(sc.Text(), "\t")
		c, err := strconv.ParseInt(n, 10, 64)
		if !ok || err != nil {
			t.Fatalf("bad output line %q", sc.Text())
		}
		if _, dup := got[w]; dup {
			t.Fatalf("word %q twice in the output", w)
		}
		got[w] = c
	}
	if d := Diff(got, want); d != "" {
		t.Fatal(d)
	}
}
