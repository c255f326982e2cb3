package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"sync"
	"time"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/internal/callctx"
)

// FuncBackend runs a Func as a troupe.Backend, in a goroutine of its own: what a node runs for
// a builtin stage, and what a cluster stage falls back to locally. It grants credits records at
// start and one more for each record it reports; a panic in the Func fails the backend (the
// record it was running is charged, the others are redelivered).
func FuncBackend(stage string, f troupe.Func, credits int, timeout time.Duration) troupe.BackendFactory {
	if credits <= 0 {
		credits = 1024
	}
	return func(ctx context.Context, w troupe.WorkerInfo, out troupe.Outcomes) (troupe.Backend, error) {
		if out == nil {
			return nil, errors.New("cluster: nil Outcomes")
		}
		b := &funcBackend{f: f, out: out, timeout: timeout, wake: make(chan struct{}, 1), done: make(chan struct{})}
		b.info.Stage = stage
		b.ctx, b.cancel = context.WithCancel(context.Background())
		go b.loop()
		out.Grant(credits)
		return b, nil
	}
}

type funcBackend struct {
	f       troupe.Func
	out     troupe.Outcomes
	timeout time.Duration
	info    callctx.Info
	ctx     context.Context
	cancel  context.CancelFunc

	mu    sync.Mutex
	queue []troupe.Task
	wake  chan struct{}
	done  chan struct{}
}

func (b *funcBackend) Submit(batch []troupe.Task) error {
	b.mu.Lock()
	b.queue = append(b.queue, batch...)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return nil
}

func (b *funcBackend) Close(ctx context.Context) error {
	b.cancel()
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cluster: stage %s: a call still running at close: %w", b.info.Stage, ctx.Err())
	}
}

func (b *funcBackend) loop() {
	defer close(b.done)
	cctx := callctx.With(b.ctx, &b.info)
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-b.wake:
		}
		for {
			b.mu.Lock()
			tasks := b.queue
			b.queue = nil
			b.mu.Unlock()
			if len(tasks) == 0 || b.ctx.Err() != nil {
				break
			}
			rs := make([]troupe.Result, 0, len(tasks))
			for _, t := range tasks {
				outs, err, panicked := b.call(cctx, t)
				if panicked {
					if len(rs) > 0 {
						b.out.Results(rs)
					}
					b.out.Fail(err)
					b.cancel()
					return
				}
				rs = append(rs, troupe.Result{Outputs: outs, Err: err})
			}
			b.out.Results(rs)
			b.out.Grant(len(rs))
		}
	}
}

func (b *funcBackend) call(cctx context.Context, t troupe.Task) (outs []troupe.Record, err error, panicked bool) {
	b.info.Attempt = t.Attempt
	rctx := cctx
	if b.timeout > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(cctx, b.timeout)
		defer cancel()
	}
	defer func() {
		if v := recover(); v != nil {
			outs, err, panicked = nil, fmt.Errorf("panic: %v\n%s", v, debug.Stack()), true
		}
	}()
	rec := t.Record
	rec.Meta = maps.Clone(rec.Meta)
	outs, err = b.f(rctx, rec)
	return outs, err, false
}
