package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/cluster"
	"github.com/troupe-dev/troupe/cluster/clusterpb"
)

// roleNode runs a cluster node with an echo actor next to its workers (the per-message
// baseline's peer); it prints its address twice (node, echo) and runs until stdin closes.
const roleNode = "node"

const benchClusterToken = "troupe-bench-token"

// echoActor answers every PerRecord with the same record, to its sender.
func echoActor(ctx actor.Context) {
	if m, ok := ctx.Message().(*clusterpb.PerRecord); ok {
		ctx.Send(ctx.Sender(), m)
	}
}

// nodeChild is the node role.
func nodeChild(stdin io.Reader, stdout, stderr io.Writer) int {
	n, err := cluster.StartNode(cluster.NodeConfig{Listen: "127.0.0.1:0", Token: benchClusterToken})
	if err != nil {
		fmt.Fprintln(stderr, "bench node:", err)
		return 1
	}
	// The echo lives on the node's own remote: protoactor's Remote.Start sets grpc's global
	// logger, so a process runs one remote.
	if _, err := n.ActorSystem().Root.SpawnNamed(actor.PropsFromFunc(echoActor), "echo"); err != nil {
		fmt.Fprintln(stderr, "bench node:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s %s\n", n.Addr(), n.Addr())
	_, _ = io.Copy(io.Discard, stdin) // until the harness closes it (or dies)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = n.Close(ctx)
	return 0
}

// benchNode is a node child process.
type benchNode struct {
	cmd       *exec.Cmd
	stdin     io.WriteCloser
	node      string // the cluster node's address
	echo      string // the plain remote's address
	waitErrCh chan error
}

func startBenchNode() (*benchNode, error) {
	cmd, err := childCmd(roleNode)
	if err != nil {
		return nil, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	b := &benchNode{cmd: cmd, stdin: stdin}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case l, ok := <-line:
		f := strings.Fields(l)
		if !ok || len(f) != 2 {
			b.stop()
			return nil, fmt.Errorf("bench node child said %q", l)
		}
		b.node, b.echo = f[0], f[1]
	case <-time.After(30 * time.Second):
		b.stop()
		return nil, fmt.Errorf("bench node child did not start within 30s")
	}
	return b, nil
}

func (b *benchNode) stop() {
	_ = b.stdin.Close()
	done := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-done
	}
}

// clusterPipeline runs n records of size bytes through one identity stage whose workers
// (perNode on each node) run on the nodes, into a discard sink.
func clusterPipeline(ctx context.Context, c *cluster.Client, nodes []string, n, size, perNode int) (time.Duration, error) {
	f, err := c.Factory(cluster.Work{Builtin: "identity", Credits: 4096})
	if err != nil {
		return 0, err
	}
	p := troupe.Pipeline{
		Source: actors.NewRangeSource(int64(n), size),
		Stages: []troupe.Stage{{Name: "id", Backend: f, Workers: perNode * len(nodes), Credits: 4096, CreditBytes: 4 << 20}},
		Sink:   actors.NewDiscardSink(),
	}
	start := time.Now()
	sum, err := actors.Run(ctx, &p)
	d := time.Since(start)
	if err == nil && sum.RecordsOut != int64(n) {
		err = fmt.Errorf("%d records reached the sink, want %d", sum.RecordsOut, n)
	}
	return d, err
}

// localPipeline is the same stage run locally (workers() in-process workers).
func localPipeline(ctx context.Context, n, size int) (time.Duration, error) {
	p := troupe.Pipeline{
		Source: actors.NewRangeSource(int64(n), size),
		Stages: []troupe.Stage{{Name: "id", Func: identity, Workers: workers()}},
		Sink:   actors.NewDiscardSink(),
	}
	start := time.Now()
	sum, err := actors.Run(ctx, &p)
	d := time.Since(start)
	if err == nil && sum.RecordsOut != int64(n) {
		err = fmt.Errorf("%d records reached the sink, want %d", sum.RecordsOut, n)
	}
	return d, err
}

