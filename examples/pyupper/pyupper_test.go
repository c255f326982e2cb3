package pyupper_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe/internal/proctest"
	"github.com/troupe-dev/troupe/plugins/python"
)

// The example as a user runs it: `troupe run examples/pyupper/pipeline.yaml` with `python3` from
// $PATH (which may be one that cannot import grpc: the SDK then hands over to /usr/bin/python3),
// from another working directory. The example is copied (with a link to the SDK where the script
// expects it) so that the run writes nothing into the source tree.
func TestPyUpper(t *testing.T) {
	if err := exec.Command(python.SystemPython, "-c", "import grpc, google.protobuf").Run(); err != nil {
		if os.Getenv("CI") != "" || os.Getenv("TROUPE_REQUIRE_PYTHON") != "" {
			t.Fatalf("%s cannot import grpc and protobuf: %v", python.SystemPython, err)
		}
		t.Skipf("skipping: %s cannot import grpc and protobuf (apt-get install -y python3-grpcio python3-protobuf)", python.SystemPython)
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("skipping: no python3 in $PATH")
	}
	root := t.TempDir()
	bin := proctest.Build(t, root, "troupe", "github.com/troupe-dev/troupe/cmd/troupe")
	ex := filepath.Join(root, "repo", "examples", "pyupper")
	if err := os.MkdirAll(ex, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"stage.py", "pipeline.yaml", "input.txt"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ex, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sdk, err := filepath.Abs("../../plugins/python")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "repo", "plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(sdk, filepath.Join(root, "repo", "plugins", "python")); err != nil {
		t.Fatal(err)
	}
	elsewhere := t.TempDir()
	cmd := exec.Command(bin, "run", filepath.Join(ex, "pipeline.yaml"), "--progress", "none")
	cmd.Dir = elsewhere
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("troupe run: %v\n%s", err, out)
	}
	in, _ := os.ReadFile("input.txt")
	got, err := os.ReadFile(filepath.Join(ex, "output.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split(strings.TrimSpace(strings.ToUpper(string(in))), "\n")
	have := strings.Split(strings.TrimSpace(string(got)), "\n")
	slices.Sort(want)
	slices.Sort(have)
	if !slices.Equal(have, want) {
		t.Fatalf("output %q, want %q\n%s", have, want, out)
	}
	if _, err := os.Stat(filepath.Join(ex, "dead.jsonl")); err == nil {
		if b, _ := os.ReadFile(filepath.Join(ex, "dead.jsonl")); len(b) > 0 {
			t.Fatalf("dead letters: %s", b)
		}
	}
}
