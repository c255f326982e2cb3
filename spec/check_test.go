package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkSpec parses src as dir/job.yaml and returns what Spec.Check says about it.
func checkSpec(t *testing.T, dir, src string) (*Spec, error) {
	t.Helper()
	s, err := Parse([]byte(src), filepath.Join(dir, "job.yaml"))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return s, s.Check()
}

// mkfile writes a file (and its directories) under dir.
func mkfile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// wantProblems checks that err is a *SpecError with exactly the problems want, each given as
// "LINE:COL substring substring ...".
func wantProblems(t *testing.T, dir string, err error, want ...string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("Check: %v, want no problem", err)
		}
		return
	}
	var se *SpecError
	if !errors.As(err, &se) {
		t.Fatalf("Check: %v (%T), want a *SpecError with %d problems", err, err, len(want))
	}
	if len(se.Errors) != len(want) {
		t.Fatalf("Check found %d problems, want %d:\n%v", len(se.Errors), len(want), err)
	}
	for i, w := range want {
		fields := strings.Fields(w)
		pe := se.Errors[i]
		if got := fmt.Sprintf("%d:%d", pe.Pos.Line, pe.Pos.Col); got != fields[0] || pe.Pos.File != filepath.Join(dir, "job.yaml") {
			t.Errorf("problem %d at %v, want job.yaml:%s: %s", i+1, pe.Pos, fields[0], pe.Msg)
		}
		for _, f := range fields[1:] {
			if !strings.Contains(pe.Msg, f) {
				t.Errorf("problem %d %q does not say %q", i+1, pe.Msg, f)
			}
		}
	}
}

