package plugins_test

import (
	"context"
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
