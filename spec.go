package troupe

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/plugins"
	"github.com/troupe-dev/troupe/supervisor"
)

// Spec is a parsed, checked pipeline spec. Paths in it are already resolved against the spec
// file's directory. Spec.Pipeline turns it into a runnable Pipeline.
type Spec struct {
	// File is the spec's file name as used in error positions.
	File string
	// Dir is the directory relative paths were resolved against.
	Dir string
	// Name is the pipeline's name; it defaults to the spec file's base name without extension.
	Name   string
	Source SourceSpec
	Stages []StageSpec
	// Supervision is the root supervisor's flags: DefaultSupervision with the spec's supervision
	// settings applied.
	Supervision supervisor.Flags
	Order       actors.Order
	Sink        SinkSpec
	// DeadLetter, if set, stores dead letters as JSON lines; otherwise they are counted only.
	DeadLetter *DeadLetterSpec
}

// DefaultSupervision is the root supervisor's flags where a spec does not set them, the same as
// a Pipeline's: one_for_one, at most 10 restarts within a minute.
var DefaultSupervision = supervisor.Flags{Strategy: supervisor.OneForOne, Intensity: 10, Period: time.Minute}

// SourceSpec is the spec's source: exactly one of Files, Lines and Range is set.
type SourceSpec struct {
	Pos   Pos // of the source kind's key
	Files *FilesSourceSpec
	Lines *LinesSpec
	Range *RangeSpec
}

// FilesSourceSpec reads one record per file under Dir whose name matches Glob.
type FilesSourceSpec struct {
	Pos       Pos // of the dir's value
	Dir       string
	Glob      string // default "*"
	Recursive bool
}

// LinesSpec reads or writes one record per line of the file at Path; "-" is standard input or
// output.
type LinesSpec struct {
	Pos  Pos // of the path's value
	Path string
}

// RangeSpec produces Count synthetic records of Size bytes each, for tests and benchmarks.
type RangeSpec struct {
	Count int64
	Size  int
}

// SinkSpec is the spec's sink: exactly one of Files, Lines and Discard is set.
type SinkSpec struct {
	Pos     Pos // of the sink kind's key
	Files   *FilesSinkSpec
	Lines   *LinesSpec
	Discard bool
}

// FilesSinkSpec writes each record to its own file under Dir, its key's extension replaced by
// Ext ("" keeps it).
type FilesSinkSpec struct {
	Pos Pos // of the dir's value
	Dir string
	Ext string
}

// DeadLetterSpec stores dead letters as JSON lines in the file at Path.
type DeadLetterSpec struct {
	Pos  Pos
	Path string
}

// StageSpec is one stage of a spec: exactly one of Builtin and Plugin is set. Zero Workers,
// Credits and Attempts take the runtime's defaults.
type StageSpec struct {
	Pos      Pos // of the stage's mapping
	Name     string
	Builtin  string
	Plugin   *PluginSpec
	Workers  int
	Credits  int
	Attempts int
	Timeout  time.Duration // per record; 0 means none
	// Options are handed to the stage: to the builtin's constructor, or to the plugin with each
	// worker's start.
	Options    map[string]any
	OptionsPos Pos // of the options value (of the stage when there are none)
	Restart    actors.Restart
}

// PluginSpec runs a stage in external processes.
type PluginSpec struct {
	Pos Pos
	// Cmd is the program and its arguments; a relative program path containing a slash is
	// resolved against the spec's directory.
	Cmd    []string
	SHA256 string // if set, the program's expected SHA-256, in hex
	Env    map[string]string
	Limits plugins.Limits
	// Spares is how many pre-started plugin processes the stage keeps, so that a worker that
	// dies is replaced by a warm process rather than a cold start.
	Spares int
}

// IsReduce reports whether the stage is a reduce builtin.
func (s *StageSpec) IsReduce() bool {
	b, ok := lookupBuiltin(s.Builtin)
	return ok && b.Reduce != nil
}

// LoadSpec reads and parses the spec file at path. Errors in the spec are a *SpecError.
func LoadSpec(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseSpec(data, path)
}

// ParseSpec parses and checks a spec. filename names it in error positions, and its directory
// is where relative paths resolve ("" means the current directory). Every problem found is
// reported, each at its position, in a *SpecError.
func ParseSpec(data []byte, filename string) (spec *Spec, err error) {
	p := &parser{file: filename, dir: filepath.Dir(filename)}
	if filename == "" {
		p.dir = "."
	}
	// Resolved paths are absolute: "./plugin" next to a spec named "spec.yaml" must not become
	// "plugin", which exec would look up in $PATH.
	if abs, err := filepath.Abs(p.dir); err == nil {
		p.dir = abs
	}
	defer func() {
		// The YAML parser is not supposed to panic on any input; if it does, report it as a
		// problem of the spec rather than take the caller down.
		if r := recover(); r != nil {
			spec = nil
			err = (&errorList{errs: []*PosError{{Pos: Pos{File: filename, Line: 1, Col: 1},
				Msg: fmt.Sprintf("cannot parse YAML: %v", r)}}}).err()
		}
	}()
	root, ok := p.document(data)
	if !ok {
		return nil, p.errs.err()
	}
	spec = p.spec(root)
	if err := p.errs.err(); err != nil {
		return nil, err
	}
	return spec, nil
}

