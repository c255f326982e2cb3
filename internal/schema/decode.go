package schema

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Checker is a struct that checks itself once decoded: ranges and consistency rules that a tag
// cannot say (max not below min; limits only on plugin stages). Decode calls Check on every
// struct read from the document, inner structs first.
//
// The error may be nil, a FieldError, an Errors, or several joined with errors.Join. A
// FieldError's Path is relative to the struct ("backoff.max"; "" for the struct itself) and,
// if its Line is 0, Decode fills in the full path and the position of that value (of the
// mapping that lacks it, if it was not written). Any other error is reported at the struct.
//
// Check runs even when some of the struct's keys failed to decode, so that every problem is
// reported at once; what it reports about a failed key (or one above or below it, or the
// struct as a whole) is then dropped, as that value is not what the document says.
type Checker interface {
	Check() error
}

const (
	// maxNodes bounds the values one Decode visits: aliases can multiply a small document
	// into a huge one.
	maxNodes = 100_000
	// maxDepth bounds nesting: aliases can make cycles.
	maxDepth = 100
)

// Decode reads node (a document, or any node in one) into dst, a non-nil pointer to a struct
// with schema tags (see the package doc), and returns
// every problem found, sorted by position; nil means none.
//
// Absent keys take their default; a nested struct that is not a pointer gets its defaults too.
// Fields absent without a default are left as they were. A null value ("key:" with nothing)
// is an empty mapping for a struct, nothing for a list or a map, and a type error for a scalar.
//
// Decode panics if dst's type has bad tags (a programming error; Lint reports them).
func Decode(node *yaml.Node, dst any) Errors {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		panic(fmt.Sprintf("schema: Decode needs a non-nil pointer, got %T", dst))
	}
	if node != nil && node.Kind == yaml.DocumentNode && len(node.Content) > 0 {
		node = node.Content[0]
	}
	if node == nil || node.Kind == yaml.DocumentNode || node.Kind == 0 {
		line, col := 1, 1
		if node != nil {
			line, col = max(node.Line, 1), max(node.Column, 1)
		}
		node = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: line, Column: col}
	}
	d := &decoder{budget: maxNodes}
	d.value(node, rv.Elem(), "", nil)
	return d.errs.Sort()
}

// decoder walks a node tree into Go values, collecting errors.
type decoder struct {
	errs   Errors
	budget int // values left to visit
	depth  int
	// defaults is set while a default is decoded: it has no positions to record.
	defaults bool
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, FieldError{Path: path, Line: n.Line, Col: n.Column, Msg: fmt.Sprintf(format, args...)})
}

// enter accounts for one value; false means stop: the document is too large or too deep.
func (d *decoder) enter(n *yaml.Node, path string) bool {
	if d.budget <= 0 {
		return false
	}
	d.budget--
	switch {
	case d.budget == 0:
		d.errorf(n, path, "too large: more than %d values (an alias counts each time it is used)", maxNodes)
		return false
	case d.depth >= maxDepth:
		d.errorf(n, path, "nested too deeply (more than %d levels)", maxDepth)
		d.budget = 0 // one such error is enough; an alias cycle would make a great many
		return false
	}
	d.depth++
	return true
}

// value decodes n into v. f is the field v belongs to (nil for list and map elements): its
// enum and bounds apply.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string, f *field) {
	if !d.enter(n, path) {
		return
	}
	defer func() { d.depth-- }()
	dn := deref(n)
	if dn == nil {
		d.errorf(n, path, "alias to nothing")
		return
	}
	if f != nil && f.enum != nil && dn.Kind == yaml.ScalarNode && !isNull(dn) && !slices.Contains(f.enum, dn.Value) {
		d.errorf(n, path, "%s", unknown("value", dn.Value, f.enum))
		return
	}
	if msg, ok := custom(n, v); ok {
		if msg != "" {
			d.errorf(n, path, "%s", msg)
		} else {
			d.bounds(n, v, path, f)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.depth-- // a pointer is no level of the document
		d.budget++
		d.value(n, v.Elem(), path, f)
		d.depth++
	case reflect.Struct:
		d.structValue(n, dn, v, path)
	case reflect.Slice:
		if d.list(n, dn, v, path) {
			d.nonEmpty(n, v, path, f)
		}
	case reflect.Map:
		if d.mapValue(n, dn, v, path) {
			d.nonEmpty(n, v, path, f)
		}
	case reflect.Interface:
		if x := d.free(n, path); x != nil {
			v.Set(reflect.ValueOf(x))
		} else {
			v.SetZero()
		}
	default:
		if msg := scalar(dn, v); msg != "" {
			d.errorf(n, path, "%s", msg)
			return
		}
		d.bounds(n, v, path, f)
		if v.Kind() == reflect.String {
			d.nonEmpty(n, v, path, f)
		}
	}
}

// nonEmpty checks a string, list or map whose field says it must not be empty.
func (d *decoder) nonEmpty(n *yaml.Node, v reflect.Value, path string, f *field) {
	if f != nil && f.nonempty && v.Len() == 0 {
		d.errorf(n, path, "must not be empty")
	}
}

