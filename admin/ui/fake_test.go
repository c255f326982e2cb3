package ui_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/troupe-dev/troupe/admin/ui"
)

// The JSON shapes of the admin server's contract, as the page reads them.
type node struct {
	Name       string  `json:"name"`
	Path       string  `json:"path"`
	Kind       string  `json:"kind"`
	State      string  `json:"state"`
	Restarts   int     `json:"restarts"`
	LastExit   string  `json:"last_exit"`
	PID        int     `json:"pid"`
	RSSBytes   int64   `json:"rss_bytes"`
	CPUPercent float64 `json:"cpu_percent"`
	Mailbox    int     `json:"mailbox"`
	InFlight   int     `json:"in_flight"`
	Credits    int     `json:"credits"`
	Children   []*node `json:"children"`
}

type latency struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
}

type stageStats struct {
	Name       string  `json:"name"`
	In         int64   `json:"in"`
	Out        int64   `json:"out"`
	Failed     int64   `json:"failed"`
	Retried    int64   `json:"retried"`
	DeadLetter int64   `json:"dead_letter"`
	Dropped    int64   `json:"dropped"`
	InFlight   int     `json:"in_flight"`
	Credits    int     `json:"credits"`
	LatencyMS  latency `json:"latency_ms"`
}

type deadLetter struct {
	Key      string `json:"key"`
	Stage    string `json:"stage"`
	Reason   string `json:"reason"`
	Attempts int    `json:"attempts"`
}

type stats struct {
	Time              time.Time    `json:"time"`
	State             string       `json:"state"`
	RecordsIn         int64        `json:"records_in"`
	RecordsOut        int64        `json:"records_out"`
	DeadLetters       int64        `json:"dead_letters"`
	Dropped           int64        `json:"dropped"`
	Stages            []stageStats `json:"stages"`
	DeadLettersRecent []deadLetter `json:"dead_letters_recent"`
}

type event struct {
	Time   time.Time `json:"time"`
	Type   string    `json:"type"`
	Path   string    `json:"path"`
	Reason string    `json:"reason"`
	PID    int       `json:"pid"`
}

// fakeAdmin serves the contract's endpoints from a state the test changes step by step, with
// the observer page at "/". It requires a token as the real server does when it has one: in
// the Authorization header, or as ?token= on the page and the event stream (which a browser
// requests without headers). It counts the requests it refused, and those it served.
type fakeAdmin struct {
	mu    sync.Mutex
	token string
	tree  *node
	stats stats
	subs  map[chan event]bool

	unauthorized atomic.Int32
	refused      sync.Map     // path → true
	served       sync.Map     // path → *atomic.Int32, the requests served with the token
	streams      atomic.Int32 // event streams open now
	done         chan struct{}
}

