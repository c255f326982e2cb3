package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe/internal/proctest"
)

// TestPluginsNewOutsideTheRepository scaffolds a plugin into a temporary directory outside
// troupe's tree, as a user would, then builds it and runs its test there with the go tool, and
// runs its sample spec through the CLI: the project must stand on its own (its go.mod replaces
// troupe with this tree; go.sum is complete).
func TestPluginsNewOutsideTheRepository(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a plugin")
	}
	dir := filepath.Join(t.TempDir(), "hello")
	code, stdout, stderr := cli(t, "", "plugins", "new", "hello", dir)
	if code != exitOK || !strings.Contains(stdout, "created plugin hello in "+dir) {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	src, _ := filepath.Abs(filepath.Join("..", ".."))
	if !strings.Contains(string(mod), "replace github.com/troupe-dev/troupe => "+src+"\n") {
		t.Errorf("go.mod does not replace troupe with %s:\n%s", src, mod)
	}
	gocmd := func(args ...string) {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
		}
	}
	gocmd("build", "-o", filepath.Join("bin", "hello"), ".")
	gocmd("test", "-count=1", ".")

	t.Chdir(t.TempDir()) // the spec's paths resolve against its own directory
	code, _, stderr = cli(t, "", "run", filepath.Join(dir, "pipeline.yaml"), "--progress", "none")
	if code != exitOK {
		t.Fatalf("troupe run: exit %d\n%s", code, stderr)
	}
	if got := sortedLines(t, filepath.Join(dir, "output.txt")); strings.Join(got, ",") != "hello!,world!" {
		t.Errorf("output.txt = %q, want hello! and world!", got)
	}
	if pids := proctest.Running(filepath.Join(dir, "bin", "hello")); len(pids) > 0 {
		t.Errorf("plugin processes still running after the run: %v", pids)
	}

	// A second scaffold into the same place refuses to overwrite; a tree that is not troupe's
	// is refused before anything is written.
	if code, _, stderr := cli(t, "", "plugins", "new", "hello", dir); code != exitAborted || !strings.Contains(stderr, "already exists") {
		t.Errorf("second scaffold: exit %d, stderr %q", code, stderr)
	}
	other := filepath.Join(t.TempDir(), "other")
	if code, _, stderr := cli(t, "", "plugins", "new", "other", other, "--troupe-src", t.TempDir()); code != exitUsage || !strings.Contains(stderr, "not troupe's source tree") {
		t.Errorf("--troupe-src elsewhere: exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(other); err == nil {
		t.Errorf("a refused scaffold wrote %s", other)
	}
}
