package actors_test

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/supervisor"
)

func memPayloads(recs []troupe.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, string(r.Payload))
	}
	sort.Strings(out)
	return out
}

func TestMemorySourcesAndSinks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want := []string{"a", "b", "c"}

	// slice source → callback sink
	var got []troupe.Record
	s, err := actors.Run(ctx, &troupe.Pipeline{
		Source: actors.NewSliceSource([]troupe.Record{{Key: "1", Payload: []byte("a")}, {Key: "2", Payload: []byte("b")}, {Key: "3", Payload: []byte("c")}}),
		Sink:   actors.NewFuncSink(func(r troupe.Record) error { got = append(got, r); return nil }),
	})
	if err != nil || s.Total != 3 || !slices.Equal(memPayloads(got), want) {
		t.Fatalf("slice→func: %v, total %d, %v", err, s.Total, memPayloads(got))
	}

	// channel source → channel sink
	in, out := make(chan troupe.Record), make(chan troupe.Record, 1)
	go func() {
		for _, p := range want {
			in <- troupe.Record{Key: p, Payload: []byte(p)}
		}
		close(in)
	}()
	var fromChan []troupe.Record
	collected := make(chan struct{})
	go func() {
		for r := range out { // ends when the run closes the sink
			fromChan = append(fromChan, r)
		}
		close(collected)
	}()
	if _, err := actors.Run(ctx, &troupe.Pipeline{Source: actors.NewChanSource(in), Sink: actors.NewChanSink(ctx, out)}); err != nil {
		t.Fatal(err)
	}
	<-collected
	if !slices.Equal(memPayloads(fromChan), want) {
		t.Fatalf("chan→chan: %v", memPayloads(fromChan))
	}

	// reader source → memory sink
	mem := actors.NewMemorySink(0)
	if _, err := actors.Run(ctx, &troupe.Pipeline{Source: actors.NewReaderSource(strings.NewReader("a\nb\nc\n")), Sink: mem}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(memPayloads(mem.Records()), want) {
		t.Fatalf("reader→memory: %v", memPayloads(mem.Records()))
	}
	recs, done, err := mem.Next(ctx, 3)
	if len(recs) != 0 || !done || err != nil {
		t.Fatalf("Next past the end: %v %v %v", recs, done, err)
	}
}

func TestMemorySinkLimitAbortsTheRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mem := actors.NewMemorySink(5)
	s, err := actors.Run(ctx, &troupe.Pipeline{Source: actors.NewStringsSource([]string{"abc", "def", "ghi"}), Sink: mem})
	if !errors.Is(err, actors.ErrOutputLimit) || s.Outcome != troupe.OutcomeAborted || mem.Bytes() > 5 {
		t.Fatalf("err %v, outcome %s, %d bytes", err, s.Outcome, mem.Bytes())
	}
}

func TestChanSourceStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	in := make(chan troupe.Record) // never sends, never closed
	j, err := actors.Start(ctx, &troupe.Pipeline{Source: actors.NewChanSource(in), Sink: actors.NewDiscardSink()})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	done := make(chan struct{})
	go func() { j.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("a run on a silent channel did not stop")
	}
}

func TestStartUnderSharesTheSystemAndIsolatesFailures(t *testing.T) {
	sys := actors.NewSystem()
	defer sys.Shutdown()
	root, err := supervisor.Start(sys, supervisor.Spec{Name: "srv", Flags: supervisor.Flags{Strategy: supervisor.OneForOne, Intensity: 1, Period: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer root.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var mu sync.Mutex
	var paths []string
	bad, err := actors.StartUnder(ctx, &troupe.Pipeline{
		Source:      actors.NewStringsSource([]string{"a"}),
		Sink:        actors.NewDiscardSink(),
		Stages:      []troupe.Stage{{Name: "boom", Workers: 1, Attempts: 100, Restart: troupe.Restart{Intensity: 1, Period: time.Minute}, Func: func(context.Context, troupe.Record) ([]troupe.Record, error) { panic("boom") }}},
		Supervision: supervisor.Flags{Strategy: supervisor.OneForOne, Intensity: 1, Period: time.Minute},
		Events: func(e supervisor.Event) {
			mu.Lock()
			paths = append(paths, e.Path)
			mu.Unlock()
		},
	}, actors.Parent{System: sys, Supervisor: root, Name: "job-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Wait(); err == nil {
		t.Fatal("the failing run succeeded")
	}
	good, err := actors.StartUnder(ctx, &troupe.Pipeline{Source: actors.NewStringsSource([]string{"a", "b"}), Sink: actors.NewDiscardSink()}, actors.Parent{System: sys, Supervisor: root, Name: "job-2"})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := good.Wait(); err != nil || s.RecordsOut != 2 {
		t.Fatalf("the second run: %v, %d out", err, s.RecordsOut)
	}
	select {
	case <-root.Done():
		t.Fatal("the parent supervisor ended")
	default:
	}
	if kids, err := root.WhichChildren(); err != nil || len(kids) != 0 {
		t.Fatalf("the parent's children after the runs: %v %v", kids, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) == 0 {
		t.Fatal("no events")
	}
	for _, p := range paths {
		if !strings.HasPrefix(p, "srv/job-1") {
			t.Fatalf("event path %q not under srv/job-1", p)
		}
	}
}
