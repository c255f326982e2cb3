package actors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/supervisor"
)

const (
	// maxStartFailures is how many times in a row a stage's workers may fail to start before
	// the run gives up (a plugin that cannot start at all should not be retried forever).
	maxStartFailures = 5
	// backendWorkerShutdown leaves Backend.Close its own deadline and a margin.
	backendWorkerShutdown = backendCloseTimeout + 2*time.Second
	// treeStopTimeout bounds the ordered shutdown at the end of a run. Every child's stop is
	// bounded already; this is the last line against a bug leaving a run unable to end.
	treeStopTimeout = time.Minute
)

// run is the state of one run, shared by its actors. What must survive the restart of an actor
// (the source's window, the collector's books, reduce aggregates) lives here.
type run struct {
	p      *troupe.Pipeline
	ctx    context.Context // handed to stage Funcs; cancelled when the run ends
	cancel context.CancelFunc
	system *actor.ActorSystem
	disp   *dispatcher // runs the run's own actors (see dispatcher)
	log    *slog.Logger
	start  time.Time
	name   string // the root supervisor's, and so the first element of every path in the tree

	stats  counters
	obs    observer // what Job.Snapshot and Job.Subscribe show (observe.go)
	stages []*stageRun
	src    *sourceState
	col    *collectorState
	total  int64
	// journal is the run's journal (Pipeline.Journal), nil without one.
	journal *journal
	// The PIDs the supervisor hands over as the tree starts (see startTree). A PID stays valid
	// across restarts, so the first one is kept. The collector starts first and its PID is
	// set before anything that reads it starts; the source starts last, after the actors that
	// send to it, hence the atomic.
	source    atomic.Pointer[actor.PID]
	collector *actor.PID
	root      *supervisor.Supervisor
	unsub     func()
	// parent, when set (StartUnder), is where the run's tree starts: a temporary child of
	// parent.Supervisor in parent.System, which the run must not shut down.
	parent *Parent
	// stopping is set when the run stops its own tree (shutdown): its end is then expected.
	stopping atomic.Bool
	// spareBatches holds records' slices of batches taken apart, for the distributors' next
	// batches (see batchSlice).
	spareBatches chan []*envelope

	mu sync.Mutex

	finished   chan struct{} // closed when every record is complete
	finishOnce sync.Once
	aborted    chan struct{} // closed by fail
	failOnce   sync.Once
	err        error

	endedCh  chan struct{} // closed when the run has ended and summary and waitErr are set
	summary  troupe.Summary
	waitErr  error
	stopReq  chan struct{}
	stopOnce sync.Once
	// interrupted is why the run was stopped before the end of its input (ctx's error, or
	// context.Canceled for Run.Stop); nil when it was not. Set by watch before shutdown.
	interrupted error
}

// stageRun is one stage of a run: its settings with defaults applied, its figures, its place
// in the tree.
type stageRun struct {
	cfg        troupe.Stage
	index      int
	counters   stageCounters
	path       string                    // the stage's supervisor (or, for reduce, its actor)
	distPID    *actor.PID                // its distributor (or reducer): set when it first starts, before its workers
	workersPID atomic.Pointer[actor.PID] // set once its workers have started
	next       *actor.PID                // where its outputs go: set before the stage starts
	reduce     *reduceState
	obs        stageObs // see observe.go
	// combineFold is the next stage's fold when it is a reduce stage with a Combine: this
	// stage's workers fold their outputs with it (see combine).
	combineFold troupe.ReduceFunc
	// spareOutputs hands the outputs' slices of a Func or Backend stage's results back from
	// its distributor, once it has taken the outputs into envelopes, to its workers (see
	// funcWorker.newResults, stageRun.toResults): the slices are not garbage made per batch.
	spareOutputs chan []troupe.Record
	// spareCounts does the same for the results' counts (see takeCounts).
	spareCounts chan []uint32

	startFailures atomic.Int32
	pre           prestarts // the first incarnations of its backend workers (see prestart.go)
}

