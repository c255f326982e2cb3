// Command troupe runs, checks and scaffolds troupe pipelines.
//
// Usage:
//
//	troupe [--log-format text|json] [--log-level debug|info|warn|error] COMMAND ...
//	troupe run SPEC [--summary-json FILE] [--progress auto|bar|plain|none]
//	troupe validate SPEC
//	troupe builtins
//	troupe plugins new NAME [DIR] [--troupe-src DIR] [--module PATH]
//	troupe version
//	troupe serve --admin ADDR [--max-jobs N] [--spec-dir DIR]
//	troupe node [--listen ADDR] [--advertise ADDR] [--token T]
//
// `troupe run` runs the pipeline a YAML spec describes (docs/spec.md and package spec describe
// the format), showing progress on standard error and a per-stage summary at the end; `troupe
// builtins` lists the builtin stages a spec can name, with their options. The first SIGINT or
// SIGTERM stops it gracefully: the source stops, records in flight drain to the sink, and the
// summary is printed; a second one exits at once. `troupe plugins new` writes a plugin project
// (a Go module) that builds where it is written, against a local troupe source tree (package
// plugins/scaffold says how it finds one).
//
// Logs go to standard error, as key=value text or (--log-format json) one JSON object a line,
// at level warn and above unless --log-level (or run -v, info) says otherwise. Every line of a
// run carries the attribute run, the run's id (also in --summary-json), and, where they apply,
// stage, worker (the worker's index) and pid (a plugin process's); a plugin's own stderr lines
// come through at level info, tagged with stage, worker, pid and stream.
//
// Exit status: 0 every record reached the sink; 1 the run was aborted or interrupted (or could
// not start); 2 the spec or the command line is invalid; 3 the run finished but some records
// went to dead letters.
//
// `troupe serve` runs an engine (package engine) taking jobs over HTTP; SIGINT or SIGTERM drains
// it (see its help).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	// The messages go through the writer the progress bar draws on: each gets its own line.
	stderr := &lockedWriter{w: os.Stderr}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(stderr, "troupe: %v: stopping, draining records in flight (signal again to exit at once)\n", s)
		cancel()
		s = <-sigs
		stderr.releaseLine(fmt.Sprintf("troupe: %v: exiting at once", s)) // no bar left behind
		os.Exit(exitAborted)
	}()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, stderr)
	cancel()
	os.Exit(code)
}
