// Command server is a small HTTP service that embeds the troupe engine the way a user would: it
// turns uploaded images into JPEG thumbnails with the image stage (package stages/imgconv) run
// as a warm plugin stage, so that a hostile or broken image costs at most a plugin process,
// never the service, and a job starts without spawning one.
//
// Build the plugin and run the service, from the repository's root:
//
//	go build -o examples/imgconv/bin/imgconv-plugin ./examples/imgconv/plugin
//	go run ./examples/server -plugin examples/imgconv/bin/imgconv-plugin -addr 127.0.0.1:8080
//
// then
//
//	curl -s -F images=@a.png -F images=@b.gif http://127.0.0.1:8080/thumbnails
//	# {"id":"job-1","status":"running"}
//	curl -s http://127.0.0.1:8080/thumbnails/job-1
//	# {"id":"job-1","status":"done","images":[{"name":"a.png","jpeg_base64":"...",...}],"dead_letters":[]}
//
// GET answers 202 with the status while the job runs, and 200 with the JPEGs (base64 in JSON)
// and the images that could not be converted (dead letters, with the reason) once it is done.
// SIGINT or SIGTERM drains the jobs (up to 30 s) and exits.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/engine"
	"github.com/troupe-dev/troupe/plugins"
	"github.com/troupe-dev/troupe/stages/imgconv"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "the address to serve on")
	plugin := flag.String("plugin", "examples/imgconv/bin/imgconv-plugin", "the image plugin (go build ./examples/imgconv/plugin)")
	workers := flag.Int("workers", 2, "warm plugin processes")
	quality := flag.Int("quality", 75, "JPEG quality")
	flag.Parse()
	s, err := newService(*plugin, *workers, *quality)
	if err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		s.close(context.Background())
		os.Exit(1)
	}
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	fmt.Printf("serving on http://%s\n", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	<-ctx.Done()
	stop()
	dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = srv.Shutdown(dctx)
	s.close(dctx)
}

// maxUpload bounds a request's images.
const maxUpload = 64 << 20

// service converts uploaded images in jobs of one engine.
type service struct {
	e    *engine.Engine
	mu   sync.Mutex
	dead map[string]*deadLetters // by job id
}

func newService(plugin string, workers, quality int) (*service, error) {
	e, err := engine.New(engine.Options{
		MaxJobs: 4,
		Warm: []engine.WarmStage{{
			Name:    "convert",
			Plugin:  plugins.Config{Cmd: []string{plugin}, Limits: plugins.Limits{RSS: 512 << 20}},
			Workers: workers,
			Options: map[string]any{"quality": quality, "max_pixels": 50_000_000},
		}},
	})
	if err != nil {
		return nil, err
	}
	return &service{e: e, dead: map[string]*deadLetters{}}, nil
}

func (s *service) close(ctx context.Context) { _, _ = s.e.Shutdown(ctx) }

func (s *service) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /thumbnails", s.submit)
	mux.HandleFunc("GET /thumbnails/{id}", s.result)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	return mux
}

// submit starts a job over the uploaded images (form field "images", one or more files).
func (s *service) submit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxUpload)
	if err := r.ParseMultipartForm(8 << 20); err != nil {
		reply(w, http.StatusBadRequest, map[string]string{"error": "a multipart form with image files in \"images\": " + err.Error()})
		return
	}
	defer r.MultipartForm.RemoveAll()
	var recs []troupe.Record
	for _, fh := range r.MultipartForm.File["images"] {
		f, err := fh.Open()
		if err != nil {
			reply(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		data, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			reply(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		recs = append(recs, troupe.Record{Key: fh.Filename, Payload: data})
	}
	if len(recs) == 0 {
		reply(w, http.StatusBadRequest, map[string]string{"error": "no files in the form field \"images\""})
		return
	}
	dl := &deadLetters{}
	j, err := s.e.Submit(r.Context(), engine.JobSpec{
		Name: "thumbnails",
		Pipeline: &troupe.Pipeline{
			Name: "thumbnails",
			// The images are converted on the engine's warm plugin processes; a broken image
			// fails its attempts (or kills a process, which is replaced) and becomes a dead letter.
			Stages:      []troupe.Stage{{Name: "convert", Backend: s.e.Warm("convert"), Workers: 2, Attempts: 2, Timeout: time.Minute}},
			DeadLetters: dl,
		},
		Input: actors.NewSliceSource(recs),
	})
	switch {
	case errors.Is(err, engine.ErrQueueFull):
		reply(w, http.StatusTooManyRequests, map[string]string{"error": err.Error()})
		return
	case errors.Is(err, engine.ErrShuttingDown):
		reply(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		return
	case err != nil:
		reply(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	s.mu.Lock()
	s.dead[j.ID()] = dl
	for id := range s.dead { // forget the jobs the engine no longer keeps
		if _, err := s.e.Get(id); err != nil {
			delete(s.dead, id)
		}
	}
	s.mu.Unlock()
	reply(w, http.StatusAccepted, map[string]any{"id": j.ID(), "status": j.Status()})
}

// thumbnail is one converted image in GET's answer.
type thumbnail struct {
	Name   string `json:"name"`
	JPEG   []byte `json:"jpeg_base64"`
	Width  string `json:"width"`
	Height string `json:"height"`
}

// failure is one image that could not be converted.
type failure struct {
	Name  string `json:"name"`
	Error string `json:"error"`
}

func (s *service) result(w http.ResponseWriter, r *http.Request) {
	j, err := s.e.Get(r.PathValue("id"))
	if err != nil {
		reply(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		return
	}
	if !j.Finished() {
		reply(w, http.StatusAccepted, map[string]any{"id": j.ID(), "status": j.Status()})
		return
	}
	images := []thumbnail{}
	for _, rec := range j.Output().Records() {
		images = append(images, thumbnail{Name: rec.Key, JPEG: rec.Payload, Width: rec.Meta[imgconv.MetaWidth], Height: rec.Meta[imgconv.MetaHeight]})
	}
	s.mu.Lock()
	dl := s.dead[j.ID()]
	s.mu.Unlock()
	failures := []failure{}
	if dl != nil {
		failures = dl.list()
	}
	out := map[string]any{"id": j.ID(), "status": j.Status(), "images": images, "dead_letters": failures}
	if err := j.Err(); err != nil {
		out["error"] = err.Error()
	}
	reply(w, http.StatusOK, out)
}

// deadLetters keeps a job's dead letters in memory (name and reason; not the payload).
type deadLetters struct {
	mu    sync.Mutex
	items []failure
}

func (d *deadLetters) Write(l troupe.DeadLetter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.items = append(d.items, failure{Name: l.Key, Error: l.Error})
	return nil
}
func (d *deadLetters) Flush() error { return nil }
func (d *deadLetters) Close() error { return nil }

func (d *deadLetters) list() []failure {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]failure{}, d.items...)
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
