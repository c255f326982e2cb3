package actors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// ioFailAfter passes writes on to w until limit bytes have gone through, then fails every write
// with err, writing the part of the write that still fits first (as a device filling up does).
type ioFailAfter struct {
	w     io.Writer
	limit int64
	err   error
	n     int64
}

func (f *ioFailAfter) Write(p []byte) (int, error) {
	room := f.limit - f.n
	if room >= int64(len(p)) {
		n, err := f.w.Write(p)
		f.n += int64(n)
		return n, err
	}
	n := 0
	if room > 0 {
		n, _ = f.w.Write(p[:room])
		f.n += int64(n)
	}
	return n, f.err
}

// ioCountLines checks that data is whole lines and returns how many there are.
func ioCountLines(t *testing.T, name string, data []byte) int64 {
	t.Helper()
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Fatalf("%s ends in half a line: ...%q", name, data[max(0, len(data)-40):])
	}
	return int64(bytes.Count(data, []byte{'\n'}))
}

// A lines sink whose device fills up mid-run: the run is aborted with an error naming the file,
// the file is cut back to whole records, and RecordsOut is what the file holds.
func TestLinesSinkWriteErrorCountsOnlyWhatIsOnDisk(t *testing.T) {
	for _, limit := range []int64{0, 1, 1000, 100_000, 300_007} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "out.txt")
			sink, err := NewLinesSink(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			ls := sink.(*linesSink)
			ls.out.w = &ioFailAfter{w: ls.file, limit: limit, err: syscall.ENOSPC}
			p := &Pipeline{Source: &countSource{n: 200_000}, Sink: sink}
			sum, err := p.Run(context.Background())
			if err == nil {
				t.Fatalf("run succeeded; summary %+v", sum)
			}
			epWantErr(t, err, path, "no space left on device")
			data, rerr := os.ReadFile(path)
			if rerr != nil {
				t.Fatal(rerr)
			}
			lines := ioCountLines(t, path, data)
			if sum.RecordsOut != lines {
				t.Fatalf("summary says %d records out, the file holds %d", sum.RecordsOut, lines)
			}
			if int64(len(data)) > limit {
				t.Fatalf("file has %d bytes, more than the %d the device took", len(data), limit)
			}
			if sum.DeadLetters != 0 {
				t.Fatalf("%d records went to dead letters; a full device is not the records' fault", sum.DeadLetters)
			}
		})
	}
}

// The same for the dead-letter file: never half a line, and DeadLetters is what it holds.
func TestJSONLDeadLettersWriteErrorCountsOnlyWhatIsOnDisk(t *testing.T) {
	for _, limit := range []int64{0, 5000, 100_000} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "dead.jsonl")
			// An earlier run's dead letters, ending in a partial line, stay.
			if err := os.WriteFile(path, []byte("{\"earlier\":1}\n{\"half"), 0o644); err != nil {
				t.Fatal(err)
			}
			dl, err := NewJSONLDeadLetters(path)
			if err != nil {
				t.Fatal(err)
			}
			jd := dl.(*jsonlDeadLetters)
			jd.out.w = &ioFailAfter{w: jd.file, limit: limit, err: syscall.EFBIG}
			fail := func(context.Context, *Record) ([]*Record, error) { return nil, errors.New("no") }
			p := &Pipeline{
				Source:      &countSource{n: 20_000},
				Stages:      []Stage{{Name: "fail", Func: fail, Attempts: 1, Workers: 2}},
				Sink:        &memSink{},
				DeadLetters: dl,
			}
			sum, err := p.Run(context.Background())
			if err == nil {
				t.Fatalf("run succeeded; summary %+v", sum)
			}
			epWantErr(t, err, path, "file too large")
			data, rerr := os.ReadFile(path)
			if rerr != nil {
				t.Fatal(rerr)
			}
			lines := ioCountLines(t, path, data) - 2 // the earlier run's two lines
			if !bytes.HasPrefix(data, []byte("{\"earlier\":1}\n{\"half\n")) {
				t.Fatalf("the earlier dead letters were not kept: %.60q", data)
			}
			if sum.DeadLetters != lines {
				t.Fatalf("summary says %d dead letters, the file holds %d", sum.DeadLetters, lines)
			}
		})
	}
}

// ioFlakySink accepts writes but fails its flushes from the nth on.
type ioFlakySink struct {
	mu      sync.Mutex
	pending int
	durable int
	flushes int
	failAt  int
}

func (s *ioFlakySink) Write(*Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending++
	return nil
}

func (s *ioFlakySink) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushes++
	if s.flushes >= s.failAt {
		return fmt.Errorf("flush: %w", syscall.EIO)
	}
	s.durable += s.pending
	s.pending = 0
	return nil
}

func (s *ioFlakySink) Close() error { return nil }

// Records count as out only once the sink has flushed them.
func TestRecordsOutCountsOnlyFlushedRecords(t *testing.T) {
	sink := &ioFlakySink{failAt: 5}
	p := &Pipeline{Source: &countSource{n: 100_000}, Stages: []Stage{{Name: "up", Func: upper, Workers: 2}}, Sink: sink}
	sum, err := p.Run(context.Background())
	if err == nil || !errors.Is(err, syscall.EIO) {
		t.Fatalf("run error = %v, want the flush error", err)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sum.RecordsOut != int64(sink.durable) {
		t.Fatalf("RecordsOut = %d, the sink made %d durable", sum.RecordsOut, sink.durable)
	}
}

// A lines sink on a device that takes nothing (/dev/full): the error names it and nothing counts.
func TestLinesSinkDevFull(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	sink, err := NewLinesSink("/dev/full", nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &Pipeline{Source: &countSource{n: 1000}, Sink: sink}
	sum, err := p.Run(context.Background())
	epWantErr(t, err, "/dev/full", "no space left on device")
	if sum.RecordsOut != 0 || sum.DeadLetters != 0 {
		t.Fatalf("summary %+v, want nothing out", sum)
	}
}

// A killed run leaves ".troupe-*.tmp" files behind; the next files sink into the same directory
// removes them, and nothing else.
func TestFilesSinkRemovesStaleTemporaries(t *testing.T) {
	dir := t.TempDir()
	stale := []string{".troupe-abc123.tmp", "sub/.troupe-3w5e11264sgsf.tmp", "sub/deeper/.troupe-0.tmp"}
	kept := []string{
		".troupe-ABC.tmp", ".troupe-.tmp", "troupe-abc.tmp", ".troupe-abc.tmp.bak", ".troupe-abc.tmpx",
		".troupe-3w5e11264sgsg.tmp", // one more than the largest uint64
		".troupe-a-b.tmp", "sub/keep.txt", "x.tmp",
	}
	for _, name := range append(append([]string{}, stale...), kept...) {
		epWrite(t, dir, name, "half")
	}
	// A directory and a symbolic link with a temporary file's name are not temporary files.
	if err := os.MkdirAll(filepath.Join(dir, ".troupe-d1r.tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	target := epWrite(t, t.TempDir(), "target", "elsewhere")
	if err := os.Symlink(target, filepath.Join(dir, ".troupe-11nk.tmp")); err != nil {
		t.Fatal(err)
	}
	sink, err := NewFilesSink(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range stale {
		if _, err := os.Lstat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stale %s was not removed: %v", name, err)
		}
	}
	for _, name := range append(kept, ".troupe-d1r.tmp", ".troupe-11nk.tmp") {
		if _, err := os.Lstat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s was removed: %v", name, err)
		}
	}
	if _, err := os.Stat(target); err != nil {
		t.Errorf("the link's target was removed: %v", err)
	}
}
