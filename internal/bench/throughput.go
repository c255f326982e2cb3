package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/ipc"
	"github.com/troupe-dev/troupe/plugins"
)

// workers is the worker count of every parallel figure: one per CPU.
func workers() int { return runtime.NumCPU() }

func identity(_ context.Context, r troupe.Record) ([]troupe.Record, error) {
	return []troupe.Record{r}, nil
}

// troupeThreeStages runs n 64-byte records through three in-process identity stages.
func troupeThreeStages(ctx context.Context, n int) (time.Duration, error) {
	w := workers()
	p := troupe.Pipeline{
		Source: actors.NewRangeSource(int64(n), 64),
		Stages: []troupe.Stage{{Name: "a", Func: identity, Workers: w}, {Name: "b", Func: identity, Workers: w}, {Name: "c", Func: identity, Workers: w}},
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

// channelsThreeStages is the in-process baseline: the same shape (a source, three stages of
// workers() goroutines running the same function, a sink) on plain channels, batch records per
// message, with no supervision, credits, acks or redelivery.
func channelsThreeStages(n, batch int) (time.Duration, error) {
	w := workers()
	start := time.Now()
	src := make(chan []troupe.Record, 64)
	go func() {
		for i := 0; i < n; i += batch {
			k := min(batch, n-i)
			recs := make([]troupe.Record, k)
			payloads := make([]byte, 64*k)
			for j := range recs {
				recs[j].Payload = payloads[64*j : 64*(j+1) : 64*(j+1)]
			}
			src <- recs
		}
		close(src)
	}()
	in := src
	for range 3 {
		stageIn, out := in, make(chan []troupe.Record, 64) // the goroutines must not see in reassigned
		var wg sync.WaitGroup
		for range w {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := range stageIn {
					res := make([]troupe.Record, 0, len(b))
					for _, r := range b {
						o, _ := identity(context.Background(), r)
						res = append(res, o...)
					}
					out <- res
				}
			}()
		}
		go func() { wg.Wait(); close(out) }()
		in = out
	}
	got := 0
	for b := range in {
		got += len(b)
	}
	if got != n {
		return 0, fmt.Errorf("channel baseline delivered %d records, want %d", got, n)
	}
	return time.Since(start), nil
}

func (h *harness) inproc(ctx context.Context) []Figure {
	n := h.sizes.inproc
	names := []string{"inproc-3stage-64B", "inproc-3stage-64B-vs-batch1"}
	best, err := alternate(figureRounds,
		func() (time.Duration, error) { return channelsThreeStages(n, 64) },
		func() (time.Duration, error) { return channelsThreeStages(n, 1) },
		func() (time.Duration, error) { return troupeThreeStages(ctx, n) })
	if err != nil {
		return failAll(err, names...)
	}
	c64, c1, tr := best[0].wall, best[1].wall, best[2].wall
	note := fmt.Sprintf("%d records, 3 identity stages of %d workers; baseline: plain channels; best of %d alternating rounds each", n, workers(), figureRounds)
	f1 := higher(names[0], "rec/s", rate(n, tr), rate(n, c64), 0.5, note)
	f1.BaselineName = "chan, batch 64"
	f2 := info(names[1], "rec/s", rate(n, tr), rate(n, c1), "")
	f2.BaselineName = "chan, batch 1"
	return []Figure{f1, f2}
}

// pluginRole is the plugin the figures run: rolePlugin (sdk.Serve, one record per call), or
// rolePluginBatch (sdk.ServeBatch) for the figures that compare them.
var pluginRole = rolePlugin

// pluginConfig is the troupe plugin the figures run: this executable upper-casing payloads.
func pluginConfig() (plugins.Config, error) {
	args, err := selfArgs()
	if err != nil {
		return plugins.Config{}, err
	}
	env := map[string]string{ChildEnv: pluginRole}
	if prefix := os.Getenv("TROUPE_BENCH_PLUGIN_CPUPROFILE"); prefix != "" {
		env["TROUPE_PLUGIN_CPUPROFILE"] = prefix // the plugins' CPU profiles (package sdk)
	}
	return plugins.Config{Cmd: args, Env: env}, nil
}

// pluginPipeline runs n records of size bytes through one plugin stage of w workers with
// stage credits credits, and returns the time the run took (plugin start included).
func pluginPipeline(ctx context.Context, n, size, w, credits int) (time.Duration, error) {
	cfg, err := pluginConfig()
	if err != nil {
		return 0, err
	}
	factory, err := cfg.Factory()
	if err != nil {
		return 0, err
	}
	p := troupe.Pipeline{
		Source: actors.NewRangeSource(int64(n), size),
		Stages: []troupe.Stage{{Name: "upper", Backend: factory, Workers: w, Credits: credits}},
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

// outcomes collects what a backend reports, for the figures that drive a backend directly.
type outcomes struct {
	mu       sync.Mutex
	cond     *sync.Cond
	credits  int
	reported int
	failed   error
	failedAt time.Time // when Fail was called: the host saw the process die
	failCh   chan struct{}
}

func newOutcomes() *outcomes {
	o := &outcomes{failCh: make(chan struct{})}
	o.cond = sync.NewCond(&o.mu)
	return o
}

func (o *outcomes) Results(rs []troupe.Result) {
	o.mu.Lock()
	o.reported += len(rs)
	o.mu.Unlock()
	o.cond.Broadcast()
}

func (o *outcomes) Grant(n int) {
	o.mu.Lock()
	o.credits += n
	o.mu.Unlock()
	o.cond.Broadcast()
}

func (o *outcomes) Fail(err error) {
	o.mu.Lock()
	if o.failed == nil {
		o.failed, o.failedAt = err, time.Now()
		close(o.failCh)
	}
	o.mu.Unlock()
	o.cond.Broadcast()
}

// take waits for credit and takes up to max; it fails once the backend has failed.
func (o *outcomes) take(max int) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for o.credits == 0 && o.failed == nil {
		o.cond.Wait()
	}
	if o.failed != nil {
		return 0, o.failed
	}
	n := min(o.credits, max)
	o.credits -= n
	return n, nil
}

// waitReported waits until n outcomes have been reported, or the backend failed.
func (o *outcomes) waitReported(n int) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for o.reported < n && o.failed == nil {
		o.cond.Wait()
	}
	return o.failed
}

// backendRate drives one plugin backend directly (no runtime): it submits n records of size
// bytes as fast as the plugin's grants allow, 256 at a time, and times them.
func backendRate(ctx context.Context, n, size int) (time.Duration, error) {
	cfg, err := pluginConfig()
	if err != nil {
		return 0, err
	}
	factory, err := cfg.Factory()
	if err != nil {
		return 0, err
	}
	out := newOutcomes()
	b, err := factory(ctx, troupe.WorkerInfo{Stage: "upper"}, out)
	if err != nil {
		return 0, err
	}
	defer b.Close(context.Background())
	recs := make([]troupe.Task, 256)
	for i := range recs {
		recs[i] = troupe.Task{Record: troupe.Record{Key: "k", Payload: make([]byte, size)}, Attempt: 1}
	}
	start := time.Now()
	for sent := 0; sent < n; {
		k, err := out.take(min(len(recs), n-sent))
		if err != nil {
			return 0, err
		}
		if err := b.Submit(recs[:k]); err != nil {
			return 0, err
		}
		sent += k
	}
	if err := out.waitReported(n); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// rawRate is the transport's ceiling: n records of size bytes, 256 to a frame (encoded as the
// plugin protocol encodes them), written by one goroutine into the data connection plugins
// get (ipc.SocketPair), echoed by a child process with buffered I/O, and read back by another goroutine,
// all pipelined (the socket's buffers are the only window).
func rawRate(ctx context.Context, n, size int) (time.Duration, error) {
	conn, child, err := ipc.SocketPair()
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	cmd, err := childCmd(roleEcho)
	if err != nil {
		child.Close()
		return 0, err
	}
	cmd.ExtraFiles = []*os.File{child}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		child.Close()
		return 0, err
	}
	child.Close()
	defer cmd.Wait()
	defer cmd.Process.Kill()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	const perFrame = 256
	recs := make([]*ipc.Record, perFrame)
	// The records as the host sends them: its seq, no sub, weight or flag.
	for i := range recs {
		recs[i] = &ipc.Record{Record: troupe.Record{Key: "k", Payload: make([]byte, size)}, Seq: uint64(i + 1)}
	}
	frame, err := ipc.AppendBatch(nil, 0, 1, recs)
	if err != nil {
		return 0, err
	}
	frames := (n + perFrame - 1) / perFrame
	start := time.Now()
	werr := make(chan error, 1)
	go func() {
		w := bufio.NewWriterSize(conn, 1<<20)
		for range frames {
			if _, err := w.Write(frame); err != nil {
				werr <- err
				return
			}
		}
		if err := w.Flush(); err != nil {
			werr <- err
			return
		}
		werr <- conn.CloseWrite()
	}()
	r := bufio.NewReaderSize(conn, 1<<20)
	for range frames {
		l, err := binary.ReadUvarint(r)
		if err == nil && l != uint64(len(frame)-uvarintLen(l)) {
			err = fmt.Errorf("echo returned a frame of %d bytes, sent %d", l, len(frame)-uvarintLen(l))
		}
		if err == nil {
			_, err = r.Discard(int(l))
		}
		if err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			return 0, fmt.Errorf("reading the echo: %w", err)
		}
	}
	d := time.Since(start)
	if err := <-werr; err != nil {
		return 0, err
	}
	if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("echo sent more than it received (%v)", err)
	}
	return d * time.Duration(n) / time.Duration(frames*perFrame), nil
}

