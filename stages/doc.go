// Package stages holds troupe's builtin stages, the in-process stages a spec names with
// `builtin:`, and their registry: Register a Builtin by name, Lookup one, list Names.
//
// Each builtin declares its options once, as a Go struct whose fields carry the tags of package
// internal/schema (key, default, bounds, doc) and whose Check method holds the rules a tag cannot
// say. From that declaration come the checking of a spec's options, each problem at its line and
// column (package spec), the `troupe builtins` command, and the builtins' tables in docs/spec.md
// and the README (Markdown).
//
// The generic builtins are identity, upper, lower, split, grep, format and sleep, and the reduce
// stages count and sum. split keys each output by its field, so that `lines → split → count →
// format` counts words. The CLI registers imgconv (package stages/imgconv) on top.
//
// A builtin never modifies the record it is given (the runtime may deliver it again after a
// failure): it returns the record as it is, or new records. Its outputs depend on the record
// alone, so the runtime may run it again: split builds its outputs in the slice the runtime
// lends when it folds them at once (a map-side combine, see callctx.Info.Outs), and keys them
// with substrings of one string of the payload rather than a string per field.
package stages
