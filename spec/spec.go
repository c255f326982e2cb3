package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/internal/schema"
	"github.com/troupe-dev/troupe/stages"
)

// Spec is a parsed, checked pipeline spec: its Document with defaults filled in and paths
// resolved against the spec file's directory. Spec.Pipeline turns it into a runnable pipeline.
type Spec struct {
	// File is the spec's file name as used in error positions.
	File string
	// Dir is the (absolute) directory relative paths were resolved against.
	Dir string
	Document
}

// Load reads and parses the spec file at path. Errors in the spec are a *SpecError.
func Load(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// Parse parses and checks a spec. file names it in error positions, and its directory is where
// relative paths resolve ("" means the current directory). Every problem found is reported,
// each at its position, in a *SpecError.
func Parse(data []byte, file string) (*Spec, error) {
	dir := filepath.Dir(file)
	if file == "" {
		dir = "."
	}
	// Resolved paths are absolute: "./plugin" next to a spec named "spec.yaml" must not become
	// "plugin", which exec would look up in $PATH.
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	s := &Spec{File: file, Dir: dir}
	root, errs := schema.Parse(data)
	if errs == nil {
		errs = schema.Decode(root, &s.Document)
		errs = append(errs, s.builtins(root)...)
	}
	if len(errs) > 0 {
		return nil, specError(file, errs)
	}
	s.resolve()
	return s, nil
}

// builtins checks what the registry of builtins knows: that each builtin stage's builtin
// exists, that its options are those it declares (each problem at its place in the options),
// and that a reduce builtin runs one worker.
func (s *Spec) builtins(root *yaml.Node) schema.Errors {
	var errs schema.Errors
	for i := range s.Stages {
		st := &s.Stages[i]
		if st.Builtin == "" {
			continue
		}
		b, ok := stages.Lookup(st.Builtin)
		if !ok {
			errs = append(errs, st.At.Errorf("builtin", "%s", unknownBuiltin(st.Builtin)))
			continue
		}
		if b.Reduce != nil && st.Workers > 1 {
			errs = append(errs, st.At.Errorf("workers", "a reduce stage (builtin %s) runs exactly 1 worker, got %d", st.Builtin, st.Workers))
		}
		node := optionsNode(root, i)
		_, oerrs := b.DecodeOptions(node)
		base, at := st.At.Path("options"), st.At.Value("options")
		for _, e := range oerrs {
			if node == nil || e.Line == 0 {
				e.Line, e.Col = at.Line, at.Col
			}
			e.Path = joinPath(base, e.Path)
			e.Msg = "builtin " + st.Builtin + ": " + e.Msg
			errs = append(errs, e)
		}
	}
	return errs
}

// unknownBuiltin says that name is not a registered builtin, and what is.
func unknownBuiltin(name string) string {
	return fmt.Sprintf("unknown builtin %q (known: %s)", name, strings.Join(stages.Names(), ", "))
}

// optionsNode finds the options of stage i in the document, nil when not written.
func optionsNode(root *yaml.Node, i int) *yaml.Node {
	list := child(root, "stages")
	if list == nil || list.Kind != yaml.SequenceNode || i >= len(list.Content) {
		return nil
	}
	n := child(deref(list.Content[i]), "options")
	if n != nil && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil
	}
	return n
}

// child returns the value of key in mapping n (following aliases and merges), or nil.
func child(n *yaml.Node, key string) *yaml.Node { return childAt(n, key, 0) }

func childAt(n *yaml.Node, key string, depth int) *yaml.Node {
	n = deref(n)
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = deref(n.Content[0])
	}
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var merged *yaml.Node
	for j := 0; j+1 < len(n.Content); j += 2 {
		k := deref(n.Content[j])
		switch {
		case k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge":
			if merged == nil {
				merged = n.Content[j+1]
			}
		case k.Kind == yaml.ScalarNode && k.Value == key:
			return deref(n.Content[j+1])
		}
	}
	if m := deref(merged); m != nil && m.Kind == yaml.MappingNode && depth < 10 {
		return childAt(m, key, depth+1) // bounded: a mapping can merge itself through an alias
	}
	return nil
}

// deref follows aliases to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func joinPath(base, rel string) string {
	switch {
	case rel == "":
		return base
	case base == "", strings.HasPrefix(rel, "["):
		return base + rel
	}
	return base + "." + rel
}

func pathIndex(base string, i int) string { return base + "[" + strconv.Itoa(i) + "]" }

// resolve fills in what depends on the spec's file: the name, and paths made absolute.
func (s *Spec) resolve() {
	if s.Name == "" {
		base := filepath.Base(s.File)
		s.Name = strings.TrimSuffix(base, filepath.Ext(base))
		if s.File == "" {
			s.Name = "pipeline"
		}
	}
	if f := s.Source.Files; f != nil {
		f.Dir = s.path(f.Dir)
	}
	if l := s.Source.Lines; l != nil {
		l.Path = s.path(l.Path)
	}
	if f := s.Sink.Files; f != nil {
		f.Dir = s.path(f.Dir)
	}
	if l := s.Sink.Lines; l != nil {
		l.Path = s.path(l.Path)
	}
	if d := s.DeadLetter; d != nil {
		d.Path = s.path(d.Path)
	}
	if j := s.Journal; j != nil {
		j.Path = s.path(j.Path)
	}
	for i := range s.Stages {
		p := s.Stages[i].Plugin
		if p == nil {
			continue
		}
		p.SHA256 = strings.ToLower(p.SHA256)
		if !filepath.IsAbs(p.Cmd[0]) && strings.ContainsRune(p.Cmd[0], '/') {
			p.Cmd = append([]string{s.path(p.Cmd[0])}, p.Cmd[1:]...)
		}
		// An interpreter's script (cmd: [python3, ./stage.py]): an argument that is a relative
		// path with a slash naming a file next to the spec is resolved the same way, so that the
		// spec runs from any working directory. Other arguments are left as written.
		for j := 1; j < len(p.Cmd); j++ {
			a := p.Cmd[j]
			if filepath.IsAbs(a) || !strings.ContainsRune(a, '/') || strings.HasPrefix(a, "-") {
				continue
			}
			if st, err := os.Stat(s.path(a)); err == nil && st.Mode().IsRegular() {
				p.Cmd = append(p.Cmd[:j:j], append([]string{s.path(a)}, p.Cmd[j+1:]...)...)
			}
		}
	}
}

// path resolves p against the spec's directory; "-" (a standard stream) stays.
func (s *Spec) path(p string) string {
	switch {
	case p == "-":
		return p
	case filepath.IsAbs(p):
		return filepath.Clean(p)
	}
	return filepath.Join(s.Dir, p)
}

// Order is the spec's order of delivery to the sink.
func (d *Document) order() troupe.Order {
	if d.Order == "input" {
		return troupe.OrderInput
	}
	return troupe.OrderAny
}

// IsReduce reports whether the stage is a reduce builtin.
func (s *StageSpec) IsReduce() bool {
	b, ok := stages.Lookup(s.Builtin)
	return ok && b.Reduce != nil
}

// pos is where the value at rel of a struct decoded from the spec was written.
func (s *Spec) pos(at schema.Positions, rel string) Pos {
	p := at.Value(rel)
	return Pos{File: s.File, Line: p.Line, Col: p.Col}
}
