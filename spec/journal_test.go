package spec

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// journal: resolves against the spec's directory and reaches the pipeline; a journal over
// stdin, or with a reduce stage, is refused where the spec names it.
func TestJournalKey(t *testing.T) {
	s, err := Parse([]byte("source: {range: {count: 3}}\nsink: {discard: {}}\njournal: {path: state/j}\n"), "/specs/x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s.Journal == nil || s.Journal.Path != filepath.FromSlash("/specs/state/j") {
		t.Fatalf("journal = %+v", s.Journal)
	}
	for _, tc := range []struct{ spec, want string }{
		{"source: {lines: {path: '-'}}\nsink: {discard: {}}\njournal: {path: j}\n", "x.yaml:3:10: journal: standard input cannot be resumed"},
		{"source: {range: {count: 3}}\nstages: [{name: c, builtin: count}]\nsink: {discard: {}}\njournal: {path: j}\n", "x.yaml:4:10: journal: stage c is a reduce stage"},
		{"source: {range: {count: 3}}\nsink: {discard: {}}\njournal: {path: '-'}\n", "journal.path: \"-\""},
	} {
		_, err := Parse([]byte(tc.spec), "/specs/x.yaml")
		var se *SpecError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.spec, err, tc.want)
		}
	}
}
