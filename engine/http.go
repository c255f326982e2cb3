package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/spec"
)

// HTTPOptions configure the HTTP API.
type HTTPOptions struct {
	// SpecDir, if set, is a directory of specs a request may name instead of sending one:
	// {"spec_name": "x.yaml"} submits SpecDir/x.yaml (a plain file name, no directories), its
	// relative paths resolved against SpecDir.
	SpecDir string
	// MaxBody bounds a request's body; default 32 MiB.
	MaxBody int64
}

// Mux is where Register adds the API's routes: an *http.ServeMux, or the admin server
// (admin.Server.Handle), which puts them behind its authentication.
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Register adds the engine's HTTP API to mux (net/http patterns of Go 1.22):
//
//	POST   /api/jobs             submit: a JSON object {"spec": <object, or YAML text>, "input":
//	                             [<string>, ...], "spec_name": "x.yaml", "name": "..."} (one of
//	                             spec and spec_name), or a bare YAML spec (Content-Type
//	                             application/yaml). 201 {"id","status"}; 400 with the spec's
//	                             errors, each with its position; 429 when the queue is full; 503
//	                             when the engine is shutting down.
//	GET    /api/jobs             {"jobs": [job, ...]}
//	GET    /api/jobs/{id}        job: {"id","name","status","counts","summary","error"}
//	DELETE /api/jobs/{id}        cancel; answers the job once it has stopped (or after 10 s)
//	GET    /api/jobs/{id}/output the in-memory output as JSON lines {"key","payload","meta"}
//	                             (payload_base64 instead of payload when it is not UTF-8),
//	                             streamed while the job runs; 409 if its sink is not in memory.
//
// Input strings become records keyed by their 1-based index; they replace the spec's source (a
// spec with input needs no source). A spec without a sink has its output collected in memory.
func Register(mux Mux, e *Engine, o HTTPOptions) {
	if o.MaxBody <= 0 {
		o.MaxBody = 32 << 20
	}
	a := &api{e: e, o: o}
	mux.Handle("POST /api/jobs", http.HandlerFunc(a.submit))
	mux.Handle("GET /api/jobs", http.HandlerFunc(a.list))
	mux.Handle("GET /api/jobs/{id}", http.HandlerFunc(a.get))
	mux.Handle("DELETE /api/jobs/{id}", http.HandlerFunc(a.cancel))
	mux.Handle("GET /api/jobs/{id}/output", http.HandlerFunc(a.output))
}

// HTTPHandler returns the engine's HTTP API (see Register) as a handler of its own.
func HTTPHandler(e *Engine, o HTTPOptions) http.Handler {
	mux := http.NewServeMux()
	Register(mux, e, o)
	return mux
}

type api struct {
	e *Engine
	o HTTPOptions
}

// submitRequest is POST /api/jobs's JSON body.
type submitRequest struct {
	Spec     json.RawMessage `json:"spec"`
	SpecName string          `json:"spec_name"`
	Input    *[]string       `json:"input"`
	Name     string          `json:"name"`
}

// SpecProblem is one error of a bad spec, as the API reports it.
type SpecProblem struct {
	Position string `json:"position"` // FILE:LINE:COL
	File     string `json:"file"`
	Line     int    `json:"line"`
	Col      int    `json:"col"`
	Message  string `json:"message"`
}

func (a *api) submit(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.o.MaxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("reading the request: %v", err))
		return
	}
	js := JobSpec{SpecFile: "request"}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml":
		js.Spec = body
	default:
		var req submitRequest
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("the body is not a job request (JSON {\"spec\": ..., \"input\": [...]}, or a YAML spec with Content-Type application/yaml): %v", err))
			return
		}
		js.Name = req.Name
		switch {
		case (len(req.Spec) > 0) == (req.SpecName != ""):
			writeError(w, http.StatusBadRequest, `give exactly one of "spec" and "spec_name"`)
			return
		case req.SpecName != "":
			data, file, err := a.named(req.SpecName)
			if err != nil {
				writeError(w, http.StatusBadRequest, err.Error())
				return
			}
			js.Spec, js.SpecFile = data, file
		case req.Spec[0] == '"':
			var text string
			if err := json.Unmarshal(req.Spec, &text); err != nil {
				writeError(w, http.StatusBadRequest, err.Error())
				return
			}
			js.Spec = []byte(text)
		default:
			// A JSON object is YAML: positions are within it as sent.
			js.Spec = req.Spec
		}
		if req.Input != nil {
			js.Input = actors.NewStringsSource(*req.Input)
		}
	}
	j, err := a.e.Submit(r.Context(), js)
	if err != nil {
		writeSubmitError(w, err)
		return
	}
	w.Header().Set("Location", "/api/jobs/"+j.ID())
	writeJSON(w, http.StatusCreated, map[string]any{"id": j.ID(), "status": j.Status()})
}

// named reads the spec file name from the spec directory.
func (a *api) named(name string) ([]byte, string, error) {
	if a.o.SpecDir == "" {
		return nil, "", errors.New(`"spec_name" needs a spec directory (troupe serve --spec-dir)`)
	}
	if name != filepath.Base(name) || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return nil, "", fmt.Errorf("spec_name %q: a file name in the spec directory, without directories", name)
	}
	file := filepath.Join(a.o.SpecDir, name)
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, "", fmt.Errorf("spec_name %q: %v", name, err)
	}
	return data, file, nil
}

