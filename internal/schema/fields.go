package schema

import (
	"fmt"
	"reflect"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// The tags are documented in the package doc.

// field is one key of a struct, as declared by its tags.
type field struct {
	name     string
	goName   string // Struct.Field, for messages to the programmer
	index    []int  // through inline structs
	typ      reflect.Type
	doc      string
	def      *yaml.Node // nil: no default
	defText  string
	required bool
	nonempty bool
	enum     []string
	min, max *yaml.Node
	minText  string
	maxText  string
	oneof    string
}

// group is a oneof group: its fields in declaration order.
type group struct {
	name   string
	fields []*field
}

// structInfo is a struct type's keys.
type structInfo struct {
	fields    []*field // declaration order, inline structs flattened in place
	byName    map[string]*field
	names     []string // keys in declaration order, for "known keys"
	groups    []*group
	positions []int // index of the Positions field; nil if none
	problems  []string
}

var (
	infoCache      sync.Map // reflect.Type → *structInfo
	positionsType  = reflect.TypeFor[Positions]()
	nodeParseCache sync.Map // string → *yaml.Node
)

// infoOf analyses t's tags once. A struct whose tags are wrong is a programming error: Decode
// and Reference panic on it, Lint reports it.
func infoOf(t reflect.Type) *structInfo {
	if si, ok := infoCache.Load(t); ok {
		return si.(*structInfo)
	}
	si := &structInfo{byName: map[string]*field{}}
	owner := t.Name()
	if owner == "" {
		owner = t.String() // struct { ... }
	}
	si.collect(t, nil, owner)
	for _, f := range si.fields {
		if f.oneof == "" {
			continue
		}
		var g *group
		for _, have := range si.groups {
			if have.name == f.oneof {
				g = have
			}
		}
		if g == nil {
			g = &group{name: f.oneof}
			si.groups = append(si.groups, g)
		}
		g.fields = append(g.fields, f)
	}
	for _, g := range si.groups {
		if len(g.fields) < 2 {
			si.problemf("%s: oneof group %q has a single field", t, g.name)
		}
	}
	si2, _ := infoCache.LoadOrStore(t, si)
	return si2.(*structInfo)
}

func mustInfo(t reflect.Type) *structInfo {
	si := infoOf(t)
	if len(si.problems) > 0 {
		panic("schema: " + strings.Join(si.problems, "; "))
	}
	return si
}

func (si *structInfo) problemf(format string, args ...any) {
	si.problems = append(si.problems, fmt.Sprintf(format, args...))
}

func (si *structInfo) collect(t reflect.Type, index []int, owner string) {
	for i := range t.NumField() {
		sf := t.Field(i)
		idx := append(append([]int(nil), index...), i)
		goName := owner + "." + sf.Name
		tag, hasTag := sf.Tag.Lookup("yaml")
		name, flags, _ := strings.Cut(tag, ",")
		// An embedded struct of an unexported type may still be inline: its fields are
		// exported.
		if !sf.IsExported() && !(sf.Anonymous && flags == "inline") {
			continue
		}
		if sf.Type == positionsType {
			if si.positions == nil {
				si.positions = idx
			}
			continue
		}
		if name == "-" && flags == "" {
			continue
		}
		if flags == "inline" {
			if sf.Type.Kind() != reflect.Struct {
				si.problemf("%s: only a struct can be inline", goName)
				continue
			}
			si.collect(sf.Type, idx, goName)
			continue
		}
		if flags != "" {
			si.problemf("%s: unsupported yaml flag %q", goName, flags)
		}
		if !hasTag || name == "" {
			name = strings.ToLower(sf.Name)
		}
		f := &field{name: name, goName: goName, index: idx, typ: sf.Type,
			doc: sf.Tag.Get("doc"), oneof: sf.Tag.Get("oneof")}
		if _, dup := si.byName[name]; dup {
			si.problemf("%s: key %q declared twice", goName, name)
			continue
		}
		si.checkType(goName, sf.Type)
		si.tags(f, sf.Tag)
		si.fields = append(si.fields, f)
		si.byName[name] = f
		si.names = append(si.names, name)
	}
}

// tags reads a field's default, required, enum, min and max.
func (si *structInfo) tags(f *field, tag reflect.StructTag) {
	switch r := tag.Get("required"); r {
	case "", "false":
	case "true":
		f.required = true
	default:
		si.problemf("%s: required:%q, want \"true\"", f.goName, r)
	}
	switch r := tag.Get("nonempty"); r {
	case "", "false":
	case "true":
		f.nonempty = true
		if k := derefType(f.typ).Kind(); k != reflect.String && k != reflect.Slice && k != reflect.Map || isCustom(derefType(f.typ)) {
			si.problemf("%s: nonempty on %s, which is no string, list or map", f.goName, f.typ)
		}
	default:
		si.problemf("%s: nonempty:%q, want \"true\"", f.goName, r)
	}
	if text, ok := tag.Lookup("default"); ok {
		f.defText = text
		f.def = si.yamlText(f, "default", text)
		if f.required {
			si.problemf("%s: a required key has no default", f.goName)
		}
		if f.oneof != "" {
			si.problemf("%s: a oneof field has no default", f.goName)
		}
	}
	if e, ok := tag.Lookup("enum"); ok {
		f.enum = strings.Split(e, "|")
		if !isScalarType(f.typ) {
			si.problemf("%s: enum on %s, which is not a scalar", f.goName, f.typ)
		}
	}
	for _, b := range []struct {
		name string
		node **yaml.Node
		text *string
	}{{"min", &f.min, &f.minText}, {"max", &f.max, &f.maxText}} {
		if text, ok := tag.Lookup(b.name); ok {
			*b.text = text
			*b.node = si.yamlText(f, b.name, text)
			if kindOfNumber(f.typ) == 0 {
				si.problemf("%s: %s on %s, which is not a number", f.goName, b.name, f.typ)
			}
		}
	}
	if f.oneof != "" && f.required {
		si.problemf("%s: a oneof field is not required on its own", f.goName)
	}
}

// yamlText parses a tag's YAML text into a node.
func (si *structInfo) yamlText(f *field, tag, text string) *yaml.Node {
	n, err := parseText(text)
	if err != nil {
		si.problemf("%s: %s:%q: %v", f.goName, tag, text, err)
	}
	return n
}

// parseText parses YAML text from a tag into its value node.
func parseText(text string) (*yaml.Node, error) {
	if n, ok := nodeParseCache.Load(text); ok {
		return n.(*yaml.Node), nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) != 1 {
		return nil, fmt.Errorf("want one YAML value")
	}
	n := doc.Content[0]
	nodeParseCache.Store(text, n)
	return n, nil
}

// isScalarType reports whether values of t are written as one scalar.
func isScalarType(t reflect.Type) bool {
	if isCustom(t) {
		return true
	}
	switch t.Kind() {
	case reflect.Bool, reflect.String, reflect.Float32, reflect.Float64,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	case reflect.Pointer:
		return isScalarType(t.Elem())
	}
	return false
}

// kindOfNumber returns 'i', 'u' or 'f' for a type whose values are ordered numbers (a
// time.Duration, or a custom scalar over a number, included), 0 otherwise.
func kindOfNumber(t reflect.Type) byte {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return 'i'
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return 'u'
	case reflect.Float32, reflect.Float64:
		return 'f'
	}
	return 0
}

// checkType reports a field type the decoder cannot fill.
func (si *structInfo) checkType(goName string, t reflect.Type) {
	if isCustom(t) {
		return
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice:
		si.checkType(goName, t.Elem())
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			si.problemf("%s: map keys must be strings, not %s", goName, t.Key())
		}
		si.checkType(goName, t.Elem())
	case reflect.Interface:
		if t.NumMethod() != 0 {
			si.problemf("%s: an interface field must be any, not %s", goName, t)
		}
	case reflect.Struct:
		// its own fields are checked when it is first decoded
	default:
		if !isScalarType(t) {
			si.problemf("%s: unsupported type %s", goName, t)
		}
	}
}