func newFakeAdmin(t *testing.T, token string) (*fakeAdmin, *httptest.Server) {
	f := &fakeAdmin{token: token, subs: map[chan event]bool{}, done: make(chan struct{})}
	mux := http.NewServeMux()
	page := ui.Handler()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		if f.authorized(w, r, true) {
			page.ServeHTTP(w, r)
		}
	})
	mux.HandleFunc("GET /api/tree", func(w http.ResponseWriter, r *http.Request) {
		if !f.authorized(w, r, false) {
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSON(w, f.tree)
	})
	mux.HandleFunc("GET /api/stats", func(w http.ResponseWriter, r *http.Request) {
		if !f.authorized(w, r, false) {
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.stats.Time = time.Now().UTC()
		writeJSON(w, f.stats)
		// Records flow while the run runs: the next answer has 120 more out.
		if f.stats.State == "running" {
			f.stats.RecordsIn += 130
			f.stats.RecordsOut += 120
			for i := range f.stats.Stages {
				f.stats.Stages[i].Out += 120
				f.stats.Stages[i].LatencyMS.P50 = 3 + float64(f.stats.RecordsOut%7)
				f.stats.Stages[i].LatencyMS.P99 = 20 + float64(f.stats.RecordsOut%23)
			}
		}
	})
	mux.HandleFunc("GET /api/events", func(w http.ResponseWriter, r *http.Request) {
		if !f.authorized(w, r, true) {
			return
		}
		ch := make(chan event, 16)
		f.mu.Lock()
		f.subs[ch] = true
		f.mu.Unlock()
		defer func() {
			f.mu.Lock()
			delete(f.subs, ch)
			f.mu.Unlock()
		}()
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		f.streams.Add(1)
		defer f.streams.Add(-1)
		for {
			select {
			case <-r.Context().Done():
				return
			case <-f.done:
				return
			case e := <-ch:
				data, _ := json.Marshal(e)
				fmt.Fprintf(w, "event: supervision\ndata: %s\n\n", data)
				w.(http.Flusher).Flush()
			}
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		close(f.done)
		srv.Close()
	})
	return f, srv
}

func (f *fakeAdmin) authorized(w http.ResponseWriter, r *http.Request, query bool) bool {
	f.mu.Lock()
	token := f.token
	f.mu.Unlock()
	got := r.Header.Get("Authorization")
	if query && r.URL.Query().Has("token") {
		got = "Bearer " + r.URL.Query().Get("token")
	}
	if token != "" && got != "Bearer "+token {
		f.unauthorized.Add(1)
		f.refused.Store(r.URL.Path, true)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return false
	}
	n, _ := f.served.LoadOrStore(r.URL.Path, new(atomic.Int32))
	n.(*atomic.Int32).Add(1)
	return true
}

func (f *fakeAdmin) refusedPaths() []string {
	var paths []string
	f.refused.Range(func(k, _ any) bool { paths = append(paths, k.(string)); return true })
	return paths
}

// servedCount is how many requests for path the fake served.
func (f *fakeAdmin) servedCount(path string) int32 {
	if n, ok := f.served.Load(path); ok {
		return n.(*atomic.Int32).Load()
	}
	return 0
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeAdmin) change(fn func(tree *node, st *stats)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.tree, &f.stats)
}

func (f *fakeAdmin) publish(e event) {
	e.Time = time.Now().UTC()
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		ch <- e
	}
}

func find(n *node, path string) *node {
	if n.Path == path {
		return n
	}
	for _, c := range n.Children {
		if m := find(c, path); m != nil {
			return m
		}
	}
	return nil
}

const mib = 1 << 20

// pipelineTree is the tree of a run of one plugin stage with two workers.
func pipelineTree() *node {
	plugin := func(w, pid int) *node {
		return &node{Name: "plugin", Path: fmt.Sprintf("/stage:upper/worker:%d/plugin", w), Kind: "plugin",
			State: "running", PID: pid, RSSBytes: 12 * mib, CPUPercent: 41.5, Children: []*node{}}
	}
	worker := func(w, pid int) *node {
		return &node{Name: fmt.Sprintf("worker:%d", w), Path: fmt.Sprintf("/stage:upper/worker:%d", w), Kind: "worker",
			State: "running", InFlight: 5, Credits: 59, Children: []*node{plugin(w, pid)}}
	}
	return &node{Name: "troupe", Path: "/", Kind: "supervisor", State: "running", Children: []*node{
		{Name: "source", Path: "/source", Kind: "source", State: "running", Children: []*node{}},
		{Name: "upper", Path: "/stage:upper", Kind: "stage", State: "running", InFlight: 10, Credits: 118,
			Children: []*node{worker(1, 4101), worker(2, 4102)}},
		{Name: "sink", Path: "/sink", Kind: "sink", State: "running", Children: []*node{}},
	}}
}

