package spec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/plugins"
	"github.com/troupe-dev/troupe/stages"
	"github.com/troupe-dev/troupe/supervisor"
)

// BuildOptions are what Spec.Pipeline needs from its caller beyond the spec.
type BuildOptions struct {
	// Stdin is read by a lines source whose path is "-"; nil means os.Stdin.
	Stdin io.Reader
	// Stdout receives a lines sink whose path is "-"; nil means os.Stdout.
	Stdout io.Writer
	// Logger receives the runtime's and the plugins' logs; nil discards them.
	Logger *slog.Logger
	// Events, if set, receives every supervision event of the run's tree.
	Events func(supervisor.Event)
	// DrainTimeout bounds how long a stop waits for records in flight; 0 is the runtime's
	// default.
	DrainTimeout time.Duration
}

// Pipeline checks the spec against the world (Check), then opens the spec's source, sink and
// dead-letter output, makes its stages and returns the pipeline, ready to Start or Run. What
// Check finds is a *SpecError listing every problem, and nothing has been opened or created
// then; a later failure is a *PosError at the spec value it comes from (the source that cannot
// be opened, the builtin that fails to start). When Pipeline fails, whatever it had opened or
// started is closed before it returns: files, and plugin stages' warm spare processes. The
// pipeline's source, sinks and spares are closed by its run.
func (s *Spec) Pipeline(o BuildOptions) (*troupe.Pipeline, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	stdin, stdout := o.Stdin, o.Stdout
	if stdin == nil {
		stdin = os.Stdin
	}
	if stdout == nil {
		stdout = os.Stdout
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &troupe.Pipeline{
		Name:         s.Name,
		Order:        s.order(),
		Supervision:  s.Supervision.Flags(),
		DrainTimeout: o.DrainTimeout,
		Logger:       o.Logger,
		Events:       o.Events,
	}
	// What is open or running so far, closed in reverse order if the build fails: files, and the
	// stages' cleanups (a plugin stage's pool of warm spares).
	var opened []func() error
	fail := func(pos Pos, err error, what string) (*troupe.Pipeline, error) {
		for i := len(opened) - 1; i >= 0; i-- {
			_ = opened[i]()
		}
		return nil, &PosError{Pos: pos, Msg: fmt.Sprintf("%s: %v", what, err), Err: err}
	}

	for i := range s.Stages {
		st := &s.Stages[i]
		stage, err := st.build(logger)
		if err == nil && st.Placement == "cluster" {
			stage, err = s.clusterStage(st, stage, logger)
		}
		if err != nil {
			pos := s.pos(st.At, "options")
			if st.Plugin != nil {
				pos = s.pos(st.At, "plugin")
			}
			return fail(pos, err, "stage "+st.Name)
		}
		p.Stages = append(p.Stages, stage)
		if stage.Cleanup != nil {
			opened = append(opened, stage.Cleanup)
		}
	}

	var err error
	switch src := s.Source; {
	case src.Files != nil:
		p.Source, err = actors.NewFilesSource(src.Files.Dir, src.Files.Glob, src.Files.Recursive)
	case src.Lines != nil:
		p.Source, err = actors.NewLinesSource(src.Lines.Path, stdin)
	case src.Range != nil:
		p.Source = actors.NewRangeSource(src.Range.Count, int(src.Range.Size))
	default:
		err = fmt.Errorf("no source kind set")
	}
	if err != nil {
		return fail(s.pos(s.Source.At, ""), err, "source")
	}
	opened = append(opened, p.Source.Close)

	switch sk := s.Sink; {
	case sk.Files != nil:
		p.Sink, err = actors.NewFilesSink(sk.Files.Dir, sk.Files.Ext)
	case sk.Lines != nil:
		p.Sink, err = actors.NewLinesSink(sk.Lines.Path, stdout)
	case sk.Discard != nil:
		p.Sink = actors.NewDiscardSink()
	default:
		err = fmt.Errorf("no sink kind set")
	}
	if err != nil {
		return fail(s.pos(s.Sink.At, ""), err, "sink")
	}
	opened = append(opened, p.Sink.Close)

	if dl := s.DeadLetter; dl != nil {
		p.DeadLetters, err = actors.NewJSONLDeadLetters(dl.Path)
		if err != nil {
			return fail(s.pos(dl.At, "path"), err, "dead_letter")
		}
		opened = append(opened, p.DeadLetters.Close)
	}
	if j := s.Journal; j != nil {
		p.Journal = &troupe.Journal{Path: j.Path}
	}
	return p, nil
}

// poolCloseTimeout bounds killing a stage's warm spares at the end of a run.
const poolCloseTimeout = 10 * time.Second

// build makes the runtime's Stage for st.
func (st *StageSpec) build(logger *slog.Logger) (troupe.Stage, error) {
	stage := troupe.Stage{
		Name:        st.Name,
		Workers:     st.Workers,
		Credits:     st.Credits,
		CreditBytes: int(st.CreditBytes),
		Attempts:    st.Attempts,
		Timeout:     st.Timeout,
		Options:     st.Options,
		Restart:     st.Restart.Restart(),
	}
	switch {
	case st.Plugin != nil:
		// Spec.Check has checked the program (Spec.Pipeline runs it before building).
		cfg := st.PluginConfig()
		cfg.Logger = logger
		if cfg.Spares == 0 {
			f, err := cfg.Factory()
			if err != nil {
				return stage, err
			}
			stage.Backend = f
			break
		}
		pool, err := plugins.NewPool(cfg)
		if err != nil {
			return stage, err
		}
		stage.Backend = pool.Factory()
		stage.Cleanup = func() error {
			ctx, cancel := context.WithTimeout(context.Background(), poolCloseTimeout)
			defer cancel()
			return pool.Close(ctx)
		}
	case st.Builtin != "":
		b, ok := stages.Lookup(st.Builtin)
		if !ok {
			return stage, errors.New(unknownBuiltin(st.Builtin))
		}
		// Parse has checked the options where the spec wrote them; they are read again here as
		// the stage now has them (a program may have changed them since).
		opts, err := b.OptionsFromMap(st.Options)
		if err != nil {
			return stage, fmt.Errorf("builtin %s: %w", st.Builtin, err)
		}
		stage.Func, stage.Reduce, err = b.Make(opts)
		if stage.Reduce != nil {
			stage.Workers = 1
			stage.Combine = b.Combine
		}
		if err != nil {
			return stage, fmt.Errorf("builtin %s: %w", st.Builtin, err)
		}
	default:
		return stage, fmt.Errorf("neither builtin nor plugin set")
	}
	return stage, nil
}
