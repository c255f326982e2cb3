package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/troupe-dev/troupe/internal/tick"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/eventstream"
	"github.com/asynkron/protoactor-go/remote"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/cluster/clusterpb"
)

// DefaultHeartbeat is how long a worker on a node may stay silent before its coordinator
// counts the node lost (and a node counts its coordinator gone), when the configuration does
// not say.
const DefaultHeartbeat = 5 * time.Second

// Config configures a coordinator's side of the cluster: a Client.
type Config struct {
	// Nodes are the addresses of the nodes (host:port), as `troupe node` advertises them.
	Nodes []string
	// Token is the cluster's token, presented to the nodes.
	Token string
	// Heartbeat bounds the silence of a node's worker before the node is counted lost (a
	// SIGSTOPped node, a partition), and the wait for a node to answer a spawn request; 0 is
	// DefaultHeartbeat.
	Heartbeat time.Duration
	// Listen is the address of the coordinator's own remote, which the nodes answer to;
	// "127.0.0.1:0" when empty. Advertise is the address nodes reach it by, when not Listen's.
	Listen, Advertise string
	// TLS, if set, is mutual TLS with the nodes (see TLS).
	TLS *TLS
	// Logger receives the client's log; nil discards it.
	Logger *slog.Logger
}

// Work is what a stage's workers run on the nodes: exactly one of Builtin and PluginCmd.
type Work struct {
	Builtin string
	Options map[string]any // the stage's options, sent to the node as JSON

	PluginCmd    []string // Cmd[0] as the node finds it (the same path as on the coordinator)
	PluginSHA256 string   // checked by the node before it starts the program
	PluginEnv    map[string]string

	Credits int           // records in flight per worker
	Timeout time.Duration // per-record deadline of a builtin on the node
	// Fallback, if set, starts a worker locally when no node is reachable; nil fails the start
	// ("every node is unreachable"), which the runtime retries and, five times in a row, aborts
	// the run with.
	Fallback troupe.BackendFactory
}

// Client starts stage workers on nodes: its Factory is a stage's troupe.BackendFactory, one
// remote worker per worker incarnation. Close it once the run has returned.
type Client struct {
	ep        *endpoint
	release   func()
	cfg       Config
	hb        time.Duration
	log       *slog.Logger
	nodes     []*nodeState
	closeOnce sync.Once
	sub       *eventstream.Subscription
}

// nodeState is what a client knows of a node: whether it is counted lost, and until when.
type nodeState struct {
	addr      string
	mu        sync.Mutex
	downUntil time.Time
	lastErr   error
}

func (n *nodeState) down() (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return time.Now().Before(n.downUntil), n.lastErr
}

func (n *nodeState) markDown(err error, for_ time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.downUntil = time.Now().Add(for_)
	n.lastErr = err
}

func (n *nodeState) markUp() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.downUntil = time.Time{}
}

// NewClient starts the coordinator's remote. It does not contact the nodes: each worker start
// does.
func NewClient(cfg Config) (*Client, error) {
	if len(cfg.Nodes) == 0 {
		return nil, errors.New("cluster: no nodes")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	listen := cfg.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	hb := cfg.Heartbeat
	if hb <= 0 {
		hb = DefaultHeartbeat
	}
	ep, release, err := acquireEndpoint(listen, cfg.Advertise, cfg.Token, cfg.TLS, logger)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	c := &Client{ep: ep, release: release, cfg: cfg, hb: hb, log: logger}
	for _, a := range cfg.Nodes {
		c.nodes = append(c.nodes, &nodeState{addr: a})
	}
	c.sub = ep.system.EventStream.Subscribe(func(evt any) {
		if e, ok := evt.(*remote.EndpointTerminatedEvent); ok {
			for _, n := range c.nodes {
				if n.addr == e.Address {
					n.markDown(fmt.Errorf("node %s: connection lost", n.addr), c.hb)
				}
			}
		}
	})
	return c, nil
}

// Addr is the coordinator's remote address, which the nodes answer to.
func (c *Client) Addr() string { return c.ep.addr }

// ActorSystem is the actor system of the client's remote (shared by the process's clients with
// the same listen address and token), for programs that send their own messages over it (the
// bench's per-message baseline).
func (c *Client) ActorSystem() *actor.ActorSystem { return c.ep.system }

// Close releases the client's remote (stopped with the process's last client); the workers on
// the nodes stop when they notice (their client terminated, or silent for the heartbeat).
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.ep.system.EventStream.Unsubscribe(c.sub)
		c.release()
	})
	return nil
}