// TestObserverPageFake drives the page in headless Chromium against a fake admin server whose
// state the steps change: the page must follow each change.
func TestObserverPageFake(t *testing.T) {
	const token = "s3cret/+token"
	f, srv := newFakeAdmin(t, token)
	f.change(func(_ *node, st *stats) {
		*st = stats{State: "running", Stages: []stageStats{{Name: "upper", Credits: 118}}}
	})
	f.change(func(_ *node, _ *stats) { f.tree = pipelineTree() })
	ctx := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/?token="+url.QueryEscape(token))); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name   string
		change func(tree *node, st *stats)
		events []event
		check  func(m map[string]pageNode) error
	}{{
		name: "the tree appears with its stage, workers and plugin processes",
		check: func(m map[string]pageNode) error {
			want := map[string]string{"/": "supervisor", "/source": "source", "/stage:upper": "stage", "/sink": "sink",
				"/stage:upper/worker:1": "worker", "/stage:upper/worker:2": "worker",
				"/stage:upper/worker:1/plugin": "plugin", "/stage:upper/worker:2/plugin": "plugin"}
			for path, kind := range want {
				if m[path].Kind != kind {
					return fmt.Errorf("node %s: kind %q, want %q (page has %d nodes)", path, m[path].Kind, kind, len(m))
				}
			}
			p := m["/stage:upper/worker:2/plugin"]
			if p.PID != 4102 || !strings.Contains(p.Text, "pid 4102") || !strings.Contains(p.Text, "RSS 12.0 MiB") ||
				!strings.Contains(p.Text, "CPU 41.5%") {
				return fmt.Errorf("plugin of worker 2: pid %d, text %q", p.PID, p.Text)
			}
			if w := m["/stage:upper/worker:1"]; !strings.Contains(w.Text, "in-flight 5 · credits 59") {
				return fmt.Errorf("worker 1 text %q", w.Text)
			}
			return nil
		},
	}, {
		name: "a plugin process killed and restarted flashes with its new pid",
		change: func(tree *node, _ *stats) {
			w := find(tree, "/stage:upper/worker:2")
			w.Restarts = 1
			w.LastExit = "plugin exited: signal: killed"
			p := find(tree, "/stage:upper/worker:2/plugin")
			p.PID, p.RSSBytes = 4202, 3*mib
		},
		events: []event{
			{Type: "exited", Path: "/stage:upper/worker:2/plugin", PID: 4102, Reason: "signal: killed"},
			{Type: "restarted", Path: "/stage:upper/worker:2", PID: 4202},
		},
		check: func(m map[string]pageNode) error {
			w, p := m["/stage:upper/worker:2"], m["/stage:upper/worker:2/plugin"]
			if w.Restarts != 1 || w.Flashes == 0 || !strings.Contains(w.Text, "signal: killed") {
				return fmt.Errorf("worker 2: restarts %d, flashed %d times, text %q", w.Restarts, w.Flashes, w.Text)
			}
			if p.PID != 4202 || p.Flashes == 0 {
				return fmt.Errorf("its plugin: pid %d, flashed %d times", p.PID, p.Flashes)
			}
			if o := m["/stage:upper/worker:1"]; o.Flashes != 0 || o.Restarts != 0 {
				return fmt.Errorf("worker 1 flashed %d times, restarts %d: only worker 2 restarted", o.Flashes, o.Restarts)
			}
			return nil
		},
	}, {
		name:   "a worker in backoff",
		change: func(tree *node, _ *stats) { find(tree, "/stage:upper/worker:1").State = "backoff" },
		check: func(m map[string]pageNode) error {
			if s := m["/stage:upper/worker:1"].State; s != "backoff" {
				return fmt.Errorf("worker 1 state %q", s)
			}
			return nil
		},
	}, {
		name: "a worker gone from the tree is gone from the page",
		change: func(tree *node, _ *stats) {
			st := find(tree, "/stage:upper")
			st.Children = st.Children[:1]
		},
		check: func(m map[string]pageNode) error {
			for _, p := range []string{"/stage:upper/worker:2", "/stage:upper/worker:2/plugin"} {
				if _, ok := m[p]; ok {
					return fmt.Errorf("%s still shown", p)
				}
			}
			if _, ok := m["/stage:upper/worker:1/plugin"]; !ok {
				return fmt.Errorf("worker 1's plugin is gone too")
			}
			return nil
		},
	}}

	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](watchFlashes)); err != nil {
		t.Fatal(err)
	}
	for _, step := range steps {
		if step.change != nil {
			f.change(step.change)
		}
		if len(step.events) > 0 {
			waitFor(t, "the page's event stream", func() bool { return f.streams.Load() > 0 })
			for _, e := range step.events {
				f.publish(e)
			}
		}
		waitNodes(t, ctx, step.name, step.check)
		if step.name == "a plugin process killed and restarted flashes with its new pid" {
			screenshot(t, ctx, "observer-fake.png")
			waitPage(t, ctx, "the restarted nodes flashing", readFlashes, func(f map[string]string) error {
				want := map[string]string{"/stage:upper/worker:2": "flash", "/stage:upper/worker:2/plugin": "flash"}
				if fmt.Sprint(f) != fmt.Sprint(want) {
					return fmt.Errorf("flashed %v, want %v", f, want)
				}
				return nil
			})
		}
	}

	// Links: one line from each parent to each child.
	waitPage(t, ctx, "the tree's lines", `document.querySelectorAll('#links path').length`, func(n int) error {
		if n != 5 { // / → source, stage, sink; stage → worker 1 → plugin
			return fmt.Errorf("%d lines, want 5", n)
		}
		return nil
	})

	// The events as they came, newest first, with their reasons.
	waitPage(t, ctx, "the supervision events", `Array.from(document.querySelectorAll('#events li')).map(li => li.innerText)`,
		func(lines []string) error {
			if len(lines) != 2 || !strings.Contains(lines[0], "restarted") || !strings.Contains(lines[1], "exited") ||
				!strings.Contains(lines[1], "signal: killed") || !strings.Contains(lines[1], "pid 4102") {
				return fmt.Errorf("events %q", lines)
			}
			return nil
		})

	// Throughput: the fake's records out rise by 120 a poll; the chart draws them.
	waitPage(t, ctx, "the throughput chart", `(() => { const p = document.querySelector('#chart-throughput path.out');
		return p ? Number(p.dataset.points) : 0 })()`, func(n int) error {
		if n < 3 {
			return fmt.Errorf("%d points", n)
		}
		return nil
	})
	waitPage(t, ctx, "the latency chart of stage upper", `(() => { const c = document.querySelector('#latency svg[data-stage="upper"]');
		return c ? c.querySelectorAll('path.p50, path.p99').length : 0 })()`, func(n int) error {
		if n != 2 {
			return fmt.Errorf("%d latency lines, want p50 and p99", n)
		}
		return nil
	})

	// Dead letters with their reasons; a reason is text, never markup.
	f.change(func(_ *node, st *stats) {
		st.DeadLetters = 7
		st.DeadLettersRecent = []deadLetter{
			{Key: "line-17", Stage: "upper", Reason: "plugin exited: signal: killed", Attempts: 3},
			{Key: "<b>line-18</b>", Stage: "upper", Reason: `<img src=x onerror="document.title='pwned'">`, Attempts: 3},
		}
	})
	waitPage(t, ctx, "the dead letters", `Array.from(document.querySelectorAll('#dead-letters tbody tr')).map(tr => tr.innerText)
		.concat([document.getElementById('dead-note').innerText, String(document.querySelectorAll('#dead-letters b, #dead-letters img').length)])`,
		func(rows []string) error {
			if len(rows) != 4 || !strings.Contains(rows[1], "line-17") || !strings.Contains(rows[1], "plugin exited: signal: killed") ||
				!strings.Contains(rows[0], "<b>line-18</b>") || rows[2] != "7 so far, the last 2 shown, newest first" || rows[3] != "0" {
				return fmt.Errorf("rows %q", rows)
			}
			return nil
		})

	waitPage(t, ctx, "the connection state", `document.getElementById('conn').dataset.conn`, func(s string) error {
		if s != "live" {
			return fmt.Errorf("%q", s)
		}
		return nil
	})
	if n := f.unauthorized.Load(); n != 0 {
		t.Errorf("%d requests of the page came without the token: %v", n, f.refusedPaths())
	}
}

