package cluster

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/troupe-dev/troupe/internal/tick"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/cluster/clusterpb"
	"github.com/troupe-dev/troupe/plugins"
	"github.com/troupe-dev/troupe/stages"
)

// NodeConfig configures a node.
type NodeConfig struct {
	// Listen is the address the node's remote listens on: host:port (port 0 picks one).
	Listen string
	// Advertise is the address coordinators reach it by, when not Listen's.
	Advertise string
	// Token is the cluster's token: a peer that does not present it is refused.
	Token string
	// TLS, if set, requires mutual TLS of every peer (see TLS).
	TLS *TLS
	// Logger receives the node's log (refusals, workers started and stopped); nil discards it.
	Logger *slog.Logger
}

// Node hosts stage workers on behalf of coordinators: an actor system with protoactor remote
// whose actor NodeActor takes Spawn requests.
type Node struct {
	ep    *endpoint
	log   *slog.Logger
	token string

	mu      sync.Mutex
	workers map[string]*actor.PID
	closed  bool
	wg      sync.WaitGroup
}

// StartNode starts a node listening on cfg.Listen.
func StartNode(cfg NodeConfig) (*Node, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{log: logger, token: cfg.Token, workers: map[string]*actor.PID{}}
	ep, err := startEndpoint(cfg.Listen, cfg.Advertise, cfg.Token, cfg.TLS, logger, func(peer string) {
		logger.Warn("refused a peer: wrong or missing cluster token", "peer", peer)
	})
	if err != nil {
		return nil, err
	}
	n.ep = ep
	if _, err := ep.system.Root.SpawnNamed(actor.PropsFromFunc(n.receive), NodeActor); err != nil {
		ep.close()
		return nil, fmt.Errorf("spawning %s: %w", NodeActor, err)
	}
	logger.Info("node listening", "address", ep.addr)
	return n, nil
}

// Addr is the node's advertised address.
func (n *Node) Addr() string { return n.ep.addr }

// ActorSystem is the node's actor system, for programs that host actors of their own next to
// the node's (the bench's per-message echo).
func (n *Node) ActorSystem() *actor.ActorSystem { return n.ep.system }

// Workers is the number of workers the node runs now.
func (n *Node) Workers() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.workers)
}

// Close stops the node's workers (closing their backends, plugin processes included) within
// ctx, then its remote.
func (n *Node) Close(ctx context.Context) error {
	n.mu.Lock()
	n.closed = true
	pids := make([]*actor.PID, 0, len(n.workers))
	for _, p := range n.workers {
		pids = append(pids, p)
	}
	n.mu.Unlock()
	for _, p := range pids {
		n.ep.system.Root.Stop(p)
	}
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("cluster: node: workers still stopping: %w", ctx.Err())
	}
	n.ep.close()
	return errors.Join(err, plugins.WaitClosed(ctx))
}

func (n *Node) receive(ctx actor.Context) {
	m, ok := ctx.Message().(*clusterpb.Spawn)
	if !ok {
		return
	}
	client := actor.NewPID(m.ClientAddress, m.ClientId)
	if subtle.ConstantTimeCompare([]byte(m.Token), []byte(n.token)) != 1 {
		n.log.Warn("refused a spawn request: wrong cluster token", "client", m.ClientAddress, "stage", m.Stage)
		ctx.Send(client, &clusterpb.Spawned{Error: "refused by node " + n.ep.addr + ": wrong cluster token", Permanent: true})
		return
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		ctx.Send(client, &clusterpb.Spawned{Error: "node " + n.ep.addr + " is shutting down"})
		return
	}
	n.wg.Add(1)
	n.mu.Unlock()
	w := &nodeWorker{node: n, spawn: m, client: client}
	pid := ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return w }))
	_ = pid
}

// factory makes the backend factory a Spawn asks for.
func (n *Node) factory(m *clusterpb.Spawn) (troupe.BackendFactory, error) {
	switch {
	case m.Builtin != "" && len(m.PluginCmd) > 0:
		return nil, permanent(errors.New("both builtin and plugin set"))
	case m.Builtin != "":
		b, ok := stages.Lookup(m.Builtin)
		if !ok {
			return nil, permanent(fmt.Errorf("unknown builtin %q on node %s", m.Builtin, n.ep.addr))
		}
		var opts map[string]any
		if len(m.OptionsJson) > 0 {
			if err := json.Unmarshal(m.OptionsJson, &opts); err != nil {
				return nil, permanent(fmt.Errorf("options: %w", err))
			}
		}
		o, err := b.OptionsFromMap(opts)
		if err != nil {
			return nil, permanent(fmt.Errorf("builtin %s: %w", m.Builtin, err))
		}
		f, r, err := b.Make(o)
		if err != nil {
			return nil, permanent(fmt.Errorf("builtin %s: %w", m.Builtin, err))
		}
		if r != nil {
			return nil, permanent(fmt.Errorf("builtin %s is a reduce stage: it cannot run on a node", m.Builtin))
		}
		return FuncBackend(m.Stage, f, int(m.Credits), time.Duration(m.TimeoutMs)*time.Millisecond), nil
	case len(m.PluginCmd) > 0:
		cfg := plugins.Config{Cmd: m.PluginCmd, SHA256: m.PluginSha256, Env: m.PluginEnv, Credits: int(m.Credits), Logger: n.log}
		// The same program as on the coordinator: the node checks its sum before starting it.
		if err := cfg.Check(); err != nil {
			return nil, permanent(fmt.Errorf("plugin on node %s: %w", n.ep.addr, err))
		}
		return cfg.Factory()
	}
	return nil, permanent(errors.New("neither builtin nor plugin set"))
}

type permanentError struct{ error }

