package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/engine"
	"github.com/troupe-dev/troupe/internal/proctest"
	"github.com/troupe-dev/troupe/plugins"
	"github.com/troupe-dev/troupe/spec"
)

// deadline bounds every wait: an upper bound on a loaded machine, never a measure.
const deadline = time.Minute

var testPlugin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "troupe-engine-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testPlugin = filepath.Join(dir, "testplugin")
	if out, err := exec.Command("go", "build", "-o", testPlugin, "./internal/testplugin").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the test plugin: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	if err := plugins.WaitClosed(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
		if pids := proctest.Running(testPlugin); len(pids) > 0 {
			fmt.Fprintln(os.Stderr, "plugin processes left behind:", pids)
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func newEngine(t *testing.T, opts engine.Options) *engine.Engine {
	t.Helper()
	e, err := engine.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		if _, err := e.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return e
}

func waitJob(t *testing.T, j *engine.Job) (troupe.Summary, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	s, err := j.Wait(ctx)
	if ctx.Err() != nil {
		t.Fatalf("job %s did not end within %s (status %s)", j.ID(), deadline, j.Status())
	}
	return s, err
}

func payloads(recs []troupe.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, string(r.Payload))
	}
	sort.Strings(out)
	return out
}

// suffix is an in-process stage that appends tag to each payload.
func suffix(tag string) troupe.Stage {
	return troupe.Stage{Name: "suffix", Workers: 2, Func: func(_ context.Context, r troupe.Record) ([]troupe.Record, error) {
		r.Payload = append(bytes.Clone(r.Payload), tag...)
		return []troupe.Record{r}, nil
	}}
}

