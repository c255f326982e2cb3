package plugins

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/plugins/internal/host"
)

// Pool runs a plugin stage with warm spares: it keeps Config.Spares plugin processes launched,
// handshaken and configured ahead of need, so that restarting a worker costs no fork, exec,
// handshake or Configure call: the spare's data connection is open and it takes records at
// once. A spare is configured for the stage as soon as the pool knows the stage's name and
// options, from the first worker start (until then a worker start configures the spare it
// takes, one Configure call); the plugin is told the worker index and next incarnation of the
// worker that started last, a guess (ipc/README.md, section 3). The spares are shared by all
// the stage's workers; each one taken is replaced in the background once the worker it serves
// has reported its first outcome (so that the replacement's fork and exec do not compete for
// the CPU with the failover), or after refillDelay. A spare that dies while it waits is noticed
// when it is taken and replaced; a worker never fails to start because a spare died.
//
// The caller owns the Pool: Close it once the pipeline's Run has returned, to kill the spares.
// Spares die with the host like every plugin process (parent-death signal, own process group).
//
//	pool, err := plugins.NewPool(plugins.Config{Cmd: cmd, Spares: 2})
//	if err != nil { ... }
//	defer pool.Close(context.Background())
//	stage := troupe.Stage{Name: "convert", Backend: pool.Factory(), Workers: 4}
type Pool struct {
	opts   host.Options
	spares int
	ctx    context.Context // cancelled by Close: aborts launches in progress
	cancel context.CancelFunc

	mu        sync.Mutex
	ready     []*spare
	launching int
	// worker is what spares are preconfigured for (the stage's name and options, the last
	// worker's index and next incarnation); nil until the first worker start.
	worker *host.Worker
	closed bool
	wg     sync.WaitGroup
}

// spare is a process on the ready list (guarded by Pool.mu).
type spare struct {
	s   *host.Spare
	pre bool // preconfigured for the pool's worker: ready for records
	// busy, when not nil, is closed once a preconfiguration started after the spare was put on
	// the list has ended; perr is its error (the spare is dead then).
	busy chan struct{}
	perr error
}

// NewPool validates c and returns a Pool that starts launching c.Spares spare processes at once,
// in the background. With Spares 0 it behaves like Config.Factory (and Close is a no-op).
func NewPool(c Config) (*Pool, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	opts := c.options()
	opts.Cmd = append([]string(nil), c.Cmd...)
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{opts: opts, spares: c.Spares, ctx: ctx, cancel: cancel}
	p.mu.Lock()
	p.refillLocked()
	p.mu.Unlock()
	return p, nil
}

// refillLocked launches spares in the background until ready plus launching reaches the target.
func (p *Pool) refillLocked() {
	for !p.closed && len(p.ready)+p.launching < p.spares {
		p.launching++
		p.wg.Add(1)
		go p.launch()
	}
}

func (p *Pool) launch() {
	defer p.wg.Done()
	s, err := host.Launch(p.ctx, p.opts, "")
	pre := false
	if err == nil {
		p.mu.Lock()
		w := p.worker
		p.mu.Unlock()
		if w != nil {
			err = s.Preconfigure(p.ctx, *w) // kills the spare on failure
			pre = err == nil
		}
	}
	p.mu.Lock()
	p.launching--
	if err != nil {
		p.mu.Unlock()
		if p.ctx.Err() == nil && p.opts.Logger != nil {
			// Not retried here, so that a plugin that cannot start does not spin: the next
			// worker start launches cold, reports the error as a failed start, and refills.
			p.opts.Logger.Warn("starting a spare plugin process failed", "error", err)
		}
		return
	}
	if p.closed {
		p.mu.Unlock()
		s.Close()
		return
	}
	p.ready = append(p.ready, &spare{s: s, pre: pre})
	p.mu.Unlock()
}

// learn records the worker that starts as what spares are preconfigured for and, the first
// time, preconfigures in the background the spares already waiting.
func (p *Pool) learn(w host.Worker) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w.Incarnation++ // the guess: this worker's next process
	known := p.worker != nil
	p.worker = &w
	if known || p.closed {
		return
	}
	for _, e := range p.ready {
		if e.pre || e.busy != nil {
			continue
		}
		e.busy = make(chan struct{})
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			err := e.s.Preconfigure(p.ctx, w) // kills the spare on failure
			p.mu.Lock()
			e.perr, e.pre = err, err == nil
			close(e.busy)
			closed := p.closed && !slices.Contains(p.ready, e)
			if err != nil {
				p.ready = slices.DeleteFunc(p.ready, func(x *spare) bool { return x == e })
			}
			p.mu.Unlock()
			if closed && err == nil {
				e.s.Close() // Close left it to us
			}
		}()
	}
}

// Ready is the number of spares launched and waiting for a worker (some may have died since).
func (p *Pool) Ready() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, e := range p.ready {
		if e.busy == nil || e.pre {
			n++
		}
	}
	return n
}

