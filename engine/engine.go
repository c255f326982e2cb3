package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/supervisor"
)

// Defaults of Options.
const (
	DefaultMaxQueue    = 100
	DefaultRetainJobs  = 100
	DefaultOutputLimit = 64 << 20
)

// Errors of Submit; compare with errors.Is.
var (
	// ErrQueueFull: MaxJobs jobs run and MaxQueue wait already (HTTP 429).
	ErrQueueFull = errors.New("engine: the job queue is full")
	// ErrShuttingDown: Shutdown has been called (HTTP 503).
	ErrShuttingDown = errors.New("engine: shutting down")
	// ErrNotFound: no job has that id (or it is no longer retained).
	ErrNotFound = errors.New("engine: no such job")
)

// Options configure an Engine. The zero value is usable.
type Options struct {
	// Name is the engine's root supervisor's name, the first element of every path in its
	// tree; default "engine".
	Name string
	// MaxJobs is how many jobs run at once; the others wait in a queue, in order. Default
	// runtime.NumCPU().
	MaxJobs int
	// MaxQueue is how many jobs may wait; Submit fails with ErrQueueFull beyond. Default 100;
	// negative: none may wait.
	MaxQueue int
	// Retention is how long a finished job is kept (for Get and List) after it ended; 0 keeps
	// it until RetainJobs pushes it out.
	Retention time.Duration
	// RetainJobs is how many finished jobs are kept at most (the oldest go first); default 100.
	// A finished job keeps its in-memory output (up to its OutputLimit) while it is kept.
	RetainJobs int
	// OutputLimit bounds a job's in-memory output (keys and payloads) when its JobSpec leaves
	// it 0; default 64 MiB.
	OutputLimit int64
	// DrainTimeout bounds how long a cancelled job waits for its records in flight; 0 is the
	// runtime's default (actors.DefaultDrainTimeout).
	DrainTimeout time.Duration
	// Warm are the plugin stages whose processes the engine keeps between jobs (see
	// WarmStage).
	Warm []WarmStage
	// Logger receives the engine's log and its jobs' runtime logs; nil discards them.
	Logger *slog.Logger
	// Events, if set, receives every supervision event of the engine's tree (all its jobs).
	Events func(supervisor.Event)
}

// Engine runs jobs: pipelines, each under its own subtree of one root supervisor in one actor
// system that live as long as the engine. A job's failure ends that job only. Its methods are
// safe for concurrent use.
type Engine struct {
	opts   Options
	log    *slog.Logger
	system *actor.ActorSystem
	root   *supervisor.Supervisor
	unsub  func()
	warm   map[string]*warmStage

	mu      sync.Mutex
	jobs    map[string]*Job
	order   []*Job // retained jobs, in submission order
	queue   []*Job
	running int
	seq     int
	closing bool
	closed  chan struct{} // closed when Shutdown has ended
	active  sync.WaitGroup
}

// New starts an engine: its actor system, its root supervisor and its warm stages (whose
// processes it starts before it returns, so that the first job finds them ready).
func New(opts Options) (*Engine, error) {
	if opts.Name == "" {
		opts.Name = "engine"
	}
	if opts.MaxJobs <= 0 {
		opts.MaxJobs = runtime.NumCPU()
	}
	if opts.MaxQueue == 0 {
		opts.MaxQueue = DefaultMaxQueue
	}
	if opts.MaxQueue < 0 {
		opts.MaxQueue = 0
	}
	if opts.RetainJobs <= 0 {
		opts.RetainJobs = DefaultRetainJobs
	}
	if opts.OutputLimit <= 0 {
		opts.OutputLimit = DefaultOutputLimit
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{opts: opts, log: log, jobs: map[string]*Job{}, warm: map[string]*warmStage{}, closed: make(chan struct{})}
	e.system = actors.NewSystem()
	if opts.Events != nil {
		e.unsub = supervisor.Subscribe(e.system, opts.Events)
	}
	// The root's children are the jobs, each temporary: never restarted, and an ending that
	// counts nothing against the root's intensity. The root itself has nothing to restart.
	root, err := supervisor.Start(e.system, supervisor.Spec{Name: opts.Name, Flags: supervisor.Flags{Strategy: supervisor.OneForOne, Intensity: 1, Period: time.Second}})
	if err != nil {
		e.system.Shutdown()
		return nil, fmt.Errorf("engine: %w", err)
	}
	e.root = root
	for _, w := range opts.Warm {
		if _, dup := e.warm[w.Name]; dup || w.Name == "" {
			e.closeWarm(context.Background())
			e.stopTree()
			return nil, fmt.Errorf("engine: warm stage %q: no name or named twice", w.Name)
		}
		ws, err := newWarmStage(w, log)
		if err != nil {
			e.closeWarm(context.Background())
			e.stopTree()
			return nil, fmt.Errorf("engine: warm stage %s: %w", w.Name, err)
		}
		e.warm[w.Name] = ws
	}
	return e, nil
}

// Warm returns the BackendFactory of the warm stage name, for a troupe.Stage of a job built in
// Go: the stage's workers take the stage's warm processes (configured once, with the warm
// stage's Options) instead of starting their own. It returns nil when there is no such stage.
func (e *Engine) Warm(name string) troupe.BackendFactory {
	ws := e.warm[name]
	if ws == nil {
		return nil
	}
	return ws.factory
}

// WarmPids returns the pids of the warm stage's processes waiting for a job (not those serving
// one), for tests and diagnostics.
func (e *Engine) WarmPids(name string) []int {
	ws := e.warm[name]
	if ws == nil {
		return nil
	}
	return ws.idlePids()
}

// Submit adds a job. It starts at once if fewer than MaxJobs run, and waits in the queue
// otherwise; it fails with ErrQueueFull when the queue is full, ErrShuttingDown after Shutdown,
// and with the spec's error (a *spec.SpecError or *spec.PosError, with positions) for a bad
// spec. ctx bounds the building of the job only; Job.Cancel stops it.
func (e *Engine) Submit(ctx context.Context, js JobSpec) (*Job, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return nil, ErrShuttingDown
	}
	if e.running >= e.opts.MaxJobs && len(e.queue) >= e.opts.MaxQueue {
		e.mu.Unlock()
		return nil, fmt.Errorf("%w (%d running, %d waiting)", ErrQueueFull, e.running, len(e.queue))
	}
	e.mu.Unlock()

	p, out, err := e.build(js)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	// Checked again: the engine may have filled up or begun its shutdown while the job was built.
	fail := func(err error) (*Job, error) {
		discard(p)
		return nil, err
	}
	if e.closing {
		return fail(ErrShuttingDown)
	}
	if e.running >= e.opts.MaxJobs && len(e.queue) >= e.opts.MaxQueue {
		return fail(fmt.Errorf("%w (%d running, %d waiting)", ErrQueueFull, e.running, len(e.queue)))
	}
	e.seq++
	j := newJob(e, "job-"+strconv.Itoa(e.seq), js.Name, p, out)
	e.jobs[j.id] = j
	e.order = append(e.order, j)
	e.active.Add(1)
	if e.running < e.opts.MaxJobs {
		e.startLocked(j)
	} else {
		e.queue = append(e.queue, j)
	}
	return j, nil
}