func writeSubmitError(w http.ResponseWriter, err error) {
	var se *spec.SpecError
	var pe *spec.PosError
	switch {
	case errors.Is(err, ErrQueueFull):
		writeError(w, http.StatusTooManyRequests, err.Error())
	case errors.Is(err, ErrShuttingDown):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case errors.As(err, &se):
		writeSpecErrors(w, se.Errors)
	case errors.As(err, &pe):
		writeSpecErrors(w, []*spec.PosError{pe})
	default:
		writeError(w, http.StatusBadRequest, err.Error())
	}
}

func writeSpecErrors(w http.ResponseWriter, errs []*spec.PosError) {
	problems := make([]SpecProblem, len(errs))
	for i, e := range errs {
		problems[i] = SpecProblem{Position: e.Pos.String(), File: e.Pos.File, Line: e.Pos.Line, Col: e.Pos.Col, Message: e.Msg}
	}
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": "bad spec", "errors": problems})
}

func (a *api) list(w http.ResponseWriter, _ *http.Request) {
	jobs := []JobJSON{}
	for _, j := range a.e.List() {
		jobs = append(jobs, jobJSON(j))
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": jobs})
}

func (a *api) job(w http.ResponseWriter, r *http.Request) *Job {
	j, err := a.e.Get(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return nil
	}
	return j
}

func (a *api) get(w http.ResponseWriter, r *http.Request) {
	if j := a.job(w, r); j != nil {
		writeJSON(w, http.StatusOK, jobJSON(j))
	}
}

func (a *api) cancel(w http.ResponseWriter, r *http.Request) {
	j := a.job(w, r)
	if j == nil {
		return
	}
	j.Cancel()
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	_, _ = j.Wait(ctx)
	writeJSON(w, http.StatusOK, jobJSON(j))
}

// OutputLine is one line of GET /api/jobs/{id}/output.
type OutputLine struct {
	Key           string            `json:"key"`
	Payload       *string           `json:"payload,omitempty"`
	PayloadBase64 []byte            `json:"payload_base64,omitempty"`
	Meta          map[string]string `json:"meta,omitempty"`
}

func (a *api) output(w http.ResponseWriter, r *http.Request) {
	j := a.job(w, r)
	if j == nil {
		return
	}
	out := j.Output()
	if out == nil {
		writeError(w, http.StatusConflict, fmt.Sprintf("job %s writes its output to its spec's sink, not to memory", j.ID()))
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	for next := 0; ; {
		recs, done, err := out.Next(r.Context(), next)
		if done || err != nil {
			return
		}
		next += len(recs)
		for _, rec := range recs {
			line := OutputLine{Key: rec.Key, Meta: rec.Meta}
			if utf8.Valid(rec.Payload) {
				s := string(rec.Payload)
				line.Payload = &s
			} else {
				line.PayloadBase64 = rec.Payload
			}
			if err := enc.Encode(line); err != nil {
				return
			}
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}

// JobJSON is a job as the API shows it.
type JobJSON struct {
	ID      string       `json:"id"`
	Name    string       `json:"name"`
	Status  Status       `json:"status"`
	Counts  SummaryJSON  `json:"counts"`
	Summary *SummaryJSON `json:"summary"` // null until the job has ended
	Error   string       `json:"error,omitempty"`
}

// SummaryJSON is a troupe.Summary as the API shows it.
type SummaryJSON struct {
	Outcome     string      `json:"outcome"`
	Total       int64       `json:"total"`
	RecordsIn   int64       `json:"records_in"`
	RecordsOut  int64       `json:"records_out"`
	DeadLetters int64       `json:"dead_letters"`
	Dropped     int64       `json:"dropped"`
	Restarts    int64       `json:"restarts"`
	InFlight    int64       `json:"in_flight"`
	ElapsedMS   float64     `json:"elapsed_ms"`
	Stages      []StageJSON `json:"stages"`
}

// StageJSON is one stage's share of a SummaryJSON.
type StageJSON struct {
	Name      string             `json:"name"`
	In        int64              `json:"in"`
	Out       int64              `json:"out"`
	Failed    int64              `json:"failed"`
	Retried   int64              `json:"retried"`
	Restarts  int64              `json:"restarts"`
	LatencyMS map[string]float64 `json:"latency_ms"`
}

func summaryJSON(s troupe.Summary) SummaryJSON {
	out := SummaryJSON{Outcome: s.Outcome.String(), Total: s.Total, RecordsIn: s.RecordsIn, RecordsOut: s.RecordsOut,
		DeadLetters: s.DeadLetters, Dropped: s.Dropped, Restarts: s.Restarts, InFlight: s.InFlight,
		ElapsedMS: ms(s.Elapsed), Stages: []StageJSON{}}
	for _, st := range s.Stages {
		out.Stages = append(out.Stages, StageJSON{Name: st.Name, In: st.In, Out: st.Out, Failed: st.Failed,
			Retried: st.Retries, Restarts: st.Restarts, LatencyMS: map[string]float64{"p50": ms(st.P50), "p99": ms(st.P99)}})
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func jobJSON(j *Job) JobJSON {
	out := JobJSON{ID: j.ID(), Name: j.Name(), Status: j.Status(), Counts: summaryJSON(j.Counts())}
	if s, ok := j.Summary(); ok {
		sj := summaryJSON(s)
		out.Summary = &sj
	}
	if err := j.Err(); err != nil {
		out.Error = err.Error()
	}
	return out
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