// The process's client endpoints, shared: protoactor's Remote.Start sets grpc's global logger,
// which races with the servers of the remotes already running, so a process starts as few
// remotes as it can.
var shared struct {
	mu  sync.Mutex
	eps map[string]*sharedEndpoint
}

type sharedEndpoint struct {
	ep   *endpoint
	refs int
}

func acquireEndpoint(listen, advertise, token string, mtls *TLS, logger *slog.Logger) (*endpoint, func(), error) {
	key := listen + "\x00" + advertise + "\x00" + token
	if mtls != nil {
		key += "\x00" + mtls.Cert + "\x00" + mtls.Key + "\x00" + mtls.CA
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.eps == nil {
		shared.eps = map[string]*sharedEndpoint{}
	}
	se := shared.eps[key]
	if se == nil {
		ep, err := startEndpoint(listen, advertise, token, mtls, logger, func(peer string) {
			logger.Warn("cluster: refused a peer: wrong or missing cluster token", "peer", peer)
		})
		if err != nil {
			return nil, nil, err
		}
		se = &sharedEndpoint{ep: ep}
		shared.eps[key] = se
	}
	se.refs++
	var once sync.Once
	return se.ep, func() {
		once.Do(func() {
			shared.mu.Lock()
			defer shared.mu.Unlock()
			se.refs--
			if se.refs == 0 {
				delete(shared.eps, key)
				se.ep.close()
			}
		})
	}, nil
}

// Factory returns the BackendFactory of a stage whose workers run w on the nodes. Worker i
// prefers node i modulo the number of nodes, and goes to the next reachable one when that one
// is lost; a worker placed away from its preferred node moves back (it fails itself, with no
// record charged, and the restart places it again) once that node accepts connections again
// (probed every ten heartbeats). A node counted lost is not asked again for a heartbeat.
func (c *Client) Factory(w Work) (troupe.BackendFactory, error) {
	var opts []byte
	if len(w.Options) > 0 {
		var err error
		if opts, err = json.Marshal(w.Options); err != nil {
			return nil, fmt.Errorf("cluster: options: %w", err)
		}
	}
	if (w.Builtin == "") == (len(w.PluginCmd) == 0) {
		return nil, errors.New("cluster: exactly one of a builtin and a plugin")
	}
	return func(ctx context.Context, info troupe.WorkerInfo, out troupe.Outcomes) (troupe.Backend, error) {
		if out == nil {
			return nil, errors.New("cluster: nil Outcomes")
		}
		var whys []string
		n := len(c.nodes)
		for k := range n {
			node := c.nodes[(info.Index+k)%n]
			if down, err := node.down(); down {
				whys = append(whys, err.Error())
				continue
			}
			b, err := c.spawn(ctx, node, info, w, opts, out, k == 0)
			if err == nil {
				node.markUp()
				return b, nil
			}
			if troupe.IsPermanent(err) {
				return nil, fmt.Errorf("stage %s worker %d: %w", info.Stage, info.Index, err)
			}
			node.markDown(err, c.hb)
			whys = append(whys, err.Error())
			c.log.Warn("cluster: node unreachable", "node", node.addr, "stage", info.Stage, "worker", info.Index, "error", err)
		}
		if w.Fallback != nil {
			c.log.Warn("cluster: no node reachable; worker runs locally", "stage", info.Stage, "worker", info.Index)
			b, err := w.Fallback(ctx, info, out)
			if err != nil {
				return nil, err
			}
			return c.local(b, out), nil
		}
		return nil, fmt.Errorf("stage %s worker %d: every node of the cluster is unreachable: %s",
			info.Stage, info.Index, strings.Join(whys, "; "))
	}, nil
}

// spawn asks node for a worker and waits for its answer, at most a heartbeat.
func (c *Client) spawn(ctx context.Context, node *nodeState, info troupe.WorkerInfo, w Work, opts []byte, out troupe.Outcomes, preferred bool) (troupe.Backend, error) {
	ca := &clientActor{c: c, node: node, out: out, spawned: make(chan *clusterpb.Spawned, 1), preferred: preferred, stage: info.Stage, index: info.Index}
	if !preferred {
		ca.home = c.nodes[info.Index%len(c.nodes)]
	}
	pid := c.ep.system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return ca }))
	c.ep.system.Root.Send(actor.NewPID(node.addr, NodeActor), &clusterpb.Spawn{
		Token: c.cfg.Token, ClientAddress: pid.Address, ClientId: pid.Id,
		Stage: info.Stage, Index: int32(info.Index), Incarnation: int32(info.Incarnation),
		Builtin: w.Builtin, OptionsJson: opts,
		PluginCmd: w.PluginCmd, PluginSha256: w.PluginSHA256, PluginEnv: w.PluginEnv,
		Credits: int32(w.Credits), HeartbeatMs: c.hb.Milliseconds(), TimeoutMs: w.Timeout.Milliseconds(),
	})
	t := time.NewTimer(c.hb)
	defer t.Stop()
	select {
	case m := <-ca.spawned:
		if m.Error != "" {
			c.ep.system.Root.Stop(pid)
			err := fmt.Errorf("node %s: %s", node.addr, m.Error)
			if m.Permanent {
				return nil, permanent(err)
			}
			return nil, err
		}
		return &remoteBackend{node: node.addr, c: c, client: pid, worker: actor.NewPID(m.WorkerAddress, m.WorkerId)}, nil
	case <-t.C:
		c.ep.system.Root.Stop(pid)
		return nil, fmt.Errorf("node %s unreachable: no answer within %s", node.addr, c.hb)
	case <-ctx.Done():
		c.ep.system.Root.Stop(pid)
		return nil, ctx.Err()
	}
}