// bounds checks v against its field's min and max. The message quotes the bound as the tag
// writes it and the value as the document does.
func (d *decoder) bounds(n *yaml.Node, v reflect.Value, path string, f *field) {
	if f == nil || kindOfNumber(v.Type()) == 0 {
		return
	}
	if f.min != nil {
		if lo := bound(f.min, v.Type()); lo.IsValid() && compare(v, lo) < 0 {
			d.errorf(n, path, "must be at least %s, got %s", f.minText, deref(n).Value)
			return
		}
	}
	if f.max != nil {
		if hi := bound(f.max, v.Type()); hi.IsValid() && compare(v, hi) > 0 {
			d.errorf(n, path, "must be at most %s, got %s", f.maxText, deref(n).Value)
		}
	}
}

// bound decodes a min or max tag's YAML into a value of type t; invalid if it does not decode
// (Lint reports that).
func bound(n *yaml.Node, t reflect.Type) reflect.Value {
	v := reflect.New(t).Elem()
	sub := &decoder{budget: maxNodes, defaults: true}
	sub.value(n, v, "", nil)
	if len(sub.errs) > 0 {
		return reflect.Value{}
	}
	return v
}

// structValue decodes mapping dn (n before following aliases) into struct v.
func (d *decoder) structValue(n, dn *yaml.Node, v reflect.Value, path string) {
	si := mustInfo(v.Type())
	if isNull(dn) {
		dn = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	} else if dn.Kind != yaml.MappingNode {
		d.errorf(n, path, "want a mapping, got %s", describe(n))
		return
	}
	before := len(d.errs)
	present := map[*field]*yaml.Node{}
	for _, e := range d.entries(dn, path) {
		f := si.byName[e.name]
		if f == nil {
			d.errorf(e.key, path, "%s", unknown("key", e.name, si.names))
			continue
		}
		present[f] = e.key
		d.value(e.val, v.FieldByIndex(f.index), joinKey(path, f.name), f)
	}
	for _, f := range si.fields {
		switch {
		case present[f] != nil:
		case f.required:
			if t := typeName(f.typ); strings.HasPrefix(t, "one of: ") {
				d.errorf(n, path, "missing key %q (%s)", f.name, t)
			} else {
				d.errorf(n, path, "missing key %q", f.name)
			}
		default:
			d.fill(v.FieldByIndex(f.index), f)
		}
	}
	for _, g := range si.groups {
		d.oneOf(n, path, g, present)
	}
	if si.positions != nil && !d.defaults {
		v.FieldByIndex(si.positions).Set(reflect.ValueOf(Positions{path: path, node: dn}))
	}
	d.check(v, dn, path, d.errs[before:])
}

// oneOf checks that exactly one field of group g was given.
func (d *decoder) oneOf(n *yaml.Node, path string, g *group, present map[*field]*yaml.Node) {
	var names []string
	var keys []*yaml.Node
	for _, f := range g.fields {
		names = append(names, f.name)
		if k := present[f]; k != nil {
			keys = append(keys, k)
		}
	}
	if len(keys) == 1 {
		return
	}
	if len(keys) == 0 {
		d.errorf(n, path, "want exactly one of %s", strings.Join(names, ", "))
		return
	}
	var given []string
	for _, f := range g.fields {
		if present[f] != nil {
			given = append(given, f.name)
		}
	}
	// Point at the key written second: the first is presumably the intended one.
	slices.SortFunc(keys, func(a, b *yaml.Node) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
	d.errorf(keys[1], path, "want exactly one of %s, got %s", strings.Join(names, ", "), strings.Join(given, " and "))
}

// fill gives absent field f its default.
func (d *decoder) fill(v reflect.Value, f *field) {
	if f.def == nil {
		if v.Kind() == reflect.Struct && !isCustom(v.Type()) {
			defaults(v)
		}
		return
	}
	sub := &decoder{budget: maxNodes, defaults: true}
	sub.value(f.def, v, f.name, f)
	if len(sub.errs) > 0 {
		panic(fmt.Sprintf("schema: %s: bad default %q: %s", f.goName, f.defText, sub.errs[0].Msg))
	}
}

// Defaults sets every field of *dst that has a default to it, and so on in its nested structs
// that are not pointers: the value a document that says nothing decodes to, without the
// checks for required keys. A package can so derive its Go defaults from the declaration
// (var DefaultSupervision = ...) rather than state them twice. It panics if dst is not a
// non-nil pointer to a struct with good tags.
func Defaults(dst any) {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("schema: Defaults needs a non-nil pointer to a struct, got %T", dst))
	}
	defaults(rv.Elem())
}

// defaults gives every field of struct v that has a default its default.
func defaults(v reflect.Value) {
	d := &decoder{budget: maxNodes, defaults: true}
	for _, f := range mustInfo(v.Type()).fields {
		d.fill(v.FieldByIndex(f.index), f)
	}
}

