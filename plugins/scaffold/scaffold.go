// Package scaffold writes a new troupe plugin project that builds where it is written, inside or
// outside troupe's repository: a Go module (go.mod, go.sum) whose main package calls sdk.Serve
// with a Process function to fill in, a test of that function, and a sample spec that runs it.
// `troupe plugins new NAME [DIR]` uses it.
//
// The module github.com/troupe-dev/troupe is not published, so the generated go.mod requires it
// at the placeholder version ZeroVersion and replaces it with a local troupe source tree:
//
//	require github.com/troupe-dev/troupe v0.0.0-00010101000000-000000000000
//	replace github.com/troupe-dev/troupe => /path/to/troupe
//
// (a relative path when the project lies inside that tree). Its other requirements and go.sum
// are troupe's own, so the plugin builds against exactly the versions troupe was tested with and
// needs no checksum database; Tidy then trims them with `go mod tidy`. FindSource finds the tree:
// a directory given explicitly, else the one the running program was compiled from, else one
// containing the working directory.
package scaffold

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/format"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"text/template"
	"time"
)

// Module is troupe's module path.
const Module = "github.com/troupe-dev/troupe"

// ZeroVersion is the version a module requires troupe at while troupe is unpublished: the
// placeholder pseudo-version `go mod tidy` itself writes for a replaced module. The replace
// directive says which source is used; the version only has to be well formed.
const ZeroVersion = "v0.0.0-00010101000000-000000000000"

var validName = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

// Options says how to generate a plugin project.
type Options struct {
	// Source is troupe's source tree (the directory of its go.mod): the replace target, and where
	// the project's requirements and go.sum come from. Required; see FindSource.
	Source string
	// Module is the new module's path; default the plugin's name.
	Module string
}

// Generate writes a plugin project called name into dir (created if needed; "" means ./name):
// go.mod, go.sum, main.go, main_test.go, pipeline.yaml, input.txt and .gitignore. It refuses
// to overwrite existing files and names that are not lowercase letters, digits, '-' and '_',
// starting with a letter. It does not run the go tool: call Tidy after it.
func Generate(name, dir string, opts Options) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("plugin name %q: use lowercase letters, digits, '-' and '_', starting with a letter", name)
	}
	if dir == "" {
		dir = name
	}
	if opts.Module == "" {
		opts.Module = name
	}
	if opts.Source == "" {
		return errors.New("scaffold: no troupe source tree given")
	}
	src, err := filepath.Abs(opts.Source)
	if err != nil {
		return err
	}
	if err := CheckSource(src); err != nil {
		return err
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	files, err := render(name, opts.Module, src, absDir)
	if err != nil {
		return err
	}
	for f := range files {
		if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
			return fmt.Errorf("%s already exists: not overwriting it", filepath.Join(dir, f))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for f, data := range files {
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// render returns the project's files by name.
func render(name, module, src, dir string) (map[string][]byte, error) {
	goMod, err := os.ReadFile(filepath.Join(src, "go.mod"))
	if err != nil {
		return nil, err
	}
	goSum, err := os.ReadFile(filepath.Join(src, "go.sum"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	goVersion, requires, err := parseGoMod(goMod)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(src, "go.mod"), err)
	}
	// Inside troupe's tree, a relative replace keeps the pair movable together.
	target := src
	if up := relUp(dir, src); up != "" {
		target = up
	}
	var mod bytes.Buffer
	fmt.Fprintf(&mod, "module %s\n\ngo %s\n\nrequire %s %s\n", module, goVersion, Module, ZeroVersion)
	if len(requires) > 0 {
		mod.WriteString("\n// troupe's own requirements: `go mod tidy` trims them to what the plugin uses.\nrequire (\n")
		for _, r := range requires {
			fmt.Fprintf(&mod, "\t%s // indirect\n", r)
		}
		mod.WriteString(")\n")
	}
	fmt.Fprintf(&mod, "\n// troupe is not published yet: build against a local source tree.\nreplace %s => %s\n", Module, quoteModPath(target))

	files := map[string][]byte{
		"go.mod":        mod.Bytes(),
		"go.sum":        goSum,
		"input.txt":     []byte("hello\nworld\n"),
		".gitignore":    []byte("/bin/\n/output.txt\n"),
		"pipeline.yaml": nil,
	}
	data := map[string]string{"Name": name, "Source": src}
	for f, t := range map[string]*template.Template{"main.go": mainTmpl, "main_test.go": testTmpl, "pipeline.yaml": specTmpl} {
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			return nil, err
		}
		out := buf.Bytes()
		if strings.HasSuffix(f, ".go") {
			if out, err = format.Source(out); err != nil {
				return nil, fmt.Errorf("scaffold template %s: %w", f, err)
			}
		}
		files[f] = out
	}
	return files, nil
}

// relUp returns the path from dir up to src (such as "../..") when dir lies below src, or "".
func relUp(dir, src string) string {
	rel, err := filepath.Rel(src, dir)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return ""
	}
	up, err := filepath.Rel(dir, src)
	if err != nil {
		return ""
	}
	return filepath.ToSlash(up)
}

// quoteModPath quotes a go.mod path when it holds characters go.mod's syntax does not take bare.
func quoteModPath(p string) string {
	if strings.ContainsAny(p, " \t\"'`\\(){}") {
		return fmt.Sprintf("%q", p)
	}
	return p
}

// parseGoMod returns a go.mod's go version and its require lines ("path version"), without
// comments. troupe's go.mod has no replace or exclude directives of its own, and this refuses
// one that does, since they would not carry over to a module requiring it.
func parseGoMod(data []byte) (goVersion string, requires []string, err error) {
	inBlock := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
		case inBlock && fields[0] == ")":
			inBlock = false
		case inBlock && len(fields) == 2:
			requires = append(requires, fields[0]+" "+fields[1])
		case inBlock:
			return "", nil, fmt.Errorf("unexpected line %q", sc.Text())
		case fields[0] == "go" && len(fields) == 2:
			goVersion = fields[1]
		case fields[0] == "require" && len(fields) == 2 && fields[1] == "(":
			inBlock = true
		case fields[0] == "require" && len(fields) == 3:
			requires = append(requires, fields[1]+" "+fields[2])
		case fields[0] == "replace" || fields[0] == "exclude":
			return "", nil, fmt.Errorf("%s directives are not supported by the scaffold", fields[0])
		}
	}
	if goVersion == "" {
		return "", nil, errors.New("no go directive")
	}
	return goVersion, requires, sc.Err()
}