// remoteBackend is a worker on a node, seen from the coordinator.
type remoteBackend struct {
	node   string
	c      *Client
	client *actor.PID
	worker *actor.PID
	once   sync.Once
}

// Node is the address of the node the worker runs on (the runtime's observation shows it).
func (b *remoteBackend) Node() string { return b.node }

func (b *remoteBackend) Submit(batch []troupe.Task) error {
	b.c.ep.system.Root.Send(b.worker, toBatch(batch))
	return nil
}

func (b *remoteBackend) Close(ctx context.Context) error {
	b.once.Do(func() {
		b.c.ep.system.Root.Send(b.worker, &clusterpb.Stop{})
		b.c.ep.system.Root.Stop(b.client)
	})
	return nil
}

// nodeFault is the loss of a node: no record is to blame, so none is charged.
type nodeFault struct{ error }

func (nodeFault) BackendFault() bool { return true }
func (e nodeFault) Unwrap() error    { return e.error }

// workerFailed is a worker's failure reported by its node.
type workerFailed struct {
	msg   string
	fault bool
}

func (e workerFailed) Error() string      { return e.msg }
func (e workerFailed) BackendFault() bool { return e.fault }

type clientTick struct{}

// clientActor receives what a worker on a node sends, and watches it. A worker's first grant
// (and, for a plugin that dies at once, its failure) may come before its Spawned: the node's
// backend starts before the node answers; the runtime's Outcomes keeps what comes early.
type clientActor struct {
	c         *Client
	node      *nodeState
	out       troupe.Outcomes
	spawned   chan *clusterpb.Spawned
	worker    *actor.PID
	answered  bool
	lastHeard time.Time
	lastProbe time.Time
	lastTick  time.Time
	probing   bool
	seq       int64
	ticker    *tick.Ticker
	failed    bool
	preferred bool
	home      *nodeState // the preferred node, when this worker is away from it
	stage     string
	index     int
}

