package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/proctest"
)

// troupe serve drains on SIGTERM: new jobs get 503, the running job that can finish within the
// drain timeout finishes, the one that cannot is cancelled at the deadline, and it exits 0.
func TestServeDrainsOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs binaries")
	}
	bin := t.TempDir()
	plugin := filepath.Join(bin, "testplugin")
	troupeBin := filepath.Join(bin, "troupe")
	for _, args := range [][]string{
		{"-o", plugin, "github.com/troupe-dev/troupe/engine/internal/testplugin"},
		{"-o", troupeBin, "."},
	} {
		if out, err := exec.Command("go", append([]string{"build"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("go build %v: %v\n%s", args, err, out)
		}
	}
	cmd := exec.Command(troupeBin, "serve", "--admin", "127.0.0.1:0", "--max-jobs", "2", "--drain-timeout", "3s")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 10 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	defer func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		t.Fatalf("no address printed; stderr:\n%s", stderr.String())
	}
	go func() {
		io.Copy(io.Discard, stdout)
		waitErr = cmd.Wait()
		close(exited)
	}()
	base := strings.TrimPrefix(strings.TrimSpace(lines.Text()), "troupe: serving on ")
	submit := func(input string) (int, map[string]any) {
		body, _ := json.Marshal(map[string]any{
			"spec":  map[string]any{"stages": []any{map[string]any{"name": "p", "workers": 1, "credits": 1, "plugin": map[string]any{"cmd": []string{plugin}}}}},
			"input": []string{input},
		})
		resp, err := http.Post(base+"/api/jobs", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&v)
		return resp.StatusCode, v
	}
	status := func(id string) string {
		resp, err := http.Get(base + "/api/jobs/" + id)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&v)
		s, _ := v["status"].(string)
		return s
	}
	waitRunning := func(id string) {
		end := time.Now().Add(proctest.Deadline)
		for status(id) != "running" {
			if time.Now().After(end) {
				t.Fatalf("job %s never ran", id)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// The supervision events of the jobs, under /job:ID.
	evResp, err := http.Get(base + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	defer evResp.Body.Close()
	jobEvent := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(evResp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") && strings.Contains(sc.Text(), `"path":"/job:job-1/`) {
				jobEvent <- sc.Text()
				break
			}
		}
		io.Copy(io.Discard, evResp.Body) // until the server ends the stream
	}()
	code, short := submit("sleep:1500ms:short")
	if code != 201 {
		t.Fatalf("submit: %d %v", code, short)
	}
	code, long := submit("sleep:1h:long")
	if code != 201 {
		t.Fatalf("submit: %d %v", code, long)
	}
	waitRunning(short["id"].(string))
	waitRunning(long["id"].(string))
	// The admin endpoints are there, and show the jobs under the engine's root (once their
	// trees have started).
	type treeNode struct {
		Kind     string `json:"kind"`
		Children []struct {
			Name string `json:"name"`
			Path string `json:"path"`
			Kind string `json:"kind"`
		} `json:"children"`
	}
	deadline := time.Now().Add(proctest.Deadline)
	for {
		resp, err := http.Get(base + "/api/tree")
		if err != nil {
			t.Fatal(err)
		}
		var tree treeNode
		err = json.NewDecoder(resp.Body).Decode(&tree)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(tree.Children) == 2 {
			if tree.Kind != "supervisor" || tree.Children[0].Kind != "job" || tree.Children[0].Path != "/job:"+short["id"].(string) {
				t.Fatalf("/api/tree: %+v", tree)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/api/tree: %+v, want the two jobs", tree)
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case ev := <-jobEvent:
		t.Logf("event: %s", ev)
	case <-time.After(proctest.Deadline):
		t.Fatal("no supervision event of job-1 on /api/events")
	}
	if resp, err := http.Get(base + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/readyz: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// New jobs are refused while it drains (or the server has already closed). Those accepted
	// before the signal was handled are cancelled with the rest.
	accepted := 0
	end := time.Now().Add(proctest.Deadline)
	for {
		body, _ := json.Marshal(map[string]any{"spec": "source: {range: {count: 1}}\n"})
		resp, err := http.Post(base+"/api/jobs", "application/json", bytes.NewReader(body))
		if err != nil {
			break // already stopped listening
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if resp.StatusCode == http.StatusCreated {
			accepted++
		}
		if time.Now().After(end) {
			t.Fatalf("still accepting jobs after SIGTERM: %d", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
	signalled := time.Now()
	select {
	case <-exited:
		t.Logf("exited %s after SIGTERM; stderr:\n%s", time.Since(signalled).Round(time.Millisecond), stderr.String())
		if waitErr != nil {
			t.Fatalf("troupe serve: %v\nstderr:\n%s", waitErr, stderr.String())
		}
	case <-time.After(proctest.Deadline):
		t.Fatalf("troupe serve did not exit after SIGTERM\nstderr:\n%s", stderr.String())
	}
	if want := fmt.Sprintf("1 done, 0 failed, %d cancelled", 1+accepted); !strings.Contains(stderr.String(), want) {
		t.Fatalf("stderr:\n%s", stderr.String())
	}
	if pids := proctest.Running(plugin); len(pids) > 0 {
		t.Fatalf("plugin processes left: %v", pids)
	}
}
