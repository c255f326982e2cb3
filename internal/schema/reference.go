package schema

import (
	"reflect"
	"strings"
)

// Field is one key of a schema, as the reference documents it.
type Field struct {
	// Path is the key's full path; a list's elements are name[], a map's values name.<name>.
	Path string
	// Type is the key's type as a user reads it: boolean, integer, number, string, duration,
	// bytes (a custom type's SchemaType), list of string, mapping, any, one of: a | b.
	Type     string
	Enum     []string // the allowed values, if restricted
	Min, Max string   // bounds as written in the tags, if any
	Default  string   // as YAML text; "" when none
	Required bool
	NonEmpty bool // a string, list or map that must not be empty
	// OneOf lists the keys this key is an alternative to, itself included, if it is part of a
	// union.
	OneOf []string
	Doc   string
}

// Reference lists every key of struct type t (or a pointer to one) and of the structs under
// it, depth first in declaration order. It panics if t has bad tags.
func Reference(t reflect.Type) []Field {
	var out []Field
	refStruct(derefType(t), "", &out, map[reflect.Type]bool{})
	return out
}

func refStruct(t reflect.Type, prefix string, out *[]Field, active map[reflect.Type]bool) {
	if active[t] {
		return // a recursive type: its keys are listed above
	}
	active[t] = true
	defer delete(active, t)
	si := mustInfo(t)
	for _, f := range si.fields {
		path := joinKey(prefix, f.name)
		rf := Field{Path: path, Type: typeName(f.typ), Enum: f.enum, Min: f.minText, Max: f.maxText,
			Default: f.defText, Required: f.required, NonEmpty: f.nonempty, Doc: f.doc}
		for _, g := range si.groups {
			if g.name == f.oneof {
				for _, gf := range g.fields {
					rf.OneOf = append(rf.OneOf, gf.name)
				}
			}
		}
		*out = append(*out, rf)
		refChildren(f.typ, path, out, active)
	}
}

// refChildren lists the keys under a value of type t at path.
func refChildren(t reflect.Type, path string, out *[]Field, active map[reflect.Type]bool) {
	t = derefType(t)
	if isCustom(t) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		refStruct(t, path, out, active)
	case reflect.Slice:
		refChildren(t.Elem(), path+"[]", out, active)
	case reflect.Map:
		refChildren(t.Elem(), path+".<name>", out, active)
	}
}

func derefType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// typeName names type t as a user reads it.
func typeName(t reflect.Type) string {
	t = derefType(t)
	if n, ok := reflect.New(t).Interface().(TypeNamer); ok {
		return n.SchemaType()
	}
	if isCustom(t) {
		return strings.ToLower(t.Name())
	}
	if t == durationType {
		return "duration"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Slice:
		return "list of " + typeName(t.Elem())
	case reflect.Map:
		if t.Elem().Kind() == reflect.Interface {
			return "mapping (free-form)"
		}
		return "mapping of string to " + typeName(t.Elem())
	case reflect.Interface:
		return "any"
	case reflect.Struct:
		si := mustInfo(t)
		if len(si.groups) == 1 && len(si.groups[0].fields) == len(si.fields) {
			var names []string
			for _, f := range si.fields {
				names = append(names, f.name)
			}
			return "one of: " + strings.Join(names, " | ")
		}
		return "mapping"
	}
	return t.String()
}

// Markdown renders fields as a Markdown table: key, type, default, description.
func Markdown(fields []Field) string {
	var b strings.Builder
	b.WriteString("| Key | Type | Default | Description |\n|---|---|---|---|\n")
	for _, f := range fields {
		typ, def, doc := f.Describe()
		if def != "" && !f.Required {
			def = "`" + def + "`"
		}
		b.WriteString("| `" + f.Path + "` | " + cell(typ) + " | " + cell(def) + " | " + cell(doc) + " |\n")
	}
	return b.String()
}

// Describe returns what a reference shows of f: its type with its enum and bounds, its default
// ("required" for a required key; YAML text) and its doc, with the union it belongs to.
func (f Field) Describe() (typ, def, doc string) {
	typ = f.Type
	if len(f.Enum) > 0 {
		typ += ": " + strings.Join(f.Enum, " | ")
	}
	if f.NonEmpty {
		typ += ", not empty"
	}
	switch {
	case f.Min != "" && f.Max != "":
		typ += ", " + f.Min + " to " + f.Max
	case f.Min != "":
		typ += ", at least " + f.Min
	case f.Max != "":
		typ += ", at most " + f.Max
	}
	switch {
	case f.Required:
		def = "required"
	case f.Default != "":
		def = f.Default
	}
	doc = f.Doc
	if len(f.OneOf) > 0 {
		doc = strings.TrimSpace(doc + " Exactly one of " + strings.Join(f.OneOf, ", ") + ".")
	}
	return typ, def, doc
}

// cell escapes text for a table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}
