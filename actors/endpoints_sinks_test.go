package actors

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe"
)

// epTreeFiles lists every file under dir (relative, forward slashes) with its contents.
func epTreeFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = string(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestFilesSinkNames(t *testing.T) {
	for _, ext := range []string{".json", "json"} {
		dir := filepath.Join(t.TempDir(), "out", "nested") // created by the sink
		sink, err := NewFilesSink(dir, ext)
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"a.txt", "sub/dir/b.csv", "noext", ".profile", "x.d/y", "p/../q.tar.gz"} {
			if err := sink.Write(troupe.Record{Key: key, Payload: []byte("from " + key)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := sink.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := sink.Close(); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"a.json":         "from a.txt",
			"sub/dir/b.json": "from sub/dir/b.csv",
			"noext.json":     "from noext",
			".profile.json":  "from .profile",
			"x.d/y.json":     "from x.d/y",
			"q.tar.json":     "from p/../q.tar.gz",
		}
		got := epTreeFiles(t, dir)
		if len(got) != len(want) {
			t.Fatalf("ext %q: files %v, want %v", ext, got, want)
		}
		for name, contents := range want {
			if got[name] != contents {
				t.Fatalf("ext %q: %s = %q, want %q (all: %v)", ext, name, got[name], contents, got)
			}
		}
	}

	dir := t.TempDir()
	sink, err := NewFilesSink(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"keep.txt", "d/keep.csv"} {
		if err := sink.Write(troupe.Record{Key: key, Payload: []byte(key)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if got := epTreeFiles(t, dir); len(got) != 2 || got["keep.txt"] != "keep.txt" || got["d/keep.csv"] != "d/keep.csv" {
		t.Fatalf("ext \"\": files %v", got)
	}

	for _, bad := range []string{".", "a/b", "x\x00"} {
		if _, err := NewFilesSink(t.TempDir(), bad); err == nil {
			t.Errorf("extension %q accepted", bad)
		}
	}
}

func TestFilesSinkRefusesEscapes(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "out")
	outside := filepath.Join(base, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	sink, err := NewFilesSink(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"../escape", "/abs/escape", "a/../../escape", "..", ".", "", "link/escape", "link/deeper/escape"} {
		err := sink.Write(troupe.Record{Key: key, Payload: []byte("x")})
		epWantErr(t, err, strconv.Quote(key))
	}
	if err := sink.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := epTreeFiles(t, base); len(got) != 0 {
		t.Fatalf("refused keys left files: %v", got)
	}
	// The sink still works after refusing.
	if err := sink.Write(troupe.Record{Key: "fine", Payload: []byte("ok")}); err != nil {
		t.Fatal(err)
	}
}

func TestFilesSinkAtomicReplace(t *testing.T) {
	dir := t.TempDir()
	sink, err := NewFilesSink(dir, ".out")
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Write(troupe.Record{Key: "r.txt", Payload: []byte("first version")}); err != nil {
		t.Fatal(err)
	}
	old, err := os.Open(filepath.Join(dir, "r.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	// A second record with the same output name replaces the file as a whole: a reader that had
	// the old file open still sees all of it (a write in place would have truncated it).
	if err := sink.Write(troupe.Record{Key: "r.csv", Payload: []byte("second")}); err != nil {
		t.Fatal(err)
	}
	if data, err := io.ReadAll(old); err != nil || string(data) != "first version" {
		t.Fatalf("old file now reads %q, %v", data, err)
	}
	// An output name taken by a directory fails, naming the key, and leaves no temporary file.
	if err := os.Mkdir(filepath.Join(dir, "taken.out"), 0o755); err != nil {
		t.Fatal(err)
	}
	err = sink.Write(troupe.Record{Key: "taken.bin", Payload: []byte("x")})
	epWantErr(t, err, `"taken.bin"`, filepath.Join(dir, "taken.out"))
	// A subdirectory removed behind the sink's back is made again.
	if err := sink.Write(troupe.Record{Key: "gone/a", Payload: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "gone")); err != nil {
		t.Fatal(err)
	}
	if err := sink.Write(troupe.Record{Key: "gone/b", Payload: []byte("2")}); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	got := epTreeFiles(t, dir)
	want := map[string]string{"r.out": "second", "gone/b.out": "2"}
	if len(got) != len(want) || got["r.out"] != want["r.out"] || got["gone/b.out"] != want["gone/b.out"] {
		t.Fatalf("files = %v, want %v (no temporary files)", got, want)
	}
	if err := sink.Write(troupe.Record{Key: "late", Payload: nil}); err == nil {
		t.Fatal("Write after Close succeeded")
	}
}

func TestFilesSinkManyFilesLeaveNoTemporaries(t *testing.T) {
	dir := t.TempDir()
	sink, err := NewFilesSink(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	src := NewRangeSource(200, 64)
	for _, r := range epReadAll(t, src, 50) {
		r.Key = "d" + strconv.Itoa(len(r.Key)) + "/" + r.Key
		if err := sink.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	got := epTreeFiles(t, dir)
	if len(got) != 200 {
		t.Fatalf("%d files, want 200", len(got))
	}
	for name, contents := range got {
		if strings.Contains(name, ".troupe-") {
			t.Fatalf("temporary file left: %s", name)
		}
		i, err := strconv.ParseInt(name[strings.IndexByte(name, '/')+1:], 10, 64)
		if err != nil {
			t.Fatalf("unexpected file %s", name)
		}
		want := make([]byte, 64)
		rangePayload(want, i)
		if contents != string(want) {
			t.Fatalf("%s has the wrong contents", name)
		}
	}
}

func TestLinesSink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "out.txt")
	sink, err := NewLinesSink(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a", "", "b c", strings.Repeat("z", 100_000)} {
		if err := sink.Write(troupe.Record{Key: p, Payload: []byte(p)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	want := "a\n\nb c\n" + strings.Repeat("z", 100_000) + "\n"
	if data, err := os.ReadFile(path); err != nil || string(data) != want {
		t.Fatalf("file holds %d bytes (%v), want %d", len(data), err, len(want))
	}
	if err := sink.Write(troupe.Record{Payload: []byte("late")}); err == nil {
		t.Fatal("Write after Close succeeded")
	}

	// An existing file is truncated.
	sink, err = NewLinesSink(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Write(troupe.Record{Payload: []byte("only")}); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); string(data) != "only\n" {
		t.Fatalf("after truncation: %q", data)
	}

	notDir := epWrite(t, t.TempDir(), "file", "")
	_, err = NewLinesSink(filepath.Join(notDir, "sub", "out.txt"), nil)
	epWantErr(t, err, notDir)
	if _, err := NewLinesSink("-", nil); err == nil {
		t.Fatal("\"-\" without stdout succeeded")
	}
}

// epStdout records what is written and whether it was closed.
type epStdout struct {
	bytes.Buffer
	closed bool
	fail   error
}

func (w *epStdout) Write(p []byte) (int, error) {
	if w.fail != nil {
		return 0, w.fail
	}
	return w.Buffer.Write(p)
}

func (w *epStdout) Close() error { w.closed = true; return nil }

func TestLinesSinkStdout(t *testing.T) {
	out := &epStdout{}
	sink, err := NewLinesSink("-", out)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"x", "y"} {
		if err := sink.Write(troupe.Record{Payload: []byte(p)}); err != nil {
			t.Fatal(err)
		}
	}
	if out.Len() != 0 {
		t.Fatalf("unbuffered: %q written before Flush", out.String())
	}
	if err := sink.Flush(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "x\ny\n" {
		t.Fatalf("after Flush: %q", out.String())
	}
	if err := sink.Write(troupe.Record{Payload: []byte("z")}); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "x\ny\nz\n" || out.closed {
		t.Fatalf("after Close: %q, closed=%v", out.String(), out.closed)
	}

	broken := &epStdout{fail: errors.New("pipe broken")}
	sink, err = NewLinesSink("-", broken)
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Write(troupe.Record{Payload: []byte("lost?")}); err != nil {
		t.Fatal(err)
	}
	epWantErr(t, sink.Flush(), "stdout", "pipe broken")
	epWantErr(t, sink.Close(), "stdout", "pipe broken")
}

func TestDiscardSink(t *testing.T) {
	sink := NewDiscardSink()
	for _, r := range epReadAll(t, NewRangeSource(5, 10), 5) {
		if err := sink.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestJSONLDeadLettersRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dead.jsonl")
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	letters := []troupe.DeadLetter{
		{Key: "photos/a.jpg", Seq: 7, Stage: "convert", Attempts: 3, Error: "exit status 2: \"bad\" <header>\n", Payload: binary, Meta: map[string]string{"path": "/in/photos/a.jpg", "size": "256"}},
		{Key: "", Seq: 1 << 60, Stage: "s", Attempts: 1, Error: "", Payload: nil},
		{Key: "bad\xffkey", Seq: 2, Stage: "s", Attempts: 5, Error: "x", Payload: []byte("text"), Meta: map[string]string{}},
	}
	dl, err := NewJSONLDeadLetters(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range letters {
		if err := dl.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := dl.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := dl.Close(); err != nil {
		t.Fatal(err)
	}
	if err := dl.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := dl.Write(letters[0]); err == nil {
		t.Fatal("Write after Close succeeded")
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != len(letters) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(letters), data)
	}
	for i, line := range lines {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &raw); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		for _, field := range []string{"key", "seq", "stage", "attempts", "error", "payload_b64"} {
			if _, ok := raw[field]; !ok {
				t.Fatalf("line %d lacks %q: %s", i+1, field, line)
			}
		}
		if _, ok := raw["meta"]; ok != (len(letters[i].Meta) > 0) {
			t.Fatalf("line %d: meta present=%v with %d entries: %s", i+1, ok, len(letters[i].Meta), line)
		}
		var got struct {
			Key        string            `json:"key"`
			KeyB64     string            `json:"key_b64"`
			Seq        uint64            `json:"seq"`
			Stage      string            `json:"stage"`
			Attempts   int               `json:"attempts"`
			Error      string            `json:"error"`
			PayloadB64 string            `json:"payload_b64"`
			Meta       map[string]string `json:"meta"`
		}
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		want := letters[i]
		payload, err := base64.StdEncoding.DecodeString(got.PayloadB64)
		if err != nil {
			t.Fatalf("line %d: payload_b64: %v", i+1, err)
		}
		key := got.Key
		if got.KeyB64 != "" {
			k, err := base64.StdEncoding.DecodeString(got.KeyB64)
			if err != nil {
				t.Fatalf("line %d: key_b64: %v", i+1, err)
			}
			key = string(k)
		}
		if key != want.Key || got.Seq != want.Seq || got.Stage != want.Stage || got.Attempts != want.Attempts ||
			got.Error != want.Error || !bytes.Equal(payload, want.Payload) || len(got.Meta) != len(want.Meta) {
			t.Fatalf("line %d decodes to %+v, want %+v", i+1, got, want)
		}
		for k, v := range want.Meta {
			if got.Meta[k] != v {
				t.Fatalf("line %d: meta %q = %q, want %q", i+1, k, got.Meta[k], v)
			}
		}
	}
	if strings.Contains(lines[0], `\u003c`) {
		t.Fatalf("HTML escaping garbles errors: %s", lines[0])
	}
}

func TestJSONLDeadLettersAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dead.jsonl")
	// A previous run crashed in the middle of a line.
	if err := os.WriteFile(path, []byte(`{"key":"old","seq":1}`+"\n"+`{"key":"torn`), 0o644); err != nil {
		t.Fatal(err)
	}
	dl, err := NewJSONLDeadLetters(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := dl.Write(troupe.DeadLetter{Key: "new", Seq: 9, Stage: "s", Attempts: 1, Error: "e", Payload: []byte("p")}); err != nil {
		t.Fatal(err)
	}
	if err := dl.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 3 || lines[0] != `{"key":"old","seq":1}` || lines[1] != `{"key":"torn` {
		t.Fatalf("earlier lines not kept as they were:\n%s", data)
	}
	var last troupe.DeadLetter
	if err := json.Unmarshal([]byte(lines[2]), &last); err != nil || last.Key != "new" || last.Seq != 9 {
		t.Fatalf("new line %q: %+v, %v", lines[2], last, err)
	}

	notDir := epWrite(t, t.TempDir(), "file", "")
	_, err = NewJSONLDeadLetters(filepath.Join(notDir, "dead.jsonl"))
	epWantErr(t, err, notDir)
}

// TestEndpointsInPipeline runs files and lines through the runtime: every input reaches the sink
// or the dead letters, and the runtime's Close of each endpoint leaves complete outputs.
func TestEndpointsInPipeline(t *testing.T) {
	in, base := t.TempDir(), t.TempDir()
	want := map[string]string{}
	for i := range 40 {
		rel := "f" + strconv.Itoa(i) + ".txt"
		if i%3 == 0 {
			rel = "sub/" + rel
		}
		epWrite(t, in, rel, "payload "+rel)
		want[strings.TrimSuffix(rel, ".txt")+".up"] = strings.ToUpper("payload " + rel)
	}
	epWrite(t, in, "poison.txt", "\x00\xffbinary poison")
	epWrite(t, in, "skipped.log", "not matched")

	src, err := NewFilesSource(in, "*.txt", true)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(base, "out")
	sink, err := NewFilesSink(out, "up")
	if err != nil {
		t.Fatal(err)
	}
	deadPath := filepath.Join(base, "dead", "letters.jsonl")
	dead, err := NewJSONLDeadLetters(deadPath)
	if err != nil {
		t.Fatal(err)
	}
	upper := func(_ context.Context, r troupe.Record) ([]troupe.Record, error) {
		if r.Key == "poison.txt" {
			return nil, errors.New("poisoned")
		}
		r.Payload = bytes.ToUpper(r.Payload)
		return []troupe.Record{r}, nil
	}
	p := &troupe.Pipeline{
		Name:        "endpoints",
		Source:      src,
		Stages:      []troupe.Stage{{Name: "upper", Func: upper, Workers: 2, Attempts: 2}},
		Sink:        sink,
		DeadLetters: dead,
	}
	sum, err := Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Total != 41 || sum.RecordsIn != 41 || sum.RecordsOut != 40 || sum.DeadLetters != 1 {
		t.Fatalf("summary %+v", sum)
	}
	got := epTreeFiles(t, out)
	if len(got) != len(want) {
		t.Fatalf("%d output files, want %d: %v", len(got), len(want), got)
	}
	for name, contents := range want {
		if got[name] != contents {
			t.Fatalf("%s = %q, want %q", name, got[name], contents)
		}
	}
	data, err := os.ReadFile(deadPath)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Key        string `json:"key"`
		Stage      string `json:"stage"`
		Attempts   int    `json:"attempts"`
		Error      string `json:"error"`
		PayloadB64 []byte `json:"payload_b64"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("dead letters %q: %v", data, err)
	}
	if d.Key != "poison.txt" || d.Stage != "upper" || d.Attempts != 2 || !strings.Contains(d.Error, "poisoned") ||
		string(d.PayloadB64) != "\x00\xffbinary poison" {
		t.Fatalf("dead letter %+v", d)
	}

	// Lines in, lines out, in input order.
	var input strings.Builder
	for i := range 500 {
		input.WriteString("line " + strconv.Itoa(i) + "\r\n")
	}
	lines, err := NewLinesSource("-", strings.NewReader(input.String()))
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	lsink, err := NewLinesSink("-", &stdout)
	if err != nil {
		t.Fatal(err)
	}
	p = &troupe.Pipeline{Source: lines, Stages: []troupe.Stage{{Name: "upper", Func: upper, Workers: 3}}, Sink: lsink, Order: troupe.OrderInput}
	if _, err := Run(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if want := strings.ReplaceAll(strings.ToUpper(input.String()), "\r\n", "\n"); stdout.String() != want {
		t.Fatalf("lines out differ: got %d bytes, want %d", stdout.Len(), len(want))
	}
}