// refill launches replacements for the spares taken.
func (p *Pool) refill() {
	p.mu.Lock()
	p.refillLocked()
	p.mu.Unlock()
}

// take returns a live spare, or nil when none is ready. It does not launch the replacement:
// the factory does once the worker it serves is configured, so that the fork, exec and
// handshake of the replacement do not compete for the CPU with the failover it is part of.
func (p *Pool) take() (*spare, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("plugins: pool is closed")
	}
	p.ready = slices.DeleteFunc(p.ready, func(e *spare) bool {
		if e.busy != nil && !e.pre || e.s.Alive() {
			return false
		}
		p.wg.Add(1)
		go func() { // reaps it
			defer p.wg.Done()
			e.s.Close()
		}()
		return true
	})
	// Best a spare ready for records, then one to configure, then one being configured.
	i := slices.IndexFunc(p.ready, func(e *spare) bool { return e.pre })
	if i < 0 {
		i = slices.IndexFunc(p.ready, func(e *spare) bool { return e.busy == nil })
	}
	if i < 0 && len(p.ready) > 0 {
		i = 0
	}
	if i < 0 {
		return nil, nil
	}
	e := p.ready[i]
	p.ready = slices.Delete(p.ready, i, i+1)
	return e, nil
}

// refillDelay bounds how long the replacement of a spare taken waits for the first outcome of
// the worker the spare serves.
const refillDelay = 50 * time.Millisecond

// refillAfterFirst passes a worker's outcomes on, and refills the pool at its first outcome
// (or its failure), or after refillDelay, whichever comes first.
type refillAfterFirst struct {
	troupe.Outcomes
	once sync.Once
	p    *Pool
}

func (o *refillAfterFirst) refill() { o.once.Do(o.p.refill) }

func (o *refillAfterFirst) Results(rs []troupe.Result) {
	o.Outcomes.Results(rs)
	o.refill()
}

func (o *refillAfterFirst) Fail(err error) {
	o.refill()
	o.Outcomes.Fail(err)
}

// Factory returns the BackendFactory for the stage: each worker start takes a spare if one is
// ready and configures it, and otherwise starts a process as Config.Factory does; then it
// launches the replacement spares in the background. After Close it fails every start.
func (p *Pool) Factory() troupe.BackendFactory {
	return func(ctx context.Context, w troupe.WorkerInfo, out troupe.Outcomes) (troupe.Backend, error) {
		if out == nil {
			return nil, errors.New("plugins: nil Outcomes")
		}
		hw := host.Worker{Stage: w.Stage, Index: w.Index, Incarnation: w.Incarnation, Options: w.Options}
		p.learn(hw)
		for {
			e, err := p.take()
			if err != nil {
				return nil, fmt.Errorf("stage %s worker %d: %w", w.Stage, w.Index, err)
			}
			if e == nil {
				break
			}
			if e.busy != nil {
				select {
				case <-e.busy:
				case <-ctx.Done():
					p.wg.Add(1)
					go func() {
						defer p.wg.Done()
						<-e.busy
						e.s.Close()
					}()
					return nil, fmt.Errorf("stage %s worker %d: %w", w.Stage, w.Index, ctx.Err())
				}
				if e.perr != nil {
					continue // the spare is dead; a cold start will say why if it fails too
				}
			}
			s := e.s
			o := &refillAfterFirst{Outcomes: out, p: p}
			time.AfterFunc(refillDelay, o.refill)
			b, err := s.Configure(ctx, hw, o)
			if err == nil {
				return b, nil
			}
			o.refill()
			if errors.Is(err, host.ErrSpareMismatch) {
				continue // configured for other options: it is dead now, try the next one
			}
			if s.Alive() || ctx.Err() != nil {
				// The plugin refused the configuration: a failed start, not a dead spare.
				return nil, fmt.Errorf("stage %s worker %d: %w", w.Stage, w.Index, err)
			}
			// The spare died before or while it was configured: try the next one.
		}
		// No spare: the replacements may launch alongside this cold start.
		p.refill()
		b, err := host.Start(ctx, p.opts, hw, out)
		if err != nil {
			return nil, fmt.Errorf("stage %s worker %d: %w", w.Stage, w.Index, err)
		}
		return b, nil
	}
}

// Close kills the spares, waits for launches in progress to end, and makes the factory refuse
// further starts. It does not touch the backends already handed to workers (the runtime closes
// them), but it waits for the background teardown of those that died (WaitClosed). ctx bounds
// the wait; Close is idempotent.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	ready := p.ready
	p.ready = nil
	p.mu.Unlock()
	p.cancel()
	var wg sync.WaitGroup
	for _, e := range ready {
		if e.busy != nil && !e.pre {
			continue // being preconfigured: its goroutine closes it
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.s.Close()
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		p.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("plugins: closing the pool's spares: %w", ctx.Err())
	}
	return WaitClosed(ctx)
}