func newRun(p *troupe.Pipeline, parent *Parent) (*run, error) {
	if p.Source == nil {
		return nil, errors.New("pipeline: no source")
	}
	if p.Sink == nil {
		return nil, errors.New("pipeline: no sink")
	}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	name := p.Name
	if name == "" {
		name = "pipeline"
	}
	name = strings.ReplaceAll(name, "/", "_")
	if parent != nil {
		// The tree's root is a child of parent.Supervisor: its PID id, and so every path in the
		// tree, starts with the parent's.
		name = parent.Supervisor.PID().Id + "/" + strings.ReplaceAll(parent.Name, "/", "_")
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{
		p: p, ctx: ctx, cancel: cancel, log: log, start: time.Now(), name: name,
		finished: make(chan struct{}), aborted: make(chan struct{}), stopReq: make(chan struct{}),
		endedCh: make(chan struct{}),
		total:   -1,
		parent:  parent,
	}
	r.spareBatches = make(chan []*envelope, 4*len(p.Stages)+4)
	if s, ok := p.Source.(troupe.Sized); ok {
		if n, known := s.Total(); known {
			r.total = n
		}
	}
	seen := map[string]bool{}
	window, windowBytes, workers := 0, 0, 0
	for i, s := range p.Stages {
		if err := checkStage(&s); err != nil {
			cancel()
			return nil, fmt.Errorf("pipeline: stage %d (%q): %w", i+1, s.Name, err)
		}
		if seen[s.Name] {
			cancel()
			return nil, fmt.Errorf("pipeline: two stages are named %q", s.Name)
		}
		seen[s.Name] = true
		st := &stageRun{cfg: s, index: i, path: name + "/" + s.Name}
		if s.Func != nil || s.Backend != nil {
			st.spareOutputs = make(chan []troupe.Record, 2*s.Workers+2)
			st.spareCounts = make(chan []uint32, 2*s.Workers+2)
		}
		if s.Reduce != nil {
			st.reduce = newReduceState()
		}
		r.stages = append(r.stages, st)
		window += s.Workers * s.Credits
		windowBytes += s.Workers * s.CreditBytes
		workers += s.Workers
	}
	if window == 0 {
		window, windowBytes = DefaultCredits*4, DefaultCreditBytes*4
	}
	for i, st := range r.stages {
		st.combineFold = combineWith(r.stages, i)
	}
	if p.Journal != nil {
		j, err := openRunJournal(p, log)
		if err != nil {
			cancel()
			return nil, err
		}
		r.journal = j
	}
	if parent != nil {
		r.system = parent.System
	} else {
		r.system = NewSystem()
	}
	r.disp = newDispatcher(actor.NewDefaultDispatcher(0).Throughput())
	r.col = newCollectorState(p)
	r.src = &sourceState{window: window, windowBytes: windowBytes, minFlight: workers + 1, unread: map[uint64]string{}}
	// The reader starts when the source actor has (see startTree): it delivers to its PID.
	r.src.reader = newReader(p.Source, sourceBatch(window))
	r.src.reader.slices = r.batchSlice
	if h, ok := p.Source.(sizeHinter); ok {
		r.src.hint = max(0, h.sizeHint())
	}
	r.initObs()
	if r.journal != nil {
		r.src.keys = map[uint64]string{}
		r.src.reader.resume = p.Source.(troupe.Resumable)
		r.src.reader.isDone = r.journal.isDone
		r.journal.start(func(err error) { r.fail(err) })
	}
	return r, nil
}

// openRunJournal opens a pipeline's journal, checks that the pipeline can keep one, tells the
// source what is done, and cuts the appending outputs back to where the journal left them.
func openRunJournal(p *troupe.Pipeline, log *slog.Logger) (*journal, error) {
	for _, s := range p.Stages {
		if s.Reduce != nil {
			return nil, fmt.Errorf("pipeline: journal %s: stage %s is a reduce stage, whose aggregates a journal cannot keep (a resumed run would emit aggregates of what is left only); run it without a journal", p.Journal.Path, s.Name)
		}
	}
	rs, ok := p.Source.(troupe.Resumable)
	if !ok {
		return nil, fmt.Errorf("pipeline: journal %s: the source (%T) cannot be resumed: it does not implement troupe.Resumable", p.Journal.Path, p.Source)
	}
	j, err := openJournal(p.Journal, rs.Fingerprint(), log)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	fail := func(err error) (*journal, error) {
		_ = j.close(false)
		return nil, fmt.Errorf("pipeline: journal %s: %w", p.Journal.Path, err)
	}
	if err := rs.Resume(j.isDone); err != nil {
		return fail(err)
	}
	if err := resumeOutput(p.Sink, j.sinkPos, "sink", log); err != nil {
		return fail(err)
	}
	if p.DeadLetters != nil {
		if err := resumeOutput(p.DeadLetters, j.deadPos, "dead letters", log); err != nil {
			return fail(err)
		}
	}
	if len(j.prior) > 0 {
		log.Info("resuming from the journal", "journal", p.Journal.Path, "records_done", len(j.prior))
	}
	return j, nil
}

// checkStage validates a stage and fills in its defaults.
func checkStage(s *troupe.Stage) error {
	if s.Name == "" {
		return errors.New("no name")
	}
	if strings.ContainsAny(s.Name, "/ ") || s.Name == "source" || s.Name == "collector" {
		return fmt.Errorf("invalid name %q (no '/' or spaces; 'source' and 'collector' are taken)", s.Name)
	}
	kinds := 0
	for _, set := range []bool{s.Func != nil, s.Reduce != nil, s.Backend != nil} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		return errors.New("exactly one of Func, Reduce and Backend must be set")
	}
	if s.Combine != nil && s.Reduce == nil {
		return errors.New("Combine is for a reduce stage: Reduce must be set with it")
	}
	if s.Workers < 0 || s.Credits < 0 || s.CreditBytes < 0 || s.Attempts < 0 || s.Timeout < 0 {
		return errors.New("workers, credits, credit bytes, attempts and timeout must not be negative")
	}
	if s.Workers == 0 {
		s.Workers = runtime.NumCPU()
	}
	if s.Reduce != nil {
		s.Workers = 1
	}
	if s.Credits == 0 {
		s.Credits = DefaultCredits
		if s.Backend != nil && s.Func == nil {
			s.Credits = DefaultBackendCredits
		}
	}
	if s.CreditBytes == 0 {
		s.CreditBytes = DefaultCreditBytes
	}
	if s.Attempts == 0 {
		s.Attempts = DefaultAttempts
	}
	if s.Restart.Intensity == 0 {
		s.Restart.Intensity = DefaultRestart.Intensity
	}
	if s.Restart.Period == 0 {
		s.Restart.Period = DefaultRestart.Period
	}
	if s.Restart.Backoff == (supervisor.Backoff{}) {
		s.Restart.Backoff = DefaultRestart.Backoff
	}
	f := supervisor.Flags{Strategy: supervisor.OneForOne, Intensity: s.Restart.Intensity, Period: s.Restart.Period, Backoff: s.Restart.Backoff}
	if err := f.Validate(); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	return nil
}

