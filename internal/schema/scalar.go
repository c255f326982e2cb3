package schema

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Scalar is a YAML scalar as a custom type receives it: its text, and its resolved YAML tag
// ("!!str", "!!int", "!!float", "!!bool", "!!null", ...), which tells the quoted "150" from
// the number 150.
type Scalar struct {
	Value string
	Tag   string
}

// String describes the scalar for messages: string "abc", integer 30, null.
func (s Scalar) String() string {
	v := s.Value
	if len(v) > 40 {
		v = v[:37] + "..."
	}
	switch s.Tag {
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
	}
	return fmt.Sprintf("%s %q", s.Tag, v)
}

// ScalarUnmarshaler is a type written as one scalar with a syntax of its own: a size (512MiB),
// a percentage (150%). Its method is called on a pointer; the error it returns is the message
// reported at the value (the decoder adds the position and the path), so it should say what is
// wrong and what is wanted: bad size "lots": want a size like 512MiB.
type ScalarUnmarshaler interface {
	UnmarshalScalar(Scalar) error
}

// TypeNamer names a custom type in the reference ("bytes", "percentage"); without it the
// reference uses the Go type's name in lower case.
type TypeNamer interface {
	SchemaType() string
}

var (
	scalarUnmarshalerType = reflect.TypeFor[ScalarUnmarshaler]()
	yamlUnmarshalerType   = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshalerType   = reflect.TypeFor[encoding.TextUnmarshaler]()
	durationType          = reflect.TypeFor[time.Duration]()
)

// isCustom reports whether *t decodes itself.
func isCustom(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return p.Implements(scalarUnmarshalerType) || p.Implements(yamlUnmarshalerType) ||
		p.Implements(textUnmarshalerType)
}

// describe names a node's type and value for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	n = deref(n)
	switch {
	case n == nil:
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.ScalarNode:
		return scalarOf(n).String()
	}
	return "an alias"
}

func scalarOf(n *yaml.Node) Scalar { return Scalar{Value: n.Value, Tag: n.ShortTag()} }

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// scalar decodes scalar node n (already dereferenced) into v, a value of a basic kind. It
// returns the message for a bad value, "" for a good one.
func scalar(n *yaml.Node, v reflect.Value) string {
	if n.Kind != yaml.ScalarNode {
		return "want " + want(v.Type()) + ", got " + describe(n)
	}
	tag := n.ShortTag()
	if v.Type() == durationType {
		return duration(n, v)
	}
	switch v.Kind() {
	case reflect.Bool:
		var b bool
		if tag != "!!bool" || n.Decode(&b) != nil {
			return "want true or false, got " + describe(n)
		}
		v.SetBool(b)
	case reflect.String:
		if tag == "!!null" || tag == "!!bool" {
			return "want a string, got " + describe(n)
		}
		v.SetString(n.Value)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var i int64
		if tag != "!!int" && !integerText.MatchString(n.Value) {
			return "want an integer, got " + describe(n)
		}
		if tag != "!!int" || n.Decode(&i) != nil || v.OverflowInt(i) {
			bits := v.Type().Bits()
			return fmt.Sprintf("integer %s out of range (want %d to %d)", n.Value, -1<<(bits-1), 1<<(bits-1)-1)
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		var u uint64
		if tag != "!!int" && !integerText.MatchString(n.Value) {
			return "want an integer, got " + describe(n)
		}
		if strings.HasPrefix(n.Value, "-") {
			return "want an integer of at least 0, got " + n.Value
		}
		if tag != "!!int" || n.Decode(&u) != nil || v.OverflowUint(u) {
			return fmt.Sprintf("integer %s out of range (want 0 to %d)", n.Value, ^uint64(0)>>(64-v.Type().Bits()))
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		var f float64
		if tag != "!!int" && tag != "!!float" || n.Decode(&f) != nil {
			return "want a number, got " + describe(n)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) || v.OverflowFloat(f) {
			return "want a finite number, got " + n.Value
		}
		v.SetFloat(f)
	default:
		return "cannot decode into " + v.Type().String()
	}
	return ""
}

// integerText is an integer too large for YAML to resolve as one: it resolves as a float.
var integerText = regexp.MustCompile(`^[-+]?[0-9]+$`)

const wantDuration = "a duration like 30s or 1m30s"

// duration reads a Go duration; the integer 0 is accepted too, as zero needs no unit.
func duration(n *yaml.Node, v reflect.Value) string {
	tag := n.ShortTag()
	if tag == "!!int" && n.Value == "0" {
		v.SetInt(0)
		return ""
	}
	if tag != "!!str" {
		return "want " + wantDuration + ", got " + describe(n)
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Sprintf("bad duration %q (want %s)", n.Value, wantDuration)
	}
	v.SetInt(int64(d))
	return ""
}

// custom decodes n into v with v's own method; ok is false when v's type has none.
func custom(n *yaml.Node, v reflect.Value) (msg string, ok bool) {
	p := v.Addr().Interface()
	var err error
	switch u := p.(type) {
	case ScalarUnmarshaler:
		d := deref(n)
		if d.Kind != yaml.ScalarNode {
			return "want " + want(v.Type()) + ", got " + describe(n), true
		}
		err = u.UnmarshalScalar(scalarOf(d))
	case yaml.Unmarshaler:
		err = u.UnmarshalYAML(deref(n))
	case encoding.TextUnmarshaler:
		// A type that reads itself from text, without knowing YAML (a size in package units):
		// it gets the scalar's text, whatever its tag, but never a mapping, a list or null.
		d := deref(n)
		if d.Kind != yaml.ScalarNode || isNull(d) {
			return "want " + want(v.Type()) + ", got " + describe(n), true
		}
		err = u.UnmarshalText([]byte(d.Value))
	default:
		return "", false
	}
	if err != nil {
		return err.Error(), true
	}
	return "", true
}

// want says what a value of type t looks like, for "want X, got Y" messages.
func want(t reflect.Type) string {
	name := typeName(t)
	switch {
	case isCustom(derefType(t)):
		return name
	case derefType(t) == durationType:
		return wantDuration
	case name == "boolean":
		return "true or false"
	case strings.ContainsAny(name[:1], "aeiou"):
		return "an " + name
	}
	return "a " + name
}

// compare compares two numbers of the same type: -1, 0 or +1.
func compare(a, b reflect.Value) int {
	switch kindOfNumber(a.Type()) {
	case 'i':
		return cmpOrdered(a.Int(), b.Int())
	case 'u':
		return cmpOrdered(a.Uint(), b.Uint())
	}
	return cmpOrdered(a.Float(), b.Float())
}

func cmpOrdered[T int64 | uint64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
