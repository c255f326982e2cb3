package scaffold

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedPluginBuildsAndPasses generates a plugin inside this module (in a directory the
// go tool's ./... patterns ignore), then builds, vets and tests it.
func TestGeneratedPluginBuildsAndPasses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a plugin")
	}
	parent, err := os.MkdirTemp(".", "_scaffold-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	dir := filepath.Join(parent, "hello")
	if err := Generate("hello", dir); err != nil {
		t.Fatal(err)
	}
	pkg := "./" + filepath.ToSlash(dir)
	for _, args := range [][]string{
		{"build", "-o", filepath.Join(parent, "bin"), pkg},
		{"vet", pkg},
		{"test", "-count=1", pkg},
	} {
		if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// Run directly, a plugin explains itself and exits 1.
	out, err := exec.Command(filepath.Join(parent, "bin")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "This binary is a plugin") {
		t.Fatalf("running the plugin directly: %v %s", err, out)
	}
	if err := Generate("hello", dir); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second Generate: %v", err)
	}
}

func TestGenerateRejectsBadNames(t *testing.T) {
	for _, name := range []string{"", "Hello", "1x", "a/b", "../x", "a b"} {
		if err := Generate(name, t.TempDir()); err == nil {
			t.Errorf("Generate(%q) succeeded", name)
		}
	}
}
