package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe/internal/proctest"
)

// A plugin stage through the real command line: the plugin binary is built, the spec is loaded
// by a relative name (its ./upper must resolve next to it, not in $PATH), every record comes back
// exactly once, and no plugin process outlives the run.
func TestRunPluginStage(t *testing.T) {
	dir := t.TempDir()
	bin := proctest.Build(t, dir, "upper", "github.com/troupe-dev/troupe/examples/plugins/upper")
	var in, want strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&in, "line %d\n", i)
		fmt.Fprintf(&want, "LINE %d\n", i)
	}
	write(t, filepath.Join(dir, "in.txt"), in.String())
	write(t, filepath.Join(dir, "spec.yaml"), `name: plug
source: {lines: {path: in.txt}}
stages:
  - name: up
    plugin: {cmd: [./upper]}
    workers: 3
sink: {lines: {path: out.txt}}
`)
	t.Chdir(dir)
	code, _, stderr := cli(t, "", "run", "spec.yaml", "--progress", "none")
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	got := sortedLines(t, filepath.Join(dir, "out.txt"))
	if wantLines := strings.Split(strings.TrimSpace(want.String()), "\n"); len(got) != len(wantLines) {
		t.Fatalf("%d lines out, want %d", len(got), len(wantLines))
	}
	seen := map[string]bool{}
	for _, l := range got {
		if seen[l] || !strings.HasPrefix(l, "LINE ") {
			t.Fatalf("line %q duplicated or not uppercased", l)
		}
		seen[l] = true
	}
	if pids := proctest.Running(bin); len(pids) > 0 {
		t.Fatalf("plugin processes still running after the run: %v", pids)
	}
}