func workerName(i int) string { return fmt.Sprintf("worker-%d", i+1) }

// startTree builds the supervision tree and starts it: the collector first and the source last,
// so that everything is listening before records flow, and so that an ordered shutdown (reverse
// order) stops the source first and the collector last. Each actor's PID is taken from the
// supervisor as it starts (OnStart); as a receiver starts before its senders, a sender's start
// function finds its receiver's PID set.
func (r *run) startTree() error {
	r.prestartBackends()
	flags := r.p.Supervision
	if flags == (supervisor.Flags{}) {
		flags = supervisor.Flags{Strategy: supervisor.OneForOne, Intensity: 10, Period: time.Minute}
	}
	spec := supervisor.Spec{Name: r.name, Flags: flags}
	spec.Children = append(spec.Children, supervisor.ChildSpec{
		Name: "collector",
		Start: func() (*actor.Props, error) {
			return r.props(func() actor.Actor { return &collector{run: r, c: r.col} }, counted(&r.obs.sinkMailbox)), nil
		},
		OnStart: func(pid *actor.PID, _ int) {
			if r.collector == nil {
				r.collector = pid
				if len(r.stages) > 0 {
					r.stages[len(r.stages)-1].next = pid
				}
			}
		},
	})
	for i := len(r.stages) - 1; i >= 0; i-- {
		spec.Children = append(spec.Children, r.stageChild(r.stages[i]))
	}
	spec.Children = append(spec.Children, supervisor.ChildSpec{
		Name: "source",
		Start: func() (*actor.Props, error) {
			first := r.collector
			if len(r.stages) > 0 {
				first = r.stages[0].distPID
			}
			return r.props(func() actor.Actor {
				return &sourceActor{run: r, st: r.src, next: first, batch: sourceBatch(r.src.window)}
			}, counted(&r.obs.sourceMailbox)), nil
		},
		OnStart: func(pid *actor.PID, _ int) {
			if r.source.CompareAndSwap(nil, pid) {
				r.src.reader.start(func(m sourceRead) { r.system.Root.Send(pid, m) })
			}
		},
	})
	r.unsub = supervisor.Subscribe(r.system, r.event)
	var root *supervisor.Supervisor
	var err error
	if r.parent != nil {
		root, err = r.startUnder(spec)
	} else {
		root, err = supervisor.Start(r.system, spec)
	}
	if err != nil {
		r.unsub()
		return fmt.Errorf("pipeline %s: %w", spec.Name, err)
	}
	r.root = root
	return nil
}

