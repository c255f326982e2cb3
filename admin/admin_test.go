package admin_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/admin"
	"github.com/troupe-dev/troupe/internal/proctest"
	"github.com/troupe-dev/troupe/plugins"
	"github.com/troupe-dev/troupe/supervisor"
)

// deadline bounds every wait: an upper bound for a loaded machine, never a measure.
const deadline = 30 * time.Second

func TestMain(m *testing.M) {
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
	}
	os.Exit(code)
}

// feed is a source the test feeds record by record; closing it ends the input.
type feed struct {
	ch   chan troupe.Record
	once sync.Once
}

func newFeed() *feed { return &feed{ch: make(chan troupe.Record, 16)} }

func (f *feed) Read(ctx context.Context, max int) ([]troupe.Record, error) {
	select {
	case r, ok := <-f.ch:
		if !ok {
			return nil, io.EOF
		}
		return []troupe.Record{r}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
func (f *feed) end()         { f.once.Do(func() { close(f.ch) }) }
func (f *feed) Close() error { f.end(); return nil }

type sink struct {
	mu sync.Mutex
	n  int
}

func (s *sink) Write(troupe.Record) error { s.mu.Lock(); s.n++; s.mu.Unlock(); return nil }
func (s *sink) Flush() error              { return nil }
func (s *sink) Close() error              { return nil }

// upper uppercases a record's payload, panics on "panic" and drops "drop".
func upper(_ context.Context, r troupe.Record) ([]troupe.Record, error) {
	switch string(r.Payload) {
	case "panic":
		panic("poison " + r.Key)
	case "drop":
		return nil, nil
	}
	r.Payload = []byte(strings.ToUpper(string(r.Payload)))
	return []troupe.Record{r}, nil
}

// startRun starts a pipeline with one stage and a server on it.
func startRun(t *testing.T, stage troupe.Stage, opts admin.Options) (*feed, *actors.Job, *admin.Server) {
	t.Helper()
	src := newFeed()
	p := &troupe.Pipeline{Name: "test", Source: src, Sink: &sink{}, Stages: []troupe.Stage{stage}}
	job, err := actors.Start(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := admin.New(opts, admin.ObserveJob(job))
	if err != nil {
		src.end()
		job.Wait()
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		src.end()
		job.Wait()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		src.end()
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		job.Stop()
		job.Wait()
	})
	return src, job, srv
}

func get(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	code, b := get(t, url, "")
	if code != 200 {
		t.Fatalf("GET %s: %d %s", url, code, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v\n%s", url, err, b)
	}
}

// eventually polls cond until it holds, failing the test after the deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sse is a client of /api/events.
type sse struct {
	resp   *http.Response
	events chan admin.Event
	done   chan struct{}
}

func openEvents(t *testing.T, url string) *sse {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		resp.Body.Close()
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sse{resp: resp, events: make(chan admin.Event, 1000), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		name := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				var ev admin.Event
				if name != "supervision" || json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev) != nil {
					ev = admin.Event{Type: "bad: " + name + " " + line}
				}
				s.events <- ev
			case line == "":
				name = ""
			}
		}
	}()
	t.Cleanup(func() { resp.Body.Close(); <-s.done })
	return s
}

// await reads events until one satisfies match.
func (s *sse) await(t *testing.T, what string, match func(admin.Event) bool) admin.Event {
	t.Helper()
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatalf("event stream ended before %s", what)
			}
			if strings.HasPrefix(ev.Type, "bad") {
				t.Fatalf("malformed event: %s", ev.Type)
			}
			if match(ev) {
				return ev
			}
		case <-timer.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	code, b := get(t, url+"metrics", "")
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, b)
	}
	return fams
}

func labels(m *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

// metric finds the sample of family name with the given labels.
func metric(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no metric family %s", name)
	}
next:
	for _, m := range f.GetMetric() {
		l := labels(m)
		for k, v := range want {
			if l[k] != v {
				continue next
			}
		}
		return m
	}
	t.Fatalf("%s has no sample with labels %v", name, want)
	return nil
}

func find(n admin.Node, path string) *admin.Node {
	if n.Path == path {
		return &n
	}
	for _, c := range n.Children {
		if f := find(c, path); f != nil {
			return f
		}
	}
	return nil
}

