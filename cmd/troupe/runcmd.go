package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/spec"
	"github.com/troupe-dev/troupe/supervisor"
)

var termIsTerminal = term.IsTerminal

// runOptions are the flags of `troupe run`.
type runOptions struct {
	summaryJSON  string
	progress     string
	drainTimeout time.Duration
	verbose      bool
}

// plainInterval is the time between two plain progress lines.
var plainInterval = 2 * time.Second

func (e *env) runCmd() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run SPEC",
		Short: "Run the pipeline a spec describes",
		Long: `Run the pipeline a spec describes, with progress on standard error (a bar on a
terminal, a line every 2 seconds otherwise) and a per-stage summary at the end.

The first SIGINT or SIGTERM stops the run gracefully: the source stops reading and the
records in flight drain to the sink; a second one exits at once.

Exit status: 0 every record reached the sink; 1 the run was aborted or interrupted, or
could not start; 2 the spec is invalid; 3 some records went to dead letters.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch o.progress {
			case "auto", "bar", "plain", "none":
			default:
				return &usageError{fmt.Errorf("--progress: want auto, bar, plain or none, got %q", o.progress)}
			}
			code := e.runSpec(cmd.Context(), args[0], o)
			if code != exitOK {
				return &exitError{code: code}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.summaryJSON, "summary-json", "", "write the run's summary as JSON to `FILE`")
	f.StringVar(&o.progress, "progress", "auto", "progress display: auto (bar on a terminal, else plain), bar, plain or none")
	f.DurationVar(&o.drainTimeout, "drain-timeout", 0, "how long a stop waits for records in flight (default 30s)")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "log the runtime's and plugins' informational messages")
	return cmd
}

// runSpec loads, builds and runs a spec and returns the exit status, having reported on stderr.
func (e *env) runSpec(ctx context.Context, path string, o runOptions) int {
	s, err := e.loadSpec(path)
	if err != nil {
		var xe *exitError
		if errors.As(err, &xe) && xe.err != nil {
			fmt.Fprintf(e.stderr, "troupe: %v\n", xe.err)
		}
		return exitUsage
	}
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	p, err := s.Pipeline(spec.BuildOptions{
		Stdin:        e.stdin,
		Stdout:       e.stdout,
		Logger:       logger,
		DrainTimeout: o.drainTimeout,
		Events: func(ev supervisor.Event) {
			logger.Info("supervision", "path", ev.Path, "kind", ev.Kind, "reason", ev.Reason, "restarts", ev.Restarts)
		},
	})
	if err != nil {
		// What Spec.Check finds (the check validate makes) is a bad spec; a failure to open
		// what passed it is not.
		var se *spec.SpecError
		if errors.As(err, &se) {
			fmt.Fprintf(e.stderr, "troupe: %v\n", e.specProblems(path, se))
			return exitUsage
		}
		fmt.Fprintf(e.stderr, "troupe: %v\n", err)
		return exitAborted
	}
	r, err := actors.Start(ctx, p)
	if err != nil {
		fmt.Fprintf(e.stderr, "troupe: cannot start %s: %v\n", s.Name, err)
		return exitAborted
	}

	mode := o.progress
	if mode == "auto" {
		mode = "plain"
		if isTerminal(e.stderr) {
			mode = "bar"
		}
	}
	prog := startProgress(mode, e.stderr, r.Progress, plainInterval)
	sum, werr := r.Wait()
	prog.stop(sum)

	writeTable(e.stderr, sum)
	for _, note := range builtinNotes(s) {
		fmt.Fprintln(e.stderr, note)
	}
	status, code := outcome(sum)
	if o.summaryJSON != "" {
		if err := writeSummaryJSON(o.summaryJSON, s.Name, sum, status, werr); err != nil {
			fmt.Fprintf(e.stderr, "troupe: %v\n", err)
			if code == exitOK || code == exitDeadLetters {
				code = exitAborted
			}
		}
	}
	switch status {
	case "aborted":
		fmt.Fprintf(e.stderr, "troupe: run aborted: %v\n", werr)
	case "incomplete":
		fmt.Fprintf(e.stderr, "troupe: stopped with %d records incomplete (not drained in time)\n", sum.InFlight)
	case "interrupted":
		fmt.Fprintf(e.stderr, "troupe: interrupted after %d records; every record read reached its end\n", sum.RecordsIn)
	case "dead_letters":
		where := ""
		if s.DeadLetter != nil {
			where = " (" + s.DeadLetter.Path + ")"
		}
		fmt.Fprintf(e.stderr, "troupe: %d records went to dead letters%s\n", sum.DeadLetters, where)
	}
	return code
}

// outcome is a finished run's status for the summary and its exit code, from the Summary's
// outcome: ok (0), dead_letters (3), interrupted (1), incomplete (1: an interrupted or aborted
// run that left records unfinished but no other error), aborted (1).
func outcome(sum troupe.Summary) (string, int) {
	switch sum.Outcome {
	case troupe.OutcomeCompleted:
		return "ok", exitOK
	case troupe.OutcomeDeadLetters:
		return "dead_letters", exitDeadLetters
	case troupe.OutcomeInterrupted:
		if sum.InFlight > 0 {
			return "incomplete", exitAborted
		}
		return "interrupted", exitAborted
	}
	return "aborted", exitAborted
}
