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
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-dev/troupe"
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
			p := &troupe.Pipeline{Source: &countSource{n: 200_000}, Sink: sink}
			sum, err := Run(context.Background(), p)
			if err == nil {
				t.Fatalf("run succeeded; summary %+v", sum)
			}
			epWantErr(t, err, path, "no space left on device")
			if n := strings.Count(err.Error(), "no space left on device"); n != 1 {
				t.Errorf("the error says it %d times: %v", n, err)
			}
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
			fail := func(context.Context, troupe.Record) ([]troupe.Record, error) { return nil, errors.New("no") }
			p := &troupe.Pipeline{
				Source:      &countSource{n: 20_000},
				Stages:      []troupe.Stage{{Name: "fail", Func: fail, Attempts: 1, Workers: 2}},
				Sink:        &memSink{},
				DeadLetters: dl,
			}
			sum, err := Run(context.Background(), p)
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

func (s *ioFlakySink) Write(troupe.Record) error {
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
	p := &troupe.Pipeline{Source: &countSource{n: 100_000}, Stages: []troupe.Stage{{Name: "up", Func: upper, Workers: 2}}, Sink: sink}
	sum, err := Run(context.Background(), p)
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
	p := &troupe.Pipeline{Source: &countSource{n: 1000}, Sink: sink}
	sum, err := Run(context.Background(), p)
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

// ioChanSink hands every record's payload to a channel.
type ioChanSink struct{ got chan string }

func (s *ioChanSink) Write(r troupe.Record) error { s.got <- string(r.Payload); return nil }
func (s *ioChanSink) Flush() error                { return nil }
func (s *ioChanSink) Close() error                { return nil }

// ioWaitFor waits (generously) for the next payload at the sink.
func ioWaitFor(t *testing.T, got <-chan string, want string) {
	t.Helper()
	select {
	case g := <-got:
		if g != want {
			t.Fatalf("sink got %q, want %q", g, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%q did not reach the sink within 30s", want)
	}
}

// A slow producer on stdin: each line reaches the sink before the next one is written.
func TestLinesSourceSlowInputIsNotHeldBack(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	src, err := NewLinesSource("-", pr)
	if err != nil {
		t.Fatal(err)
	}
	sink := &ioChanSink{got: make(chan string, 100)}
	r, err := Start(context.Background(), &troupe.Pipeline{Source: src, Sink: sink, Stages: []troupe.Stage{{Name: "up", Func: upper, Workers: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := fmt.Fprintf(pw, "line %d\n", i); err != nil {
			t.Fatal(err)
		}
		ioWaitFor(t, sink.got, fmt.Sprintf("LINE %d", i))
	}
	// A line written in pieces is still one line.
	for _, piece := range []string{"in ", "three ", "pieces\n"} {
		if _, err := io.WriteString(pw, piece); err != nil {
			t.Fatal(err)
		}
	}
	ioWaitFor(t, sink.got, "IN THREE PIECES")
	pw.Close()
	sum, err := r.Wait()
	if err != nil || sum.RecordsIn != 6 || sum.RecordsOut != 6 {
		t.Fatalf("summary %+v, error %v", sum, err)
	}
}

// A lines source on a named pipe whose writer goes silent: a stop finishes within the drain
// timeout, and the lines read before reach the sink.
func TestLinesSourceSilentFIFOCanBeStopped(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	// Opened read-write, the test holds a writer, which never closes while the run goes on.
	w, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteString("a\nb\nc\n"); err != nil {
		t.Fatal(err)
	}
	src, err := NewLinesSource(fifo, nil)
	if err != nil {
		t.Fatal(err)
	}
	sink := &ioChanSink{got: make(chan string, 100)}
	const drain = 10 * time.Second
	r, err := Start(context.Background(), &troupe.Pipeline{Source: src, Sink: sink, DrainTimeout: drain})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"a", "b", "c"} {
		ioWaitFor(t, sink.got, want)
	}
	r.Stop()
	done := make(chan struct{})
	var sum troupe.Summary
	go func() { defer close(done); sum, err = r.Wait() }()
	select {
	case <-done:
	case <-time.After(drain + 20*time.Second):
		t.Fatal("the run did not stop within the drain timeout")
	}
	if !errors.Is(err, context.Canceled) || sum.Outcome != troupe.OutcomeInterrupted || sum.RecordsIn != 3 || sum.RecordsOut != 3 || sum.InFlight != 0 {
		t.Fatalf("summary %+v, error %v", sum, err)
	}
}

// A file listed as regular and replaced by a named pipe before it is read: reading it never
// hangs, and its record goes to the dead letters with the reason; the other files are read.
func TestFilesSourceFIFOSwappedIn(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a.txt", "b.txt", "c.txt"} {
		epWrite(t, dir, name, name)
	}
	src, err := NewFilesSource(dir, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "b.txt")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "b.txt"), 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	sink, dead := &memSink{}, &memDead{}
	done := make(chan struct{})
	var sum troupe.Summary
	go func() {
		defer close(done)
		sum, err = Run(context.Background(), &troupe.Pipeline{Source: src, Sink: sink, DeadLetters: dead})
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		// Let the blocked open go, so that the test ends.
		if f, err := os.OpenFile(filepath.Join(dir, "b.txt"), os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
		t.Fatal("reading a named pipe put in place of a listed file hangs")
	}
	if err != nil {
		t.Fatal(err)
	}
	if keys := sink.keys(); !slices.Equal(slices.Sorted(slices.Values(keys)), []string{"a.txt", "c.txt"}) {
		t.Errorf("sink got %q", keys)
	}
	if len(dead.ds) != 1 || dead.ds[0].Key != "b.txt" || dead.ds[0].Stage != "source" || dead.ds[0].Meta["path"] != filepath.Join(dir, "b.txt") {
		t.Fatalf("dead letters %+v", dead.ds)
	}
	if e := dead.ds[0].Error; !strings.Contains(e, "b.txt") || !strings.Contains(e, "a named pipe") {
		t.Errorf("dead letter's error %q does not say what b.txt is", e)
	}
	if sum.RecordsIn != 3 || sum.RecordsOut != 2 || sum.DeadLetters != 1 || sum.InFlight != 0 {
		t.Errorf("summary %+v", sum)
	}
}

// A Read blocked on a silent stdin returns when its context is cancelled, and Close does not
// wait for it.
func TestLinesSourceBlockedReadCanBeInterrupted(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close() // lets the input goroutine go at the end
	src, err := NewLinesSource("-", pr)
	if err != nil {
		t.Fatal(err)
	}
	type read struct {
		recs []troupe.Record
		err  error
	}
	readIn := func(ctx context.Context) <-chan read {
		c := make(chan read, 1)
		go func() {
			recs, err := src.Read(ctx, 10)
			c <- read{recs, err}
		}()
		return c
	}
	wait := func(c <-chan read, what string) read {
		t.Helper()
		select {
		case r := <-c:
			return r
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: still blocked after 30s", what)
		}
		return read{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := readIn(ctx)
	// The pipe takes half a line only once the Read is reading: then it waits for the rest.
	if _, err := io.WriteString(pw, "hal"); err != nil {
		t.Fatal(err)
	}
	cancel()
	if r := wait(c, "Read after its context was cancelled"); len(r.recs) != 0 || !errors.Is(r.err, context.Canceled) {
		t.Fatalf("Read = %d records, %v; want context.Canceled", len(r.recs), r.err)
	}
	c = readIn(context.Background())
	closed := make(chan error, 1)
	go func() { closed <- src.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close waits for a Read blocked on stdin")
	}
	if r := wait(c, "Read when the source was closed"); len(r.recs) != 0 || r.err == nil {
		t.Fatalf("Read = %d records, %v; want an error", len(r.recs), r.err)
	}
}

// ioStuckSource is a source that breaks the contract: its Read ignores ctx and blocks until
// released, holding the lock its Close needs.
type ioStuckSource struct {
	mu      sync.Mutex
	sent    bool
	release chan struct{}
}

func (s *ioStuckSource) Read(ctx context.Context, max int) ([]troupe.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.sent {
		s.sent = true
		return []troupe.Record{{Key: "1", Payload: []byte("one")}}, nil
	}
	<-s.release
	return nil, io.EOF
}

func (s *ioStuckSource) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return nil
}

// Even a source whose Read and Close block cannot keep a stop from finishing.
func TestStopFinishesWithAStuckSource(t *testing.T) {
	src := &ioStuckSource{release: make(chan struct{})}
	defer close(src.release)
	sink := &ioChanSink{got: make(chan string, 10)}
	r, err := Start(context.Background(), &troupe.Pipeline{Source: src, Sink: sink, DrainTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ioWaitFor(t, sink.got, "one")
	r.Stop()
	done := make(chan struct{})
	var sum troupe.Summary
	go func() { defer close(done); sum, err = r.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the run did not stop: closing the source waits for its stuck Read")
	}
	if sum.RecordsOut != 1 {
		t.Fatalf("summary %+v", sum)
	}
	epWantErr(t, err, "source", "Close did not return")
}

// A lines source on a named pipe no writer has opened yet: making it does not wait for the
// writer, a run on it can be stopped, and a writer that comes later is read.
func TestLinesSourceFIFOWithoutWriter(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	unblock := func() { // a writer for a moment, for an open that waits for one
		if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
	}
	newSource := func(t *testing.T) troupe.Source {
		t.Helper()
		made := make(chan troupe.Source, 1)
		go func() {
			src, err := NewLinesSource(fifo, nil)
			if err != nil {
				t.Error(err)
			}
			made <- src
		}()
		select {
		case src := <-made:
			if src == nil {
				t.FailNow()
			}
			return src
		case <-time.After(30 * time.Second):
			unblock()
			t.Fatal("NewLinesSource waits for the named pipe's writer")
		}
		return nil
	}
	wait := func(t *testing.T, r *Job) (troupe.Summary, error) {
		t.Helper()
		type result struct {
			sum troupe.Summary
			err error
		}
		c := make(chan result, 1)
		go func() { s, err := r.Wait(); c <- result{s, err} }()
		select {
		case res := <-c:
			return res.sum, res.err
		case <-time.After(60 * time.Second):
			unblock()
			t.Fatal("the run did not end")
		}
		return troupe.Summary{}, nil
	}

	t.Run("stop", func(t *testing.T) {
		r, err := Start(context.Background(), &troupe.Pipeline{Source: newSource(t), Sink: &memSink{}, DrainTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		r.Stop()
		if sum, err := wait(t, r); !errors.Is(err, context.Canceled) || sum.RecordsIn != 0 {
			t.Fatalf("summary %+v, error %v", sum, err)
		}
	})
	t.Run("late writer", func(t *testing.T) {
		sink := &memSink{}
		r, err := Start(context.Background(), &troupe.Pipeline{Source: newSource(t), Sink: sink})
		if err != nil {
			t.Fatal(err)
		}
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0) // waits for the source's open
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.WriteString("x\ny\n"); err != nil {
			t.Fatal(err)
		}
		w.Close()
		if sum, err := wait(t, r); err != nil || sum.RecordsOut != 2 {
			t.Fatalf("summary %+v, error %v", sum, err)
		}
	})
}

// A Close that comes while the input goroutine is about to open the named pipe (it has seen the
// source open, it is not yet in the open) still releases it: left waiting in the open, it would
// take the data of the pipe's next writer, whose reader would then wait forever.
func TestLinesSourceFIFOCloseDuringOpen(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	reached, proceed := make(chan struct{}), make(chan struct{})
	fifoBeforeOpen = func() { close(reached); <-proceed }
	defer func() { fifoBeforeOpen = nil }()
	src, err := NewLinesSource(fifo, nil)
	if err != nil {
		t.Fatal(err)
	}
	read := make(chan error, 1)
	go func() { _, err := src.Read(context.Background(), 1); read <- err }()
	<-reached
	closed := make(chan error, 1)
	go func() { closed <- src.Close() }()
	s := src.(*linesSource)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		s.fileMu.Lock()
		done := s.fileClosed
		s.fileMu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Close did not mark the source closed")
		}
	}
	close(proceed) // the input goroutine goes on into the open
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return")
	}
	if err := <-read; err == nil {
		t.Error("Read during Close returned no error")
	}
	// Close returned: the open is over, or is left waiting for a writer (the bug).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		buf := make([]byte, 1<<20)
		if !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "(*linesSource).openFIFO") {
			break
		}
		if time.Now().After(deadline) {
			if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				w.Close() // releases the open left behind
			}
			t.Fatal("after Close, the input goroutine still waits in the named pipe's open")
		}
	}
	// Nobody is left reading the pipe, so a writer cannot open it without blocking.
	if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
		w.Close()
		t.Fatal("after Close, the named pipe is still open for reading")
	}
}

// Lines already read from stdin when a stop comes are still handed on: stdin cannot be read
// again.
func TestLinesSourceCancelHandsOnWhatWasRead(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	src, err := NewLinesSource("-", pr)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	go func() { _, _ = io.WriteString(pw, "a\nb\nc\npart") }()
	recs, err := src.Read(context.Background(), 1)
	if err != nil || !slices.Equal(epPayloads(recs), []string{"a"}) {
		t.Fatalf("Read = %q, %v", epPayloads(recs), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	recs, err = src.Read(ctx, 10)
	if err != nil || !slices.Equal(epPayloads(recs), []string{"b", "c"}) {
		t.Fatalf("Read after cancellation = %q, %v; want the lines already read", epPayloads(recs), err)
	}
	if recs, err = src.Read(ctx, 10); len(recs) != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("then Read = %q, %v; want context.Canceled", epPayloads(recs), err)
	}
}