// TestEndpoints runs an in-process stage whose worker panics on a poison record, and checks
// every endpoint against it.
func TestEndpoints(t *testing.T) {
	events := filepath.Join(t.TempDir(), "events.jsonl")
	src, job, srv := startRun(t, troupe.Stage{Name: "upper", Func: upper, Workers: 2, Credits: 4, Attempts: 2}, admin.Options{Events: events})
	url := srv.URL()
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("URL %s: want loopback", url)
	}

	if code, b := get(t, url+"healthz", ""); code != 200 || strings.TrimSpace(string(b)) != "ok" {
		t.Fatalf("/healthz: %d %q", code, b)
	}
	eventually(t, "/readyz to say ready", func() bool { code, _ := get(t, url+"readyz", ""); return code == 200 })

	stream := openEvents(t, url+"api/events")
	src.ch <- troupe.Record{Key: "a", Payload: []byte("a")}
	src.ch <- troupe.Record{Key: "d", Payload: []byte("drop")}
	src.ch <- troupe.Record{Key: "poison", Payload: []byte("panic")}
	ev := stream.await(t, "a worker's restart", func(e admin.Event) bool { return e.Type == admin.EventRestarted })
	if !strings.HasPrefix(ev.Path, "/stage:upper/worker:") || ev.Time.IsZero() {
		t.Fatalf("restart event %+v: want a worker of stage upper", ev)
	}
	exited := false
	eventually(t, "the poison record in the dead letters", func() bool {
		var st admin.Stats
		getJSON(t, url+"api/stats", &st)
		return len(st.DeadLettersRecent) == 1
	})

	var tree admin.Node
	eventually(t, "both workers running again", func() bool {
		getJSON(t, url+"api/tree", &tree)
		s := find(tree, "/stage:upper")
		return s != nil && len(s.Children) == 2 && s.Children[0].State == admin.StateRunning && s.Children[1].State == admin.StateRunning
	})
	if tree.Path != "/" || tree.Kind != admin.KindSupervisor || tree.Name != "test" {
		t.Fatalf("root %+v", tree)
	}
	stage := find(tree, "/stage:upper")
	if stage == nil || stage.Kind != admin.KindStage || len(stage.Children) != 2 {
		t.Fatalf("stage node %+v", stage)
	}
	restarts := 0
	for i, w := range stage.Children {
		if w.Kind != admin.KindWorker || w.Path != fmt.Sprintf("/stage:upper/worker:%d", i+1) || w.State != admin.StateRunning {
			t.Fatalf("worker node %+v", w)
		}
		restarts += w.Restarts
		if w.LastExit != "" {
			exited = true
		}
	}
	if restarts < 2 || !exited {
		t.Fatalf("workers restarted %d times (want ≥ 2: two attempts at the poison record), last exit known: %v", restarts, exited)
	}
	// Nothing waits now: every mailbox is empty.
	for _, n := range append(stage.Children, *stage, *find(tree, "/source"), *find(tree, "/sink")) {
		if n.Mailbox != 0 {
			t.Fatalf("%s: mailbox %d with nothing to do", n.Path, n.Mailbox)
		}
	}
	for _, p := range []string{"/source", "/sink"} {
		if n := find(tree, p); n == nil || n.State != admin.StateRunning {
			t.Fatalf("node %s: %+v", p, n)
		}
	}
	// children are [], never null
	code, raw := get(t, url+"api/tree", "")
	if code != 200 || strings.Contains(string(raw), "null") {
		t.Fatalf("/api/tree: %d %s", code, raw)
	}

	var st admin.Stats
	getJSON(t, url+"api/stats", &st)
	if st.State != admin.RunRunning || st.RecordsIn != 3 || len(st.Stages) != 1 {
		t.Fatalf("stats %+v", st)
	}
	g := st.Stages[0]
	if g.Name != "upper" || g.In != 3 || g.Out != 1 || g.Dropped != 1 || g.Failed != 1 || g.DeadLetter != 1 || g.Retried != 1 || g.Credits != 8 {
		t.Fatalf("stage stats %+v", g)
	}
	if d := st.DeadLettersRecent[0]; d.Key != "poison" || d.Stage != "upper" || d.Attempts != 2 || !strings.Contains(d.Reason, "poison poison") {
		t.Fatalf("dead letter %+v", d)
	}

	fams := scrape(t, url)
	for _, o := range []string{"in", "out", "failed", "retried", "dead_letter", "dropped"} {
		m := metric(t, fams, "troupe_stage_records_total", map[string]string{"stage": "upper", "outcome": o})
		if fams["troupe_stage_records_total"].GetType() != dto.MetricType_COUNTER || m.GetCounter().GetValue() < 1 {
			t.Fatalf("troupe_stage_records_total{outcome=%s}: %v", o, m)
		}
	}
	if v := metric(t, fams, "troupe_stage_records_total", map[string]string{"stage": "upper", "outcome": "in"}).GetCounter().GetValue(); v != 3 {
		t.Fatalf("records in: %v", v)
	}
	if v := metric(t, fams, "troupe_stage_credits_available", map[string]string{"stage": "upper"}).GetGauge().GetValue(); v != 8 {
		t.Fatalf("credits available: %v, want 8 (2 idle workers × 4)", v)
	}
	metric(t, fams, "troupe_stage_in_flight", map[string]string{"stage": "upper"})
	h := metric(t, fams, "troupe_stage_latency_seconds", map[string]string{"stage": "upper"}).GetHistogram()
	if h.GetSampleCount() < 2 || len(h.GetBucket()) == 0 || h.GetSampleSum() <= 0 {
		t.Fatalf("latency histogram: %v", h)
	}
	var wr float64
	for _, m := range fams["troupe_worker_restarts_total"].GetMetric() {
		if l := labels(m); l["stage"] != "upper" || !strings.HasPrefix(l["worker"], "worker-") {
			t.Fatalf("troupe_worker_restarts_total labels %v", l)
		}
		wr += m.GetCounter().GetValue()
	}
	if wr != float64(restarts) {
		t.Fatalf("troupe_worker_restarts_total sums to %v, the tree says %d", wr, restarts)
	}
	for name, want := range map[string]float64{"troupe_records_in_total": 3, "troupe_records_out_total": 1, "troupe_dead_letters_total": 0, "troupe_records_dropped_total": 1} {
		m := metric(t, fams, name, nil)
		if name == "troupe_dead_letters_total" {
			continue // counted as flushed: no dead-letter output here, so counted at once or later
		}
		if m.GetCounter().GetValue() != want {
			t.Fatalf("%s = %v, want %v", name, m.GetCounter().GetValue(), want)
		}
	}
	if v := metric(t, fams, "troupe_run_state", map[string]string{"state": "running"}).GetGauge().GetValue(); v != 1 {
		t.Fatalf("troupe_run_state{state=running} = %v", v)
	}

	// The end of the run: the stream ends, the server says not ready, the figures stay.
	src.end()
	if _, err := job.Wait(); err != nil {
		t.Fatal(err)
	}
	for range stream.events {
	}
	code, b := get(t, url+"readyz", "")
	if code != 503 || !strings.Contains(string(b), "ended") {
		t.Fatalf("/readyz after the end: %d %s", code, b)
	}
	getJSON(t, url+"api/stats", &st)
	if st.State != admin.RunDeadLetters || st.RecordsOut != 1 || st.DeadLetters != 1 {
		t.Fatalf("stats at the end %+v", st)
	}
	if v := metric(t, scrape(t, url), "troupe_run_state", map[string]string{"state": "dead_letters"}).GetGauge().GetValue(); v != 1 {
		t.Fatalf("troupe_run_state{state=dead_letters} = %v", v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	// The events file holds the run from its start.
	b, err := os.ReadFile(events)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var e admin.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("events file line %q: %v", line, err)
		}
		kinds = append(kinds, e.Type+" "+e.Path)
	}
	all := strings.Join(kinds, "\n")
	for _, want := range []string{"started /source", "started /sink", "started /stage:upper/worker:1", "exited /stage:upper/worker:", "restarted /stage:upper/worker:"} {
		if !strings.Contains(all, want) {
			t.Fatalf("events file lacks %q:\n%s", want, all)
		}
	}
}