func (a *clientActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *clusterpb.Spawned:
		if a.answered {
			return // a node answers once; anything more is not to be trusted
		}
		a.answered = true
		if m.Error == "" {
			a.worker = actor.NewPID(m.WorkerAddress, m.WorkerId)
			a.lastHeard, a.lastProbe = time.Now(), time.Now()
			ctx.Watch(a.worker)
			a.ticker = tick.Start(ctx.ActorSystem(), ctx.Self(), tickEvery(a.c.hb), clientTick{})
		}
		a.spawned <- m // buffered: the only send
	case *clusterpb.Results:
		if a.failed {
			return // the runtime has given up on this worker
		}
		a.lastHeard = time.Now()
		rs, ok := fromResults(m)
		if !ok {
			a.fail(ctx, workerFailed{msg: fmt.Sprintf("node %s: malformed results from worker", a.node.addr), fault: true}, false)
			return
		}
		a.out.Results(rs)
	case *clusterpb.Grant:
		if a.failed {
			return
		}
		a.lastHeard = time.Now()
		a.out.Grant(int(m.N))
	case *clusterpb.Pong:
		a.lastHeard = time.Now()
	case *clusterpb.Failed:
		a.fail(ctx, workerFailed{msg: fmt.Sprintf("node %s: %s", a.node.addr, m.Error), fault: m.Fault}, false)
	case *actor.Terminated:
		if a.worker != nil && m.Who.Equal(a.worker) {
			why := "worker stopped"
			if m.Why == actor.TerminatedReason_AddressTerminated {
				why = "connection lost"
			}
			a.fail(ctx, nodeFault{fmt.Errorf("node %s: %s", a.node.addr, why)}, m.Why == actor.TerminatedReason_AddressTerminated)
		}
	case clientTick:
		if a.failed {
			return
		}
		a.lastHeard = stallGrace(a.lastHeard, &a.lastTick, a.c.hb)
		if s := time.Since(a.lastHeard); s > a.c.hb {
			a.fail(ctx, nodeFault{fmt.Errorf("node %s lost: no heartbeat for %s", a.node.addr, s.Round(time.Millisecond))}, true)
			return
		}
		if a.home != nil && !a.probing && time.Since(a.lastProbe) > 10*a.c.hb {
			if down, _ := a.home.down(); !down {
				a.probing, a.lastProbe = true, time.Now()
				self, sys, home := ctx.Self(), ctx.ActorSystem(), a.home
				go func() { sys.Root.Send(self, probed{a.c.probe(home)}) }()
			}
		}
		a.seq++
		ctx.Send(a.worker, &clusterpb.Ping{Seq: a.seq})
	case probed:
		a.probing = false
		if m.up && !a.failed {
			a.fail(ctx, nodeFault{fmt.Errorf("node %s is reachable again: the worker moves back to it", a.home.addr)}, false)
		}
	case *actor.Stopping:
		a.ticker.Stop()
	}
}

// probed is the outcome of a probe of a worker's preferred node.
type probed struct{ up bool }

// probe says whether node accepts TCP connections: a cheap look before a worker leaves the
// node it works on for one that was lost. A stopped node's kernel still accepts them; the spawn
// that follows then fails and the worker is placed again as before.
func (c *Client) probe(n *nodeState) bool {
	conn, err := net.DialTimeout("tcp", n.addr, min(c.hb, time.Second))
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// local wraps a worker's fallback backend, run locally because no node was reachable: every ten
// heartbeats it looks for a node that is reachable again, and then fails itself (no record
// charged) so that the worker's restart places it on that node.
func (c *Client) local(b troupe.Backend, out troupe.Outcomes) troupe.Backend {
	l := &localBackend{Backend: b, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		t := time.NewTicker(10 * c.hb)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
			}
			for _, n := range c.nodes {
				if down, _ := n.down(); !down && c.probe(n) {
					out.Fail(nodeFault{fmt.Errorf("node %s is reachable again: the worker moves to it", n.addr)})
					return
				}
			}
		}
	}()
	return l
}

type localBackend struct {
	troupe.Backend
	once sync.Once
	stop chan struct{}
	done chan struct{}
}

func (l *localBackend) Close(ctx context.Context) error {
	l.once.Do(func() { close(l.stop) })
	<-l.done
	return l.Backend.Close(ctx)
}

func (a *clientActor) fail(ctx actor.Context, err error, nodeLost bool) {
	if a.failed {
		return
	}
	a.failed = true
	if nodeLost {
		a.node.markDown(err, a.c.hb)
		a.c.log.Warn("cluster: node lost", "node", a.node.addr, "stage", a.stage, "worker", a.index, "error", err)
	}
	a.ticker.Stop()
	a.out.Fail(err)
}

// stallGrace keeps this process's own stalls (starved of CPU, a long GC pause) from counting
// as the peer's silence: when the ticks themselves came late, what the peer sent meanwhile may
// still be unread, so the silence is counted from a tick ago at most. It returns lastHeard,
// moved forward if need be, and records this tick.
func stallGrace(lastHeard time.Time, lastTick *time.Time, hb time.Duration) time.Time {
	now, every := time.Now(), tickEvery(hb)
	if !lastTick.IsZero() && now.Sub(*lastTick) > 2*every && lastHeard.Before(now.Add(-every)) {
		lastHeard = now.Add(-every)
	}
	*lastTick = now
	return lastHeard
}

// tickEvery is how often a client pings its worker and both check the silence.
func tickEvery(hb time.Duration) time.Duration { return max(hb/4, 10*time.Millisecond) }