// parser walks a spec's YAML node tree, collecting errors.
type parser struct {
	file string
	dir  string
	errs errorList
}

func (p *parser) pos(n *yaml.Node) Pos { return Pos{File: p.file, Line: n.Line, Col: n.Column} }

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document parses data into the root mapping node.
func (p *parser) document(data []byte) (*yaml.Node, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errs.add(Pos{File: p.file, Line: 1, Col: 1}, "empty spec: want a mapping with source, stages and sink")
			return nil, false
		}
		p.yamlError(data, err)
		return nil, false
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		p.errs.add(p.pos(&extra), "a spec is a single YAML document; found another one here")
		return nil, false
	} else if !errors.Is(err, io.EOF) {
		p.yamlError(data, err)
		return nil, false
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			p.errs.add(Pos{File: p.file, Line: 1, Col: 1}, "empty spec: want a mapping with source, stages and sink")
			return nil, false
		}
		root = root.Content[0]
	}
	root = deref(root)
	if root.Kind != yaml.MappingNode {
		p.errs.add(p.pos(root), "a spec is a mapping with source, stages and sink, got %s", describe(root))
		return nil, false
	}
	return root, true
}

// yamlError reports a syntax error from the YAML parser. Its messages carry a line but no
// column; the position given is the first non-blank character of that line.
func (p *parser) yamlError(data []byte, err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 1
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		if n, convErr := strconv.Atoi(m[1]); convErr == nil && n >= 1 {
			line = n
		}
		msg = m[2]
	}
	col := 1
	lines := bytes.Split(data, []byte("\n"))
	if line <= len(lines) {
		text := lines[line-1]
		col = len(text) - len(bytes.TrimLeft(text, " \t")) + 1
	}
	p.errs.add(Pos{File: p.file, Line: line, Col: col}, "invalid YAML: %s", msg)
}

// deref follows aliases to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// describe names a node's type and value for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	n = deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:37] + "..."
		}
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("string %q", v)
		case "!!int":
			return "integer " + v
		case "!!float":
			return "float " + v
		case "!!bool":
			return "boolean " + v
		case "!!null":
			return "null"
		default:
			return fmt.Sprintf("%s %q", n.ShortTag(), v)
		}
	}
	return "an alias"
}

// entry is one key of a mapping node.
type entry struct {
	key, val *yaml.Node
}

// mapping returns n's entries by key, reporting a non-mapping, non-string and duplicate keys,
// and keys not in known. Merge keys (<<) are expanded; explicit keys win over merged ones.
// what names the mapping in messages ("stage", "source"). The boolean is false when n is not a
// mapping.
func (p *parser) mapping(what, key string, n *yaml.Node, known ...string) (map[string]entry, bool) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.errs.add(p.pos(n), "%s: expected a mapping, got %s", key, describe(n))
		return nil, false
	}
	out := make(map[string]entry)
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		dk := deref(k)
		if dk.Kind != yaml.ScalarNode || dk.ShortTag() == "!!null" {
			p.errs.add(p.pos(k), "%s: keys must be strings, got %s", what, describe(k))
			continue
		}
		name := dk.Value
		if prev, dup := out[name]; dup {
			p.errs.add(p.pos(k), "duplicate key %q in %s (first at line %d)", name, what, prev.key.Line)
			continue
		}
		if !contains(known, name) {
			if s, ok := closest(name, known); ok {
				p.errs.add(p.pos(k), "unknown key %q in %s (did you mean %q?)", name, what, s)
			} else {
				p.errs.add(p.pos(k), "unknown key %q in %s (known keys: %s)", name, what, strings.Join(known, ", "))
			}
			continue
		}
		out[name] = entry{k, v}
	}
	// Merged mappings fill in keys not given explicitly; earlier merges win over later ones.
	for _, m := range merges {
		m = deref(m)
		srcs := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			srcs = m.Content
		}
		for _, src := range srcs {
			src = deref(src)
			if src.Kind != yaml.MappingNode {
				p.errs.add(p.pos(src), "%s: a merge (<<) takes a mapping or a list of mappings, got %s", what, describe(src))
				continue
			}
			for i := 0; i+1 < len(src.Content); i += 2 {
				k := deref(src.Content[i])
				if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
					continue // nested merges are not expanded
				}
				if _, have := out[k.Value]; have {
					continue
				}
				if !contains(known, k.Value) {
					p.errs.add(p.pos(k), "unknown key %q in %s (merged into line %d)", k.Value, what, n.Line)
					continue
				}
				out[k.Value] = entry{k, src.Content[i+1]}
			}
		}
	}
	return out, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// oneOf checks that exactly one of kinds is present in m, reporting at n otherwise.