// sourceBatch is how many records the source asks its reader for at a time.
func sourceBatch(window int) int { return max(1, min(maxSourceBatch, window/4)) }

// maxSourceBatch bounds the records a source is asked for at a time.
const maxSourceBatch = 1024

// stageChild is a stage's subtree: for a reduce stage one actor; otherwise a rest_for_one
// supervisor over the distributor and a one_for_one supervisor of the workers, so that a worker
// that dies restarts alone, and a distributor that dies restarts its workers with it.
func (r *run) stageChild(st *stageRun) supervisor.ChildSpec {
	rs := st.cfg.Restart
	if st.reduce != nil {
		return supervisor.ChildSpec{Name: st.cfg.Name, Start: func() (*actor.Props, error) {
			return r.props(func() actor.Actor { return &reducer{run: r, st: st} }, counted(&st.obs.mailbox)), nil
		}, OnStart: r.distStarted(st)}
	}
	workers := supervisor.Spec{Name: "workers", Flags: supervisor.Flags{Strategy: supervisor.OneForOne, Intensity: rs.Intensity, Period: rs.Period, Backoff: rs.Backoff}}
	for i := 0; i < st.cfg.Workers; i++ {
		workers.Children = append(workers.Children, r.workerChild(st, i))
	}
	stage := supervisor.Spec{Name: st.cfg.Name, Flags: supervisor.Flags{Strategy: supervisor.RestForOne, Intensity: rs.Intensity, Period: rs.Period, Backoff: rs.Backoff}}
	stage.Children = []supervisor.ChildSpec{
		{Name: "dist", Start: func() (*actor.Props, error) {
			return r.props(func() actor.Actor { return newDistributor(r, st) }, counted(&st.obs.mailbox)), nil
		}, OnStart: r.distStarted(st)},
		workers.Child(supervisor.Permanent),
	}
	stage.Children[1].OnStart = func(pid *actor.PID, _ int) { st.workersPID.CompareAndSwap(nil, pid) }
	return stage.Child(supervisor.Permanent)
}

