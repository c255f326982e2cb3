package schema

import (
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// A path names a value in a document the way a user reads it: keys joined by dots, list
// elements by index, and keys that are not plain words quoted: stages[1].limits.rss,
// plugin.env["A.B"]. Paths relative to a struct (in Check methods and Positions) use the same
// syntax.

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// joinKey returns the path of key under parent.
func joinKey(parent, key string) string {
	if !plainKey.MatchString(key) {
		return parent + "[" + strconv.Quote(key) + "]"
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// joinIndex returns the path of element i of the list at parent.
func joinIndex(parent string, i int) string { return parent + "[" + strconv.Itoa(i) + "]" }

// joinPath returns the path rel (relative to parent) as a full path.
func joinPath(parent, rel string) string {
	switch {
	case rel == "":
		return parent
	case parent == "" || strings.HasPrefix(rel, "["):
		return parent + rel
	}
	return parent + "." + rel
}

// segment is one step of a path: a key, or an index when isIndex.
type segment struct {
	key     string
	index   int
	isIndex bool
}

// parsePath splits a relative path into its steps. A malformed path yields the steps before the
// fault: positions then point at the nearest value that could be named.
func parsePath(p string) []segment {
	var segs []segment
	for p != "" {
		switch {
		case p[0] == '.':
			p = p[1:]
		case strings.HasPrefix(p, `["`):
			q, err := strconv.QuotedPrefix(p[1:])
			if err != nil || !strings.HasPrefix(p[1+len(q):], "]") {
				return segs
			}
			key, _ := strconv.Unquote(q)
			segs = append(segs, segment{key: key})
			p = p[1+len(q)+1:]
		case p[0] == '[':
			end := strings.IndexByte(p, ']')
			if end < 0 {
				return segs
			}
			i, err := strconv.Atoi(p[1:end])
			if err != nil {
				return segs
			}
			segs = append(segs, segment{index: i, isIndex: true})
			p = p[end+1:]
		default:
			end := strings.IndexAny(p, ".[")
			if end < 0 {
				end = len(p)
			}
			segs = append(segs, segment{key: p[:end]})
			p = p[end:]
		}
	}
	return segs
}

// locate follows rel from n. It returns the key node and value node of the deepest step found
// (key is nil for a list element, and both are n's when no step is found), and whether every
// step was.
func locate(n *yaml.Node, rel string) (key, val *yaml.Node, found bool) {
	key, val = n, n
	for _, s := range parsePath(rel) {
		d := deref(val)
		if d == nil {
			return key, val, false
		}
		switch {
		case s.isIndex:
			if d.Kind != yaml.SequenceNode || s.index < 0 || s.index >= len(d.Content) {
				return key, val, false
			}
			key, val = nil, d.Content[s.index]
		default:
			k, v := lookup(d, s.key)
			if k == nil {
				return key, val, false
			}
			key, val = k, v
		}
	}
	return key, val, true
}

// lookup finds key in mapping m, the way the decoder reads it: an explicit key first, then the
// merged mappings in order.
func lookup(m *yaml.Node, key string) (k, v *yaml.Node) {
	return lookupIn(m, key, map[*yaml.Node]bool{})
}

func lookupIn(m *yaml.Node, key string, visited map[*yaml.Node]bool) (k, v *yaml.Node) {
	if m == nil || m.Kind != yaml.MappingNode || visited[m] {
		return nil, nil
	}
	visited[m] = true
	var merges []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		kn := m.Content[i]
		if isMerge(kn) {
			merges = append(merges, m.Content[i+1])
			continue
		}
		if d := deref(kn); d.Kind == yaml.ScalarNode && d.Value == key {
			return kn, m.Content[i+1]
		}
	}
	for _, src := range merges {
		for _, s := range mergeSources(src) {
			if k, v := lookupIn(s, key, visited); k != nil {
				return k, v
			}
		}
	}
	return nil, nil
}

// Positions records where a decoded struct was written, so that its owner can report a problem
// found after decoding at the right place. A struct gets one by having a field of this type (it
// is not a key); Decode fills it in. The zero Positions (a struct not read from a document)
// knows nothing and reports line 0.
type Positions struct {
	path string
	node *yaml.Node
}

// Pos is a position in a document; Line and Col are 1-based, zero when unknown.
type Pos struct{ Line, Col int }

func nodePos(n *yaml.Node) Pos {
	if n == nil {
		return Pos{}
	}
	return Pos{n.Line, n.Column}
}

// Path returns the full path of the field at rel ("" is the struct itself).
func (p Positions) Path(rel string) string { return joinPath(p.path, rel) }

// Has reports whether the field at rel was written in the document (not defaulted).
func (p Positions) Has(rel string) bool {
	if p.node == nil {
		return false
	}
	_, _, found := locate(p.node, rel)
	return found
}

// Value returns where the value at rel was written or, if it was not, where its nearest
// enclosing value was: a problem about a missing field is reported at the mapping that lacks it.
func (p Positions) Value(rel string) Pos {
	_, v, _ := locate(p.node, rel)
	return nodePos(v)
}

// Key returns where the key of the field at rel was written (for a list element, the element),
// or where its nearest enclosing value was.
func (p Positions) Key(rel string) Pos {
	k, v, _ := locate(p.node, rel)
	if k == nil {
		k = v
	}
	return nodePos(k)
}

// Errorf makes a FieldError about the field at rel, at the position of its value.
func (p Positions) Errorf(rel, format string, args ...any) FieldError {
	e := Errorf(p.Path(rel), format, args...)
	pos := p.Value(rel)
	e.Line, e.Col = pos.Line, pos.Col
	return e
}
