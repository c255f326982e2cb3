// Command specdoc writes docs/spec.md and the README's builtins table from the declarations of
// the spec's keys and of the builtins' options (package internal/specdoc). Run it from the
// repository's root, or through go generate ./spec.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/troupe-dev/troupe/internal/specdoc"
)

func main() {
	root := flag.String("root", ".", "the repository's root")
	flag.Parse()
	if err := write(*root); err != nil {
		fmt.Fprintln(os.Stderr, "specdoc:", err)
		os.Exit(1)
	}
}

func write(root string) error {
	if err := os.WriteFile(filepath.Join(root, specdoc.SpecFile), []byte(specdoc.Spec()), 0o644); err != nil {
		return err
	}
	path := filepath.Join(root, specdoc.ReadmeFile)
	readme, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := specdoc.Readme(string(readme))
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte(out), 0o644)
}