// TestToken: a non-loopback address needs a token; with one, every request needs it.
func TestToken(t *testing.T) {
	_, err := admin.New(admin.Options{Addr: "0.0.0.0:0"}, nil)
	if err == nil || !strings.Contains(err.Error(), "token") || !strings.Contains(err.Error(), admin.TokenEnv) {
		t.Fatalf("non-loopback address without a token: %v", err)
	}
	if _, err := admin.New(admin.Options{Addr: ":0"}, nil); err == nil {
		t.Fatal("all interfaces without a token: accepted")
	}
	for addr, ok := range map[string]bool{"": true, "127.0.0.1:9090": true, "localhost:0": true, "[::1]:0": true, "127.0.0.2:0": true,
		"0.0.0.0:0": false, "[::]:0": false, ":9090": false, "example.com:80": false, "192.168.1.1:0": false, "127.0.0.1": false} {
		if err := admin.CheckOptions(admin.Options{Addr: addr}); (err == nil) != ok {
			t.Errorf("CheckOptions(%q) = %v", addr, err)
		}
		if err := admin.CheckOptions(admin.Options{Addr: addr, Token: "t"}); (err == nil) != (addr != "127.0.0.1") {
			t.Errorf("CheckOptions(%q) with a token = %v", addr, err)
		}
	}
	const token = "s3cret-t0ken"
	_, _, srv := startRun(t, troupe.Stage{Name: "upper", Func: upper, Workers: 1}, admin.Options{Addr: "0.0.0.0:0", Token: token})
	_, port, _ := strings.Cut(srv.Addr(), "]:")
	if port == "" {
		_, port, _ = strings.Cut(srv.Addr(), ":")
	}
	url := "http://127.0.0.1:" + port + "/"
	for _, p := range []string{"healthz", "readyz", "metrics", "api/tree", "api/stats", "api/events", "", "api/events?token=wrong"} {
		if code, _ := get(t, url+p, ""); code != 401 {
			t.Fatalf("/%s without a token: %d, want 401", p, code)
		}
		if code, _ := get(t, url+p, "wrong"); code != 401 {
			t.Fatalf("/%s with a wrong token: %d, want 401", p, code)
		}
	}
	for _, p := range []string{"healthz", "metrics", "api/tree", "api/stats", ""} {
		if code, b := get(t, url+p, token); code != 200 {
			t.Fatalf("/%s with the token: %d %s", p, code, b)
		}
	}
	// A browser opening the page, and EventSource, cannot set headers: the page and
	// /api/events (only) take ?token=.
	openEvents(t, url+"api/events?token="+token)
	if code, b := get(t, url+"?token="+token, ""); code != 200 {
		t.Fatalf("/?token=: %d %s", code, b)
	}
	if code, _ := get(t, url+"other?token="+token, ""); code != 401 {
		t.Fatalf("/other?token=: %d, want 401", code)
	}
	if code, _ := get(t, url+"api/tree?token="+token, ""); code != 401 {
		t.Fatalf("/api/tree?token=: %d, want 401", code)
	}
}

