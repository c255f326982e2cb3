package spec

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var positioned = regexp.MustCompile(`^fuzz\.yaml:([1-9][0-9]*):([1-9][0-9]*): \S`)

// FuzzParseSpec checks that no input makes Parse panic, and that every error it reports is
// positioned.
func FuzzParseSpec(f *testing.F) {
	for _, root := range []string{"../examples", "testdata"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
				data, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				f.Add(data)
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			f.Fatal(err)
		}
	}
	f.Add([]byte("a: &a [*a]\nsource: {range: {count: 1}}\nsink: {discard: {}}\nstages: [{name: x, builtin: identity, options: {o: *a}}]\n"))
	f.Add([]byte("source: &s {files: *s}\n"))
	f.Add([]byte("{[}: \n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data, "fuzz.yaml")
		if err == nil {
			if s == nil || len(s.Stages) > len(data) {
				t.Fatalf("no error and spec %+v", s)
			}
			n := 0
			for _, set := range []bool{s.Source.Files != nil, s.Source.Lines != nil, s.Source.Range != nil} {
				if set {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("spec accepted with %d source kinds", n)
			}
			return
		}
		var se *SpecError
		if !errors.As(err, &se) || len(se.Errors) == 0 {
			t.Fatalf("error is not a non-empty *SpecError: %T %v", err, err)
		}
		// YAML breaks lines at \n, \r\n and a lone \r.
		lines := strings.Count(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n") + strings.Count(string(data), "\r") + 2
		for _, line := range strings.Split(err.Error(), "\n") {
			if !positioned.MatchString(line) {
				t.Fatalf("error line without FILE:LINE:COL: %q", line)
			}
		}
		for _, pe := range se.Errors {
			if pe.Pos.Line < 1 || pe.Pos.Line > lines || pe.Pos.Col < 1 {
				t.Fatalf("position %v outside the input (%d lines)", pe.Pos, lines)
			}
		}
	})
}