// check calls v's Check method, if it has one, and anchors what it reports in mapping m. A
// problem it reports about a value that failed to decode, or one above or below it, is left
// out: that value is not what the document says, and the decoding error says why.
func (d *decoder) check(v reflect.Value, m *yaml.Node, path string, failed Errors) {
	c, ok := v.Addr().Interface().(Checker)
	if !ok {
		return
	}
	for _, err := range flatten(c.Check()) {
		var fe FieldError
		switch e := err.(type) {
		case FieldError:
			fe = e
		case *FieldError:
			fe = *e
		default:
			fe = FieldError{Msg: err.Error()}
		}
		if fe.Line == 0 {
			_, val, _ := locate(m, fe.Path)
			fe.Path = joinPath(path, fe.Path)
			fe.Line, fe.Col = val.Line, val.Column
		}
		if !slices.ContainsFunc(failed, func(f FieldError) bool {
			return f.Path != path && (within(f.Path, fe.Path) || within(fe.Path, f.Path))
		}) {
			d.errs = append(d.errs, fe)
		}
	}
}

// within reports whether path p is inner or equal to path outer.
func within(p, outer string) bool {
	if !strings.HasPrefix(p, outer) {
		return false
	}
	rest := p[len(outer):]
	return rest == "" || outer == "" || rest[0] == '.' || rest[0] == '['
}

// flatten lists the errors in err: its leaves when it joins several.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// list decodes sequence dn into slice v; false if dn is no list.
func (d *decoder) list(n, dn *yaml.Node, v reflect.Value, path string) bool {
	if isNull(dn) {
		v.SetZero()
		return true
	}
	if dn.Kind != yaml.SequenceNode {
		d.errorf(n, path, "want %s, got %s", want(v.Type()), describe(n))
		return false
	}
	s := reflect.MakeSlice(v.Type(), len(dn.Content), len(dn.Content))
	for i, c := range dn.Content {
		d.value(c, s.Index(i), joinIndex(path, i), nil)
	}
	v.Set(s)
	return true
}

// mapValue decodes mapping dn into map v; false if dn is no mapping.
func (d *decoder) mapValue(n, dn *yaml.Node, v reflect.Value, path string) bool {
	if isNull(dn) {
		v.SetZero()
		return true
	}
	if dn.Kind != yaml.MappingNode {
		d.errorf(n, path, "want %s, got %s", want(v.Type()), describe(n))
		return false
	}
	t := v.Type()
	m := reflect.MakeMap(t)
	for _, e := range d.entries(dn, path) {
		ev := reflect.New(t.Elem()).Elem()
		d.value(e.val, ev, joinKey(path, e.name), nil)
		m.SetMapIndex(reflect.ValueOf(e.name).Convert(t.Key()), ev)
	}
	v.Set(m)
	return true
}

// entry is one key of a mapping.
type entry struct {
	name     string
	key, val *yaml.Node
}

// entries lists mapping m's keys, reporting keys that are not strings and duplicates. Merge
// keys (<<) are expanded: explicit keys win over merged ones, and earlier merges over later.
func (d *decoder) entries(m *yaml.Node, path string) []entry {
	var out []entry
	d.collect(m, path, map[string]*yaml.Node{}, map[*yaml.Node]bool{}, &out, 0)
	return out
}

// collect adds m's keys to out. A mapping merged a second time adds nothing: its keys are all
// seen already, so visited keeps a merge of merges of aliases from taking exponential time.
func (d *decoder) collect(m *yaml.Node, path string, seen map[string]*yaml.Node, visited map[*yaml.Node]bool, out *[]entry, depth int) {
	if visited[m] {
		return
	}
	visited[m] = true
	var merges []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if isMerge(k) {
			merges = append(merges, v)
			continue
		}
		dk := deref(k)
		if dk == nil || dk.Kind != yaml.ScalarNode || isNull(dk) {
			d.errorf(k, path, "keys must be strings, got %s", describe(k))
			continue
		}
		if first, dup := seen[dk.Value]; dup {
			if depth == 0 {
				d.errorf(k, path, "duplicate key %s (first at line %d)", quote(dk.Value), first.Line)
			}
			continue
		}
		seen[dk.Value] = k
		*out = append(*out, entry{dk.Value, k, v})
	}
	for _, src := range merges {
		for _, s := range mergeSources(src) {
			if s == nil || s.Kind != yaml.MappingNode {
				d.errorf(src, path, "a merge (<<) takes a mapping or a list of mappings, got %s", describe(s))
				continue
			}
			if depth < maxDepth {
				d.collect(s, path, seen, visited, out, depth+1)
			}
		}
	}
}

func isMerge(k *yaml.Node) bool { return k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" }

// mergeSources lists the mappings a merge key's value names.
func mergeSources(v *yaml.Node) []*yaml.Node {
	v = deref(v)
	if v != nil && v.Kind == yaml.SequenceNode {
		out := make([]*yaml.Node, len(v.Content))
		for i, c := range v.Content {
			out[i] = deref(c)
		}
		return out
	}
	return []*yaml.Node{v}
}

// deref follows aliases to the node they name (nil for a dangling alias).
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i == maxDepth {
			return nil
		}
		n = n.Alias
	}
	return n
}

// quote quotes a word from the document for a message, shortened if long.
func quote(s string) string {
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return strconv.Quote(s)
}
