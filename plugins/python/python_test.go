package python_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/internal/proctest"
	"github.com/troupe-dev/troupe/plugins"
	"github.com/troupe-dev/troupe/plugins/python"
	"github.com/troupe-dev/troupe/supervisor"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// needPython returns Debian's interpreter, or skips the test when it cannot import grpc and
// protobuf — outside CI only: in CI (.ci/run installs them) their absence fails the test.
func needPython(t testing.TB) string {
	t.Helper()
	err := exec.Command(python.SystemPython, "-c", "import grpc, google.protobuf").Run()
	if err == nil {
		return python.SystemPython
	}
	if os.Getenv("CI") != "" || os.Getenv("TROUPE_REQUIRE_PYTHON") != "" {
		t.Fatalf("%s cannot import grpc and protobuf (%v): .ci/run installs python3-grpcio and python3-protobuf", python.SystemPython, err)
	}
	t.Skipf("skipping: %s cannot import grpc and protobuf (apt-get install -y python3-grpcio python3-protobuf)", python.SystemPython)
	return ""
}

func testStage(t testing.TB) string {
	p, err := filepath.Abs("testdata/stage.py")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The Python codec's unit tests (unittest), against the bytes of ipc/README.md's example and
// each other.
func TestPythonUnittest(t *testing.T) {
	py := needPython(t)
	cmd := exec.Command(py, "-B", "-m", "unittest", "discover", "-s", "tests", "-t", ".", "-v")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python unittest: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("OK")) {
		t.Fatalf("python unittest did not say OK:\n%s", out)
	}
	t.Logf("%s", out)
}

type collect struct {
	mu   sync.Mutex
	recs []troupe.Record
	dead []troupe.DeadLetter
}

func (c *collect) Write(r troupe.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.Payload = bytes.Clone(r.Payload)
	c.recs = append(c.recs, r)
	return nil
}

func (c *collect) Flush() error { return nil }
func (c *collect) Close() error { return nil }

type deadSink struct{ c *collect }

func (d deadSink) Write(dl troupe.DeadLetter) error {
	d.c.mu.Lock()
	defer d.c.mu.Unlock()
	d.c.dead = append(d.c.dead, dl)
	return nil
}
func (d deadSink) Flush() error { return nil }
func (d deadSink) Close() error { return nil }

// lineLog collects log lines (message and attributes) for checks.
type lineLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// sliceSource is a source of n records key i, payload "rec i".
func records(n int) []troupe.Record {
	recs := make([]troupe.Record, n)
	for i := range recs {
		recs[i] = troupe.Record{Key: fmt.Sprint(i), Payload: []byte(fmt.Sprintf("rec %d", i))}
	}
	return recs
}

type run struct {
	n       int
	opts    map[string]any
	env     map[string]string
	workers int
	limits  plugins.Limits
	attempt int
}

