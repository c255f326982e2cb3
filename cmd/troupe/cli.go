package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"

	"github.com/spf13/cobra"

	"github.com/troupe-dev/troupe/ipc"
	"github.com/troupe-dev/troupe/plugins/scaffold"
	"github.com/troupe-dev/troupe/spec"
	"github.com/troupe-dev/troupe/stages/imgconv"
)

// Exit statuses.
const (
	exitOK          = 0
	exitAborted     = 1 // the run was aborted or interrupted, or could not start
	exitUsage       = 2 // invalid spec or command line
	exitDeadLetters = 3 // finished, but some records went to dead letters
)

// exitError ends a command with a status. Its message, if any, has not been printed yet.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

// usageError marks command-line mistakes found by cobra or by the commands.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }

// env is what the commands read and write: the process's streams, or a test's.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr *lockedWriter // safe for concurrent use; knows when a progress bar holds the line
	log    logOptions
	// termWidth is the terminal's width for the progress bar; nil reads stderr's terminal.
	termWidth func() int
}

// lockedWriter serialises writes from the progress reporter, the logger and the commands. While
// a progress bar holds the last line (see holdLine in report.go), a write first erases the bar,
// so that the message gets a line of its own, and the bar is drawn again below it.
type lockedWriter struct {
	mu  sync.Mutex
	w   io.Writer
	bar string // the bar drawn on the current line, without a newline; "" when none
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bar == "" {
		return l.w.Write(p)
	}
	if _, err := io.WriteString(l.w, eraseLine); err != nil {
		return 0, err
	}
	n, err := l.w.Write(p)
	if err == nil && len(p) > 0 && p[len(p)-1] == '\n' {
		_, _ = io.WriteString(l.w, l.bar)
	} else {
		l.bar = "" // the message left the line unfinished: the next tick draws the bar anew
	}
	return n, err
}

// run runs the troupe command line args and returns the exit status. Cancelling ctx stops a
// running pipeline gracefully.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	lw, ok := stderr.(*lockedWriter) // main's: its signal messages share the bar's line discipline
	if !ok {
		lw = &lockedWriter{w: stderr}
	}
	e := &env{stdin: stdin, stdout: stdout, stderr: lw}
	root := e.rootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(e.stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var xe *exitError
	if errors.As(err, &xe) {
		if xe.err != nil {
			fmt.Fprintf(e.stderr, "troupe: %v\n", xe.err)
		}
		return xe.code
	}
	// Anything else is a command-line mistake reported by cobra (unknown command or flag,
	// wrong number of arguments) or by a command.
	fmt.Fprintf(e.stderr, "troupe: %v\nRun 'troupe --help' for usage.\n", err)
	return exitUsage
}

func (e *env) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "troupe",
		Short: "Fault-tolerant local parallel processing: pipelines of supervised stages",
		Long: `troupe runs pipelines described in YAML specs: records flow from a source through
stages (in-process builtins or plugin processes) to a sink, under a supervision tree
that restarts what fails and sends records that keep failing to dead letters.

Exit status: 0 every record reached the sink; 1 the run was aborted or interrupted;
2 the spec or the command line is invalid; 3 some records went to dead letters.`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	e.log.flags(root)
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error { return e.log.check(cmd) }
	root.AddCommand(e.runCmd(), e.validateCmd(), e.builtinsCmd(), e.versionCmd(), e.pluginsCmd(), e.benchCmd(), e.serveCmd(), e.nodeCmd())
	return root
}