// Outputs that would write over the input, over each other, or be read back as input are
// refused at the output's position, naming both keys, whatever path leads to the same file.
func TestCheckOverlaps(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		src   string
		want  []string
	}{
		{"lines sink is the source", nil,
			"source: {lines: {path: in.txt}}\nsink: {lines: {path: in.txt}}\n",
			[]string{"2:22 sink.lines.path source.lines.path job.yaml:1:24 same file own input"}},
		{"lines sink is the source through ..", nil,
			"source: {lines: {path: in.txt}}\nsink: {lines: {path: sub/../in.txt}}\n",
			[]string{"2:22 sink.lines.path source.lines.path same file"}},
		{"lines sink is the source through a symbolic link", func(t *testing.T, dir string) {
			symlink(t, filepath.Join(dir, "in.txt"), filepath.Join(dir, "link.txt"))
		}, "source: {lines: {path: in.txt}}\nsink: {lines: {path: link.txt}}\n",
			[]string{"2:22 sink.lines.path source.lines.path same file"}},
		{"lines sink is the source through a linked directory", func(t *testing.T, dir string) {
			symlink(t, dir, filepath.Join(dir, "here"))
		}, "source: {lines: {path: in.txt}}\nsink: {lines: {path: here/in.txt}}\n",
			[]string{"2:22 sink.lines.path source.lines.path same file"}},
		{"lines sink is a hard link to the source", func(t *testing.T, dir string) {
			if err := os.Link(filepath.Join(dir, "in.txt"), filepath.Join(dir, "hard.txt")); err != nil {
				t.Fatal(err)
			}
		}, "source: {lines: {path: in.txt}}\nsink: {lines: {path: hard.txt}}\n",
			[]string{"2:22 sink.lines.path source.lines.path same file"}},
		{"dead letters are the sink", nil,
			"source: {lines: {path: in.txt}}\nsink: {lines: {path: out/o.txt}}\ndead_letter: {path: ./out/o.txt}\n",
			[]string{"3:21 dead_letter.path sink.lines.path job.yaml:2:22 overwrite each other"}},
		{"dead letters are the sink through a linked, not yet existing directory", func(t *testing.T, dir string) {
			symlink(t, filepath.Join(dir, "out"), filepath.Join(dir, "alias"))
		}, "source: {lines: {path: in.txt}}\nsink: {lines: {path: out/new/o.txt}}\ndead_letter: {path: alias/new/o.txt}\n",
			[]string{"3:21 dead_letter.path sink.lines.path overwrite each other"}},
		{"dead letters are the source", nil,
			"source: {lines: {path: in.txt}}\nsink: {discard: {}}\ndead_letter: {path: in.txt}\n",
			[]string{"3:21 dead_letter.path source.lines.path own input"}},
		{"a dangling link to the source's name is followed", func(t *testing.T, dir string) {
			symlink(t, filepath.Join(dir, "later.txt"), filepath.Join(dir, "dangling"))
		}, "source: {lines: {path: in.txt}}\nsink: {lines: {path: later.txt}}\ndead_letter: {path: dangling}\n",
			[]string{"3:21 dead_letter.path sink.lines.path"}},
		{"files sink is the source dir", nil,
			"source: {files: {dir: imgs, glob: \"*.png\"}}\nsink: {files: {dir: ./imgs, ext: .png}}\n",
			[]string{"2:21 sink.files.dir source.files.dir job.yaml:1:23 same directory"}},
		{"files sink is the source dir, other ext", nil,
			"source: {files: {dir: imgs, glob: \"*.png\"}}\nsink: {files: {dir: imgs, ext: .jpg}}\n",
			[]string{"2:21 sink.files.dir source.files.dir same directory"}},
		{"files sink contains the source dir", nil,
			"source: {files: {dir: imgs}}\nsink: {files: {dir: .}}\n",
			[]string{"2:21 sink.files.dir contains source.files.dir"}},
		{"files sink inside a recursive source", nil,
			"source: {files: {dir: imgs, recursive: true}}\nsink: {files: {dir: imgs/out}}\n",
			[]string{"2:21 sink.files.dir source.files.dir recursively"}},
		{"files sink inside a non-recursive source", nil,
			"source: {files: {dir: imgs}}\nsink: {files: {dir: imgs/out}}\n", nil},
		{"dead letters listed by the files source", nil,
			"source: {files: {dir: imgs, glob: \"*\"}}\nsink: {discard: {}}\ndead_letter: {path: imgs/dead.jsonl}\n",
			[]string{"3:21 dead_letter.path source.files.dir glob read back"}},
		{"lines sink listed by a recursive files source", nil,
			"source: {files: {dir: imgs, glob: \"*.txt\", recursive: true}}\nsink: {lines: {path: imgs/a/b/out.txt}}\n",
			[]string{"2:22 sink.lines.path source.files.dir glob"}},
		{"lines sink below a non-recursive files source", nil,
			"source: {files: {dir: imgs, glob: \"*.txt\"}}\nsink: {lines: {path: imgs/a/out.txt}}\n", nil},
		{"dead letters in the source dir not matching its glob", nil,
			"source: {files: {dir: imgs, glob: \"*.png\"}}\nsink: {discard: {}}\ndead_letter: {path: imgs/dead.jsonl}\n", nil},
		{"dead letters among a files sink's outputs", nil,
			"source: {files: {dir: imgs}}\nsink: {files: {dir: out}}\ndead_letter: {path: out/dead.jsonl}\n",
			[]string{"3:21 dead_letter.path sink.files.dir overwrite"}},
		{"dead letters among outputs with the sink's ext", nil,
			"source: {files: {dir: imgs}}\nsink: {files: {dir: out, ext: jsonl}}\ndead_letter: {path: out/x/dead.jsonl}\n",
			[]string{"3:21 dead_letter.path sink.files.dir .jsonl"}},
		{"dead letters next to outputs with another ext", nil,
			"source: {files: {dir: imgs}}\nsink: {files: {dir: out, ext: .jpg}}\ndead_letter: {path: out/dead.jsonl}\n", nil},
		{"lines source among a files sink's outputs", nil,
			"source: {lines: {path: in.txt}}\nsink: {files: {dir: ., ext: .txt}}\n",
			[]string{"2:21 sink.files.dir contains source.lines.path"}},
		{"standard streams", nil,
			"source: {lines: {path: \"-\"}}\nsink: {lines: {path: \"-\"}}\n", nil},
		{"standard output twice, the null device twice", nil,
			"source: {lines: {path: /dev/stdin}}\nsink: {lines: {path: /dev/null}}\ndead_letter: {path: /dev/null}\n", nil},
		{"sink and dead letters on the same stream", nil,
			"source: {lines: {path: in.txt}}\nsink: {lines: {path: /dev/stdout}}\ndead_letter: {path: /dev/stdout}\n", nil},
		{"dead letters below the sink's file", nil,
			"source: {lines: {path: in.txt}}\nsink: {lines: {path: out/o.txt}}\ndead_letter: {path: out/o.txt/dead.jsonl}\n",
			[]string{"3:21 dead_letter.path lies below sink.lines.path"}},
		{"sink below the source's file", nil,
			"source: {lines: {path: in.txt}}\nsink: {lines: {path: in.txt/o.txt}}\n",
			[]string{"2:22 sink.lines.path cannot be created", "2:22 sink.lines.path lies below source.lines.path"}},
		{"dead letters linked into the files source", func(t *testing.T, dir string) {
			mkfile(t, dir, "dead.jsonl", "")
			symlink(t, filepath.Join(dir, "dead.jsonl"), filepath.Join(dir, "imgs", "dead.png"))
		}, "source: {files: {dir: imgs, glob: \"*.png\"}}\nsink: {discard: {}}\ndead_letter: {path: dead.jsonl}\n",
			[]string{"3:21 dead_letter.path imgs/dead.png source.files.dir read back"}},
		{"lines sink hard-linked into a recursive files source", func(t *testing.T, dir string) {
			out := mkfile(t, dir, "out.txt", "")
			mkfile(t, dir, "imgs/sub/keep", "")
			if err := os.Link(out, filepath.Join(dir, "imgs", "sub", "o.txt")); err != nil {
				t.Fatal(err)
			}
		}, "source: {files: {dir: imgs, recursive: true}}\nsink: {lines: {path: out.txt}}\n",
			[]string{"2:22 sink.lines.path imgs/sub/o.txt source.files.dir read back"}},
		{"lines sink hard-linked below a non-recursive files source", func(t *testing.T, dir string) {
			out := mkfile(t, dir, "out.txt", "")
			mkfile(t, dir, "imgs/sub/keep", "")
			if err := os.Link(out, filepath.Join(dir, "imgs", "sub", "o.txt")); err != nil {
				t.Fatal(err)
			}
		}, "source: {files: {dir: imgs}}\nsink: {lines: {path: out.txt}}\n", nil},
		{"separate files", nil,
			"source: {lines: {path: in.txt}}\nsink: {lines: {path: out/in.txt}}\ndead_letter: {path: out/dead.jsonl}\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			mkfile(t, dir, "in.txt", "a\nb\n")
			mkfile(t, dir, "imgs/x.png", "png")
			mkfile(t, dir, "out/keep", "")
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			_, err := checkSpec(t, dir, tt.src)
			wantProblems(t, dir, err, tt.want...)
		})
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// Check finds, before a run, what a run would fail on: missing or unreadable inputs, outputs that
// cannot be created, plugin programs that are missing, not executable or not the named binary,
// all at once and each at its place.
func TestCheckWorld(t *testing.T) {
	dir := t.TempDir()
	mkfile(t, dir, "in.txt", "a\n")
	mkfile(t, dir, "afile", "")
	mkfile(t, dir, "notexec", "#!/bin/sh\n")
	mkfile(t, dir, "plug", "#!/bin/sh\n")
	if err := os.Chmod(filepath.Join(dir, "plug"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	const sum = "6bd3b1f4d8e1b41e1d0c9d5cb43bd3a1ad0e0a9e20ffba1a6da5e3e3a6c0a9e1" // not plug's
	stages := `stages:
  - {name: gone, plugin: {cmd: [./missing]}}
  - {name: noexec, plugin: {cmd: [./notexec]}}
  - {name: other, plugin: {cmd: [./plug], sha256: ` + sum + `}}
  - {name: nopath, plugin: {cmd: [troupe-no-such-program-anywhere]}}
  - {name: fine, plugin: {cmd: [./plug]}}
`
	tests := []struct {
		name, src string
		want      []string
	}{
		{"all at once", "source: {lines: {path: nope.txt}}\n" + stages + "sink: {lines: {path: afile/out.txt}}\ndead_letter: {path: adir}\n", []string{
			"1:24 source.lines.path no such file",
			"3:26 stage gone missing",
			"4:28 stage noexec permission denied",
			"5:27 stage other " + sum,
			"6:28 stage nopath troupe-no-such-program-anywhere",
			"8:22 sink.lines.path afile/out.txt cannot be created afile is not a directory",
			"9:21 dead_letter.path directory",
		}},
		{"lines source is a directory", "source: {lines: {path: adir}}\nsink: {discard: {}}\n",
			[]string{"1:24 source.lines.path is a directory"}},
		{"files source missing", "source: {files: {dir: nowhere}}\nsink: {discard: {}}\n",
			[]string{"1:23 source.files.dir no such directory"}},
		{"files source is a file", "source: {files: {dir: afile}}\nsink: {discard: {}}\n",
			[]string{"1:23 source.files.dir not a directory"}},
		{"files sink is a file", "source: {files: {dir: adir}}\nsink: {files: {dir: afile}}\n",
			[]string{"2:21 sink.files.dir exists and is not a directory"}},
		{"files sink below a file", "source: {files: {dir: adir}}\nsink: {files: {dir: afile/x/y}}\n",
			[]string{"2:21 sink.files.dir cannot be created"}},
		{"lines sink is a directory", "source: {range: {count: 1}}\nsink: {lines: {path: adir}}\n",
			[]string{"2:22 sink.lines.path is a directory"}},
		// A run creates missing parent directories (and a files sink's dir): nothing to refuse.
		{"missing parents are created", "source: {lines: {path: in.txt}}\nsink: {files: {dir: new/a/b}}\ndead_letter: {path: new/c/dead.jsonl}\n", nil},
		{"lines sink in missing directories", "source: {lines: {path: in.txt}}\nsink: {lines: {path: x/y/out.txt}}\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := checkSpec(t, dir, tt.src)
			wantProblems(t, dir, err, tt.want...)
		})
	}
}

// A spec that Check refuses makes Spec.Pipeline fail with the same problems, before anything is
// opened: the input of a sink that names it is left as it was.
func TestPipelineRunsCheck(t *testing.T) {
	dir := t.TempDir()
	in := mkfile(t, dir, "in.txt", "a\nb\n")
	s, err := checkSpec(t, dir, "source: {lines: {path: in.txt}}\nsink: {lines: {path: in.txt}}\n")
	if err == nil {
		t.Fatal("Check accepted a sink that is its source")
	}
	_, perr := s.Pipeline(BuildOptions{})
	var se *SpecError
	if !errors.As(perr, &se) || perr.Error() != err.Error() {
		t.Fatalf("Pipeline: %v\nwant the *SpecError of Check: %v", perr, err)
	}
	if data, err := os.ReadFile(in); err != nil || string(data) != "a\nb\n" {
		t.Fatalf("input after Pipeline: %q, %v", data, err)
	}
}