// distStarted is the OnStart of a stage's distributor (or reducer): it keeps the PID for the
// stage's workers and as the previous stage's (or the source's) next hop. It runs before the
// stage's workers start, and the stage before it starts after it (see startTree).
func (r *run) distStarted(st *stageRun) func(*actor.PID, int) {
	return func(pid *actor.PID, _ int) {
		if st.distPID != nil {
			return
		}
		st.distPID = pid
		if st.index > 0 {
			r.stages[st.index-1].next = pid
		}
	}
}

// workerChild is one worker's spec. An in-process worker has nothing to finish gracefully (a
// stop waits for the batch in hand anyway), so it is stopped at once; one stuck in user code is
// abandoned shortly after (Go cannot stop a goroutine) and replaced.
func (r *run) workerChild(st *stageRun, i int) supervisor.ChildSpec {
	if st.cfg.Func != nil {
		// A worker's PID reaches its distributor in workerUp at every start: a fresh PID per
		// incarnation keeps work meant for a dead incarnation from its successor's mailbox.
		return supervisor.ChildSpec{Name: workerName(i), FreshPIDs: true, Shutdown: supervisor.BrutalKill, Start: func() (*actor.Props, error) {
			return r.props(func() actor.Actor { return &funcWorker{run: r, st: st, index: i} }, counted(&st.obs.workers[i].mailbox)), nil
		}}
	}
	return supervisor.ChildSpec{Name: workerName(i), FreshPIDs: true, Shutdown: supervisor.Shutdown(backendWorkerShutdown), StartIncarnation: func(incarnation int) (*actor.Props, error) {
		b, out, err := r.startBackend(st, i, incarnation)
		r.workerStarting(st, i, b)
		if err != nil {
			if troupe.IsPermanent(err) {
				r.fail(fmt.Errorf("stage %s: %w", st.cfg.Name, err))
				return nil, err
			}
			if n := st.startFailures.Add(1); n >= maxStartFailures {
				r.fail(fmt.Errorf("stage %s: workers failed to start %d times in a row; last: %w", st.cfg.Name, n, err))
				return nil, err
			}
			return failedStart(err), nil
		}
		st.startFailures.Store(0)
		return r.props(func() actor.Actor {
			return &backendWorker{run: r, st: st, index: i, backend: b, out: out}
		}, counted(&st.obs.workers[i].mailbox)), nil
	}}
}

// event counts restarts and passes supervision events on.
func (r *run) event(e supervisor.Event) {
	if !strings.HasPrefix(e.Path, r.name+"/") && e.Path != r.name {
		return
	}
	r.observeEvent(e)
	if e.Path == r.name {
		return
	}
	if e.Kind == supervisor.Restarted {
		r.stats.restarts.Add(1)
		for _, st := range r.stages {
			if strings.HasPrefix(e.Path, st.path+"/") || e.Path == st.path {
				st.counters.restarts.Add(1)
			}
		}
	}
	if e.Kind == supervisor.Exited && e.Reason != nil && !errors.Is(e.Reason, supervisor.ErrShutdown) {
		r.log.Warn("actor exited", append(r.pathAttrs(e.Path), "path", e.Path, "reason", firstLine(e.Reason.Error()))...)
	}
	if r.p.Events != nil {
		r.p.Events(e)
	}
}