// startLocked starts j (e.mu held): the run starts in the background, as starting a tree may
// take a while (a plugin stage without warm processes starts its processes).
func (e *Engine) startLocked(j *Job) {
	e.running++
	j.setRunning()
	go j.run()
}

// finished is called by a job that has ended: it starts the next in the queue.
func (e *Engine) finished(j *Job) {
	e.mu.Lock()
	e.running--
	if len(e.queue) > 0 && !e.closing {
		next := e.queue[0]
		e.queue = e.queue[1:]
		e.startLocked(next)
	}
	e.pruneLocked(time.Now())
	e.mu.Unlock()
	e.active.Done()
}

// pruneLocked forgets the finished jobs past Retention, and the oldest finished ones beyond
// RetainJobs.
func (e *Engine) pruneLocked(now time.Time) {
	finished := 0
	for _, j := range e.order {
		if j.Finished() {
			finished++
		}
	}
	keep := e.order[:0]
	for _, j := range e.order {
		if j.Finished() {
			expired := e.opts.Retention > 0 && now.Sub(j.EndedAt()) > e.opts.Retention
			if expired || finished > e.opts.RetainJobs {
				finished--
				delete(e.jobs, j.id)
				continue
			}
		}
		keep = append(keep, j)
	}
	clear(e.order[len(keep):])
	e.order = keep
}

// Get returns the job with that id, or ErrNotFound.
func (e *Engine) Get(id string) (*Job, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pruneLocked(time.Now())
	j, ok := e.jobs[id]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return j, nil
}

// List returns the jobs it keeps (queued, running, and finished ones within the retention), in
// the order they were submitted.
func (e *Engine) List() []*Job {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pruneLocked(time.Now())
	return slices.Clone(e.order)
}

// Outcome is what happened to one job, as Shutdown reports it.
type Outcome struct {
	ID      string
	Status  Status
	Summary troupe.Summary
	Err     error
}

// Shutdown stops the engine: it refuses new jobs (ErrShuttingDown), cancels the jobs waiting in
// the queue, lets the running jobs go on until ctx ends, then cancels those still running and
// waits for them to stop (each within the drain timeout), then stops the engine's tree and its
// warm processes. It returns what happened to each job it kept, in submission order; its error
// is non-nil when something could not be stopped cleanly. Calling it again waits for the first
// call and returns the outcomes.
func (e *Engine) Shutdown(ctx context.Context) ([]Outcome, error) {
	e.mu.Lock()
	first := !e.closing
	e.closing = true
	queued := e.queue
	e.queue = nil
	e.mu.Unlock()
	if !first {
		<-e.closed
		return e.outcomes(), nil
	}
	for _, j := range queued {
		j.Cancel()
		j.endWithoutRunning()
	}
	drained := make(chan struct{})
	go func() {
		e.active.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-ctx.Done():
		for _, j := range e.List() {
			j.Cancel()
		}
		<-drained // each run stops within its drain timeout
	}
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := e.closeWarm(cctx)
	e.stopTree()
	close(e.closed)
	return e.outcomes(), err
}

func (e *Engine) outcomes() []Outcome {
	var out []Outcome
	for _, j := range e.List() {
		s, _ := j.Summary()
		out = append(out, Outcome{ID: j.id, Status: j.Status(), Summary: s, Err: j.Err()})
	}
	return out
}

func (e *Engine) closeWarm(ctx context.Context) error {
	var errs []error
	for name, ws := range e.warm {
		if err := ws.close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("warm stage %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func (e *Engine) stopTree() {
	if err := e.root.Stop(); err != nil && !errors.Is(err, supervisor.ErrSupervisorStopped) {
		e.log.Warn("stopping the engine's tree", "error", err)
	}
	if e.unsub != nil {
		e.unsub()
	}
	e.system.Shutdown()
}

// Counts is how many jobs the engine keeps, by status.
func (e *Engine) Counts() map[Status]int {
	m := map[Status]int{}
	for _, j := range e.List() {
		m[j.Status()]++
	}
	return m
}
