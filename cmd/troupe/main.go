// Command troupe runs, checks and scaffolds troupe pipelines.
//
// Usage:
//
//	troupe run SPEC [--summary-json FILE] [--progress auto|bar|plain|none]
//	troupe validate SPEC
//	troupe builtins
//	troupe plugins new NAME [DIR]
//	troupe version
//	troupe serve --admin ADDR [--max-jobs N] [--spec-dir DIR]
//
// `troupe run` runs the pipeline a YAML spec describes (docs/spec.md and package spec describe
// the format), showing progress on standard error and a per-stage summary at the end; `troupe
// builtins` lists the builtin stages a spec can name, with their options. The first SIGINT or
// SIGTERM stops it gracefully: the source stops, records in flight drain to the sink, and the
// summary is printed; a second one exits at once.
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
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "troupe: %v: stopping, draining records in flight (signal again to exit at once)\n", s)
		cancel()
		s = <-sigs
		fmt.Fprintf(os.Stderr, "troupe: %v: exiting at once\n", s)
		os.Exit(exitAborted)
	}()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	cancel()
	os.Exit(code)
}