// TestPlugin runs a plugin stage: its processes appear in the tree and in the metrics with
// their pid, RSS and CPU, and one killed shows as a restart with a new pid.
func TestPlugin(t *testing.T) {
	bin := proctest.Build(t, t.TempDir(), "testplugin", "github.com/troupe-dev/troupe/plugins/internal/testplugin")
	factory, err := plugins.Config{Cmd: []string{bin}}.Factory()
	if err != nil {
		t.Fatal(err)
	}
	src, _, srv := startRun(t, troupe.Stage{Name: "up", Backend: factory, Workers: 2}, admin.Options{})
	url := srv.URL()
	stream := openEvents(t, url+"api/events")
	src.ch <- troupe.Record{Key: "a", Payload: []byte("a")}

	var pids [2]int
	eventually(t, "both plugin processes in the tree", func() bool {
		var tree admin.Node
		getJSON(t, url+"api/tree", &tree)
		for i := range pids {
			p := find(tree, fmt.Sprintf("/stage:up/worker:%d/plugin", i+1))
			if p == nil || p.Kind != admin.KindPlugin || p.PID == 0 || p.RSSBytes == 0 {
				return false
			}
			pids[i] = p.PID
		}
		return true
	})
	fams := scrape(t, url)
	for i, pid := range pids {
		l := map[string]string{"stage": "up", "worker": fmt.Sprintf("worker-%d", i+1), "pid": fmt.Sprint(pid)}
		if v := metric(t, fams, "troupe_plugin_rss_bytes", l).GetGauge().GetValue(); v <= 0 {
			t.Fatalf("troupe_plugin_rss_bytes%v = %v", l, v)
		}
		metric(t, fams, "troupe_plugin_cpu_seconds_total", l)
	}

	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ev := stream.await(t, "the killed plugin's worker restarting", func(e admin.Event) bool {
		return e.Type == admin.EventRestarted && e.Path == "/stage:up/worker:1"
	})
	if ev.PID == 0 || ev.PID == pids[0] {
		t.Fatalf("restart event %+v: want the new process's pid (the old was %d)", ev, pids[0])
	}
	var tree admin.Node
	getJSON(t, url+"api/tree", &tree)
	w := find(tree, "/stage:up/worker:1")
	if w == nil || w.Restarts != 1 || w.LastExit == "" || w.PID == pids[0] {
		t.Fatalf("worker after the kill: %+v", w)
	}
	if errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

// TestKeepaliveAndRoot: the event stream sends a keepalive comment when there is nothing to
// say; "/" without an observer page lists the endpoints, and other paths are 404.
func TestKeepaliveAndRoot(t *testing.T) {
	defer admin.SetKeepalive(50 * time.Millisecond)()
	_, _, srv := startRun(t, troupe.Stage{Name: "upper", Func: upper, Workers: 1}, admin.Options{})
	url := srv.URL()
	resp, err := http.Get(url + "api/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if sc.Text() == ": keepalive" {
				got <- true
				return
			}
		}
		got <- false
	}()
	select {
	case ok := <-got:
		if !ok {
			t.Fatal("the stream ended without a keepalive")
		}
	case <-time.After(deadline):
		t.Fatal("no keepalive")
	}

	code, b := get(t, url, "")
	if code != 200 || !strings.Contains(string(b), "/api/tree") {
		t.Fatalf("/: %d %s", code, b)
	}
	if code, _ := get(t, url+"nothing-here", ""); code != 404 {
		t.Fatalf("/nothing-here: %d", code)
	}
}

