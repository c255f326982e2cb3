package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/plugins"
)

// WarmStage is a plugin stage whose processes the engine keeps between jobs: Workers processes
// are started and configured once (with Options) when the engine starts, and a job's worker
// of the stage takes one for the job's life and gives it back when the job ends, so that a job
// starts without spawning a process. A process serves one job at a time (one worker of it), so
// each job sees only its own records, and a record that kills a process counts against its own
// job only (the runtime's attempts and broken-stage counts are per job). A process that died,
// or that a job left with records in hand or no credit (a cancelled or failed job), is not
// given back: it is killed, and a replacement is started in the background. When more workers
// want the stage at once than it keeps processes, the extra ones start their own (from the
// stage's spares, when Plugin.Spares is set) and these are killed when their job ends.
type WarmStage struct {
	// Name is the stage's name; a job's stage uses it by this name (Engine.Warm, or a spec's
	// plugin stage of that name with the same command).
	Name string
	// Plugin is the processes' configuration (Plugin.Spares spare processes are kept too).
	Plugin plugins.Config
	// Workers is how many configured processes are kept between jobs; default 1.
	Workers int
	// Options are the stage's options, handed to each process once when it is configured.
	Options map[string]any
}

// warmStartTimeout bounds the start of one warm process in the background.
const warmStartTimeout = time.Minute

type warmStage struct {
	name  string
	cmd   []string
	keep  int
	opts  map[string]any
	pool  *plugins.Pool
	start troupe.BackendFactory
	log   *slog.Logger
	ctx   context.Context // cancelled by close
	stop  context.CancelFunc

	mu     sync.Mutex
	idle   []*warmProc
	live   int // processes started and not known dead or killed: idle, leased or starting
	index  int // the next WorkerInfo.Index
	closed bool
	wg     sync.WaitGroup
}

func newWarmStage(w WarmStage, log *slog.Logger) (*warmStage, error) {
	if w.Workers <= 0 {
		w.Workers = 1
	}
	cfg := w.Plugin
	if cfg.Logger == nil {
		cfg.Logger = log
	}
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	pool, err := plugins.NewPool(cfg)
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	ws := &warmStage{name: w.Name, cmd: slices.Clone(cfg.Cmd), keep: w.Workers, opts: w.Options,
		pool: pool, start: pool.Factory(), log: log, ctx: ctx, stop: stop}
	// Start the processes now, all at once, so that the first job finds them ready.
	errs := make(chan error, ws.keep)
	for range ws.keep {
		ws.mu.Lock()
		ws.live++
		ws.mu.Unlock()
		go func() { errs <- ws.add() }()
	}
	var first error
	for range ws.keep {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		_ = ws.close(context.Background())
		return nil, first
	}
	return ws, nil
}

// add starts one process (counted in live already) and makes it idle.
func (ws *warmStage) add() error {
	p, err := ws.newProc(nil)
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if err != nil {
		ws.live--
		return err
	}
	if ws.closed {
		ws.live--
		ws.killLocked(p)
		return nil
	}
	ws.idle = append(ws.idle, p)
	return nil
}

// newProc starts and configures a process, its outcomes going to the proc (which passes them to
// the job holding it).
func (ws *warmStage) newProc(jobCtx context.Context) (*warmProc, error) {
	ws.mu.Lock()
	idx := ws.index
	ws.index++
	ws.mu.Unlock()
	p := &warmProc{ws: ws}
	ctx, cancel := context.WithTimeout(ws.ctx, warmStartTimeout)
	defer cancel()
	if jobCtx != nil { // an extra process for a job: its start ends with the job, too
		stop := context.AfterFunc(jobCtx, cancel)
		defer stop()
	}
	b, err := ws.start(ctx, troupe.WorkerInfo{Stage: ws.name, Index: idx, Options: ws.opts}, p)
	if err != nil {
		return nil, err
	}
	p.b = b
	if pb, ok := b.(interface{ Pid() int }); ok {
		p.pid = pb.Pid()
	}
	return p, nil
}

// replenish starts a process in the background when fewer than keep are alive.
func (ws *warmStage) replenish() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.closed || ws.live >= ws.keep {
		return
	}
	ws.live++
	ws.wg.Add(1)
	go func() {
		defer ws.wg.Done()
		if err := ws.add(); err != nil && ws.ctx.Err() == nil {
			ws.log.Warn("starting a warm process failed", "stage", ws.name, "error", err)
		}
	}()
}

// killLocked closes p's backend in the background (ws.mu held).
func (ws *warmStage) killLocked(p *warmProc) {
	ws.wg.Add(1)
	go func() {
		defer ws.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.b.Close(ctx)
	}()
}

