package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/spec"
	"github.com/troupe-dev/troupe/supervisor"
)

var (
	termIsTerminal = term.IsTerminal
	termGetSize    = term.GetSize
)

// runOptions are the flags of `troupe run`.
type runOptions struct {
	summaryJSON  string
	progress     string
	drainTimeout time.Duration
	verbose      bool
	journal      string
	retryDead    bool
	admin        adminOptions // admin.go
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

With a journal (--journal FILE, or journal: {path: FILE} in the spec), every source record
whose outcome is final is recorded once the outputs hold it on disk; run again with the same
journal after a crash or kill, troupe skips what the journal records and does the rest.

Exit status: 0 every record reached the sink; 1 the run was aborted or interrupted, or
could not start; 2 the spec is invalid; 3 some records went to dead letters.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch o.progress {
			case "auto", "bar", "plain", "none":
			default:
				return &usageError{fmt.Errorf("--progress: want auto, bar, plain or none, got %q", o.progress)}
			}
			if err := o.admin.check(); err != nil {
				return &usageError{err}
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
	f.StringVar(&o.journal, "journal", "", "keep a journal of the finished records in `FILE` (overrides the spec's journal); a run with the same journal skips them")
	f.BoolVar(&o.retryDead, "retry-dead-letters", false, "with a journal: retry the records earlier runs sent to the dead letters")
	o.admin.flags(cmd)
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
	runID := newRunID()
	logger := e.log.logger(e.stderr, runID, o.verbose)
	if o.journal != "" {
		abs, err := filepath.Abs(o.journal)
		if err != nil {
			fmt.Fprintf(e.stderr, "troupe: --journal: %v\n", err)
			return exitUsage
		}
		s.Journal = &spec.JournalSpec{Path: abs}
	}
	if s.Journal != nil && s.Source.Lines != nil && s.Source.Lines.Path == "-" {
		fmt.Fprintf(e.stderr, "troupe: journal %s: the source is standard input, which cannot be resumed (it cannot be read again): read a file instead\n", s.Journal.Path)
		return exitUsage
	}
	if o.retryDead && s.Journal == nil {
		fmt.Fprintf(e.stderr, "troupe: --retry-dead-letters needs a journal (--journal FILE, or journal: in the spec)\n")
		return exitUsage
	}
	p, err := s.Pipeline(spec.BuildOptions{
		Stdin:        e.stdin,
		Stdout:       e.stdout,
		Logger:       logger,
		DrainTimeout: o.drainTimeout,
		Events: func(ev supervisor.Event) {
			args := []any{"path", ev.Path, "kind", ev.Kind.String(), "restarts", ev.Restarts}
			if ev.Reason != nil {
				args = append(args, "reason", ev.Reason.Error())
			}
			logger.Info("supervision", append(pathAttrs(ev.Path), args...)...)
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
	if p.Journal != nil {
		p.Journal.RetryDeadLetters = o.retryDead
	}
	r, err := actors.Start(ctx, p)
	if err != nil {
		fmt.Fprintf(e.stderr, "troupe: cannot start %s: %v\n", s.Name, err)
		if errors.Is(err, actors.ErrJournalMismatch) {
			return exitUsage
		}
		return exitAborted
	}
	stopAdmin, err := e.startAdmin(o.admin, r, logger)
	if err != nil {
		fmt.Fprintf(e.stderr, "troupe: %v\n", err)
		r.Stop()
		r.Wait()
		return exitAborted
	}

	mode := o.progress
	if mode == "auto" {
		mode = "plain"
		if isTerminal(e.stderr) {
			mode = "bar"
		}
	}
	width := e.termWidth
	if width == nil {
		width = terminalWidth(e.stderr)
	}
	prog := startProgress(mode, e.stderr, r.Progress, plainInterval, width)
	sum, werr := r.Wait()
	prog.stop(sum)
	adminErr := stopAdmin()

	writeTable(e.stderr, sum)
	status, code := outcome(sum, werr)
	if o.summaryJSON != "" {
		if err := writeSummaryJSON(o.summaryJSON, s.Name, runID, sum, status, werr); err != nil {
			fmt.Fprintf(e.stderr, "troupe: %v\n", err)
			if code == exitOK || code == exitDeadLetters {
				code = exitAborted
			}
		}
	}
	if adminErr != nil {
		fmt.Fprintf(e.stderr, "troupe: %v\n", adminErr)
		if code == exitOK || code == exitDeadLetters {
			code = exitAborted
		}
	}
	switch status {
	case "aborted":
		printError(e.stderr, "run aborted: ", werr)
	case "incomplete":
		// The count is the table's (its "unfinished").
		t := o.drainTimeout
		if t == 0 {
			t = actors.DefaultDrainTimeout
		}
		fmt.Fprintf(e.stderr, "troupe: interrupted: %s unfinished (not drained within the drain timeout, %s)\n", records(sum.InFlight), t)
	case "interrupted":
		fmt.Fprintf(e.stderr, "troupe: interrupted after %s; every record read reached its end\n", records(sum.RecordsIn))
	case "dead_letters":
		where := ""
		if s.DeadLetter != nil {
			where = " (" + s.DeadLetter.Path + ")"
		}
		fmt.Fprintf(e.stderr, "troupe: %s went to dead letters%s\n", records(sum.DeadLetters), where)
	}
	return code
}

// outcome is a finished run's status for the summary and its exit code, from the Summary's
// outcome and the run's error: ok (0), dead_letters (3), interrupted (1), incomplete (1: an
// interrupted run that left records unfinished, not drained within the drain timeout, but no
// other error), aborted (1).
func outcome(sum troupe.Summary, werr error) (string, int) {
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
	case troupe.OutcomeAborted:
		if onlyDrainTimeout(werr) {
			return "incomplete", exitAborted
		}
	}
	return "aborted", exitAborted
}

// onlyDrainTimeout reports whether err says that a stop could not drain in time, and nothing
// else went wrong (the interruption itself aside).
func onlyDrainTimeout(err error) bool {
	if !errors.Is(err, actors.ErrDrainTimeout) {
		return false
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		if !errors.Is(e, actors.ErrDrainTimeout) && !errors.Is(e, context.Canceled) && !errors.Is(e, context.DeadlineExceeded) {
			return false
		}
	}
	return true
}

// records says "1 record" or "N records".
func records(n int64) string {
	if n == 1 {
		return "1 record"
	}
	return strconv.FormatInt(n, 10) + " records"
}

// printError prints err on stderr in the command's style: each line of it "troupe: "-prefixed
// (the first after prefix), lines that continue the one before (indented) as they are.
func printError(w io.Writer, prefix string, err error) {
	var b strings.Builder
	for i, line := range strings.Split(err.Error(), "\n") {
		switch {
		case i == 0:
			b.WriteString("troupe: " + prefix + line + "\n")
		case strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t"):
			b.WriteString(line + "\n")
		default:
			b.WriteString("troupe: " + line + "\n")
		}
	}
	_, _ = io.WriteString(w, b.String())
}

// pathAttrs returns the log attributes stage and worker for a path of the supervision tree,
// "PIPELINE/STAGE/.../worker-N" (worker is the worker's index, N-1, as in the runtime's and
// the plugin host's lines); none for the paths of neither.
func pathAttrs(path string) []any {
	parts := strings.Split(path, "/")
	if len(parts) < 2 || parts[1] == "source" || parts[1] == "collector" {
		return nil
	}
	attrs := []any{"stage", parts[1]}
	for _, p := range parts[2:] {
		if n, err := strconv.Atoi(strings.TrimPrefix(p, "worker-")); err == nil && strings.HasPrefix(p, "worker-") && n > 0 {
			attrs = append(attrs, "worker", n-1)
		}
	}
	return attrs
}