func TestConcurrentJobsIndependentResults(t *testing.T) {
	e := newEngine(t, engine.Options{MaxJobs: 4})
	var jobs []*engine.Job
	for i := range 6 {
		in := make([]string, 50)
		for k := range in {
			in[k] = fmt.Sprintf("j%d-r%d", i, k)
		}
		j, err := e.Submit(context.Background(), engine.JobSpec{
			Pipeline: &troupe.Pipeline{Name: "p" + strconv.Itoa(i), Stages: []troupe.Stage{suffix(fmt.Sprintf("+%d", i))}},
			Input:    actors.NewStringsSource(in),
		})
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	for i, j := range jobs {
		s, err := waitJob(t, j)
		if err != nil || j.Status() != engine.Done || s.RecordsOut != 50 {
			t.Fatalf("job %d: status %s, err %v, out %d", i, j.Status(), err, s.RecordsOut)
		}
		var want []string
		for k := range 50 {
			want = append(want, fmt.Sprintf("j%d-r%d+%d", i, k, i))
		}
		sort.Strings(want)
		if got := payloads(j.Output().Records()); !slices.Equal(got, want) {
			t.Fatalf("job %d: output %v, want %v", i, got, want)
		}
	}
	if n := len(e.List()); n != 6 {
		t.Fatalf("List has %d jobs, want 6", n)
	}
}

// blocking is a stage whose record "block" waits until release is closed.
func blocking(release <-chan struct{}, started chan<- struct{}) troupe.Stage {
	var once sync.Once
	return troupe.Stage{Name: "block", Workers: 1, Func: func(ctx context.Context, r troupe.Record) ([]troupe.Record, error) {
		if string(r.Payload) == "block" {
			once.Do(func() { close(started) })
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return []troupe.Record{r}, nil
	}}
}

func TestCancelledJobIsCancelledNotDone(t *testing.T) {
	e := newEngine(t, engine.Options{MaxJobs: 2})
	release, started := make(chan struct{}), make(chan struct{})
	j, err := e.Submit(context.Background(), engine.JobSpec{
		Pipeline: &troupe.Pipeline{Name: "c", Stages: []troupe.Stage{blocking(release, started)}},
		Input:    actors.NewStringsSource([]string{"a", "block", "c"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(deadline):
		t.Fatal("the job did not start")
	}
	if st := j.Status(); st != engine.Running {
		t.Fatalf("status %s, want running", st)
	}
	j.Cancel()
	close(release) // the record in flight drains
	_, err = waitJob(t, j)
	if j.Status() != engine.Cancelled || !errors.Is(err, context.Canceled) {
		t.Fatalf("status %s, err %v; want cancelled, context.Canceled", j.Status(), err)
	}
	// The engine goes on.
	j2, err := e.Submit(context.Background(), engine.JobSpec{Pipeline: &troupe.Pipeline{Stages: []troupe.Stage{suffix("!")}}, Input: actors.NewStringsSource([]string{"x"})})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := waitJob(t, j2); err != nil || j2.Status() != engine.Done {
		t.Fatalf("next job: %s %v", j2.Status(), err)
	}
}

func TestQueueLimitAndOrder(t *testing.T) {
	e := newEngine(t, engine.Options{MaxJobs: 1, MaxQueue: 1})
	release, started := make(chan struct{}), make(chan struct{})
	running, err := e.Submit(context.Background(), engine.JobSpec{
		Pipeline: &troupe.Pipeline{Stages: []troupe.Stage{blocking(release, started)}},
		Input:    actors.NewStringsSource([]string{"block"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	queued, err := e.Submit(context.Background(), engine.JobSpec{Pipeline: &troupe.Pipeline{Stages: []troupe.Stage{suffix("q")}}, Input: actors.NewStringsSource([]string{"q"})})
	if err != nil {
		t.Fatal(err)
	}
	if st := queued.Status(); st != engine.Queued {
		t.Fatalf("second job %s, want queued", st)
	}
	_, err = e.Submit(context.Background(), engine.JobSpec{Pipeline: &troupe.Pipeline{Stages: []troupe.Stage{suffix("x")}}, Input: actors.NewStringsSource([]string{"x"})})
	if !errors.Is(err, engine.ErrQueueFull) {
		t.Fatalf("third job: %v, want ErrQueueFull", err)
	}
	close(release)
	if _, err := waitJob(t, running); err != nil {
		t.Fatal(err)
	}
	if _, err := waitJob(t, queued); err != nil || queued.Status() != engine.Done {
		t.Fatalf("queued job: %s %v", queued.Status(), err)
	}
	if got := payloads(queued.Output().Records()); !slices.Equal(got, []string{"qq"}) {
		t.Fatalf("queued job's output %v", got)
	}
}

func TestCancelQueuedJob(t *testing.T) {
	e := newEngine(t, engine.Options{MaxJobs: 1})
	release, started := make(chan struct{}), make(chan struct{})
	defer close(release)
	_, err := e.Submit(context.Background(), engine.JobSpec{Pipeline: &troupe.Pipeline{Stages: []troupe.Stage{blocking(release, started)}}, Input: actors.NewStringsSource([]string{"block"})})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	q, err := e.Submit(context.Background(), engine.JobSpec{Pipeline: &troupe.Pipeline{Stages: []troupe.Stage{suffix("q")}}, Input: actors.NewStringsSource([]string{"q"})})
	if err != nil {
		t.Fatal(err)
	}
	q.Cancel()
	if _, err := waitJob(t, q); q.Status() != engine.Cancelled || !errors.Is(err, context.Canceled) {
		t.Fatalf("%s %v", q.Status(), err)
	}
}

func TestOutputLimitFailsTheJob(t *testing.T) {
	e := newEngine(t, engine.Options{})
	in := make([]string, 100)
	for i := range in {
		in[i] = strings.Repeat("x", 100)
	}
	j, err := e.Submit(context.Background(), engine.JobSpec{Pipeline: &troupe.Pipeline{}, Input: actors.NewStringsSource(in), OutputLimit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	_, err = waitJob(t, j)
	if j.Status() != engine.Failed || !errors.Is(err, actors.ErrOutputLimit) {
		t.Fatalf("status %s, err %v; want failed with ErrOutputLimit", j.Status(), err)
	}
	if b := j.Output().Bytes(); b > 1000 {
		t.Fatalf("kept %d bytes, over the limit", b)
	}
}

func TestSpecJobs(t *testing.T) {
	e := newEngine(t, engine.Options{})
	// No sink: the output is in memory; the input replaces the (absent) source.
	j, err := e.Submit(context.Background(), engine.JobSpec{
		Spec:  []byte("stages:\n  - name: up\n    builtin: upper\n"),
		Input: actors.NewStringsSource([]string{"a", "b"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := waitJob(t, j); err != nil {
		t.Fatal(err)
	}
	if got := payloads(j.Output().Records()); !slices.Equal(got, []string{"A", "B"}) {
		t.Fatalf("output %v", got)
	}
	// A JSON spec.
	j, err = e.Submit(context.Background(), engine.JobSpec{Spec: []byte(`{"source": {"range": {"count": 3}}}`)})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := waitJob(t, j); err != nil || s.RecordsOut != 3 {
		t.Fatalf("%v %d", err, s.RecordsOut)
	}
	// A bad spec: every problem at its position.
	_, err = e.Submit(context.Background(), engine.JobSpec{SpecFile: "bad.yaml", Spec: []byte("source:\n  range: {count: 1}\nstages:\n  - name: up\n    builtin: nosuch\n    workerz: 2\n")})
	var se *spec.SpecError
	if !errors.As(err, &se) || len(se.Errors) < 2 {
		t.Fatalf("err %v, want a SpecError with two problems", err)
	}
	if !strings.Contains(err.Error(), "bad.yaml:5:") || !strings.Contains(err.Error(), "bad.yaml:6:") {
		t.Fatalf("err %q lacks positions", err)
	}
}

func warmEngine(t *testing.T, workers int, opts engine.Options) *engine.Engine {
	t.Helper()
	opts.Warm = []engine.WarmStage{{Name: "up", Plugin: pluginConfig(), Workers: workers}}
	return newEngine(t, opts)
}

func pluginConfig() plugins.Config { return plugins.Config{Cmd: []string{testPlugin}} }

func pidsOf(recs []troupe.Record) []int {
	seen := map[int]bool{}
	for _, r := range recs {
		pid, _ := strconv.Atoi(r.Meta["pid"])
		seen[pid] = true
	}
	var pids []int
	for p := range seen {
		pids = append(pids, p)
	}
	slices.Sort(pids)
	return pids
}

func warmJob(e *engine.Engine, workers int, in []string) engine.JobSpec {
	return engine.JobSpec{
		Pipeline: &troupe.Pipeline{Name: "warm", Stages: []troupe.Stage{{Name: "up", Backend: e.Warm("up"), Workers: workers}}},
		Input:    actors.NewStringsSource(in),
	}
}

func TestWarmProcessesServeConsecutiveJobs(t *testing.T) {
	e := warmEngine(t, 2, engine.Options{})
	before := e.WarmPids("up")
	if len(before) != 2 {
		t.Fatalf("warm pids %v, want 2", before)
	}
	var seen [][]int
	for i := range 2 {
		in := make([]string, 40)
		for k := range in {
			in[k] = fmt.Sprintf("job%d-%d", i, k)
		}
		j, err := e.Submit(context.Background(), warmJob(e, 2, in))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := waitJob(t, j); err != nil {
			t.Fatal(err)
		}
		recs := j.Output().Records()
		if len(recs) != 40 {
			t.Fatalf("job %d: %d outputs", i, len(recs))
		}
		for _, r := range recs {
			if !strings.HasPrefix(string(r.Payload), fmt.Sprintf("JOB%d-", i)) {
				t.Fatalf("job %d saw another job's record %q", i, r.Payload)
			}
		}
		pids := pidsOf(recs)
		for _, p := range pids {
			if !slices.Contains(before, p) {
				t.Fatalf("job %d served by pid %d, not one of the warm %v", i, p, before)
			}
		}
		seen = append(seen, pids)
	}
	if after := e.WarmPids("up"); !slices.Equal(after, before) {
		t.Fatalf("warm pids after two jobs %v, before %v", after, before)
	}
	t.Logf("warm pids %v served job 1 with %v and job 2 with %v", before, seen[0], seen[1])
}

func TestWarmPoisonCountsAgainstItsOwnJobOnly(t *testing.T) {
	e := warmEngine(t, 2, engine.Options{})
	poison, err := e.Submit(context.Background(), warmJob(e, 1, []string{"a", "crash", "b"}))
	if err != nil {
		t.Fatal(err)
	}
	clean, err := e.Submit(context.Background(), warmJob(e, 1, []string{"x", "y", "z"}))
	if err != nil {
		t.Fatal(err)
	}
	s, err := waitJob(t, poison)
	if err != nil || s.DeadLetters != 1 || s.RecordsOut != 2 {
		t.Fatalf("poison job: %v, dead %d, out %d", err, s.DeadLetters, s.RecordsOut)
	}
	s, err = waitJob(t, clean)
	if err != nil || s.DeadLetters != 0 || s.RecordsOut != 3 || s.Stages[0].Retries != 0 {
		t.Fatalf("clean job: %v, dead %d, out %d, retries %d", err, s.DeadLetters, s.RecordsOut, s.Stages[0].Retries)
	}
	// The killed processes are replaced: the stage is warm again.
	waitFor(t, func() bool { return len(e.WarmPids("up")) == 2 }, "two warm processes again")
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWarmProcessSIGKILLedMidwayLosesNothing(t *testing.T) {
	e := warmEngine(t, 1, engine.Options{})
	pids := e.WarmPids("up")
	if len(pids) != 1 {
		t.Fatalf("warm pids %v", pids)
	}
	var in []string
	for i := range 30 {
		in = append(in, fmt.Sprintf("sleep:20ms:r%d", i))
	}
	j, err := e.Submit(context.Background(), warmJob(e, 1, in))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return j.Counts().RecordsOut >= 3 }, "some outputs")
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s, err := waitJob(t, j)
	if err != nil || s.RecordsOut != 30 || s.DeadLetters != 0 || s.Restarts == 0 {
		t.Fatalf("err %v, out %d, dead %d, restarts %d; want 30 out, none dead, a restart", err, s.RecordsOut, s.DeadLetters, s.Restarts)
	}
	var want []string
	for i := range 30 {
		want = append(want, fmt.Sprintf("R%d", i))
	}
	sort.Strings(want)
	if got := payloads(j.Output().Records()); !slices.Equal(got, want) {
		t.Fatalf("outputs %v", got)
	}
	if got := pidsOf(j.Output().Records()); len(got) < 2 {
		t.Fatalf("served by %v: want the killed process and its replacement", got)
	}
}

func TestShutdownDrainsThenCancels(t *testing.T) {
	e, err := engine.New(engine.Options{MaxJobs: 2, MaxQueue: 5})
	if err != nil {
		t.Fatal(err)
	}
	release, started := make(chan struct{}), make(chan struct{})
	stuck, err := e.Submit(context.Background(), engine.JobSpec{Pipeline: &troupe.Pipeline{Stages: []troupe.Stage{blocking(release, started)}, DrainTimeout: 100 * time.Millisecond}, Input: actors.NewStringsSource([]string{"block"})})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	quick, err := e.Submit(context.Background(), engine.JobSpec{Pipeline: &troupe.Pipeline{Stages: []troupe.Stage{suffix("!")}}, Input: actors.NewStringsSource([]string{"a"})})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := waitJob(t, quick); err != nil {
		t.Fatal(err)
	}
	// The stuck record ends only by its job's cancellation (the stage honours its context):
	// releasing it when the deadline passes would race the cancellation and could let the job
	// finish as done.
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	outs, err := e.Shutdown(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]engine.Status{}
	for _, o := range outs {
		got[o.ID] = o.Status
	}
	if got[quick.ID()] != engine.Done || got[stuck.ID()] != engine.Cancelled {
		t.Fatalf("outcomes %v", got)
	}
	if _, err := e.Submit(context.Background(), engine.JobSpec{Pipeline: &troupe.Pipeline{}, Input: actors.NewStringsSource(nil)}); !errors.Is(err, engine.ErrShuttingDown) {
		t.Fatalf("submit after shutdown: %v", err)
	}
}

func TestRetention(t *testing.T) {
	e := newEngine(t, engine.Options{RetainJobs: 2})
	var last *engine.Job
	for range 4 {
		j, err := e.Submit(context.Background(), engine.JobSpec{Pipeline: &troupe.Pipeline{}, Input: actors.NewStringsSource([]string{"a"})})
		if err != nil {
			t.Fatal(err)
		}
		waitJob(t, j)
		last = j
	}
	if n := len(e.List()); n != 2 {
		t.Fatalf("%d jobs kept, want 2", n)
	}
	if _, err := e.Get("job-1"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("job-1: %v", err)
	}
	if _, err := e.Get(last.ID()); err != nil {
		t.Fatal(err)
	}
}

func TestSpecPluginStageRunsOnWarmProcesses(t *testing.T) {
	e := warmEngine(t, 1, engine.Options{})
	warm := e.WarmPids("up")
	text := fmt.Sprintf("stages:\n  - name: up\n    workers: 1\n    plugin: {cmd: [%q]}\n", testPlugin)
	for range 2 {
		j, err := e.Submit(context.Background(), engine.JobSpec{Spec: []byte(text), Input: actors.NewStringsSource([]string{"a", "b"})})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := waitJob(t, j); err != nil {
			t.Fatal(err)
		}
		if got := pidsOf(j.Output().Records()); !slices.Equal(got, warm) {
			t.Fatalf("served by %v, want the warm %v", got, warm)
		}
	}
}

func TestRetentionPeriod(t *testing.T) {
	e := newEngine(t, engine.Options{Retention: time.Millisecond})
	j, err := e.Submit(context.Background(), engine.JobSpec{Pipeline: &troupe.Pipeline{}, Input: actors.NewStringsSource([]string{"a"})})
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, j)
	waitFor(t, func() bool { _, err := e.Get(j.ID()); return errors.Is(err, engine.ErrNotFound) }, "the finished job to be forgotten")
	if n := len(e.List()); n != 0 {
		t.Fatalf("%d jobs kept", n)
	}
}
