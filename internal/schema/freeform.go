package schema

import "gopkg.in/yaml.v3"

// free converts a free-form value (a field of type any or map[string]any: options handed
// as-is to a stage) to plain Go: map[string]any, []any, string, int (float64 when too large),
// float64, bool or nil. Keys must be strings and appear once; merge keys are expanded.
func (d *decoder) free(n *yaml.Node, path string) any {
	dn := deref(n)
	switch dn.Kind {
	case yaml.MappingNode:
		out := map[string]any{}
		for _, e := range d.entries(dn, path) {
			p := joinKey(path, e.name)
			if d.enter(e.val, p) {
				out[e.name] = d.free(e.val, p)
				d.depth--
			}
		}
		return out
	case yaml.SequenceNode:
		out := make([]any, 0, len(dn.Content))
		for i, c := range dn.Content {
			p := joinIndex(path, i)
			if d.enter(c, p) {
				out = append(out, d.free(c, p))
				d.depth--
			}
		}
		return out
	case yaml.ScalarNode:
		switch dn.ShortTag() {
		case "!!str":
			return dn.Value
		case "!!null":
			return nil
		case "!!int":
			var i int
			if dn.Decode(&i) == nil {
				return i
			}
			var f float64
			if dn.Decode(&f) == nil {
				return f
			}
		case "!!float":
			var f float64
			if dn.Decode(&f) == nil {
				return f
			}
		case "!!bool":
			var b bool
			if dn.Decode(&b) == nil {
				return b
			}
		default:
			var v any
			if dn.Decode(&v) == nil {
				return v
			}
		}
	}
	d.errorf(n, path, "cannot read %s", describe(n))
	return nil
}
