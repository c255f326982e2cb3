package actors

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/troupe-dev/troupe"
)

// seenFunc is a stage that records the keys it processes.
type seenFunc struct {
	mu   sync.Mutex
	keys []string
}

func (s *seenFunc) fn(_ context.Context, rec troupe.Record) ([]troupe.Record, error) {
	s.mu.Lock()
	s.keys = append(s.keys, rec.Key)
	s.mu.Unlock()
	return []troupe.Record{rec}, nil
}

func (s *seenFunc) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys
	s.keys = nil
	return k
}

// A files source resumes by path, size and modification time: a second run does only the file
// that changed and the file that is new, and reports the others skipped; Total is what it will
// produce.
func TestJournalFilesSource(t *testing.T) {
	in, out := t.TempDir(), t.TempDir()
	for i := range 20 {
		writeFile(t, filepath.Join(in, fmt.Sprintf("f%02d.txt", i)), fmt.Sprintf("file %d", i))
	}
	jpath := filepath.Join(t.TempDir(), "j")
	seen := &seenFunc{}
	run := func() troupe.Summary {
		t.Helper()
		src, err := NewFilesSource(in, "*.txt", false)
		if err != nil {
			t.Fatal(err)
		}
		sink, err := NewFilesSink(out, "")
		if err != nil {
			t.Fatal(err)
		}
		sum, err := Run(context.Background(), &troupe.Pipeline{Source: src, Sink: sink,
			Stages:  []troupe.Stage{{Name: "seen", Func: seen.fn, Workers: 2}},
			Journal: &troupe.Journal{Path: jpath}})
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	if s := run(); s.RecordsOut != 20 || s.Skipped != 0 || len(seen.take()) != 20 {
		t.Fatalf("first run: %+v", s)
	}
	writeFile(t, filepath.Join(in, "f03.txt"), "file 3, longer now")
	writeFile(t, filepath.Join(in, "new.txt"), "new")
	s := run()
	got := seen.take()
	if s.Skipped != 19 || s.RecordsOut != 2 || s.Total != 2 || len(got) != 2 || !strings.Contains(strings.Join(got, " "), "f03.txt") {
		t.Errorf("second run: skipped %d, out %d, total %d, seen %v; want 19, 2, 2, [f03.txt new.txt]", s.Skipped, s.RecordsOut, s.Total, got)
	}
	if data, _ := os.ReadFile(filepath.Join(out, "f03.txt")); string(data) != "file 3, longer now" {
		t.Errorf("f03.txt = %q", data)
	}
}

// A pipeline whose source cannot be resumed, or with a reduce stage, refuses a journal.
func TestJournalRefusesWhatCannotResume(t *testing.T) {
	jpath := filepath.Join(t.TempDir(), "j")
	_, err := Run(context.Background(), &troupe.Pipeline{Source: &plainSource{NewRangeSource(10, 0)}, Sink: NewDiscardSink(),
		Journal: &troupe.Journal{Path: jpath}})
	if err == nil || !strings.Contains(err.Error(), "troupe.Resumable") {
		t.Errorf("non-resumable source: %v", err)
	}
	_, err = Run(context.Background(), &troupe.Pipeline{Source: NewRangeSource(10, 0), Sink: NewDiscardSink(),
		Stages: []troupe.Stage{{Name: "sum", Reduce: func(key string, acc []byte, rec troupe.Record) ([]byte, error) {
			return acc, nil
		}}},
		Journal: &troupe.Journal{Path: jpath}})
	if err == nil || !strings.Contains(err.Error(), "reduce stage") {
		t.Errorf("reduce stage: %v", err)
	}
	stdin, err := NewLinesSource("-", strings.NewReader("a\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), &troupe.Pipeline{Source: stdin, Sink: NewDiscardSink(), Journal: &troupe.Journal{Path: jpath}})
	if err == nil || !strings.Contains(err.Error(), "stdin cannot be resumed") {
		t.Errorf("stdin: %v", err)
	}
	stdin.Close()
}

// plainSource hides a source's other interfaces.
type plainSource struct{ s troupe.Source }

func (p *plainSource) Read(ctx context.Context, n int) ([]troupe.Record, error) {
	return p.s.Read(ctx, n)
}
func (p *plainSource) Close() error { return p.s.Close() }

// A journal is compacted when a run ends: one batch frame for everything, whatever the batches
// written; a journal torn while it was being created is started again.
func TestJournalCompactsAndRecreates(t *testing.T) {
	dir := t.TempDir()
	jpath := filepath.Join(dir, "j")
	inPath := filepath.Join(dir, "in.txt")
	var in strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&in, "line %d\n", i)
	}
	writeFile(t, inPath, in.String())
	// Torn at creation: half the magic line.
	writeFile(t, jpath, journalMagic[:5])
	src, err := NewLinesSource(inPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := &seenFunc{}
	sum, err := Run(context.Background(), &troupe.Pipeline{Source: src, Sink: NewDiscardSink(),
		Stages:  []troupe.Stage{{Name: "seen", Func: seen.fn, Workers: 2, Credits: 2}},
		Journal: &troupe.Journal{Path: jpath}})
	if err != nil || sum.RecordsOut != 2000 {
		t.Fatalf("run: %+v, %v", sum, err)
	}
	data, err := os.ReadFile(jpath)
	if err != nil {
		t.Fatal(err)
	}
	frames := 0
	for off := len(journalMagic); off < len(data); frames++ {
		_, next, ok := readFrame(data, off)
		if !ok {
			t.Fatalf("compacted journal: bad frame at %d", off)
		}
		off = next
	}
	if frames != 2 { // the header and one batch of 2000 entries
		t.Errorf("compacted journal has %d frames, want 2", frames)
	}
	j, err := openJournal(&troupe.Journal{Path: jpath}, "lines of "+inPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(j.prior) != 2000 {
		t.Errorf("compacted journal holds %d entries, want 2000", len(j.prior))
	}
	j.close(false)
}

// Two runs may not share a journal at once.
func TestJournalInUse(t *testing.T) {
	jpath := filepath.Join(t.TempDir(), "j")
	j, err := openJournal(&troupe.Journal{Path: jpath}, "x", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close(false)
	_, err = Run(context.Background(), &troupe.Pipeline{Source: NewRangeSource(1, 0), Sink: NewDiscardSink(),
		Journal: &troupe.Journal{Path: jpath}, DrainTimeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "in use by another run") {
		t.Errorf("second run on a journal in use: %v", err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A resumed lines sink keeps what the journal says it held, cuts off the rest, and appends; it
// refuses a file shorter than that. A sink used without a resume truncates its file as before.
func TestLinesSinkResume(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.txt")
	writeFile(t, path, "one\ntwo\nthree (not journalled)\n")
	s, err := NewLinesSink(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ls := s.(*linesSink)
	if err := ls.resumeAt(100); err == nil || !strings.Contains(err.Error(), "holds 31 bytes") {
		t.Errorf("resumeAt past the end: %v", err)
	}
	if err := ls.resumeAt(8); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(troupe.Record{Key: "3", Payload: []byte("three")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, err := ls.syncPos(); err != nil || n != 14 {
		t.Errorf("syncPos = %d, %v; want 14", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); string(data) != "one\ntwo\nthree\n" {
		t.Errorf("resumed file = %q", data)
	}
	s, err = NewLinesSink(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); len(data) == 0 {
		t.Error("the sink truncated its file before it was used")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); len(data) != 0 {
		t.Errorf("a sink closed unused left %q", data)
	}
}

// With OrderInput and a splitting stage, a journalled run writes every output once, and a
// second run over the same journal skips everything and leaves the output as it was.
func TestJournalOrderInputSplits(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.txt")
	split := func(_ context.Context, rec troupe.Record) ([]troupe.Record, error) {
		if rec.Key == "7" {
			return nil, fmt.Errorf("seven fails")
		}
		var outs []troupe.Record
		for _, p := range []string{"a", "b", "c"} {
			outs = append(outs, troupe.Record{Key: rec.Key + p, Payload: []byte(rec.Key + p)})
		}
		return outs, nil
	}
	run := func() troupe.Summary {
		t.Helper()
		sink, err := NewLinesSink(out, nil)
		if err != nil {
			t.Fatal(err)
		}
		dead, err := NewJSONLDeadLetters(filepath.Join(dir, "dead.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		sum, _ := Run(context.Background(), &troupe.Pipeline{Source: NewRangeSource(200, 0), Sink: sink, DeadLetters: dead,
			Order:   troupe.OrderInput,
			Stages:  []troupe.Stage{{Name: "split", Func: split, Workers: 3, Credits: 2, Attempts: 1}},
			Journal: &troupe.Journal{Path: filepath.Join(dir, "j")}})
		return sum
	}
	var want strings.Builder
	for i := range 200 {
		if i != 7 {
			fmt.Fprintf(&want, "%da\n%db\n%dc\n", i, i, i)
		}
	}
	if s := run(); s.RecordsOut != 597 || s.DeadLetters != 1 {
		t.Fatalf("first run: %+v", s)
	}
	if data, _ := os.ReadFile(out); string(data) != want.String() {
		t.Fatalf("out.txt after the first run:\n%s", data)
	}
	if s := run(); s.Skipped != 200 || s.RecordsIn != 0 || s.Outcome != troupe.OutcomeCompleted {
		t.Errorf("second run: %+v", s)
	}
	if data, _ := os.ReadFile(out); string(data) != want.String() {
		t.Errorf("out.txt after the second run:\n%s", data)
	}
}
