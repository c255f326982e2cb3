package specdoc

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/troupe-dev/troupe/internal/schema"
	"github.com/troupe-dev/troupe/spec"
	"github.com/troupe-dev/troupe/stages"
)

const root = "../.."

// docs/spec.md and the README's builtins table are what the declarations say: run
// go generate ./spec after changing a key or a builtin's options.
func TestGeneratedDocsInSync(t *testing.T) {
	got, err := os.ReadFile(filepath.Join(root, SpecFile))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != Spec() {
		t.Errorf("%s is out of date: run go generate ./spec", SpecFile)
	}
	readme, err := os.ReadFile(filepath.Join(root, ReadmeFile))
	if err != nil {
		t.Fatal(err)
	}
	want, err := Readme(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	if string(readme) != want {
		t.Errorf("the builtins table of %s is out of date: run go generate ./spec", ReadmeFile)
	}
}

// The spec's declarations and every builtin's options have well-formed tags, a doc for every
// key, defaults and bounds that decode.
func TestLint(t *testing.T) {
	if err := schema.Lint(reflect.TypeFor[spec.Document]()); err != nil {
		t.Error(err)
	}
	for _, name := range stages.Names() {
		b, _ := stages.Lookup(name)
		if err := schema.Lint(b.Options); err != nil {
			t.Errorf("builtin %s: %v", name, err)
		}
		if b.Doc == "" {
			t.Errorf("builtin %s has no doc", name)
		}
	}
}
