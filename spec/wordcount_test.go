package spec

import (
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe/actors"
)

// The README's word count, exactly as the README shows it, counts the words of a real text as
// plain Go does.
func TestReadmeWordCount(t *testing.T) {
	recipe, err := os.ReadFile("testdata/wordcount.yaml")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, []byte("Word count is `lines → split → count → format`")) ||
		!bytes.Contains(readme, []byte("```yaml\n"+string(recipe)+"```\n")) {
		t.Fatalf("the README's word count is not testdata/wordcount.yaml:\n%s", recipe)
	}
	// A real text: the README itself, with a few lines made of repeated words.
	text := string(readme) + "\nthe the the\n\n  spaced   out\twords  \n"
	want := map[string]int{}
	for _, line := range strings.Split(text, "\n") {
		for _, w := range strings.Fields(line) {
			want[w]++
		}
	}

	dir := t.TempDir()
	for name, data := range map[string]string{"wordcount.yaml": string(recipe), "words.txt": text} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Load(filepath.Join(dir, "wordcount.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Pipeline(BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := actors.Run(context.Background(), p)
	if err != nil || sum.DeadLetters != 0 {
		t.Fatalf("run: %v, %d dead letters", err, sum.DeadLetters)
	}
	out, err := os.ReadFile(filepath.Join(dir, "counts.txt"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		word, count, ok := strings.Cut(line, "\t")
		n, err := strconv.Atoi(count)
		if !ok || err != nil {
			t.Fatalf("output line %q is not word<TAB>count", line)
		}
		if _, dup := got[word]; dup {
			t.Fatalf("word %q counted twice", word)
		}
		got[word] = n
	}
	if !maps.Equal(got, want) {
		for w, n := range want {
			if got[w] != n {
				t.Errorf("%q: got %d, want %d", w, got[w], n)
			}
		}
		t.Fatalf("got %d words, want %d", len(got), len(want))
	}
	if got["the"] < 4 {
		t.Errorf("the: %d", got["the"])
	}
}