// TestObserverPageToken: a page opened with the token sends it on every request it makes (as
// a header on its fetches, as ?token= on its event stream); when the server stops taking it,
// the page says so.
func TestObserverPageToken(t *testing.T) {
	f, srv := newFakeAdmin(t, "tok en/+=")
	f.change(func(_ *node, st *stats) { *st = stats{State: "running"}; f.tree = pipelineTree() })
	ctx := browser(t)

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/?token="+url.QueryEscape("tok en/+="))); err != nil {
		t.Fatal(err)
	}
	waitPage(t, ctx, "the page live", `document.getElementById('conn').dataset.conn`, func(s string) error {
		if s != "live" {
			return fmt.Errorf("%q", s)
		}
		return nil
	})
	waitFor(t, "the event stream with the token", func() bool { return f.streams.Load() > 0 })
	for _, p := range []string{"/", "/api/tree", "/api/stats", "/api/events"} {
		if f.servedCount(p) == 0 {
			t.Errorf("%s: never requested with the token", p)
		}
	}
	if n := f.unauthorized.Load(); n != 0 {
		t.Fatalf("%d requests came without the token: %v", n, f.refusedPaths())
	}

	f.change(func(*node, *stats) { f.token = "another" })
	waitPage(t, ctx, "the refusal", `document.getElementById('conn').dataset.conn + ' ' + document.getElementById('conn').innerText`,
		func(s string) error {
			if !strings.HasPrefix(s, "down ") || !strings.Contains(s, "401") {
				return fmt.Errorf("%q", s)
			}
			return nil
		})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %v", what, deadline)
		}
		<-time.After(20 * time.Millisecond)
	}
}
