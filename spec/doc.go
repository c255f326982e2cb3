// Package spec is troupe's YAML pipeline spec: Load or Parse a spec file, Check what it needs
// from the world, and build a runnable pipeline with Spec.Pipeline.
//
// A spec names where records come from, what happens to them, and where they go:
//
//	name: wordcount
//	source: {lines: {path: input.txt}}       # or files: {dir, glob, recursive} | range: {count, size}
//	stages:
//	  - name: words
//	    builtin: split                       # a builtin of package stages, or plugin: {cmd: [...]}
//	  - name: count
//	    builtin: count
//	sink: {lines: {path: counts.txt}}        # or files: {dir, ext} | discard: {}
//	dead_letter: {path: dead.jsonl}          # optional
//
// Every key is declared once, in decl.go, as a Go struct field whose tags (package
// internal/schema) give its key, type, default, bounds and doc; the rules over several keys are
// the structs' Check methods, and range rules of values another package owns come from that
// package as structured field errors (supervisor.FieldErrors for the supervision and restart
// policies; plugins.Config.Validate for a plugin's configuration, which the spec decodes straight
// into). docs/spec.md, the reference of every key, is generated from these declarations
// (internal/cmd/specdoc) and a test keeps it in sync.
//
// Load and Parse check everything they can without touching the outside world and report every
// problem at once, each as FILE:LINE:COL: path: message (a *SpecError), with a "did you mean"
// for a misspelt key. A builtin stage's options are checked against the options it declares
// (package stages), each problem at its place in the options. Relative paths resolve against the
// spec file's directory. Spec.Check then checks, without opening anything for writing, what a
// run needs from the world: plugin programs exist, are executable and match their sha256; the
// source exists; the sink and dead-letter file can be created; and no output is the source's
// file or another output's, or would be read back by a files source (the same file reached
// through a symbolic link, ".." or a hard link counts). Spec.Pipeline runs Check, then opens the
// source and sinks and builds a pipeline ready for actors.Run, closing what it opened if it fails;
// `troupe validate` runs the same Check, so a spec that validates is one that starts.
package spec

// docs/spec.md and the README's builtins table come from the declarations.
//go:generate go run ../internal/cmd/specdoc -root ..
