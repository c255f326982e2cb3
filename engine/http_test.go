package engine_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/engine"
)

func httpEngine(t *testing.T, opts engine.Options, ho engine.HTTPOptions) (*engine.Engine, *httptest.Server) {
	t.Helper()
	e := newEngine(t, opts)
	srv := httptest.NewServer(engine.HTTPHandler(e, ho))
	t.Cleanup(srv.Close)
	return e, srv
}

func do(t *testing.T, method, url, ctype, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s %s: %d, body %q is not a JSON object", method, url, resp.StatusCode, data)
	}
	return resp.StatusCode, v
}

func submitJSON(t *testing.T, base string, req any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(req)
	return do(t, "POST", base+"/api/jobs", "application/json", string(b))
}

// waitStatus polls the job until its status is one of want.
func waitStatus(t *testing.T, base, id string, want ...string) map[string]any {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		code, v := do(t, "GET", base+"/api/jobs/"+id, "", "")
		if code != 200 {
			t.Fatalf("GET job %s: %d %v", id, code, v)
		}
		if slices.Contains(want, v["status"].(string)) {
			return v
		}
		if time.Now().After(end) {
			t.Fatalf("job %s: status %v, want %v", id, v["status"], want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func outputLines(t *testing.T, base, id string) []engine.OutputLine {
	t.Helper()
	resp, err := http.Get(base + "/api/jobs/" + id + "/output")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("output: %d", resp.StatusCode)
	}
	var lines []engine.OutputLine
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var l engine.OutputLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("output line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines
}

func linePayloads(lines []engine.OutputLine) []string {
	var out []string
	for _, l := range lines {
		if l.Payload != nil {
			out = append(out, *l.Payload)
		}
	}
	sort.Strings(out)
	return out
}

func TestHTTPConcurrentJobs(t *testing.T) {
	_, srv := httpEngine(t, engine.Options{MaxJobs: 3}, engine.HTTPOptions{})
	specs := []any{
		map[string]any{"stages": []any{map[string]any{"name": "up", "builtin": "upper"}}}, // a JSON object
		"stages:\n  - name: up\n    builtin: upper\n",                                     // YAML text
	}
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := []string{fmt.Sprintf("job%d-a", i), fmt.Sprintf("job%d-b", i)}
			code, v := submitJSON(t, srv.URL, map[string]any{"spec": specs[i%2], "input": in})
			if code != 201 {
				t.Errorf("submit %d: %d %v", i, code, v)
				return
			}
			id := v["id"].(string)
			got := linePayloads(outputLines(t, srv.URL, id)) // streams until the job ends
			want := []string{fmt.Sprintf("JOB%d-A", i), fmt.Sprintf("JOB%d-B", i)}
			if !slices.Equal(got, want) {
				t.Errorf("job %d: output %v, want %v", i, got, want)
			}
			v = waitStatus(t, srv.URL, id, "done", "failed", "cancelled")
			if v["status"] != "done" || v["summary"].(map[string]any)["records_out"] != float64(2) {
				t.Errorf("job %d: %v", i, v)
			}
		}()
	}
	wg.Wait()
	code, v := do(t, "GET", srv.URL+"/api/jobs", "", "")
	if code != 200 || len(v["jobs"].([]any)) != 6 {
		t.Fatalf("list: %d %v", code, v)
	}
}

func TestHTTPBareYAMLAndBadSpec(t *testing.T) {
	_, srv := httpEngine(t, engine.Options{}, engine.HTTPOptions{})
	code, v := do(t, "POST", srv.URL+"/api/jobs", "application/yaml", "source:\n  range: {count: 5}\nsink:\n  discard: {}\n")
	if code != 201 {
		t.Fatalf("bare YAML: %d %v", code, v)
	}
	v = waitStatus(t, srv.URL, v["id"].(string), "done", "failed")
	if v["status"] != "done" || v["summary"].(map[string]any)["records_out"] != float64(5) {
		t.Fatalf("%v", v)
	}
	// Bad: an unknown key and an unknown builtin, each reported at its line and column.
	code, v = do(t, "POST", srv.URL+"/api/jobs", "application/yaml", "source:\n  range: {count: 5}\nstages:\n  - name: up\n    builtin: nosuch\n    workerz: 2\n")
	if code != 400 || v["error"] != "bad spec" {
		t.Fatalf("bad spec: %d %v", code, v)
	}
	var positions []string
	for _, p := range v["errors"].([]any) {
		positions = append(positions, p.(map[string]any)["position"].(string))
	}
	if len(positions) != 2 || !strings.HasPrefix(positions[0], "request:5:") || !strings.HasPrefix(positions[1], "request:6:") {
		t.Fatalf("positions %v, want request:5:... and request:6:...", positions)
	}
	// Not JSON at all.
	if code, _ := do(t, "POST", srv.URL+"/api/jobs", "application/json", "{nope"); code != 400 {
		t.Fatalf("garbage: %d", code)
	}
	if code, _ := do(t, "GET", srv.URL+"/api/jobs/job-999", "", ""); code != 404 {
		t.Fatalf("unknown job: %d", code)
	}
}

// slowSpec runs the test plugin, whose "sleep:D:x" records take D, one record at a time per
// worker (a plugin reports a batch's results together).
func slowSpec() map[string]any {
	return map[string]any{"stages": []any{map[string]any{"name": "slow", "workers": 2, "credits": 1, "plugin": map[string]any{"cmd": []string{testPlugin}}}}}
}

func TestHTTPCancelAndStreamedOutput(t *testing.T) {
	_, srv := httpEngine(t, engine.Options{DrainTimeout: time.Second}, engine.HTTPOptions{})
	code, v := submitJSON(t, srv.URL, map[string]any{"spec": slowSpec(), "input": []string{"first", "sleep:1h:never"}})
	if code != 201 {
		t.Fatalf("%d %v", code, v)
	}
	id := v["id"].(string)
	resp, err := http.Get(srv.URL + "/api/jobs/" + id + "/output")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() || !strings.Contains(sc.Text(), `"FIRST"`) {
		t.Fatalf("first streamed line: %q %v", sc.Text(), sc.Err())
	}
	if st := waitStatus(t, srv.URL, id, "running")["status"]; st != "running" {
		t.Fatal(st)
	}
	code, v = do(t, "DELETE", srv.URL+"/api/jobs/"+id, "", "")
	if code != 200 {
		t.Fatalf("cancel: %d %v", code, v)
	}
	v = waitStatus(t, srv.URL, id, "cancelled", "done", "failed")
	if v["status"] != "cancelled" {
		t.Fatalf("after DELETE: %v", v)
	}
	for sc.Scan() { // the stream ends with the job
	}
}

func TestHTTPQueueFullAndShuttingDown(t *testing.T) {
	e, srv := httpEngine(t, engine.Options{MaxJobs: 1, MaxQueue: 1, DrainTimeout: time.Second}, engine.HTTPOptions{})
	req := map[string]any{"spec": slowSpec(), "input": []string{"sleep:1h:x"}}
	code, first := submitJSON(t, srv.URL, req)
	if code != 201 {
		t.Fatalf("%d %v", code, first)
	}
	waitStatus(t, srv.URL, first["id"].(string), "running")
	if code, v := submitJSON(t, srv.URL, req); code != 201 || v["status"] != "queued" {
		t.Fatalf("second: %d %v", code, v)
	}
	if code, v := submitJSON(t, srv.URL, req); code != 429 {
		t.Fatalf("third: %d %v, want 429", code, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	outs, err := e.Shutdown(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range outs {
		if o.Status != engine.Cancelled {
			t.Fatalf("%s: %s, want cancelled", o.ID, o.Status)
		}
	}
	if code, v := submitJSON(t, srv.URL, req); code != 503 {
		t.Fatalf("after shutdown: %d %v, want 503", code, v)
	}
}

func TestHTTPSpecName(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "up.yaml"), []byte("stages:\n  - name: up\n    builtin: upper\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, srv := httpEngine(t, engine.Options{}, engine.HTTPOptions{SpecDir: dir})
	code, v := submitJSON(t, srv.URL, map[string]any{"spec_name": "up.yaml", "input": []string{"x"}})
	if code != 201 {
		t.Fatalf("%d %v", code, v)
	}
	if got := linePayloads(outputLines(t, srv.URL, v["id"].(string))); !slices.Equal(got, []string{"X"}) {
		t.Fatalf("%v", got)
	}
	for _, bad := range []string{"../up.yaml", "sub/up.yaml", "nosuch.yaml"} {
		if code, v := submitJSON(t, srv.URL, map[string]any{"spec_name": bad}); code != 400 {
			t.Fatalf("%s: %d %v", bad, code, v)
		}
	}
}
