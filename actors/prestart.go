package actors

import (
	"context"
	"sync"

	"github.com/troupe-dev/troupe"
)

// A stage's workers start one after another (a supervisor starts its children in order, each
// start waiting for the one before), and a backend's start can be slow: a plugin process is
// launched and handshaken, a Python one imports its libraries for 0.1–0.3 s. So that eight
// Python workers do not take eight times that before the first record flows, the first
// incarnation of every backend worker of the pipeline is started at once, concurrently, before
// the tree starts; the worker's start then takes the backend that is ready (or waits for it).
// Restarts call the stage's BackendFactory as before. A prestarted backend that no worker took
// (the run ended first) is closed when the run ends.

// prestarted is the first incarnation of one backend worker, started ahead of its worker.
type prestarted struct {
	done chan struct{} // closed when the factory has returned
	b    troupe.Backend
	out  *outcomes
	err  error
}

// prestarts holds a stage's prestarted backends, by worker index, until their workers take them.
type prestarts struct {
	mu    sync.Mutex
	first []*prestarted
}

// prestartBackends starts, concurrently, the first backend of every worker of the pipeline's
// backend stages.
func (r *run) prestartBackends() {
	for _, st := range r.stages {
		if st.cfg.Backend == nil || st.cfg.Func != nil {
			continue
		}
		st.pre.first = make([]*prestarted, st.cfg.Workers)
		for i := range st.pre.first {
			p := &prestarted{done: make(chan struct{}), out: &outcomes{system: r.system, st: st}}
			st.pre.first[i] = p
			go func() {
				defer close(p.done)
				p.b, p.err = st.cfg.Backend(r.ctx, r.workerInfo(st, i, 0), p.out)
			}()
		}
	}
}

// take returns worker i's prestarted backend, once, or nil.
func (ps *prestarts) take(i int) *prestarted {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if i >= len(ps.first) {
		return nil
	}
	p := ps.first[i]
	ps.first[i] = nil
	return p
}

// closePrestarted closes the prestarted backends no worker took, once their starts have
// returned (the run's context is cancelled by then, so a start still under way gives up).
func (r *run) closePrestarted() {
	for _, st := range r.stages {
		for i := range st.pre.first {
			p := st.pre.take(i)
			if p == nil {
				continue
			}
			<-p.done
			if p.b != nil {
				ctx, cancel := context.WithTimeout(context.Background(), backendKillTimeout)
				_ = p.b.Close(ctx)
				cancel()
			}
		}
	}
}

// startBackend starts incarnation of worker i of st: the prestarted backend for the first one.
func (r *run) startBackend(st *stageRun, i, incarnation int) (troupe.Backend, *outcomes, error) {
	if incarnation == 0 {
		if p := st.pre.take(i); p != nil {
			<-p.done
			return p.b, p.out, p.err
		}
	}
	out := &outcomes{system: r.system, st: st}
	b, err := st.cfg.Backend(r.ctx, r.workerInfo(st, i, incarnation), out)
	return b, out, err
}

func (r *run) workerInfo(st *stageRun, i, incarnation int) troupe.WorkerInfo {
	return troupe.WorkerInfo{Stage: st.cfg.Name, Index: i, Incarnation: incarnation, Options: st.cfg.Options}
}