func (permanentError) Permanent() bool   { return true }
func (e permanentError) Unwrap() error   { return e.error }
func permanent(err error) permanentError { return permanentError{err} }

// Messages of a node worker to itself.
type (
	nodeTick   struct{}
	nodeFailed struct{}
)

// nodeWorker runs one stage worker for a client: it feeds the client's batches to a Backend,
// whose outcomes go straight to the client. It stops when the client says so, when it has not
// heard from the client for the heartbeat (the coordinator is gone or cut off), when the
// client's node is terminated, or when its backend fails.
type nodeWorker struct {
	node      *Node
	spawn     *clusterpb.Spawn
	client    *actor.PID
	backend   troupe.Backend
	hb        time.Duration
	lastHeard time.Time
	lastTick  time.Time
	ticker    *tick.Ticker
	closed    bool
	stopping  bool
}

func (w *nodeWorker) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		w.start(ctx)
	case *clusterpb.Batch:
		w.lastHeard = time.Now()
		if w.backend != nil && !w.closed {
			tasks, ok := fromBatch(m)
			if !ok {
				w.node.log.Warn("malformed batch from the coordinator", "stage", w.spawn.Stage, "worker", w.spawn.Index, "client", w.spawn.ClientAddress)
				ctx.Send(w.client, &clusterpb.Failed{Error: "node " + w.node.ep.addr + ": malformed batch", Fault: true})
				w.stop(ctx, "malformed batch")
				return
			}
			if err := w.backend.Submit(tasks); err != nil {
				ctx.Send(w.client, &clusterpb.Failed{Error: "submit: " + err.Error(), Fault: troupe.IsBackendFault(err)})
				w.stop(ctx, "submit failed")
			}
		}
	case *clusterpb.Ping:
		w.lastHeard = time.Now()
		ctx.Send(w.client, &clusterpb.Pong{Seq: m.Seq})
	case *clusterpb.Stop:
		w.stop(ctx, "")
	case nodeFailed:
		w.stop(ctx, "backend failed")
	case *actor.Terminated:
		w.stop(ctx, "coordinator terminated")
	case nodeTick:
		w.lastHeard = stallGrace(w.lastHeard, &w.lastTick, w.hb)
		if time.Since(w.lastHeard) > w.hb {
			w.stop(ctx, fmt.Sprintf("no word from the coordinator for %s", w.hb))
		}
	case *actor.Stopping:
		w.closeBackend()
	case *actor.Stopped:
		w.node.mu.Lock()
		delete(w.node.workers, ctx.Self().Id)
		w.node.mu.Unlock()
		w.node.wg.Done()
	}
}

func (w *nodeWorker) start(ctx actor.Context) {
	m := w.spawn
	w.node.mu.Lock()
	w.node.workers[ctx.Self().Id] = ctx.Self()
	w.node.mu.Unlock()
	w.hb = time.Duration(m.HeartbeatMs) * time.Millisecond
	if w.hb <= 0 {
		w.hb = DefaultHeartbeat
	}
	w.lastHeard = time.Now()
	f, err := w.node.factory(m)
	var b troupe.Backend
	if err == nil {
		out := &nodeOutcomes{system: ctx.ActorSystem(), client: w.client, self: ctx.Self()}
		b, err = f(context.Background(), troupe.WorkerInfo{Stage: m.Stage, Index: int(m.Index), Incarnation: int(m.Incarnation)}, out)
	}
	if err != nil {
		w.node.log.Warn("worker failed to start", "stage", m.Stage, "worker", m.Index, "client", m.ClientAddress, "error", err)
		ctx.Send(w.client, &clusterpb.Spawned{Error: err.Error(), Permanent: troupe.IsPermanent(err)})
		w.closed = true
		ctx.Stop(ctx.Self())
		return
	}
	w.backend = b
	ctx.Watch(w.client)
	ctx.Send(w.client, &clusterpb.Spawned{WorkerAddress: ctx.Self().Address, WorkerId: ctx.Self().Id})
	w.node.log.Info("worker started", "stage", m.Stage, "worker", m.Index, "incarnation", m.Incarnation, "client", m.ClientAddress)
	w.ticker = tick.Start(ctx.ActorSystem(), ctx.Self(), tickEvery(w.hb), nodeTick{})
}

func (w *nodeWorker) stop(ctx actor.Context, why string) {
	if w.stopping {
		return
	}
	w.stopping = true
	if why != "" {
		w.node.log.Info("worker stopping", "stage", w.spawn.Stage, "worker", w.spawn.Index, "client", w.spawn.ClientAddress, "reason", why)
	}
	w.closeBackend()
	ctx.Stop(ctx.Self())
}

func (w *nodeWorker) closeBackend() {
	w.ticker.Stop()
	if w.closed || w.backend == nil {
		w.closed = true
		return
	}
	w.closed = true
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.backend.Close(cctx); err != nil {
		w.node.log.Warn("closing worker backend", "stage", w.spawn.Stage, "worker", w.spawn.Index, "error", err)
	}
}

// nodeOutcomes sends a node worker's outcomes to its client.
type nodeOutcomes struct {
	system *actor.ActorSystem
	client *actor.PID
	self   *actor.PID
	mu     sync.Mutex // keeps the messages in the order they were reported
	failed bool
}

func (o *nodeOutcomes) Results(rs []troupe.Result) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.system.Root.Send(o.client, toResults(rs))
}

func (o *nodeOutcomes) Grant(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.system.Root.Send(o.client, &clusterpb.Grant{N: int32(n)})
}

func (o *nodeOutcomes) Fail(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.failed {
		return
	}
	o.failed = true
	o.system.Root.Send(o.client, &clusterpb.Failed{Error: err.Error(), Fault: troupe.IsBackendFault(err)})
	o.system.Root.Send(o.self, nodeFailed{})
}
