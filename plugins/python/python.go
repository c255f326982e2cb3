// Package python carries troupe's Python SDK, the troupe_plugin package of this directory, for
// Go programs that need it where the repository is not (the benchmark harness writes it next to
// a generated stage script). Python plugins in the repository import it straight from here; see
// README.md.
package python

import (
	"embed"
	"io/fs"
	"os"
	"path/filepath"
)

// SDK holds troupe_plugin's source files, under "troupe_plugin/".
//
//go:embed troupe_plugin/*.py troupe_plugin/_gen/*.py
var SDK embed.FS

// SystemPython is Debian's interpreter, the one that sees Debian's python3-grpcio and
// python3-protobuf (another python3 earlier in $PATH, pyenv's or a virtualenv's, does not).
const SystemPython = "/usr/bin/python3"

// WriteSDK writes the troupe_plugin package into dir (as dir/troupe_plugin), so that a script
// that puts dir on sys.path can import it.
func WriteSDK(dir string) error {
	return fs.WalkDir(SDK, "troupe_plugin", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(path))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := SDK.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
}
