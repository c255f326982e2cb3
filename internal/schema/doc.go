// Package schema declares a YAML document's keys once, as a Go struct with tags, and derives
// from that declaration the decoding, the defaults, the checks, every error message and a
// reference of every key.
//
//	type Stage struct {
//		Name    string        `yaml:"name" required:"true" doc:"The stage's name, unique in the pipeline."`
//		Workers int           `yaml:"workers" default:"1" min:"1" doc:"Worker actors (or processes) for the stage."`
//		Timeout time.Duration `yaml:"timeout" min:"0s" doc:"Deadline per record; none when absent."`
//		Builtin string        `yaml:"builtin" oneof:"kind" doc:"An in-process stage, by name."`
//		Plugin  *Plugin       `yaml:"plugin" oneof:"kind" doc:"An out-of-process stage."`
//		At      schema.Positions
//	}
//
// Decode reads a yaml.v3 node tree into such a struct and reports every problem at once, each
// a FieldError naming the key path (stages[1].limits.rss) and the line and column it is
// about: type errors, unknown keys (with a "did you mean"), duplicate keys, missing required
// keys, values outside an enum or bounds, unions given none or several of their alternatives,
// and what the structs' own Check methods find. Errors.Format renders them as
// FILE:LINE:COL: path: message.
//
// The tags are yaml (the key, or ",inline" / "-"), doc, default, required, enum, min, max and
// oneof; fields.go documents each. Field types may be bool, integers, floats, strings,
// time.Duration, slices, maps with string keys, pointers (an optional nested struct), structs,
// any (free-form values kept as plain Go values), and custom scalars implementing
// ScalarUnmarshaler (or yaml.Unmarshaler), such as sizes like 512MiB.
//
// Reference lists every key with its type, default and doc, and Markdown renders that list.
// Lint checks a schema's tags; the package that owns a schema calls it from a test.
package schema