// CheckSource reports whether dir is troupe's source tree: a go.mod declaring module Module, with
// the plugin SDK beside it.
func CheckSource(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return fmt.Errorf("%s is not troupe's source tree: %w", dir, err)
	}
	if m := regexp.MustCompile(`(?m)^module\s+(\S+)`).FindSubmatch(data); m == nil || string(m[1]) != Module {
		return fmt.Errorf("%s is not troupe's source tree: its go.mod is not module %s", dir, Module)
	}
	if _, err := os.Stat(filepath.Join(dir, "plugins", "sdk")); err != nil {
		return fmt.Errorf("%s is not troupe's source tree: %w", dir, err)
	}
	return nil
}

// FindSource returns troupe's source tree for a new plugin, and how it was found: explicit
// when set (it must be one), else the tree this program was compiled from (when it still exists
// there and the build kept its paths, that is without -trimpath), else the nearest directory
// containing the working directory that is one.
func FindSource(explicit string) (dir, how string, err error) {
	if explicit != "" {
		abs, err := filepath.Abs(explicit)
		if err != nil {
			return "", "", err
		}
		if err := CheckSource(abs); err != nil {
			return "", "", err
		}
		return abs, "given", nil
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		d := filepath.Dir(filepath.Dir(filepath.Dir(file))) // <src>/plugins/scaffold/scaffold.go
		if CheckSource(d) == nil {
			return d, "the tree this troupe was built from", nil
		}
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if CheckSource(d) == nil {
				return d, "the tree containing the working directory", nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", "", errors.New("cannot find troupe's source tree (this troupe was built without its paths, or the tree has moved): give it with --troupe-src DIR")
}

// Tidy runs `go mod tidy` in dir, when a go tool is on PATH, to trim the requirements and go.sum
// to what the plugin uses. It reports whether it ran. Without a go tool the project still builds
// with the requirements and go.sum Generate copied from troupe.
func Tidy(ctx context.Context, dir string) (ran bool, err error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "mod", "tidy")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return true, fmt.Errorf("go mod tidy in %s: %w\n%s", dir, err, bytes.TrimSpace(out))
	}
	return true, nil
}

var mainTmpl = template.Must(template.New("main.go").Parse(`// Command {{.Name}} is a troupe stage plugin. Build it, test it and run it with
//
//	go build -o bin/{{.Name}} .
//	go test .
//	troupe run pipeline.yaml
//
// go.mod replaces github.com/troupe-dev/troupe with the troupe source tree at
// {{.Source}}; point it elsewhere with
// go mod edit -replace github.com/troupe-dev/troupe=DIR.
package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/plugins/sdk"
)

// suffix is set from the stage's options by setup.
var suffix = ""

// setup reads the stage's options, once per process, before the first record.
func setup(opts map[string]any) error {
	if v, ok := opts["suffix"]; ok {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("option suffix: want a string, got %T", v)
		}
		suffix = s
	}
	return nil
}

// process handles one record: return zero (filter), one or many outputs, or an error to fail
// this attempt (the record is retried, then dead-lettered). rec is a copy: reassign its fields
// and return it, but never write into its Payload's bytes (build a new slice, as below).
// troupe.Attempt(ctx) says which attempt at the record this is.
func process(ctx context.Context, rec troupe.Record) ([]troupe.Record, error) {
	rec.Payload = append(slices.Clip(rec.Payload), suffix...) // Clip: append copies
	return []troupe.Record{rec}, nil
}

func main() {
	sdk.Serve(sdk.Stage{Setup: setup, Process: process})
}
`))

var testTmpl = template.Must(template.New("main_test.go").Parse(`package main

import (
	"context"
	"testing"

	"github.com/troupe-dev/troupe"
)

func TestProcess(t *testing.T) {
	if err := setup(map[string]any{"suffix": "!"}); err != nil {
		t.Fatal(err)
	}
	outs, err := process(context.Background(), troupe.Record{Key: "a", Payload: []byte("hi")})
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 1 || string(outs[0].Payload) != "hi!" {
		t.Fatalf("got %v", outs)
	}
	if err := setup(map[string]any{"suffix": 3}); err == nil {
		t.Fatal("setup accepted a non-string suffix")
	}
}
`))

var specTmpl = template.Must(template.New("pipeline.yaml").Parse(`# Runs the {{.Name}} plugin over input.txt. Build the plugin first (go build -o bin/{{.Name}} .),
# then: troupe run pipeline.yaml. Paths are relative to this file.
name: {{.Name}}
source: {lines: {path: input.txt}}
stages:
  - name: {{.Name}}
    plugin: {cmd: [./bin/{{.Name}}]}
    workers: 2
    options: {suffix: "!"}
sink: {lines: {path: output.txt}}
`))
