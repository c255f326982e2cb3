// Package schema declares a YAML document's keys once, as a Go struct with tags, and derives
// from that declaration the decoding, the defaults, the checks, every error message and a
// reference of every key.
//
//	type Stage struct {
//		Name    string        `yaml:"name" required:"true" doc:"The stage's name, unique in the pipeline."`
//		Builtin string        `yaml:"builtin" oneof:"kind" doc:"An in-process stage, by name."`
//		Plugin  *Plugin       `yaml:"plugin" oneof:"kind" doc:"An out-of-process stage."`
//		Credits int           `yaml:"credits" default:"64" min:"1" doc:"Records in flight per worker."`
//		Timeout time.Duration `yaml:"timeout" min:"0s" doc:"Deadline per record; none when absent."`
//		At      schema.Positions
//	}
//
// Parse reads a single YAML document; Decode reads its node tree into such a struct and
// reports every problem at once, each a FieldError naming the key path
// (stages[1].limits.rss) and the line and column it is about: type errors, unknown keys (with
// a "did you mean"), duplicate keys, missing required keys, values outside an enum or bounds,
// unions given none or several of their alternatives, and what the structs' own Check methods
// find. Errors.Format renders them as FILE:LINE:COL: path: message.
//
// # Tags
//
//	yaml:"name"        the key (default: the field's name in lower case, as in yaml.v3);
//	                   yaml:"-" skips the field; yaml:",inline" merges a struct's keys into
//	                   its parent's.
//	doc:"text"         what the key means, for the reference.
//	default:"yaml"     the value when the key is absent, as YAML text decoded by the same rules
//	                   as the document: default:"30s", default:"[a, b]", default:"'*'".
//	required:"true"    the key must be given.
//	nonempty:"true"    a string, list or map given must not be empty.
//	enum:"a|b|c"       the scalar's text must be one of these.
//	min:"yaml"         inclusive bounds of a number, a duration, or a custom scalar whose Go
//	max:"yaml"         type is a number, as YAML text of the field's type: min:"1", max:"1GiB".
//	oneof:"group"      exactly one of the struct's fields in this group must be given: a union,
//	                   such as a source that is files, lines or range.
//
// A field of type Positions is not a key: Decode records there where the struct was written,
// so that a problem found later (a builtin that is not registered) is reported in place.
//
// # Types
//
// Fields may be bool, integers, floats, strings, time.Duration ("1m30s"), slices, maps with
// string keys, structs, pointers (a pointer to a struct is an optional section: nil when
// absent), any or map[string]any (free-form values, kept as plain Go values), and custom
// scalars implementing ScalarUnmarshaler (a size like 512MiB), yaml.Unmarshaler, or
// encoding.TextUnmarshaler (given the scalar's text, for types that must not import YAML). A custom
// type names itself in the reference with a SchemaType method.
//
// # Checks
//
// A struct implementing Checker checks itself after decoding (max not below min; limits only
// on plugin stages); it names the keys at fault with paths relative to itself, and Decode
// anchors them. Reference lists every key with its type, default and doc, and Markdown
// renders that list. Lint checks a schema's tags; the package that owns a schema calls it from
// a test, so that Decode and Reference, which panic on bad tags, never do.
package schema
