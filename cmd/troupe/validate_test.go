package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A sink that is the source's file, or a dead-letter file that is the sink's, is refused by
// validate and by run alike, with the same positioned report and status 2, and the input is left
// as it was (run used to truncate it and report "0 in, 0 out" with status 0).
func TestOverlappingOutputsRefused(t *testing.T) {
	for _, c := range []struct{ name, spec, want string }{
		{"sink is the source", "source: {lines: {path: in.txt}}\nsink: {lines: {path: ./in.txt}}\n",
			":2:22: sink.lines.path "},
		{"dead letters are the sink", "source: {lines: {path: in.txt}}\nsink: {lines: {path: out.txt}}\ndead_letter: {path: sub/../out.txt}\n",
			":3:21: dead_letter.path "},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			in := write(t, filepath.Join(dir, "in.txt"), "a\nb\n")
			spec := write(t, filepath.Join(dir, "j.yaml"), c.spec)
			code, stdout, stderr := cli(t, "", "validate", spec)
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if code != exitUsage || stdout != "" || len(lines) != 2 || !strings.HasPrefix(lines[0], spec+c.want) ||
				lines[1] != "troupe: "+spec+": 1 problem" {
				t.Fatalf("validate: exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
			}
			code, _, stderr2 := cli(t, "", "run", spec, "--progress", "none")
			if code != exitUsage || stderr2 != stderr {
				t.Errorf("run: exit %d, stderr:\n%s\nwant validate's:\n%s", code, stderr2, stderr)
			}
			if data, err := os.ReadFile(in); err != nil || string(data) != "a\nb\n" {
				t.Errorf("input after run: %q, %v", data, err)
			}
			if _, err := os.Stat(filepath.Join(dir, "out.txt")); err == nil {
				t.Errorf("run created its output although it refused the spec")
			}
		})
	}
}

// validate checks what run needs from the world, the same way run does before it starts: every
// problem at once, at its place, status 2 from both.
func TestValidateChecksWhatRunNeeds(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "afile"), "")
	spec := write(t, filepath.Join(dir, "j.yaml"), `source: {lines: {path: missing.txt}}
stages:
  - name: up
    plugin: {cmd: [./bin/not-built-yet]}
sink: {lines: {path: afile/out.txt}}
`)
	code, stdout, stderr := cli(t, "", "validate", spec)
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	want := []string{
		spec + ":1:24: source.lines.path " + filepath.Join(dir, "missing.txt") + ": no such file",
		spec + `:4:13: stage up: plugin: exec: "` + filepath.Join(dir, "bin", "not-built-yet") + `": `,
		spec + ":5:22: sink.lines.path " + filepath.Join(dir, "afile", "out.txt") + ": cannot be created: " + filepath.Join(dir, "afile") + " is not a directory",
		"troupe: " + spec + ": 3 problems",
	}
	if code != exitUsage || stdout != "" || len(lines) != len(want) {
		t.Fatalf("validate: exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q\nwant prefix %q", i+1, lines[i], w)
		}
	}
	code, _, stderr2 := cli(t, "", "run", spec)
	if code != exitUsage || stderr2 != stderr {
		t.Errorf("run: exit %d, stderr:\n%s\nwant validate's:\n%s", code, stderr2, stderr)
	}
}