// pathAttrs returns the log attributes stage and worker (its index, as the workers' own lines
// give it) of a path in the tree, those that apply.
func (r *run) pathAttrs(path string) []any {
	for _, st := range r.stages {
		if path != st.path && !strings.HasPrefix(path, st.path+"/") {
			continue
		}
		attrs := []any{"stage", st.cfg.Name}
		for i := range st.cfg.Workers {
			if w := st.path + "/workers/" + workerName(i); path == w || strings.HasPrefix(path, w+"/") {
				attrs = append(attrs, "worker", i)
				break
			}
		}
		return attrs
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// watch ends the run: at completion, on abort, or on a stop (drain first).
func (r *run) watch(ctx context.Context) {
	go func() {
		select {
		case <-r.root.Done():
			if r.stopping.Load() {
				return // the run's own shutdown stopped it
			}
			// The tree ended while the run went on: it gave up, or (a tree started under a
			// parent, see StartUnder) its parent stopped it, as a parent supervisor does with
			// a child that escalates. Either way nothing is left to run the records.
			err := r.root.Err()
			if err == nil {
				err = errors.New("it was stopped from outside the run (by its parent supervisor)")
			}
			r.fail(fmt.Errorf("supervision tree gave up: %w", err))
		case <-r.aborted:
		case <-r.finished:
		}
	}()
	stopped := false
	select {
	case <-r.finished:
	case <-r.aborted:
	case <-ctx.Done():
		stopped = true
		r.interrupted = ctx.Err()
		if cause := context.Cause(ctx); cause != nil && cause != r.interrupted {
			r.interrupted = fmt.Errorf("%w (%v)", r.interrupted, cause)
		}
	case <-r.stopReq:
		stopped = true
		r.interrupted = fmt.Errorf("%w (Run.Stop)", context.Canceled)
	}
	if stopped {
		r.send(r.source.Load(), drain{})
		t := r.p.DrainTimeout
		if t == 0 {
			t = DefaultDrainTimeout
		}
		timer := time.NewTimer(t)
		select {
		case <-r.finished:
		case <-r.aborted:
		case <-timer.C:
			// The count is the Summary's (InFlight), taken when the run has ended: records
			// may still complete while the tree stops.
			r.fail(fmt.Errorf("stop: %w (%s)", ErrDrainTimeout, t))
		}
		timer.Stop()
	}
	r.shutdown()
}

// shutdown stops the tree in order and closes the source and the outputs.
func (r *run) shutdown() {
	readStuck := !r.src.reader.close()
	if readStuck {
		r.log.Warn("the source's Read did not return after cancellation; leaving it behind")
	}
	r.stopping.Store(true)
	stopped := make(chan error, 1)
	go func() { stopped <- r.stopTree() }()
	select {
	case err := <-stopped:
		if err != nil && !errors.Is(err, supervisor.ErrSupervisorStopped) {
			r.log.Warn("stopping the tree", "error", err)
		}
	case <-time.After(treeStopTimeout):
		r.log.Error("the supervision tree did not stop in time; shutting the actor system down", "timeout", treeStopTimeout)
	}
	r.cancel()
	r.closePrestarted()
	r.unsub()
	r.shutdownSystem()
	r.disp.close()
	var errs []error
	if r.journal != nil {
		// The actors have stopped: nothing more is added. What is queued is written, then the
		// journal is compacted.
		if err := r.journal.close(true); err != nil && !errors.Is(r.runErr(), err) {
			errs = append(errs, err)
		}
	}
	for _, st := range r.stages {
		if st.cfg.Cleanup != nil {
			if err := st.cfg.Cleanup(); err != nil {
				errs = append(errs, fmt.Errorf("stage %s: %w", st.cfg.Name, err))
			}
		}
	}
	closers := []io.Closer{r.p.Source, r.p.Sink}
	names := []string{"source", "sink"}
	if r.p.DeadLetters != nil {
		closers, names = append(closers, r.p.DeadLetters), append(names, "dead letters")
	}
	r.mu.Lock()
	runErr := r.err
	r.mu.Unlock()
	for i, c := range closers {
		closeIt := c.Close
		if i == 0 && readStuck {
			closeIt = func() error { return closeWithin(c, readerCloseTimeout) }
		}
		// An output that failed may report its error again on Close: it is said once.
		if err := closeIt(); err != nil && !errors.Is(runErr, err) {
			errs = append(errs, fmt.Errorf("%s: %w", names[i], err))
		}
	}
	r.summary = r.snapshot()
	r.mu.Lock()
	errs = append([]error{r.err}, errs...)
	r.mu.Unlock()
	r.waitErr = errors.Join(errs...)
	switch {
	case r.waitErr != nil:
		r.summary.Outcome = troupe.OutcomeAborted
	case r.interrupted != nil:
		r.summary.Outcome = troupe.OutcomeInterrupted
	case r.summary.DeadLetters > 0:
		r.summary.Outcome = troupe.OutcomeDeadLetters
	default:
		r.summary.Outcome = troupe.OutcomeCompleted
	}
	if r.interrupted != nil {
		r.waitErr = errors.Join(r.waitErr, fmt.Errorf("pipeline %s: interrupted after %d records: %w", r.name, r.summary.RecordsIn, r.interrupted))
	}
	close(r.endedCh)
}

// runErr is the error that aborted the run, or nil.
func (r *run) runErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// fail aborts the run with err (the first error wins).
func (r *run) fail(err error) {
	r.failOnce.Do(func() {
		r.mu.Lock()
		r.err = err
		r.mu.Unlock()
		// The run's error is returned by Wait: a program reports it there, once.
		r.log.Debug("run aborted", "error", err)
		close(r.aborted)
	})
}

// finish is called by the source when every record is complete.
func (r *run) finish() { r.finishOnce.Do(func() { close(r.finished) }) }

func (r *run) requestStop() { r.stopOnce.Do(func() { close(r.stopReq) }) }

// send sends from outside an actor's Receive (or where no context is at hand).
func (r *run) send(pid *actor.PID, m any) { r.system.Root.Send(pid, m) }

// now is the time since the run started, for latencies.
func (r *run) now() time.Duration { return time.Since(r.start) }

// resync asks the source to resend its window, for an actor whose previous incarnation may
// have lost records in hand (see supervisor.Incarnation). Before the source has started there is
// nothing to resend: it sends everything anyway.
func (r *run) resync(ctx actor.Context) {
	if n, _ := supervisor.Incarnation(ctx); n == 0 {
		return
	}
	if src := r.source.Load(); src != nil {
		ctx.Send(src, resync{from: ctx.Self().Id})
	}
}

func (r *run) snapshot() troupe.Summary {
	s := troupe.Summary{
		Total:       r.total,
		RecordsIn:   r.stats.in.Load(),
		RecordsOut:  r.stats.out.Load(),
		DeadLetters: r.stats.dead.Load(),
		Dropped:     r.stats.dropped.Load(),
		Skipped:     r.skipped(),
		Restarts:    r.stats.restarts.Load(),
		InFlight:    r.stats.inflight.Load(),
		Elapsed:     time.Since(r.start),
	}
	if s.Total >= 0 {
		s.Total = max(s.Total-s.Skipped, 0) // what the source will produce
	}
	for _, st := range r.stages {
		c := &st.counters
		s.Stages = append(s.Stages, troupe.StageSummary{
			Name: st.cfg.Name, In: c.in.Load(), Out: c.out.Load(), Failed: c.failed.Load(),
			Retries: c.retries.Load(), Restarts: c.restarts.Load(),
			P50: c.latency.quantile(0.50), P99: c.latency.quantile(0.99),
		})
	}
	return s
}

// skipped is how many source records the run skipped as done by an earlier run.
func (r *run) skipped() int64 {
	if r.journal == nil {
		return 0
	}
	return r.journal.skippedCount()
}

// props are the props of one of the run's own actors: on the run's dispatcher.
func (r *run) props(p actor.Producer, opts ...actor.PropsOption) *actor.Props {
	return actor.PropsFromProducer(p, append([]actor.PropsOption{actor.WithDispatcher(r.disp)}, opts...)...)
}
