package plugins

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/plugins/internal/host"
)

// Pool runs a plugin stage with warm spares: it keeps Config.Spares plugin processes launched
// and handshaken ahead of need, so that starting or restarting a worker costs one Configure call
// instead of a fork, an exec and a handshake. The spares are shared by all the stage's workers;
// each one taken is replaced in the background. A spare that dies while it waits is noticed when
// it is taken and replaced; a worker never fails to start because a spare died.
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
	ready     []*host.Spare
	launching int
	closed    bool
	wg        sync.WaitGroup
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
	p.mu.Lock()
	p.launching--
	if err != nil {
		p.mu.Unlock()
		if p.ctx.Err() == nil && p.opts.Logger != nil {
			// Not retried here, so that a plugin that cannot start does not spin: the next
			// worker start launches cold, reports the error as a failed start, and refills.
			p.opts.Logger.Warn("launching a spare plugin process failed", "error", err)
		}
		return
	}
	if p.closed {
		p.mu.Unlock()
		s.Close()
		return
	}
	p.ready = append(p.ready, s)
	p.mu.Unlock()
}

// Ready is the number of spares launched and waiting for a worker (some may have died since).
func (p *Pool) Ready() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ready)
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
func (p *Pool) take() (*host.Spare, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("plugins: pool is closed")
	}
	for len(p.ready) > 0 {
		s := p.ready[0]
		p.ready = p.ready[1:]
		if s.Alive() {
			return s, nil
		}
		p.wg.Add(1)
		go func() { // reaps it
			defer p.wg.Done()
			s.Close()
		}()
	}
	return nil, nil
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
		refilled := false
		defer func() {
			if !refilled {
				p.refill()
			}
		}()
		for {
			s, err := p.take()
			if err != nil {
				return nil, fmt.Errorf("stage %s worker %d: %w", w.Stage, w.Index, err)
			}
			if s == nil {
				break
			}
			b, err := s.Configure(ctx, hw, out)
			if err == nil {
				return b, nil
			}
			if s.Alive() || ctx.Err() != nil {
				// The plugin refused the configuration: a failed start, not a dead spare.
				return nil, fmt.Errorf("stage %s worker %d: %w", w.Stage, w.Index, err)
			}
			// The spare died before or while it was configured: try the next one.
		}
		// No spare: the replacements may launch alongside this cold start.
		p.refill()
		refilled = true
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
	for _, s := range ready {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Close()
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
