package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/admin"
)

// lineWriter hands what is written to it to the test, safely, as it comes.
type lineWriter struct {
	mu  sync.Mutex
	buf strings.Builder
	ch  chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	select {
	case w.ch <- string(p):
	default:
	}
	return len(p), nil
}

func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestRunAdmin runs a spec with --admin and --events: the admin URL is printed, the tree is
// served while the run lasts, and the events file holds the run's events.
func TestRunAdmin(t *testing.T) {
	t.Setenv(admin.TokenEnv, "")
	dir := t.TempDir()
	spec := write(t, filepath.Join(dir, "p.yaml"), "name: demo\nsource: {lines: {path: \"-\"}}\nstages:\n  - {name: upper, builtin: upper, workers: 2}\nsink: {discard: {}}\n")
	events := filepath.Join(dir, "events.jsonl")
	stdin, feed := io.Pipe()
	stderr := &lineWriter{ch: make(chan string, 100)}
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"run", "--progress", "none", "--admin", "127.0.0.1:0", "--events", events, spec}, stdin, io.Discard, stderr)
	}()
	var url string
	timeout := time.After(time.Minute)
	for url == "" {
		select {
		case s := <-stderr.ch:
			if u, ok := strings.CutPrefix(strings.TrimSpace(s), "troupe: admin server on "); ok {
				url = u
			}
		case code := <-done:
			t.Fatalf("run ended (%d) before printing the admin URL:\n%s", code, stderr.String())
		case <-timeout:
			feed.Close()
			t.Fatalf("no admin URL printed:\n%s", stderr.String())
		}
	}
	feed.Write([]byte("a\nb\n"))
	resp, err := http.Get(url + "api/tree")
	if err != nil {
		feed.Close()
		t.Fatal(err)
	}
	var tree admin.Node
	err = json.NewDecoder(resp.Body).Decode(&tree)
	resp.Body.Close()
	if err != nil {
		feed.Close()
		t.Fatal(err)
	}
	if page, err := http.Get(url); err != nil { // the observer page (package admin/ui)
		feed.Close()
		t.Fatal(err)
	} else {
		b, _ := io.ReadAll(page.Body)
		page.Body.Close()
		if page.StatusCode != http.StatusOK || !strings.Contains(string(b), "<title>troupe observer</title>") {
			feed.Close()
			t.Fatalf("GET %s: %s, not the observer page:\n%.300s", url, page.Status, b)
		}
	}
	feed.Close()
	if tree.Name != "demo" || len(tree.Children) != 3 || tree.Children[1].Path != "/stage:upper" || len(tree.Children[1].Children) != 2 {
		t.Fatalf("tree %+v", tree)
	}
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}
	if _, err := http.Get(url + "healthz"); err == nil {
		t.Fatal("the admin server still answers after the run")
	}
	b, err := os.ReadFile(events)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"type":"started","path":"/source"`, `"type":"started","path":"/stage:upper/worker:2"`} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("events file lacks %s:\n%s", want, b)
		}
	}
}

// TestRunAdminToken: a non-loopback --admin needs a token, from the flag or the environment.
func TestRunAdminToken(t *testing.T) {
	t.Setenv(admin.TokenEnv, "")
	dir := t.TempDir()
	spec := write(t, filepath.Join(dir, "p.yaml"), "source: {range: {count: 10}}\nsink: {discard: {}}\n")
	code, _, stderr := cli(t, "", "run", "--progress", "none", "--admin", "0.0.0.0:0", spec)
	if code != exitUsage || !strings.Contains(stderr, "not a loopback address") || !strings.Contains(stderr, admin.TokenEnv) {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	t.Setenv(admin.TokenEnv, "s3cret")
	code, _, stderr = cli(t, "", "run", "--progress", "none", "--admin", "0.0.0.0:0", spec)
	if code != exitOK || !strings.Contains(stderr, "admin server on http://") {
		t.Fatalf("with the token in the environment: exit %d:\n%s", code, stderr)
	}
}
