package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/troupe-dev/troupe/internal/proctest"
	"github.com/troupe-dev/troupe/plugins"
	"github.com/troupe-dev/troupe/stages/imgconv"
)

// The service runs in this process: nothing may be left running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestThumbnails runs the service for real: the image plugin built, an HTTP server on a loopback
// port, sample images and one malformed file uploaded as a multipart form. Every image comes back
// as a JPEG, the malformed one as a dead letter with its reason, and the service goes on (a
// second upload is served by the same warm processes).
func TestThumbnails(t *testing.T) {
	dir := t.TempDir()
	plugin := filepath.Join(dir, "imgconv-plugin")
	if out, err := exec.Command("go", "build", "-o", plugin, "../imgconv/plugin").CombinedOutput(); err != nil {
		t.Fatalf("building the plugin: %v\n%s", err, out)
	}
	s, err := newService(plugin, 2, 70)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.handler())
	defer func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s.close(ctx)
		if err := plugins.WaitClosed(ctx); err != nil {
			t.Error(err)
		}
		if pids := proctest.Running(plugin); len(pids) > 0 {
			t.Errorf("plugin processes left: %v", pids)
		}
	}()
	warm := s.e.WarmPids("convert")

	in := filepath.Join(dir, "in")
	names, err := imgconv.Generate(in, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"broken.png": []byte("\x89PNG\r\n\x1a\nnot really")}
	for _, n := range names {
		data, err := os.ReadFile(n) // Generate returns paths
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(n)] = data
	}

	res := upload(t, srv.URL, files)
	var got []string
	for _, img := range res.Images {
		if _, err := jpeg.Decode(bytes.NewReader(img.JPEG)); err != nil {
			t.Fatalf("%s: not a JPEG: %v", img.Name, err)
		}
		got = append(got, img.Name)
	}
	sort.Strings(got)
	var want []string
	for name := range files {
		if name != "broken.png" {
			want = append(want, name)
		}
	}
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("thumbnails of %v, want %v", got, want)
	}
	if len(res.DeadLetters) != 1 || res.DeadLetters[0].Name != "broken.png" || !strings.Contains(res.DeadLetters[0].Error, "broken.png") {
		t.Fatalf("dead letters %+v, want broken.png with its reason", res.DeadLetters)
	}
	if res.Status != "done" {
		t.Fatalf("status %s", res.Status)
	}

	// The service is alive and still warm: the next upload is converted by the same processes.
	res = upload(t, srv.URL, map[string][]byte{"again" + filepath.Ext(names[0]): files[filepath.Base(names[0])]})
	if len(res.Images) != 1 || len(res.DeadLetters) != 0 {
		t.Fatalf("second upload: %+v", res)
	}
	// A broken image is an error of the stage, not a crash: no process was replaced.
	if after := s.e.WarmPids("convert"); !slices.Equal(after, warm) || len(warm) != 2 {
		t.Fatalf("warm processes %v, before %v", after, warm)
	}
}

type answer struct {
	ID          string      `json:"id"`
	Status      string      `json:"status"`
	Images      []thumbnail `json:"images"`
	DeadLetters []failure   `json:"dead_letters"`
}

// upload posts files and polls until the job is done.
func upload(t *testing.T, base string, files map[string][]byte) answer {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for name, data := range files {
		fw, err := mw.CreateFormFile("images", name)
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(data)
	}
	mw.Close()
	resp, err := http.Post(base+"/thumbnails", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	var a answer
	json.NewDecoder(resp.Body).Decode(&a)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || a.ID == "" {
		t.Fatalf("POST /thumbnails: %d %+v", resp.StatusCode, a)
	}
	end := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(fmt.Sprintf("%s/thumbnails/%s", base, a.ID))
		if err != nil {
			t.Fatal(err)
		}
		var got answer
		json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return got
		}
		if resp.StatusCode != http.StatusAccepted || time.Now().After(end) {
			t.Fatalf("GET: %d %+v", resp.StatusCode, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