func (p *parser) oneOf(what string, n *yaml.Node, m map[string]entry, kinds ...string) bool {
	var found []string
	for _, k := range kinds {
		if _, ok := m[k]; ok {
			found = append(found, k)
		}
	}
	switch len(found) {
	case 1:
		return true
	case 0:
		p.errs.add(p.pos(deref(n)), "%s: want exactly one of %s", what, strings.Join(kinds, ", "))
	default:
		// Point at the kind written second: the first one is presumably the intended one.
		keys := make([]*yaml.Node, len(found))
		for i, f := range found {
			keys[i] = m[f].key
		}
		slices.SortFunc(keys, func(a, b *yaml.Node) int {
			return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
		})
		p.errs.add(p.pos(keys[1]), "%s: want exactly one of %s, got %s", what, strings.Join(kinds, ", "), strings.Join(found, " and "))
	}
	return false
}

// Scalar getters. Each reports a type error at the value's position and returns ok == false.

func (p *parser) str(key string, n *yaml.Node) (string, bool) {
	d := deref(n)
	if d.Kind != yaml.ScalarNode || d.ShortTag() == "!!null" || d.ShortTag() == "!!bool" {
		p.errs.add(p.pos(n), "%s: expected a string, got %s", key, describe(n))
		return "", false
	}
	return d.Value, true
}

func (p *parser) nonEmpty(key string, n *yaml.Node) (string, bool) {
	s, ok := p.str(key, n)
	if ok && s == "" {
		p.errs.add(p.pos(n), "%s: must not be empty", key)
		return "", false
	}
	return s, ok
}

func (p *parser) integer(key string, n *yaml.Node) (int64, bool) {
	d := deref(n)
	if d.Kind == yaml.ScalarNode && d.ShortTag() == "!!int" {
		var v int64
		if err := d.Decode(&v); err == nil {
			return v, true
		}
		p.errs.add(p.pos(n), "%s: integer %s out of range", key, d.Value)
		return 0, false
	}
	p.errs.add(p.pos(n), "%s: expected an integer, got %s", key, describe(n))
	return 0, false
}

// positive reads an int field that must be at least 1.
func (p *parser) positive(key string, n *yaml.Node) (int, bool) { return p.atLeast(key, n, 1) }

// nonNegative reads an int field that must be at least 0.
func (p *parser) nonNegative(key string, n *yaml.Node) (int, bool) { return p.atLeast(key, n, 0) }

func (p *parser) atLeast(key string, n *yaml.Node, least int64) (int, bool) {
	v, ok := p.integer(key, n)
	if !ok {
		return 0, false
	}
	switch {
	case v < least:
		p.errs.add(p.pos(n), "%s: must be at least %d, got %d", key, least, v)
		return 0, false
	case v > 1<<31-1:
		p.errs.add(p.pos(n), "%s: %d is too large", key, v)
		return 0, false
	}
	return int(v), true
}

func (p *parser) boolean(key string, n *yaml.Node) (bool, bool) {
	d := deref(n)
	if d.Kind == yaml.ScalarNode && d.ShortTag() == "!!bool" {
		var v bool
		if err := d.Decode(&v); err == nil {
			return v, true
		}
	}
	p.errs.add(p.pos(n), "%s: expected true or false, got %s", key, describe(n))
	return false, false
}

func (p *parser) duration(key string, n *yaml.Node) (time.Duration, bool) {
	d := deref(n)
	if d.Kind == yaml.ScalarNode && d.ShortTag() == "!!int" && d.Value == "0" {
		return 0, true
	}
	if d.Kind != yaml.ScalarNode || d.ShortTag() != "!!str" {
		p.errs.add(p.pos(n), "%s: expected a duration like 30s or 1m30s, got %s", key, describe(n))
		return 0, false
	}
	v, err := time.ParseDuration(d.Value)
	if err != nil {
		p.errs.add(p.pos(n), "%s: bad duration %q (expected a duration like 30s or 1m30s)", key, d.Value)
		return 0, false
	}
	if v < 0 {
		p.errs.add(p.pos(n), "%s: must not be negative, got %s", key, d.Value)
		return 0, false
	}
	return v, true
}

func (p *parser) size(key string, n *yaml.Node) (uint64, bool) {
	d := deref(n)
	if d.Kind == yaml.ScalarNode && d.ShortTag() == "!!int" {
		v, ok := p.integer(key, n)
		if ok && v < 0 {
			p.errs.add(p.pos(n), "%s: must not be negative, got %d", key, v)
			return 0, false
		}
		return uint64(v), ok
	}
	if d.Kind != yaml.ScalarNode || d.ShortTag() != "!!str" {
		p.errs.add(p.pos(n), "%s: expected a size like 512MiB, 1GB, 100M or a number of bytes, got %s", key, describe(n))
		return 0, false
	}
	v, err := ParseSize(d.Value)
	if err != nil {
		p.errs.add(p.pos(n), "%s: bad size %q: %v", key, d.Value, err)
		return 0, false
	}
	return v, true
}