func uvarintLen(x uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], x)
}

// rpcRate is the go-plugin baseline: n records of size bytes, one unary gRPC call each, from
// one caller (a worker), through a go-plugin plugin process.
func rpcRate(ctx context.Context, n, size int) (time.Duration, error) {
	cmd, err := childCmd(roleRPC)
	if err != nil {
		return 0, err
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  rpcHandshake,
		Plugins:          plugin.PluginSet{rpcPluginName: &rpcPlugin{}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           hclog.NewNullLogger(),
		Stderr:           io.Discard,
	})
	defer client.Kill()
	rpc, err := client.Client()
	if err != nil {
		return 0, err
	}
	raw, err := rpc.Dispense(rpcPluginName)
	if err != nil {
		return 0, err
	}
	conn := raw.(*grpc.ClientConn)
	in := wrapperspb.Bytes(make([]byte, size))
	out := new(wrapperspb.BytesValue)
	start := time.Now()
	for range n {
		if err := conn.Invoke(ctx, rpcMethod, in, out); err != nil {
			return 0, err
		}
		if len(out.Value) != size {
			return 0, fmt.Errorf("unary call returned %d bytes, want %d", len(out.Value), size)
		}
	}
	return time.Since(start), nil
}

func (h *harness) plugin64(ctx context.Context) []Figure {
	n := h.sizes.plugin64
	names := []string{"plugin-64B", "plugin-64B-credits1024", "plugin-64B-backend", "plugin-vs-grpc-unary"}
	best, err := alternate(figureRounds,
		func() (time.Duration, error) { return rawRate(ctx, n, 64) },
		func() (time.Duration, error) { return pluginPipeline(ctx, n, 64, 1, 0) },
		func() (time.Duration, error) { return pluginPipeline(ctx, n, 64, 1, 1024) },
		func() (time.Duration, error) { return backendRate(ctx, n, 64) })
	if err != nil {
		return failAll(err, names...)
	}
	raw, tr, t1k, tb := best[0].wall, best[1].wall, best[2].wall, best[3].wall
	var figs []Figure
	f := higher(names[0], "rec/s", rate(n, tr), rate(n, raw), 0.5,
		fmt.Sprintf("%d records, source -> 1 plugin worker (the default spec: no credits set) -> sink, plugin start included; baseline: frames echoed by a child over a socketpair, pipelined; best of %d alternating rounds each", n, figureRounds))
	f.BaselineName = "raw socketpair"
	figs = append(figs, f)
	f = higher(names[1], "rec/s", rate(n, t1k), rate(n, raw), 0.5, "the same with stage credits 1024")
	f.BaselineName = "raw socketpair"
	figs = append(figs, f)
	f = info(names[2], "rec/s", rate(n, tb), rate(n, raw), "the plugin backend driven directly, without the actor runtime: the data plane alone")
	f.BaselineName = "raw socketpair"
	figs = append(figs, f)
	rn := h.sizes.rpc
	if trpc, err := rpcRate(ctx, rn, 64); err != nil {
		figs = append(figs, failed(names[3], err))
	} else {
		f := higher(names[3], "rec/s", rate(n, tr), rate(rn, trpc), 1000,
			fmt.Sprintf("plugin-64B against go-plugin with one gRPC unary call per record (%d calls, one caller, as one worker)", rn))
		f.BaselineName = "go-plugin unary"
		figs = append(figs, f)
	}
	return figs
}

func (h *harness) plugin4k(ctx context.Context) []Figure {
	n, size := h.sizes.plugin4k, 4096
	best, err := alternate(figureRounds,
		func() (time.Duration, error) { return rawRate(ctx, n, size) },
		func() (time.Duration, error) { return pluginPipeline(ctx, n, size, 1, 1024) })
	if err != nil {
		return failAll(err, "plugin-4KiB")
	}
	raw, tr := best[0].wall, best[1].wall
	f := higher("plugin-4KiB", "B/s", rate(n*size, tr), rate(n*size, raw), 0.5,
		fmt.Sprintf("%d records of 4 KiB, payload bytes/s through 1 plugin worker and back; baseline: raw socketpair echo; best of %d alternating rounds each", n, figureRounds))
	f.BaselineName = "raw socketpair"
	return []Figure{f}
}
