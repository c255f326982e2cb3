package scaffold

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// troupeSrc is this tree: the package's directory is <src>/plugins/scaffold.
func troupeSrc(t *testing.T) string {
	src, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// TestGeneratedPluginBuildsOutsideTheTree generates a plugin in a temporary directory outside
// troupe's tree and builds it there twice: first as written (troupe's requirements and go.sum,
// as a user without a go tool at scaffold time gets it), then after Tidy, with vet and its test.
func TestGeneratedPluginBuildsOutsideTheTree(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a plugin")
	}
	dir := filepath.Join(t.TempDir(), "hello")
	if err := Generate("hello", dir, Options{Source: troupeSrc(t), Module: "example.com/hello"}); err != nil {
		t.Fatal(err)
	}
	gocmd := func(args ...string) {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	bin := filepath.Join(dir, "bin", "hello")
	gocmd("build", "-o", bin, ".")
	if ran, err := Tidy(context.Background(), dir); err != nil || !ran {
		t.Fatalf("Tidy: ran %v, %v", ran, err)
	}
	gocmd("vet", ".")
	gocmd("test", "-count=1", ".")
	gocmd("build", "-o", bin, ".")
	// Run directly, a plugin explains itself and exits 1.
	out, err := exec.Command(bin).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "This binary is a plugin") {
		t.Fatalf("running the plugin directly: %v %s", err, out)
	}
	mod, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
	if !strings.HasPrefix(string(mod), "module example.com/hello\n") || !strings.Contains(string(mod), "replace github.com/troupe-dev/troupe => "+troupeSrc(t)+"\n") {
		t.Errorf("go.mod:\n%s", mod)
	}
	if err := Generate("hello", dir, Options{Source: troupeSrc(t)}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second Generate: %v", err)
	}
}

// Inside troupe's tree the replace is relative, so the two move together.
func TestGenerateInsideTheTreeReplacesRelatively(t *testing.T) {
	src := troupeSrc(t)
	parent, err := os.MkdirTemp(".", "_scaffold-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	if err := Generate("inner", filepath.Join(parent, "inner"), Options{Source: src}); err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(parent, "inner", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mod), "replace github.com/troupe-dev/troupe => ../../../..\n") {
		t.Errorf("go.mod:\n%s", mod)
	}
}

func TestFindSource(t *testing.T) {
	src := troupeSrc(t)
	if dir, how, err := FindSource(""); err != nil || dir != src {
		t.Errorf("FindSource(\"\") = %q (%s), %v; want %s", dir, how, err, src)
	}
	if dir, _, err := FindSource(src); err != nil || dir != src {
		t.Errorf("FindSource(src) = %q, %v", dir, err)
	}
	if _, _, err := FindSource(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not troupe's source tree") {
		t.Errorf("FindSource(elsewhere) = %v", err)
	}
}

func TestGenerateRejectsBadNamesAndSources(t *testing.T) {
	for _, name := range []string{"", "Hello", "1x", "a/b", "../x", "a b"} {
		if err := Generate(name, t.TempDir(), Options{Source: troupeSrc(t)}); err == nil {
			t.Errorf("Generate(%q) succeeded", name)
		}
	}
	dir := filepath.Join(t.TempDir(), "p")
	if err := Generate("p", dir, Options{Source: t.TempDir()}); err == nil {
		t.Error("Generate with a source that is not troupe's succeeded")
	}
	if _, err := os.Stat(dir); err == nil {
		t.Error("a refused Generate created its directory")
	}
}