// factory is the BackendFactory of a job's stage: it leases an idle process, or starts one
// when none is idle.
func (ws *warmStage) factory(ctx context.Context, w troupe.WorkerInfo, out troupe.Outcomes) (troupe.Backend, error) {
	if out == nil {
		return nil, errors.New("engine: nil Outcomes")
	}
	for {
		ws.mu.Lock()
		if ws.closed {
			ws.mu.Unlock()
			return nil, fmt.Errorf("warm stage %s: the engine is shutting down", ws.name)
		}
		if len(ws.idle) == 0 {
			ws.live++ // an extra process: killed, not kept, when its job ends (see release)
			ws.mu.Unlock()
			p, err := ws.newProc(ctx)
			if err != nil {
				ws.mu.Lock()
				ws.live--
				ws.mu.Unlock()
				return nil, err
			}
			return p.lease(out), nil
		}
		p := ws.idle[len(ws.idle)-1]
		ws.idle = ws.idle[:len(ws.idle)-1]
		if p.isDead() {
			ws.live--
			ws.killLocked(p)
			ws.mu.Unlock()
			ws.replenish()
			continue
		}
		ws.mu.Unlock()
		return p.lease(out), nil
	}
}

// release takes back p from the job that held it: kept idle when it is healthy and the stage
// keeps fewer than keep idle, killed otherwise (and replaced when fewer than keep are alive).
func (ws *warmStage) release(p *warmProc, healthy bool) {
	ws.mu.Lock()
	if healthy && !ws.closed && len(ws.idle) < ws.keep && ws.live <= ws.keep {
		ws.idle = append(ws.idle, p)
		ws.mu.Unlock()
		return
	}
	ws.live--
	ws.killLocked(p)
	ws.mu.Unlock()
	if !healthy {
		ws.replenish()
	}
}

func (ws *warmStage) idlePids() []int {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	var pids []int
	for _, p := range ws.idle {
		pids = append(pids, p.pid)
	}
	slices.Sort(pids)
	return pids
}

// close kills the idle processes and the spares, and waits for the background work. The
// processes that jobs hold are closed by their runs.
func (ws *warmStage) close(ctx context.Context) error {
	ws.mu.Lock()
	ws.closed = true
	for _, p := range ws.idle {
		ws.killLocked(p)
	}
	ws.idle = nil
	ws.mu.Unlock()
	ws.stop()
	done := make(chan struct{})
	go func() {
		ws.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("waiting for the warm processes to stop: %w", ctx.Err())
	}
	return ws.pool.Close(ctx)
}

// warmProc is one warm process: the Outcomes its Backend reports to, passing them on to the
// job's worker that holds it.
type warmProc struct {
	ws  *warmStage
	b   troupe.Backend
	pid int

	mu          sync.Mutex
	holder      *lease
	credit      int // granted by the backend and not used
	outstanding int // submitted and not reported
	dead        bool
}

func (p *warmProc) isDead() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dead
}

// lease hands p to a job's worker: the credit p holds is granted to it.
func (p *warmProc) lease(out troupe.Outcomes) *lease {
	l := &lease{p: p, out: out}
	p.mu.Lock()
	p.holder = l
	if p.credit > 0 {
		out.Grant(p.credit)
	}
	p.mu.Unlock()
	return l
}

// Results implements troupe.Outcomes.
func (p *warmProc) Results(rs []troupe.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(rs) > p.outstanding {
		// Outcomes for records it was not given: broken; the holder's worker sees it too.
		p.dead = true
	}
	p.outstanding -= min(len(rs), p.outstanding)
	if p.holder != nil {
		p.holder.out.Results(rs)
	}
}

// Grant implements troupe.Outcomes.
func (p *warmProc) Grant(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.credit += n
	if p.holder != nil {
		p.holder.out.Grant(n)
	}
}

// Fail implements troupe.Outcomes: the process is dead. Only the job holding it (whose records
// it held) is told.
func (p *warmProc) Fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dead = true
	if p.holder != nil {
		p.holder.out.Fail(err)
	}
}

// lease is a job's worker's hold on a warm process: the troupe.Backend it is given.
type lease struct {
	p    *warmProc
	out  troupe.Outcomes
	once sync.Once
}

// Submit implements troupe.Backend.
func (l *lease) Submit(batch []troupe.Task) error {
	p := l.p
	p.mu.Lock()
	if p.holder != l {
		p.mu.Unlock()
		return errors.New("engine: submit to a released warm process")
	}
	p.credit -= len(batch)
	p.outstanding += len(batch)
	p.mu.Unlock()
	return p.b.Submit(batch)
}

// Close implements troupe.Backend: it gives the process back, or kills it when it died, still
// holds records, or has no credit left (it may be hung).
func (l *lease) Close(context.Context) error {
	l.once.Do(func() {
		p := l.p
		p.mu.Lock()
		healthy := p.holder == l && !p.dead && p.outstanding == 0 && p.credit > 0
		if p.holder == l {
			p.holder = nil
		}
		p.mu.Unlock()
		p.ws.release(p, healthy)
	})
	return nil
}
