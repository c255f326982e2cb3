package plugins_test

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/plugins"
)

// waitReady waits until the pool has n spares launched and handshaken (a spare process that is
// running may still be starting: a worker would not get it), and returns the test plugin
// processes then running.
func waitReady(t *testing.T, pool *plugins.Pool, n int) []int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for pool.Ready() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d spares ready after 60s, want %d", pool.Ready(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return pluginPids()
}

// TestPoolRunsPipelineOnSpares runs a pipeline whose workers start from the spares, and checks
// that Close, after the run, leaves no process behind and refuses further starts.
func TestPoolRunsPipelineOnSpares(t *testing.T) {
	pool, err := plugins.NewPool(plugins.Config{Cmd: []string{testPlugin}, Spares: 2})
	if err != nil {
		t.Fatal(err)
	}
	spares := waitReady(t, pool, 2)
	if len(spares) != 2 {
		t.Fatalf("%d plugin processes running with 2 spares ready and no worker: %v", len(spares), spares)
	}
	const n = 20_000
	sink, dead := &countingSink{}, &deadLetters{}
	var mu sync.Mutex
	var used []int
	p := troupe.Pipeline{
		Source:      &payloadSource{count: n, payload: func(i int) string { return "p" + strconv.Itoa(i) }},
		Stages:      []troupe.Stage{{Name: "upper", Backend: pidRecorder(pool.Factory(), &mu, &used), Workers: 2, Restart: troupe.Restart{Intensity: 100, Period: time.Second}}},
		Sink:        sink,
		DeadLetters: dead,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := actors.Run(ctx, &p); err != nil {
		t.Fatal(err)
	}
	if len(sink.seen) != n || len(dead.letters) != 0 || len(sink.bad) != 0 {
		t.Fatalf("sink saw %d records (want %d), %d dead letters, %d unprocessed", len(sink.seen), n, len(dead.letters), len(sink.bad))
	}
	mu.Lock()
	for _, pid := range spares {
		if !slices.Contains(used, pid) {
			t.Errorf("spare %d was not used by a worker (workers ran %v)", pid, used)
		}
	}
	mu.Unlock()
	if err := pool.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if left := pluginPids(); len(left) > 0 {
		t.Fatalf("processes left after the run and Close: %v", left)
	}
	if _, err := pool.Factory()(ctx, troupe.WorkerInfo{Stage: "upper"}, nopOutcomes{}); err == nil {
		t.Fatal("a closed pool started a worker")
	}
}

// TestPoolReplacesDeadSpare kills a waiting spare: the next start must still succeed.
func TestPoolReplacesDeadSpare(t *testing.T) {
	pool, err := plugins.NewPool(plugins.Config{Cmd: []string{testPlugin}, Spares: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close(context.Background())
	spare := waitReady(t, pool, 1)[0]
	if err := syscall.Kill(spare, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for slices.Contains(pluginPids(), spare) { // until it is reaped
		time.Sleep(5 * time.Millisecond)
	}
	out := &chanOutcomes{results: make(chan []troupe.Result, 1), grants: make(chan int, 1)}
	b, err := pool.Factory()(context.Background(), troupe.WorkerInfo{Stage: "s"}, out)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	<-out.grants
	if err := b.Submit([]troupe.Task{{Record: troupe.Record{Key: "k", Payload: []byte("x")}, Attempt: 1}}); err != nil {
		t.Fatal(err)
	}
	if res := <-out.results; len(res) != 1 || len(res[0].Outputs) != 1 || string(res[0].Outputs[0].Payload) != "X" {
		t.Fatalf("got %+v", res)
	}
}

func TestPoolSetupErrorIsAFailedStart(t *testing.T) {
	pool, err := plugins.NewPool(plugins.Config{Cmd: []string{testPlugin}, Spares: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close(context.Background())
	waitReady(t, pool, 1)
	_, err = pool.Factory()(context.Background(), troupe.WorkerInfo{Stage: "s", Options: map[string]any{"fail_setup": true}}, nopOutcomes{})
	if err == nil || !strings.Contains(err.Error(), "fail_setup") {
		t.Fatalf("err = %v, want the plugin's setup error", err)
	}
}

func TestFactoryRefusesSpares(t *testing.T) {
	if _, err := (plugins.Config{Cmd: []string{testPlugin}, Spares: 1}).Factory(); err == nil {
		t.Fatal("Factory accepted spares it could never close")
	}
	if _, err := plugins.NewPool(plugins.Config{Cmd: []string{testPlugin}, Spares: -1}); err == nil {
		t.Fatal("NewPool accepted negative spares")
	}
}

// pidRecorder wraps a factory and records the pid of every backend it starts.
func pidRecorder(f troupe.BackendFactory, mu *sync.Mutex, pids *[]int) troupe.BackendFactory {
	return func(ctx context.Context, w troupe.WorkerInfo, out troupe.Outcomes) (troupe.Backend, error) {
		b, err := f(ctx, w, out)
		if err == nil {
			if p, ok := b.(interface{ Pid() int }); ok {
				mu.Lock()
				*pids = append(*pids, p.Pid())
				mu.Unlock()
			}
		}
		return b, err
	}
}

type nopOutcomes struct{}

func (nopOutcomes) Results([]troupe.Result) {}
func (nopOutcomes) Grant(int)               {}
func (nopOutcomes) Fail(error)              {}

type chanOutcomes struct {
	results chan []troupe.Result
	grants  chan int
}

func (o *chanOutcomes) Results(r []troupe.Result) { o.results <- r }
func (o *chanOutcomes) Grant(n int) {
	select {
	case o.grants <- n:
	default:
	}
}
func (o *chanOutcomes) Fail(error) {}

// setupLog records the pids of the plugin processes that logged their Setup (the test plugin
// with TESTPLUGIN_LOG_SETUP), in order.
type setupLog struct {
	mu   sync.Mutex
	pids []int
}

func (l *setupLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *setupLog) WithGroup(string) slog.Handler            { return l }
func (l *setupLog) WithAttrs(as []slog.Attr) slog.Handler {
	return &setupLogAttrs{l: l, attrs: as}
}
func (l *setupLog) Handle(ctx context.Context, r slog.Record) error {
	return (&setupLogAttrs{l: l}).Handle(ctx, r)
}

type setupLogAttrs struct {
	l     *setupLog
	attrs []slog.Attr
}

func (a *setupLogAttrs) Enabled(context.Context, slog.Level) bool { return true }
func (a *setupLogAttrs) WithGroup(string) slog.Handler            { return a }
func (a *setupLogAttrs) WithAttrs(as []slog.Attr) slog.Handler {
	return &setupLogAttrs{l: a.l, attrs: append(slices.Clone(a.attrs), as...)}
}
func (a *setupLogAttrs) Handle(_ context.Context, r slog.Record) error {
	if !strings.Contains(r.Message, "setup map[") {
		return nil
	}
	pid := 0
	check := func(at slog.Attr) bool {
		if at.Key == "pid" {
			pid = int(at.Value.Int64())
		}
		return true
	}
	for _, at := range a.attrs {
		check(at)
	}
	r.Attrs(check)
	a.l.mu.Lock()
	a.l.pids = append(a.l.pids, pid)
	a.l.mu.Unlock()
	return nil
}

func (l *setupLog) has(pid int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.pids, pid)
}

// TestPoolPreconfiguresSpares checks that, once a worker has started, the pool's spares are
// configured before they are taken (their Setup has run, the data connection is open), that a
// restart takes one and it serves records, and that a spare configured for other options is
// not used for a worker with new ones.
func TestPoolPreconfiguresSpares(t *testing.T) {
	logs := &setupLog{}
	pool, err := plugins.NewPool(plugins.Config{Cmd: []string{testPlugin}, Spares: 1,
		Env: map[string]string{"TESTPLUGIN_LOG_SETUP": "1"}, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close(context.Background())
	ctx := context.Background()
	start := func(opts map[string]any, incarnation int) troupe.Backend {
		t.Helper()
		out := &chanOutcomes{results: make(chan []troupe.Result, 1), grants: make(chan int, 1)}
		b, err := pool.Factory()(ctx, troupe.WorkerInfo{Stage: "s", Incarnation: incarnation, Options: opts}, out)
		if err != nil {
			t.Fatal(err)
		}
		<-out.grants
		if err := b.Submit([]troupe.Task{{Record: troupe.Record{Key: "k", Payload: []byte("x")}, Attempt: 1}}); err != nil {
			t.Fatal(err)
		}
		if res := <-out.results; len(res) != 1 || len(res[0].Outputs) != 1 || string(res[0].Outputs[0].Payload) != "X" {
			t.Fatalf("got %+v", res)
		}
		return b
	}
	pidOf := func(b troupe.Backend) int { return b.(interface{ Pid() int }).Pid() }
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("no %s after 60s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	opts := map[string]any{"n": 3}
	waitReady(t, pool, 1)
	b1 := start(opts, 0) // takes the spare launched before the options were known
	defer b1.Close(ctx)
	// Its replacement is launched and configured with the options learnt.
	waitReady(t, pool, 1)
	spares := slices.DeleteFunc(pluginPids(), func(p int) bool { return p == pidOf(b1) })
	if len(spares) != 1 {
		t.Fatalf("plugin processes besides the worker's: %v, want 1 spare", spares)
	}
	waitFor("Setup logged by the spare", func() bool { return logs.has(spares[0]) })
	b2 := start(opts, 1)
	defer b2.Close(ctx)
	if pidOf(b2) != spares[0] {
		t.Fatalf("the restart ran in pid %d, not the configured spare %d", pidOf(b2), spares[0])
	}
	// New options: the spare configured for the old ones is not used.
	waitReady(t, pool, 1)
	spare := slices.DeleteFunc(pluginPids(), func(p int) bool { return p == pidOf(b1) || p == pidOf(b2) })
	b3 := start(map[string]any{"n": 4}, 0)
	defer b3.Close(ctx)
	if slices.Contains(spare, pidOf(b3)) {
		t.Fatalf("a worker with new options ran in the spare %d configured for the old ones", pidOf(b3))
	}
}
