// Package scaffold writes a new troupe plugin: a main package calling sdk.Serve with a Process
// function to fill in, and a test of that function. `troupe plugins new NAME [DIR]` uses it.
// The generated package must live in a Go module that requires github.com/troupe-dev/troupe.
package scaffold

import (
	"bytes"
	"errors"
	"fmt"
	"go/format"
	"os"
	"path/filepath"
	"regexp"
	"text/template"
)

var validName = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

// Generate writes main.go and main_test.go for a plugin called name into dir (created if
// needed; "" means ./name). It refuses to overwrite existing files and names that are not
// lowercase letters, digits, '-' and '_', starting with a letter.
func Generate(name, dir string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("plugin name %q: use lowercase letters, digits, '-' and '_', starting with a letter", name)
	}
	if dir == "" {
		dir = name
	}
	files := map[string]*template.Template{"main.go": mainTmpl, "main_test.go": testTmpl}
	for f := range files {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return fmt.Errorf("%s already exists: not overwriting it", filepath.Join(dir, f))
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for f, t := range files {
		var buf bytes.Buffer
		if err := t.Execute(&buf, map[string]string{"Name": name}); err != nil {
			return err
		}
		src, err := format.Source(buf.Bytes())
		if err != nil {
			return fmt.Errorf("scaffold template %s: %w", f, err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), src, 0o644); err != nil {
			return err
		}
	}
	return nil
}

var mainTmpl = template.Must(template.New("main.go").Parse(`// Command {{.Name}} is a troupe stage plugin. Build it with
//
//	go build -o bin/{{.Name}} .
//
// and use it in a spec:
//
//	stages:
//	  - name: {{.Name}}
//	    plugin: {cmd: [./bin/{{.Name}}]}
//	    options: {suffix: "!"}
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