func (e *env) validateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate SPEC",
		Short: "Check a spec and report every problem in it",
		Long: `Check a spec and report every problem in it, each as FILE:LINE:COL: message: its
text, and what a run needs from the world (the same check 'troupe run' makes before it starts):
plugin programs exist, are executable and match their sha256; the source exists; the sink
and dead-letter file can be created; no output overwrites the input, another output, or is
read back as input. Nothing is opened for writing or created.

Exit status: 0 the spec is valid; 2 it is not.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := e.loadSpec(args[0])
			if err != nil {
				return err
			}
			if err := s.Check(); err != nil {
				return e.specProblems(args[0], err)
			}
			n := len(s.Stages)
			plural := "s"
			if n == 1 {
				plural = ""
			}
			fmt.Fprintf(e.stdout, "ok: %d stage%s\n", n, plural)
			return nil
		},
	}
}

// loadSpec loads a spec, printing its problems; a failure is an exitError with status 2.
func (e *env) loadSpec(path string) (*spec.Spec, error) {
	s, err := spec.Load(path)
	if err == nil {
		return s, nil
	}
	var se *spec.SpecError
	if errors.As(err, &se) {
		return nil, e.specProblems(path, se)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &exitError{code: exitUsage, err: fmt.Errorf("spec %s not found", path)}
	}
	return nil, &exitError{code: exitUsage, err: err}
}

// specProblems prints each problem of a *SpecError (from spec.Load or Spec.Check) on its own
// line and returns an exitError with status 2 counting them. Any other error is returned as an
// exitError with status 2 as it is.
func (e *env) specProblems(path string, err error) error {
	var se *spec.SpecError
	if !errors.As(err, &se) {
		return &exitError{code: exitUsage, err: err}
	}
	for _, pe := range se.Errors {
		fmt.Fprintln(e.stderr, pe.Error())
	}
	n := len(se.Errors)
	plural := "s"
	if n == 1 {
		plural = ""
	}
	return &exitError{code: exitUsage, err: fmt.Errorf("%s: %d problem%s", path, n, plural)}
}

func (e *env) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print troupe's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintln(e.stdout, versionString())
			return nil
		},
	}
}

// versionString is the module version (with the VCS revision when the binary was built from a
// checkout), the plugin protocol version plugins must speak, the Go version, and the image codec
// the imgconv builtin uses (libjpeg-turbo and libpng with cgo, pure Go without).
func versionString() string {
	version, rev, dirty := "(unknown)", "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	out := "troupe " + version
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		out += " (" + rev
		if dirty {
			out += ", modified"
		}
		out += ")"
	}
	return fmt.Sprintf("%s, plugin protocol %s, %s %s/%s, image codec: %s", out, ipc.ProtocolVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH, imgconv.Codec())
}

func (e *env) pluginsCmd() *cobra.Command {
	plugins := &cobra.Command{
		Use:   "plugins",
		Short: "Work with plugin stages",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return &usageError{errors.New("plugins: missing subcommand (try 'troupe plugins new NAME')")}
		},
	}
	var troupeSrc, module string
	newCmd := &cobra.Command{
		Use:   "new NAME [DIR]",
		Short: "Create a new plugin project (in DIR, default ./NAME) that builds where it is created",
		Long: `Create a plugin project in DIR (default ./NAME): a Go module whose go.mod requires
github.com/troupe-dev/troupe and, since that module is not published, replaces it with a local
troupe source tree: --troupe-src DIR, else the tree this troupe was built from, else the one
containing the working directory. It then runs 'go mod tidy' there when a go tool is on PATH.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, dir := args[0], args[0]
			if len(args) == 2 {
				dir = args[1]
			}
			src, how, err := scaffold.FindSource(troupeSrc)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			if err := scaffold.Generate(name, dir, scaffold.Options{Source: src, Module: module}); err != nil {
				return &exitError{code: exitAborted, err: err}
			}
			fmt.Fprintf(e.stdout, "created plugin %s in %s (troupe from %s: %s)\n", name, filepath.Clean(dir), how, src)
			ran, err := scaffold.Tidy(cmd.Context(), dir)
			if err != nil {
				return &exitError{code: exitAborted, err: fmt.Errorf("%w\nthe files are written; fix the cause and run 'go mod tidy' in %s", err, dir)}
			}
			if !ran {
				fmt.Fprintln(e.stdout, "no go tool on PATH: go.mod and go.sum hold all of troupe's requirements (run 'go mod tidy' later to trim them)")
			}
			fmt.Fprintf(e.stdout, "next: cd %s && go build -o bin/%s . && go test . && troupe run pipeline.yaml\n", filepath.Clean(dir), name)
			return nil
		},
	}
	newCmd.Flags().StringVar(&troupeSrc, "troupe-src", "", "troupe's source tree to build the plugin against (default: found)")
	newCmd.Flags().StringVar(&module, "module", "", "the new module's path (default NAME)")
	plugins.AddCommand(newCmd)
	return plugins
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	if lw, ok := w.(*lockedWriter); ok {
		w = lw.w
	}
	f, ok := w.(*os.File)
	return ok && termIsTerminal(int(f.Fd()))
}