// perMessage is the baseline: protoactor remote sending one message per record to the echo
// actors of the nodes (alternately), each echoed back; the time until every echo is back.
func perMessage(ctx context.Context, c *cluster.Client, echoes []string, n, size int) (time.Duration, error) {
	sys := c.ActorSystem()
	var got atomic.Int64
	done := make(chan struct{})
	counter := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*clusterpb.PerRecord); ok {
			if got.Add(1) == int64(n) {
				close(done)
			}
		}
	}))
	pids := make([]*actor.PID, len(echoes))
	for i, a := range echoes {
		pids[i] = actor.NewPID(a, "echo")
	}
	defer sys.Root.Stop(counter)
	payload := make([]byte, size)
	start := time.Now()
	// At most window messages in flight, so the remote's queues do not drop any.
	const window = 50_000
	for i := range n {
		for int64(i)-got.Load() >= window {
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(50 * time.Microsecond):
			}
		}
		sys.Root.RequestWithCustomSender(pids[i%len(pids)], &clusterpb.PerRecord{Rec: &clusterpb.Rec{Key: "k", Payload: payload}}, counter)
	}
	select {
	case <-done:
	case <-ctx.Done():
		return 0, fmt.Errorf("per-message baseline: %d of %d echoes back: %w", got.Load(), n, ctx.Err())
	}
	return time.Since(start), nil
}

// clusterFigures measures a stage on two nodes over loopback against the per-message baseline
// and against the same stage run locally.
func (h *harness) clusterFigures(ctx context.Context) []Figure {
	names := []string{"cluster-2node-64B", "cluster-vs-remote-per-message", "cluster-vs-local"}
	var nodes []*benchNode
	defer func() {
		for _, b := range nodes {
			b.stop()
		}
	}()
	for range 2 {
		b, err := startBenchNode()
		if err != nil {
			return failAll(err, names...)
		}
		nodes = append(nodes, b)
	}
	addrs := []string{nodes[0].node, nodes[1].node}
	echoes := []string{nodes[0].echo, nodes[1].echo}
	n, pm := h.sizes.plugin64, h.sizes.rpc*10
	perNode := max(workers()/2, 1)
	c, err := cluster.NewClient(cluster.Config{Nodes: addrs, Token: benchClusterToken, Heartbeat: 10 * time.Second})
	if err != nil {
		return failAll(err, names...)
	}
	defer c.Close()
	tc, err := clusterPipeline(ctx, c, addrs, n, 64, perNode)
	if err != nil {
		return failAll(fmt.Errorf("cluster pipeline: %w", err), names...)
	}
	crate := rate(n, tc)
	var figs []Figure
	f := Figure{Name: names[0], Unit: "rec/s", Troupe: crate, Baseline: nan(), Ratio: nan(), Target: "troupe >= 5 M rec/s",
		Note: fmt.Sprintf("%d records of 64 B, range source -> identity builtin, %d workers on each of 2 troupe node processes over loopback -> discard; coordinator and nodes share this machine's %d CPUs", n, perNode, workers())}
	met := crate >= 5e6
	f.Met = &met
	figs = append(figs, f)
	if tp, err := perMessage(ctx, c, echoes, pm, 64); err != nil {
		figs = append(figs, failed(names[1], err))
	} else {
		f := higher(names[1], "rec/s", crate, rate(pm, tp), 9,
			fmt.Sprintf("against protoactor remote sending one message per record to echo actors on the 2 nodes (%d messages, pipelined, at most 50000 in flight; remote's endpoint writer still packs up to 64 messages per gRPC frame), with none of the runtime's credits, acks or bookkeeping", pm))
		f.BaselineName = "remote per message"
		figs = append(figs, f)
	}
	if tl, err := localPipeline(ctx, n, 64); err != nil {
		figs = append(figs, failed(names[2], err))
	} else {
		f := info(names[2], "rec/s", crate, rate(n, tl), fmt.Sprintf("against the same stage run locally (%d in-process workers)", workers()))
		f.BaselineName = "local"
		figs = append(figs, f)
	}
	return figs
}