func (p *parser) percent(key string, n *yaml.Node) (float64, bool) {
	d := deref(n)
	var v float64
	switch {
	case d.Kind == yaml.ScalarNode && (d.ShortTag() == "!!int" || d.ShortTag() == "!!float"):
		if err := d.Decode(&v); err != nil {
			p.errs.add(p.pos(n), "%s: bad percentage %s", key, d.Value)
			return 0, false
		}
	case d.Kind == yaml.ScalarNode && d.ShortTag() == "!!str":
		var err error
		if v, err = ParsePercent(d.Value); err != nil {
			p.errs.add(p.pos(n), "%s: bad percentage %q (expected a percentage like 150%%)", key, d.Value)
			return 0, false
		}
	default:
		p.errs.add(p.pos(n), "%s: expected a percentage like 150%%, got %s", key, describe(n))
		return 0, false
	}
	if !(v > 0) || v > 1e6 {
		p.errs.add(p.pos(n), "%s: must be above 0%%, got %s", key, d.Value)
		return 0, false
	}
	return v, true
}

// path reads a file path and resolves it against the spec's directory; "-" (standard input or
// output) is kept when allowDash.
func (p *parser) path(key string, n *yaml.Node, allowDash bool) (string, bool) {
	s, ok := p.nonEmpty(key, n)
	if !ok {
		return "", false
	}
	if s == "-" {
		if !allowDash {
			p.errs.add(p.pos(n), `%s: "-" (standard input or output) is not allowed here`, key)
			return "", false
		}
		return s, true
	}
	return p.resolve(s), true
}

func (p *parser) resolve(s string) string {
	if filepath.IsAbs(s) {
		return filepath.Clean(s)
	}
	return filepath.Join(p.dir, s)
}

var stageNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// spec walks the root mapping.
func (p *parser) spec(root *yaml.Node) *Spec {
	s := &Spec{File: p.file, Dir: p.dir, Supervision: DefaultSupervision}
	base := filepath.Base(p.file)
	s.Name = strings.TrimSuffix(base, filepath.Ext(base))
	if p.file == "" {
		s.Name = "pipeline"
	}
	m, _ := p.mapping("spec", "spec", root,
		"name", "source", "stages", "supervision", "order", "sink", "dead_letter")
	if e, ok := m["name"]; ok {
		if v, ok := p.nonEmpty("name", e.val); ok {
			s.Name = v
		}
	}
	if e, ok := m["source"]; ok {
		p.source(s, e.val)
	} else {
		p.errs.add(p.pos(root), "missing source (one of files, lines, range)")
	}
	if e, ok := m["stages"]; ok {
		p.stages(s, e.val)
	}
	if e, ok := m["supervision"]; ok {
		p.supervision(s, e.val)
	}
	if e, ok := m["order"]; ok {
		if v, ok := p.str("order", e.val); ok {
			switch v {
			case "any":
				s.Order = actors.OrderAny
			case "input":
				s.Order = actors.OrderInput
			default:
				p.errs.add(p.pos(e.val), "order: unknown order %q (want any or input)", v)
			}
		}
	}
	if e, ok := m["sink"]; ok {
		p.sink(s, e.val)
	} else {
		p.errs.add(p.pos(root), "missing sink (one of files, lines, discard)")
	}
	if e, ok := m["dead_letter"]; ok {
		if dm, ok := p.mapping("dead_letter", "dead_letter", e.val, "path"); ok {
			if pe, ok := dm["path"]; ok {
				if v, ok := p.path("path", pe.val, false); ok {
					s.DeadLetter = &DeadLetterSpec{Pos: p.pos(pe.val), Path: v}
				}
			} else {
				p.errs.add(p.pos(deref(e.val)), "dead_letter: missing path")
			}
		}
	}
	return s
}

func (p *parser) source(s *Spec, n *yaml.Node) {
	m, ok := p.mapping("source", "source", n, "files", "lines", "range")
	if !ok {
		return
	}
	// Every kind given is checked, so that its problems are reported too, but only a single one
	// is kept.
	single := p.oneOf("source", n, m, "files", "lines", "range")
	defer func() {
		if !single {
			s.Source = SourceSpec{}
		}
	}()
	for _, kind := range []string{"files", "lines", "range"} {
		if e, ok := m[kind]; ok {
			s.Source.Pos = p.pos(e.key)
			p.sourceKind(s, kind, e)
		}
	}
}

func (p *parser) sourceKind(s *Spec, kind string, e entry) {
	switch kind {
	case "files":
		fm, ok := p.mapping("files source", "files", e.val, "dir", "glob", "recursive")
		if !ok {
			return
		}
		f := &FilesSourceSpec{Glob: "*"}
		good := true
		if d, ok := fm["dir"]; ok {
			f.Pos = p.pos(d.val)
			f.Dir, ok = p.path("dir", d.val, false)
			good = good && ok
		} else {
			p.errs.add(p.pos(deref(e.val)), "files source: missing dir")
			good = false
		}
		if g, ok := fm["glob"]; ok {
			if f.Glob, ok = p.nonEmpty("glob", g.val); ok {
				if _, err := filepath.Match(f.Glob, ""); err != nil {
					p.errs.add(p.pos(g.val), "glob: bad pattern %q: %v", f.Glob, err)
					ok = false
				}
			}
			good = good && ok
		}
		if r, ok := fm["recursive"]; ok {
			f.Recursive, ok = p.boolean("recursive", r.val)
			good = good && ok
		}
		if good {
			s.Source.Files = f
		}
	case "lines":
		if l, ok := p.lines("lines source", e); ok {
			s.Source.Lines = l
		}
	case "range":
		rm, ok := p.mapping("range source", "range", e.val, "count", "size")
		if !ok {
			return
		}
		r := &RangeSpec{}
		good := true
		if c, ok := rm["count"]; ok {
			if r.Count, ok = p.integer("count", c.val); ok && r.Count < 0 {
				p.errs.add(p.pos(c.val), "count: must not be negative, got %d", r.Count)
				ok = false
			}
			good = good && ok
		} else {
			p.errs.add(p.pos(deref(e.val)), "range source: missing count")
			good = false
		}
		if sz, ok := rm["size"]; ok {
			v, ok := p.size("size", sz.val)
			if ok && v > 1<<30 {
				p.errs.add(p.pos(sz.val), "size: at most 1GiB per record, got %d bytes", v)
				ok = false
			}
			r.Size = int(v)
			good = good && ok
		}
		if good {
			s.Source.Range = r
		}
	}
}

