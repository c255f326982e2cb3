package ui_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/admin"
	"github.com/troupe-dev/troupe/admin/ui"
	"github.com/troupe-dev/troupe/internal/proctest"
	"github.com/troupe-dev/troupe/plugins"
)

// flow is a source that reads a few records every few milliseconds until it is closed, so
// that the page has throughput to draw.
type flow struct {
	mu     sync.Mutex
	n      int
	closed chan struct{}
	once   sync.Once
}

func newFlow() *flow { return &flow{closed: make(chan struct{})} }

func (f *flow) Read(ctx context.Context, max int) ([]troupe.Record, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-f.closed:
		return nil, nil
	case <-time.After(20 * time.Millisecond): // a pace, not a synchronisation
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var recs []troupe.Record
	for i := 0; i < 8 && i < max; i++ {
		f.n++
		recs = append(recs, troupe.Record{Key: "line-" + strconv.Itoa(f.n), Payload: []byte("payload " + strconv.Itoa(f.n))})
	}
	return recs, nil
}

func (f *flow) end()         { f.once.Do(func() { close(f.closed) }) }
func (f *flow) Close() error { f.end(); return nil }

type discard struct{}

func (discard) Write(troupe.Record) error { return nil }
func (discard) Flush() error              { return nil }
func (discard) Close() error              { return nil }

// refuse gives up on every 97th record, so that the page has dead letters to list.
func refuse(_ context.Context, r troupe.Record) ([]troupe.Record, error) {
	if n, _ := strconv.Atoi(strings.TrimPrefix(r.Key, "line-")); n%97 == 0 {
		return nil, fmt.Errorf("%s: checksum mismatch", r.Key)
	}
	return []troupe.Record{r}, nil
}

// TestObserverPageRun drives the page of a real run, a plugin stage served by the admin server
// with a token: the tree shows the stages, their workers and the plugin processes with their
// pids; a plugin process killed with SIGKILL shows as a restart on the page (the worker's count
// rises and it flashes, the plugin node shows the new process's pid).
func TestObserverPageRun(t *testing.T) {
	chromium(t) // skips before building anything when there is no browser
	bin := proctest.Build(t, t.TempDir(), "upper", "github.com/troupe-dev/troupe/examples/plugins/upper")
	factory, err := plugins.Config{Cmd: []string{bin}}.Factory()
	if err != nil {
		t.Fatal(err)
	}
	src := newFlow()
	p := &troupe.Pipeline{Name: "shout", Source: src, Sink: discard{}, Stages: []troupe.Stage{
		{Name: "upper", Backend: factory, Workers: 2},
		{Name: "check", Func: refuse, Workers: 2, Attempts: 2},
	}}
	job, err := actors.Start(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	const token = "observer-test-token"
	srv, err := admin.New(admin.Options{Addr: "127.0.0.1:0", Token: token}, admin.ObserveJob(job))
	if err == nil {
		srv.Handle("GET /", ui.Handler())
		err = srv.Start()
	}
	if err != nil {
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
		if _, err := job.Wait(); err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("run: %v", err)
		}
		proctest.WaitNoneRunning(t, bin)
	})

	ctx := browser(t) // stopped before the server and the run (cleanups run last first)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL()+"?token="+url.QueryEscape(token))); err != nil {
		t.Fatal(err)
	}

	plugin := func(w int) string { return fmt.Sprintf("/stage:upper/worker:%d/plugin", w) }
	worker := func(w int) string { return fmt.Sprintf("/stage:upper/worker:%d", w) }
	m := waitNodes(t, ctx, "the stages, their workers and the plugin processes", func(m map[string]pageNode) error {
		for path, kind := range map[string]string{"/": "supervisor", "/source": "source", "/sink": "sink",
			"/stage:upper": "stage", "/stage:check": "stage", worker(1): "worker", worker(2): "worker",
			"/stage:check/worker:1": "worker", plugin(1): "plugin", plugin(2): "plugin"} {
			if m[path].Kind != kind {
				return fmt.Errorf("%s: kind %q, want %q", path, m[path].Kind, kind)
			}
		}
		for w := 1; w <= 2; w++ {
			if n := m[plugin(w)]; n.PID <= 0 || !strings.Contains(n.Text, "pid "+strconv.Itoa(n.PID)) ||
				strings.Contains(n.Text, "RSS –") {
				return fmt.Errorf("%s: pid %d, text %q", plugin(w), n.PID, n.Text)
			}
		}
		return nil
	})
	running := proctest.Running(bin)
	for w := 1; w <= 2; w++ {
		if pid := m[plugin(w)].PID; !contains(running, pid) {
			t.Fatalf("the page shows pid %d for %s, but the plugin's processes are %v", pid, plugin(w), running)
		}
	}
	// Let the charts and the dead letters fill a little before the kill, for the screenshot.
	waitPage(t, ctx, "throughput on the chart", `(() => { const p = document.querySelector('#chart-throughput path.out');
		return p ? Number(p.dataset.points) : 0 })()`, func(n int) error {
		if n < 8 {
			return fmt.Errorf("%d points", n)
		}
		return nil
	})
	waitPage(t, ctx, "dead letters with their reason", `Array.from(document.querySelectorAll('#dead-letters tbody tr')).map(tr => tr.innerText)`,
		func(rows []string) error {
			if len(rows) == 0 || !strings.Contains(rows[0], "checksum mismatch") {
				return fmt.Errorf("rows %q", rows)
			}
			return nil
		})

	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](watchFlashes)); err != nil {
		t.Fatal(err)
	}
	old := m[plugin(1)].PID
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	m = waitNodes(t, ctx, "the killed plugin's restart", func(m map[string]pageNode) error {
		w, p := m[worker(1)], m[plugin(1)]
		if w.Restarts < 1 || w.Flashes < 1 {
			return fmt.Errorf("%s: restarts %d, flashed %d times", worker(1), w.Restarts, w.Flashes)
		}
		if p.PID <= 0 || p.PID == old {
			return fmt.Errorf("%s: pid %d (killed: %d)", plugin(1), p.PID, old)
		}
		return nil
	})
	screenshot(t, ctx, "observer.png")
	waitPage(t, ctx, "the restarted worker flashing", readFlashes, func(f map[string]string) error {
		if f[worker(1)] != "flash" {
			return fmt.Errorf("flashed %v", f)
		}
		if _, ok := f[worker(2)]; ok {
			return fmt.Errorf("flashed %v: worker 2 did not restart", f)
		}
		return nil
	})
	if pid := m[plugin(1)].PID; !contains(proctest.Running(bin), pid) {
		t.Fatalf("the page shows the new pid %d, which is not a running plugin (%v)", pid, proctest.Running(bin))
	}
	if o := m[worker(2)]; o.Restarts != 0 {
		t.Errorf("%s shows %d restarts: only worker 1's plugin was killed", worker(2), o.Restarts)
	}
	waitPage(t, ctx, "the restart among the events", `Array.from(document.querySelectorAll('#events li')).map(li => li.dataset.type + ' ' + li.dataset.path)`,
		func(evs []string) error {
			for _, e := range evs {
				if e == "restarted "+worker(1) {
					return nil
				}
			}
			return fmt.Errorf("events %q", evs)
		})
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