// runStage runs n records through the Python test stage and returns what reached the sink and
// the dead letters, the summary and the plugins' log.
func runStage(t *testing.T, r run) (*collect, troupe.Summary, string) {
	t.Helper()
	py := needPython(t)
	logs := &lineLog{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := plugins.Config{Cmd: []string{py, testStage(t)}, Env: r.env, Limits: r.limits, Logger: logger}
	factory, err := cfg.Factory()
	if err != nil {
		t.Fatal(err)
	}
	out := &collect{}
	src, err := actors.NewLinesSource(writeLines(t, r.n), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.workers == 0 {
		r.workers = 2
	}
	if r.attempt == 0 {
		r.attempt = 3
	}
	p := troupe.Pipeline{
		Source:      src,
		Stages:      []troupe.Stage{{Name: "py", Backend: factory, Workers: r.workers, Attempts: r.attempt, Options: r.opts}},
		Sink:        out,
		DeadLetters: deadSink{out},
		Logger:      logger,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sum, err := actors.Run(ctx, &p)
	if err != nil && sum.Outcome != troupe.OutcomeDeadLetters {
		t.Fatalf("run: %v (outcome %v)\nlog:\n%s", err, sum.Outcome, logs.String())
	}
	if err := plugins.WaitClosed(ctx); err != nil {
		t.Fatal(err)
	}
	return out, sum, logs.String()
}

func writeLines(t *testing.T, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "rec %d\n", i)
	}
	path := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// exactlyOnce checks that out holds "REC i" for every i < n, each once.
func exactlyOnce(t *testing.T, out *collect, n int) {
	t.Helper()
	seen := make(map[string]int, n)
	for _, r := range out.recs {
		seen[string(r.Payload)]++
	}
	for i := range n {
		want := fmt.Sprintf("REC %d", i)
		if seen[want] != 1 {
			t.Fatalf("%q reached the sink %d times, want once (%d records out)", want, seen[want], len(out.recs))
		}
	}
	if len(out.recs) != n {
		t.Fatalf("%d records out, want %d", len(out.recs), n)
	}
}

// A Python stage in a real pipeline: every record uppercased, exactly once; the stage's logging
// reaches the host's log tagged with the pid; setup saw the options.
func TestPipeline(t *testing.T) {
	for _, mode := range []string{"process", "batch"} {
		t.Run(mode, func(t *testing.T) {
			env := map[string]string{}
			if mode == "batch" {
				env["TEST_BATCH"] = "1"
			}
			const n = 20000
			out, sum, logs := runStage(t, run{n: n, env: env})
			exactlyOnce(t, out, n)
			if sum.RecordsOut != n || sum.DeadLetters != 0 {
				t.Fatalf("summary: %+v", sum)
			}
			if !strings.Contains(logs, "teststage ready in pid") || !strings.Contains(logs, "pid=") {
				t.Fatalf("the stage's logging did not reach the host's log:\n%s", logs)
			}
			// The host closes each worker gracefully at the end: Shutdown runs teardown.
			if c := strings.Count(logs, "teststage teardown in pid"); c != 2 {
				t.Fatalf("teardown ran %d times, want once per worker (2):\n%s", c, logs)
			}
		})
	}
}

// A stage returning a generator of several outputs with new keys and meta.
func TestSplit(t *testing.T) {
	const n = 500
	out, _, _ := runStage(t, run{n: n, opts: map[string]any{"split": 3}})
	if len(out.recs) != 3*n {
		t.Fatalf("%d records out, want %d", len(out.recs), 3*n)
	}
	seen := map[string]bool{}
	for _, r := range out.recs {
		if r.Meta["part"] == "" || !strings.Contains(r.Key, "#") || seen[r.Key+string(r.Payload)] {
			t.Fatalf("bad or duplicated output %+v", r)
		}
		seen[r.Key+string(r.Payload)] = true
	}
}

// Records whose processing raises are retried, then dead-lettered with the exception's text;
// the others pass.
func TestExceptionsDeadLetter(t *testing.T) {
	for _, mode := range []string{"process", "batch"} {
		t.Run(mode, func(t *testing.T) {
			env := map[string]string{}
			if mode == "batch" {
				env["TEST_BATCH"] = "1"
			}
			const n = 1000
			out, sum, _ := runStage(t, run{n: n, env: env, opts: map[string]any{"fail_on": "7"}})
			var bad int
			for i := range n {
				if strings.Contains(fmt.Sprint(i), "7") {
					bad++
				}
			}
			if len(out.dead) != bad || sum.DeadLetters != int64(bad) {
				t.Fatalf("%d dead letters (summary %d), want %d", len(out.dead), sum.DeadLetters, bad)
			}
			for _, d := range out.dead {
				if !strings.Contains(d.Error, "ValueError: bad record "+d.Key) || !strings.Contains(d.Error, "stage.py") || d.Attempts != 3 {
					t.Fatalf("dead letter %+v: want the exception's text and 3 attempts", d)
				}
			}
			if len(out.recs) != n-bad {
				t.Fatalf("%d records out, want %d", len(out.recs), n-bad)
			}
		})
	}
}

// A plugin that calls os._exit mid-run is restarted; no record is lost or duplicated.
func TestExitMidRun(t *testing.T) {
	const n = 5000
	marker := filepath.Join(t.TempDir(), "marker")
	out, sum, logs := runStage(t, run{n: n, opts: map[string]any{"exit_at": 1500, "marker": marker}})
	exactlyOnce(t, out, n)
	if sum.Restarts < 1 {
		t.Fatalf("no restart after os._exit (summary %+v)\n%s", sum, logs)
	}
	if !strings.Contains(logs, "exited with code 7") {
		t.Fatalf("the log does not tell the exit:\n%s", logs)
	}
}

// A Python plugin SIGKILLed mid-run is restarted; no record is lost or duplicated.
func TestPluginKilled(t *testing.T) {
	py := needPython(t)
	const n = 3000
	pidfile := filepath.Join(t.TempDir(), "pids")
	cfg := plugins.Config{Cmd: []string{py, testStage(t)}}
	factory, err := cfg.Factory()
	if err != nil {
		t.Fatal(err)
	}
	src, err := actors.NewLinesSource(writeLines(t, n), nil)
	if err != nil {
		t.Fatal(err)
	}
	out := &collect{}
	p := troupe.Pipeline{
		Source: src,
		Stages: []troupe.Stage{{Name: "py", Backend: factory, Workers: 1, Attempts: 3,
			Options: map[string]any{"sleep": 0.001, "pidfile": pidfile}}},
		Sink:        out,
		DeadLetters: deadSink{out},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	type result struct {
		sum troupe.Summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		sum, err := actors.Run(ctx, &p)
		done <- result{sum, err}
	}()
	pid := proctest.WaitPIDs(t, pidfile, 1, cancel)[0]
	deadline := time.Now().Add(proctest.Deadline)
	for {
		out.mu.Lock()
		got := len(out.recs)
		out.mu.Unlock()
		if got >= 100 {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("only %d records out after %s", got, proctest.Deadline)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	if err := plugins.WaitClosed(ctx); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, out, n)
	if r.sum.Restarts < 1 || len(proctest.ReadPIDs(pidfile)) < 2 {
		t.Fatalf("no restart after the SIGKILL (summary %+v, pids %v)", r.sum, proctest.ReadPIDs(pidfile))
	}
}

// A plugin that leaks past its RSS limit is killed and restarted; no record is lost.
func TestRSSLimit(t *testing.T) {
	const n = 3000
	marker := filepath.Join(t.TempDir(), "marker")
	out, sum, logs := runStage(t, run{n: n, workers: 1,
		opts:   map[string]any{"leak_at": 1000, "leak_mb": 400, "marker": marker},
		limits: plugins.Limits{RSS: 200 << 20}})
	exactlyOnce(t, out, n)
	if sum.Restarts < 1 {
		t.Fatalf("no restart after the leak (summary %+v)", sum)
	}
	if !strings.Contains(logs, "rss") {
		t.Fatalf("the log does not name the rss limit:\n%s", logs)
	}
}

// A SIGKILLed host takes its Python plugins with it at once: each is gone within a second.
func TestHostKilled(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("parent-death signal: Linux only")
	}
	py := needPython(t)
	dir := t.TempDir()
	bin := proctest.Build(t, dir, "troupe", "github.com/troupe-dev/troupe/cmd/troupe")
	pidfile := filepath.Join(dir, "pids")
	var in strings.Builder
	for i := range 100000 {
		fmt.Fprintf(&in, "rec %d\n", i)
	}
	if err := os.WriteFile(filepath.Join(dir, "in.txt"), []byte(in.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := fmt.Sprintf(`name: killed
source: {lines: {path: in.txt}}
stages:
  - name: py
    plugin: {cmd: [%s, %s]}
    workers: 2
    options: {sleep: 0.01, pidfile: %s}
sink: {lines: {path: out.txt}}
`, py, testStage(t), pidfile)
	if err := os.WriteFile(filepath.Join(dir, "spec.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "spec.yaml", "--progress", "none")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pids := proctest.WaitPIDs(t, pidfile, 2, func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// Both have taken records: the output file grows.
	deadline := time.Now().Add(proctest.Deadline)
	for {
		if st, err := os.Stat(filepath.Join(dir, "out.txt")); err == nil && st.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("no output after %s\n%s", proctest.Deadline, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	_ = cmd.Wait()
	for _, pid := range pids {
		for proctest.Alive(pid) {
			if time.Since(killed) > time.Second {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("python plugin %d still alive %v after its host was SIGKILLed", pid, time.Since(killed))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	t.Logf("plugins %v gone %v after the host's SIGKILL", pids, time.Since(killed).Round(time.Millisecond))
}

// Options that setup refuses fail the worker's start with setup's exception, and the run ends
// after the restart policy's failed starts.
func TestSetupRefuses(t *testing.T) {
	py := needPython(t)
	cfg := plugins.Config{Cmd: []string{py, testStage(t)}}
	factory, err := cfg.Factory()
	if err != nil {
		t.Fatal(err)
	}
	p := troupe.Pipeline{
		Source: actors.NewRangeSource(10, 8),
		Stages: []troupe.Stage{{Name: "py", Backend: factory, Workers: 1, Options: map[string]any{"refuse": "x"},
			Restart: troupe.Restart{Intensity: 2, Period: time.Minute, Backoff: supervisor.Backoff{Min: time.Millisecond, Max: time.Millisecond}}}},
		Sink: &collect{},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, err = actors.Run(ctx, &p)
	if err == nil || !strings.Contains(err.Error(), "setup: ValueError: refused option 'x'") {
		t.Fatalf("run error %v: want setup's exception", err)
	}
	if err := plugins.WaitClosed(ctx); err != nil {
		t.Fatal(err)
	}
}

// Run directly, a plugin says it is one and exits 1.
func TestRunDirectly(t *testing.T) {
	py := needPython(t)
	cmd := exec.Command(py, testStage(t))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !bytes.Contains(out, []byte("troupe stage plugin")) {
		t.Fatalf("err %v, output %q: want exit 1 and an explanation", err, out)
	}
}

// WriteSDK writes a package that imports.
func TestWriteSDK(t *testing.T) {
	py := needPython(t)
	dir := t.TempDir()
	if err := python.WriteSDK(dir); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-B", "-c", "import sys; sys.path.insert(0, sys.argv[1]); import troupe_plugin._serve, troupe_plugin.codec", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("importing the written SDK: %v\n%s", err, out)
	}
}