// lines reads a {path: ...} mapping of a lines source or sink.
func (p *parser) lines(what string, e entry) (*LinesSpec, bool) {
	lm, ok := p.mapping(what, "lines", e.val, "path")
	if !ok {
		return nil, false
	}
	pe, ok := lm["path"]
	if !ok {
		p.errs.add(p.pos(deref(e.val)), "%s: missing path", what)
		return nil, false
	}
	v, ok := p.path("path", pe.val, true)
	if !ok {
		return nil, false
	}
	return &LinesSpec{Pos: p.pos(pe.val), Path: v}, true
}

func (p *parser) sink(s *Spec, n *yaml.Node) {
	m, ok := p.mapping("sink", "sink", n, "files", "lines", "discard")
	if !ok {
		return
	}
	single := p.oneOf("sink", n, m, "files", "lines", "discard")
	defer func() {
		if !single {
			s.Sink = SinkSpec{}
		}
	}()
	for _, kind := range []string{"files", "lines", "discard"} {
		if e, ok := m[kind]; ok {
			s.Sink.Pos = p.pos(e.key)
			p.sinkKind(s, kind, e)
		}
	}
}

func (p *parser) sinkKind(s *Spec, kind string, e entry) {
	switch kind {
	case "files":
		fm, ok := p.mapping("files sink", "files", e.val, "dir", "ext")
		if !ok {
			return
		}
		f := &FilesSinkSpec{}
		good := true
		if d, ok := fm["dir"]; ok {
			f.Pos = p.pos(d.val)
			f.Dir, ok = p.path("dir", d.val, false)
			good = good && ok
		} else {
			p.errs.add(p.pos(deref(e.val)), "files sink: missing dir")
			good = false
		}
		if x, ok := fm["ext"]; ok {
			f.Ext, ok = p.str("ext", x.val)
			if ok && strings.ContainsAny(f.Ext, `/\`) {
				p.errs.add(p.pos(x.val), "ext: must not contain a path separator, got %q", f.Ext)
				ok = false
			}
			good = good && ok
		}
		if good {
			s.Sink.Files = f
		}
	case "lines":
		if l, ok := p.lines("lines sink", e); ok {
			s.Sink.Lines = l
		}
	case "discard":
		d := deref(e.val)
		if d.Kind == yaml.ScalarNode && d.ShortTag() == "!!null" {
			s.Sink.Discard = true
		} else if _, ok := p.mapping("discard sink", "discard", e.val); ok {
			s.Sink.Discard = true
		}
	}
}

func (p *parser) supervision(s *Spec, n *yaml.Node) {
	m, ok := p.mapping("supervision", "supervision", n, "strategy", "intensity", "period", "backoff")
	if !ok {
		return
	}
	if e, ok := m["strategy"]; ok {
		if v, ok := p.str("strategy", e.val); ok {
			st, err := supervisor.ParseStrategy(v)
			if err != nil {
				p.fieldErrors(err, map[string]entry{"strategy": e}, n)
			} else {
				s.Supervision.Strategy = st
			}
		}
	}
	if e, ok := m["intensity"]; ok {
		if v, ok := p.integer("intensity", e.val); ok {
			if v < 0 || v > supervisor.MaxIntensity {
				p.errs.add(p.pos(e.val), "intensity: must be between 0 and %d, got %d", supervisor.MaxIntensity, v)
			} else {
				s.Supervision.Intensity = int(v)
			}
		}
	}
	if e, ok := m["period"]; ok {
		if v, ok := p.duration("period", e.val); ok {
			if v <= 0 {
				p.errs.add(p.pos(e.val), "period: must be above zero")
			} else {
				s.Supervision.Period = v
			}
		}
	}
	if e, ok := m["backoff"]; ok {
		if b, ok := p.backoff(e.val, s.Supervision.Backoff); ok {
			s.Supervision.Backoff = b
		}
	}
	// Whatever the checks above let through, the supervisor package has the last word.
	if len(p.errs.errs) == 0 {
		p.fieldErrors(s.Supervision.Validate(), m, n)
	}
}

// fieldErrors places each of the supervisor package's field errors in err at the key it names
// (the first part of a dotted name such as backoff.min), or at n when the key is not in m.
func (p *parser) fieldErrors(err error, m map[string]entry, n *yaml.Node) {
	if err == nil {
		return
	}
	var fes supervisor.FieldErrors
	if !errors.As(err, &fes) {
		var fe *supervisor.FieldError
		if !errors.As(err, &fe) {
			p.errs.wrap(p.pos(deref(n)), err, "%s", err)
			return
		}
		fes = supervisor.FieldErrors{fe}
	}
	for _, fe := range fes {
		at := deref(n)
		key, _, _ := strings.Cut(fe.Field, ".")
		if e, ok := m[key]; ok {
			at = e.val
		}
		p.errs.wrap(p.pos(at), fe, "%s: %s", fe.Field, fe.Msg)
	}
}

// backoff reads a backoff; a bound it leaves out keeps its value in base.
func (p *parser) backoff(n *yaml.Node, base supervisor.Backoff) (supervisor.Backoff, bool) {
	b := base
	m, ok := p.mapping("backoff", "backoff", n, "min", "max")
	if !ok {
		return b, false
	}
	good := true
	if e, ok := m["min"]; ok {
		b.Min, ok = p.duration("min", e.val)
		good = good && ok
	}
	if e, ok := m["max"]; ok {
		b.Max, ok = p.duration("max", e.val)
		good = good && ok
	}
	if good && b.Max < b.Min {
		at := n
		if e, ok := m["max"]; ok {
			at = e.val
		} else if e, ok := m["min"]; ok {
			at = e.val
		}
		p.errs.add(p.pos(at), "backoff: max (%s) must not be below min (%s)", b.Max, b.Min)
		good = false
	}
	return b, good
}

func (p *parser) stages(s *Spec, n *yaml.Node) {
	d := deref(n)
	if d.Kind == yaml.ScalarNode && d.ShortTag() == "!!null" {
		return // "stages:" with nothing: source straight to sink
	}
	if d.Kind != yaml.SequenceNode {
		p.errs.add(p.pos(n), "stages: expected a sequence, got %s", describe(n))
		return
	}
	first := map[string]int{} // stage name → line of its first definition
	for _, sn := range d.Content {
		st, ok := p.stage(sn)
		if st.Name != "" {
			if line, dup := first[st.Name]; dup {
				p.errs.add(st.namePos, "duplicate stage name %q (first defined at line %d)", st.Name, line)
				continue
			}
			first[st.Name] = st.namePos.Line
		}
		if ok {
			s.Stages = append(s.Stages, st.StageSpec)
		}
	}
}

// parsedStage is a stage and where its name was written.
type parsedStage struct {
	StageSpec
	namePos Pos
}

var stageKeys = []string{"name", "builtin", "plugin", "workers", "credits", "attempts", "timeout",
	"options", "limits", "spares", "restart"}

func (p *parser) stage(n *yaml.Node) (parsedStage, bool) {
	st := parsedStage{StageSpec: StageSpec{Pos: p.pos(deref(n))}}
	st.OptionsPos = st.Pos
	m, ok := p.mapping("stage", "stage", n, stageKeys...)
	if !ok {
		return st, false
	}
	good := true
	bad := func(ok bool) { good = good && ok }
	if e, ok := m["name"]; ok {
		st.namePos = p.pos(e.val)
		if st.Name, ok = p.nonEmpty("name", e.val); ok && !stageNameRE.MatchString(st.Name) {
			p.errs.add(p.pos(e.val), "name: invalid stage name %q (use letters, digits, '_', '-' and '.')", st.Name)
			ok = false
		}
		bad(ok)
	} else {
		p.errs.add(st.Pos, "stage: missing name")
		good = false
	}
	var builtin Builtin
	be, hasBuiltin := m["builtin"]
	pe, hasPlugin := m["plugin"]
	switch {
	case hasBuiltin && hasPlugin:
		second := pe.key
		if be.key.Line > pe.key.Line || be.key.Line == pe.key.Line && be.key.Column > pe.key.Column {
			second = be.key
		}
		p.errs.add(p.pos(second), "stage %s: has both builtin and plugin; want exactly one", st.Name)
		good = false
	case !hasBuiltin && !hasPlugin:
		p.errs.add(st.Pos, "stage %s: want exactly one of builtin and plugin", st.Name)
		good = false
	}
	if hasBuiltin {
		if name, ok := p.nonEmpty("builtin", be.val); ok {
			b, found := lookupBuiltin(name)
			if !found {
				p.errs.add(p.pos(be.val), "builtin: unknown builtin %q (known: %s)", name, strings.Join(Builtins(), ", "))
				good = false
			}
			st.Builtin, builtin = name, b
		} else {
			good = false
		}
	}
	if hasPlugin {
		st.Plugin = p.plugin(pe.val)
		bad(st.Plugin != nil)
	}
	if e, ok := m["workers"]; ok {
		st.Workers, ok = p.positive("workers", e.val)
		if ok && builtin.Reduce != nil && st.Workers != 1 {
			p.errs.add(p.pos(e.val), "workers: a reduce stage (builtin %s) runs exactly 1 worker, got %d", st.Builtin, st.Workers)
			ok = false
		}
		bad(ok)
	}
	if e, ok := m["credits"]; ok {
		st.Credits, ok = p.positive("credits", e.val)
		bad(ok)
	}
	if e, ok := m["attempts"]; ok {
		st.Attempts, ok = p.positive("attempts", e.val)
		bad(ok)
	}
	if e, ok := m["timeout"]; ok {
		st.Timeout, ok = p.duration("timeout", e.val)
		bad(ok)
	}
	if e, ok := m["options"]; ok {
		st.OptionsPos = p.pos(deref(e.val))
		d := deref(e.val)
		if d.Kind == yaml.ScalarNode && d.ShortTag() == "!!null" {
			// "options:" with nothing is no options
		} else if d.Kind != yaml.MappingNode {
			p.errs.add(p.pos(e.val), "options: expected a mapping, got %s", describe(e.val))
			good = false
		} else {
			budget := maxOptionNodes
			v, ok := p.value("options", e.val, 0, &budget)
			if ok {
				st.Options, _ = v.(map[string]any)
			}
			bad(ok)
		}
	}
	if e, ok := m["limits"]; ok {
		lim, ok := p.limits(e.val)
		bad(ok)
		switch {
		case hasBuiltin && !hasPlugin:
			p.errs.add(p.pos(e.key), "limits: only plugin stages have resource limits (stage %s is builtin %s)", st.Name, st.Builtin)
			good = false
		case st.Plugin != nil:
			st.Plugin.Limits = lim
		}
	}
	if e, ok := m["spares"]; ok {
		n, ok := p.nonNegative("spares", e.val)
		bad(ok)
		switch {
		case hasBuiltin && !hasPlugin:
			p.errs.add(p.pos(e.key), "spares: only plugin stages keep warm spare processes (stage %s is builtin %s)", st.Name, st.Builtin)
			good = false
		case st.Plugin != nil:
			st.Plugin.Spares = n
		}
	}
	if e, ok := m["restart"]; ok {
		st.Restart, ok = p.restart(e.val)
		bad(ok)
	}
	// The plugin package checks its configuration (without starting anything) now too.
	if good && st.Plugin != nil {
		if err := st.pluginConfig(nil).Validate(); err != nil {
			p.errs.wrap(st.Plugin.Pos, err, "stage %s: plugin: %v", st.Name, err)
			good = false
		}
	}
	// A builtin's constructor checks its options now, so that a spec that validates builds.
	if good && hasBuiltin && (builtin.New != nil || builtin.Reduce != nil) {
		var err error
		if builtin.New != nil {
			_, err = builtin.New(st.Options)
		} else {
			_, err = builtin.Reduce(st.Options)
		}
		if err != nil {
			p.errs.wrap(st.OptionsPos, err, "stage %s: builtin %s: %v", st.Name, st.Builtin, err)
			good = false
		}
	}
	return st, good && st.Name != ""
}

func (p *parser) plugin(n *yaml.Node) *PluginSpec {
	m, ok := p.mapping("plugin", "plugin", n, "cmd", "sha256", "env")
	if !ok {
		return nil
	}
	ps := &PluginSpec{Pos: p.pos(deref(n))}
	good := true
	if e, ok := m["cmd"]; ok {
		d := deref(e.val)
		if d.Kind != yaml.SequenceNode {
			p.errs.add(p.pos(e.val), "cmd: expected a sequence of strings (program and arguments), got %s", describe(e.val))
			good = false
		} else if len(d.Content) == 0 {
			p.errs.add(p.pos(e.val), "cmd: must name a program")
			good = false
		} else {
			for i, a := range d.Content {
				v, ok := p.str("cmd", a)
				if ok && i == 0 && v == "" {
					p.errs.add(p.pos(a), "cmd: the program must not be empty")
					ok = false
				}
				good = good && ok
				ps.Cmd = append(ps.Cmd, v)
			}
			if good && !filepath.IsAbs(ps.Cmd[0]) && strings.ContainsRune(ps.Cmd[0], '/') {
				ps.Cmd[0] = p.resolve(ps.Cmd[0])
			}
		}
	} else {
		p.errs.add(ps.Pos, "plugin: missing cmd")
		good = false
	}
	if e, ok := m["sha256"]; ok {
		if v, ok := p.str("sha256", e.val); ok {
			if len(v) != 64 || strings.Trim(strings.ToLower(v), "0123456789abcdef") != "" {
				p.errs.add(p.pos(e.val), "sha256: expected 64 hexadecimal digits, got %q", v)
				good = false
			}
			ps.SHA256 = strings.ToLower(v)
		} else {
			good = false
		}
	}
	if e, ok := m["env"]; ok {
		d := deref(e.val)
		if d.Kind != yaml.MappingNode {
			p.errs.add(p.pos(e.val), "env: expected a mapping, got %s", describe(e.val))
			good = false
		} else {
			ps.Env = map[string]string{}
			for i := 0; i+1 < len(d.Content); i += 2 {
				k, v := deref(d.Content[i]), d.Content[i+1]
				if k.Kind != yaml.ScalarNode || k.Value == "" || strings.ContainsAny(k.Value, "=\x00") {
					p.errs.add(p.pos(d.Content[i]), "env: bad variable name %s", describe(k))
					good = false
					continue
				}
				if _, dup := ps.Env[k.Value]; dup {
					p.errs.add(p.pos(d.Content[i]), "env: duplicate variable %q", k.Value)
					good = false
					continue
				}
				dv := deref(v)
				if dv.Kind != yaml.ScalarNode {
					p.errs.add(p.pos(v), "%s: expected a string, got %s", k.Value, describe(v))
					good = false
					continue
				}
				val := dv.Value
				if dv.ShortTag() == "!!null" {
					val = ""
				}
				ps.Env[k.Value] = val
			}
		}
	}
	if !good {
		return nil
	}
	return ps
}

func (p *parser) limits(n *yaml.Node) (plugins.Limits, bool) {
	var l plugins.Limits
	m, ok := p.mapping("limits", "limits", n, "rss", "cpu", "startup")
	if !ok {
		return l, false
	}
	good := true
	if e, ok := m["rss"]; ok {
		l.RSS, ok = p.size("rss", e.val)
		if ok && l.RSS == 0 {
			p.errs.add(p.pos(e.val), "rss: must be above zero")
			ok = false
		}
		good = good && ok
	}
	if e, ok := m["cpu"]; ok {
		l.CPU, ok = p.percent("cpu", e.val)
		good = good && ok
	}
	if e, ok := m["startup"]; ok {
		l.Startup, ok = p.duration("startup", e.val)
		good = good && ok
	}
	return l, good
}

func (p *parser) restart(n *yaml.Node) (actors.Restart, bool) {
	var r actors.Restart
	m, ok := p.mapping("restart", "restart", n, "intensity", "period", "backoff")
	if !ok {
		return r, false
	}
	good := true
	if e, ok := m["intensity"]; ok {
		if v, ok := p.integer("intensity", e.val); ok && (v < 0 || v > supervisor.MaxIntensity) {
			p.errs.add(p.pos(e.val), "intensity: must be between 0 and %d, got %d", supervisor.MaxIntensity, v)
			good = false
		} else {
			r.Intensity = int(v)
			good = good && ok
		}
	}
	if e, ok := m["period"]; ok {
		v, ok := p.duration("period", e.val)
		if ok && v <= 0 {
			p.errs.add(p.pos(e.val), "period: must be above zero")
			ok = false
		}
		r.Period = v
		good = good && ok
	}
	if e, ok := m["backoff"]; ok {
		r.Backoff, ok = p.backoff(e.val, actors.DefaultRestart.Backoff)
		good = good && ok
	}
	return r, good
}

// maxOptionNodes bounds the nodes a stage's options may expand to (aliases can multiply them).
const maxOptionNodes = 10000

// maxOptionDepth bounds the nesting of a stage's options (aliases can make cycles).
const maxOptionDepth = 32

// value converts a free-form YAML value to Go: map[string]any, []any, string, int, float64,
// bool or nil.
func (p *parser) value(key string, n *yaml.Node, depth int, budget *int) (any, bool) {
	*budget--
	if *budget < 0 {
		if *budget == -1 {
			p.errs.add(p.pos(n), "%s: too large (more than %d values)", key, maxOptionNodes)
		}
		return nil, false
	}
	if depth > maxOptionDepth {
		p.errs.add(p.pos(n), "%s: nested too deeply (more than %d levels)", key, maxOptionDepth)
		return nil, false
	}
	d := deref(n)
	switch d.Kind {
	case yaml.MappingNode:
		out := map[string]any{}
		first := map[string]int{}
		good := true
		for i := 0; i+1 < len(d.Content); i += 2 {
			k := deref(d.Content[i])
			if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
				p.errs.add(p.pos(d.Content[i]), "%s: keys must be strings, got %s", key, describe(k))
				good = false
				continue
			}
			if line, dup := first[k.Value]; dup {
				p.errs.add(p.pos(d.Content[i]), "duplicate key %q in %s (first at line %d)", k.Value, key, line)
				good = false
				continue
			}
			first[k.Value] = d.Content[i].Line
			v, ok := p.value(k.Value, d.Content[i+1], depth+1, budget)
			good = good && ok
			out[k.Value] = v
		}
		return out, good
	case yaml.SequenceNode:
		out := make([]any, 0, len(d.Content))
		good := true
		for _, c := range d.Content {
			v, ok := p.value(key, c, depth+1, budget)
			good = good && ok
			out = append(out, v)
		}
		return out, good
	case yaml.ScalarNode:
		var v any
		switch d.ShortTag() {
		case "!!str":
			return d.Value, true
		case "!!null":
			return nil, true
		case "!!int":
			var i int
			if err := d.Decode(&i); err == nil {
				return i, true
			}
			var f float64
			if err := d.Decode(&f); err == nil {
				return f, true
			}
		case "!!float":
			var f float64
			if err := d.Decode(&f); err == nil {
				return f, true
			}
		case "!!bool":
			var b bool
			if err := d.Decode(&b); err == nil {
				return b, true
			}
		default:
			if err := d.Decode(&v); err == nil {
				return v, true
			}
		}
		p.errs.add(p.pos(n), "%s: cannot read %s", key, describe(n))
		return nil, false
	}
	p.errs.add(p.pos(n), "%s: unexpected %s", key, describe(n))
	return nil, false
}