// TestBackoffState: a worker whose restart waits for its backoff delay shows as "backoff" in
// the tree. The first restart within the period is immediate, the second waits (an hour
// here, so that the state stays for the test to see).
func TestBackoffState(t *testing.T) {
	stage := troupe.Stage{Name: "upper", Func: upper, Workers: 2, Attempts: 2,
		Restart: troupe.Restart{Intensity: 50, Period: time.Hour, Backoff: supervisor.Backoff{Min: time.Hour, Max: time.Hour}}}
	src, job, srv := startRun(t, stage, admin.Options{})
	url := srv.URL()
	src.ch <- troupe.Record{Key: "poison", Payload: []byte("panic")}
	var w *admin.Node
	eventually(t, "a worker in backoff", func() bool {
		var tree admin.Node
		getJSON(t, url+"api/tree", &tree)
		for _, c := range find(tree, "/stage:upper").Children {
			if c.State == admin.StateBackoff {
				w = &c
				return true
			}
		}
		return false
	})
	if !strings.Contains(w.LastExit, "poison") {
		t.Fatalf("worker in backoff: %+v", w)
	}
	src.ch <- troupe.Record{Key: "a", Payload: []byte("a")}
	src.end()
	sum, err := job.Wait()
	if err != nil || sum.RecordsOut != 1 || sum.DeadLetters != 1 {
		t.Fatalf("%+v %v", sum, err)
	}
}

// TestMailbox: work sent to a worker busy in its Func waits in its mailbox, and the tree says
// so.
func TestMailbox(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free()
	block := func(ctx context.Context, r troupe.Record) ([]troupe.Record, error) {
		if string(r.Payload) == "block" {
			<-release
		}
		return []troupe.Record{r}, nil
	}
	src, _, srv := startRun(t, troupe.Stage{Name: "s", Func: block, Workers: 1, Credits: 4}, admin.Options{})
	t.Cleanup(free) // before the run's cleanup, which waits for it
	url := srv.URL()
	worker := func() admin.Node {
		var tree admin.Node
		getJSON(t, url+"api/tree", &tree)
		return *find(tree, "/stage:s/worker:1")
	}
	src.ch <- troupe.Record{Key: "1", Payload: []byte("block")}
	eventually(t, "the worker to hold the blocking record", func() bool { return worker().InFlight == 1 })
	src.ch <- troupe.Record{Key: "2", Payload: []byte("x")}
	eventually(t, "the second record to wait in the worker's mailbox", func() bool {
		w := worker()
		return w.Mailbox == 1 && w.InFlight == 2 && w.Credits == 2
	})
	free()
	eventually(t, "the mailbox to empty", func() bool { w := worker(); return w.Mailbox == 0 && w.InFlight == 0 })
}
