package schema

import (
	"errors"
	"fmt"
	"reflect"
)

// Lint checks struct type t (or a pointer to one) and the structs under it: tags that parse,
// defaults and bounds that decode to the field's type, and a doc on every key. A test of the
// package that owns a schema should call it, so that Decode and Reference never panic.
func Lint(t reflect.Type) error {
	var errs []error
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		t = derefType(t)
		if seen[t] || isCustom(t) {
			return
		}
		seen[t] = true
		switch t.Kind() {
		case reflect.Slice, reflect.Map:
			walk(t.Elem())
			return
		case reflect.Struct:
		default:
			return
		}
		si := infoOf(t)
		for _, p := range si.problems {
			errs = append(errs, errors.New(p))
		}
		if len(si.problems) > 0 {
			return
		}
		for _, f := range si.fields {
			if f.doc == "" {
				errs = append(errs, fmt.Errorf("%s: no doc", f.goName))
			}
			for _, tag := range []struct {
				name, text string
				node       bool
			}{{"default", f.defText, f.def != nil}, {"min", f.minText, f.min != nil}, {"max", f.maxText, f.max != nil}} {
				if tag.node {
					errs = append(errs, lintValue(f, tag.name, tag.text)...)
				}
			}
			walk(f.typ)
		}
	}
	walk(t)
	return errors.Join(errs...)
}

// lintValue decodes a tag's YAML into a value of its field's type.
func lintValue(f *field, tag, text string) (errs []error) {
	n, _ := parseText(text)
	d := &decoder{budget: maxNodes, defaults: true}
	v := reflect.New(f.typ).Elem()
	var rules *field
	if tag == "default" {
		rules = f
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				errs = append(errs, fmt.Errorf("%s: %s:%q: %v", f.goName, tag, text, r))
			}
		}()
		d.value(n, v, f.name, rules)
	}()
	for _, e := range d.errs {
		errs = append(errs, fmt.Errorf("%s: %s:%q: %s", f.goName, tag, text, e.Msg))
	}
	return errs
}
