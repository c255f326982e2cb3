// Package troupe turns a YAML pipeline spec into a running pipeline: a source, stages and a sink
// under an OTP-style supervision tree (see package actors for the runtime and package plugins for
// out-of-process stages).
//
// # The spec
//
// A spec names where records come from, what happens to them, and where they go:
//
//	name: wordcount
//	source: {lines: {path: input.txt}}       # or files: {dir, glob, recursive} | range: {count, size}
//	stages:
//	  - name: words
//	    builtin: split                       # an in-process stage registered with Register
//	  - name: count
//	    builtin: count
//	sink: {lines: {path: counts.txt}}        # or files: {dir, ext} | discard: {}
//	dead_letter: {path: dead.jsonl}          # optional
//
// A stage is either a builtin (a Go function registered by name, see Register and Builtins) or a
// plugin (an external program speaking troupe's stage protocol, see package plugins). Each stage
// may set workers, credits, attempts, a per-record timeout, free-form options, a restart policy
// and, for plugins, resource limits. The top level may set supervision (the root supervisor's
// strategy, intensity and period) and order (any or input).
//
// LoadSpec and ParseSpec check everything they can without touching the outside world and report
// every problem at once, each as FILE:LINE:COL: message (a *SpecError). Relative paths in a spec
// resolve against the spec file's directory. Spec.Check then checks, without opening anything for
// writing, what a run needs from the world: plugin programs exist, are executable and match their
// sha256; the source exists; the sink and dead-letter file can be created; and no output is the
// source's file or another output's, or would be read back by a files source (the same file
// reached through a symbolic link, ".." or a hard link counts). Spec.Pipeline runs Check, then
// opens the source and sinks and builds a *Pipeline ready to Run; `troupe validate` runs the same
// Check, so a spec that validates is one that starts.
//
// # Builtins
//
// The root package registers generic builtins: identity, upper, lower, split, grep, sleep (Func
// stages) and count, sum (reduce stages). A word count is lines → split → count. Programs that
// embed troupe register their own with Register before loading a spec.
package troupe
