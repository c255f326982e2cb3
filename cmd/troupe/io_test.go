package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ioBinary builds the troupe binary for a test (the build cache makes the second build cheap).
func ioBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "troupe")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// ioRunBinary runs cmd to its end (within 2 minutes) and returns its exit status and stderr.
func ioRunBinary(t *testing.T, cmd *exec.Cmd) (int, string) {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), stderr.String()
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("still running after 2 minutes; stderr:\n%s", stderr.String())
	}
	return 0, ""
}

// ioWholeLines checks that a file holds whole lines and returns how many.
func ioWholeLines(t *testing.T, path string) int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Fatalf("%s ends in half a line: ...%q", path, data[max(0, len(data)-40):])
	}
	return int64(bytes.Count(data, []byte{'\n'}))
}

// The output file hits the file size limit (RLIMIT_FSIZE: writes past it fail with EFBIG, and
// Go ignores SIGXFSZ): the run aborts (exit 1) naming the file, the file ends with a whole
// line, and the summary's RecordsOut is the number of lines in it.
func TestSinkHitsFileSizeLimit(t *testing.T) {
	bin := ioBinary(t)
	dir := t.TempDir()
	spec := write(t, filepath.Join(dir, "big.yaml"), `
name: big
source: {range: {count: 200000, size: 8}}
stages:
  - {name: key, builtin: format, options: {template: "record {key}"}}
sink: {lines: {path: out.txt}}
`)
	summary := filepath.Join(dir, "s.json")
	// 64 blocks: 32 KiB (blocks of 512 bytes) or 64 KiB (of 1024), whatever the shell counts in.
	cmd := exec.Command("sh", "-c", `ulimit -f 64 && exec "$0" "$@"`, bin, "run", spec, "--summary-json", summary, "--progress", "none")
	code, stderr := ioRunBinary(t, cmd)
	out := filepath.Join(dir, "out.txt")
	if code != exitAborted {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitAborted, stderr)
	}
	if !strings.Contains(stderr, out) || !strings.Contains(stderr, "file too large") {
		t.Errorf("stderr does not name %s and the error:\n%s", out, stderr)
	}
	lines := ioWholeLines(t, out)
	s := readJSON(t, summary)
	if s.Status != "aborted" || s.RecordsOut != lines || lines == 0 || lines >= 200000 {
		t.Errorf("summary: status %q, %d records out; the file holds %d lines", s.Status, s.RecordsOut, lines)
	}
	if s.DeadLetters != 0 {
		t.Errorf("%d records went to dead letters; a full file is not their fault", s.DeadLetters)
	}
}

// A lines sink on /dev/full: exit 1 naming it, nothing counted as out.
func TestSinkOnDevFull(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	bin := ioBinary(t)
	dir := t.TempDir()
	spec := write(t, filepath.Join(dir, "full.yaml"), `
name: full
source: {range: {count: 1000, size: 8}}
stages:
  - {name: key, builtin: format, options: {template: "{key}"}}
sink: {lines: {path: /dev/full}}
`)
	summary := filepath.Join(dir, "s.json")
	code, stderr := ioRunBinary(t, exec.Command(bin, "run", spec, "--summary-json", summary, "--progress", "none"))
	if code != exitAborted || !strings.Contains(stderr, "/dev/full") || !strings.Contains(stderr, "no space left") {
		t.Fatalf("exit %d, want %d naming /dev/full; stderr:\n%s", code, exitAborted, stderr)
	}
	if s := readJSON(t, summary); s.RecordsOut != 0 || s.DeadLetters != 0 || s.Status != "aborted" {
		t.Errorf("summary: status %q, %d out, %d dead letters; want aborted with nothing out", s.Status, s.RecordsOut, s.DeadLetters)
	}
}

// The CLI reading a stdin that never closes: the lines given reach the sink at once, and
// SIGTERM stops the run in time, with those lines written (exit 1, interrupted).
func TestSilentStdinStopsOnSIGTERM(t *testing.T) {
	bin := ioBinary(t)
	dir := t.TempDir()
	spec := write(t, filepath.Join(dir, "stdin.yaml"), `
name: stdin
source: {lines: {path: "-"}}
stages:
  - {name: up, builtin: format, options: {template: "got {payload}"}}
sink: {lines: {path: out.txt}}
`)
	summary := filepath.Join(dir, "s.json")
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdinW.Close() // never closed before the run ends: stdin stays silent
	cmd := exec.Command(bin, "run", spec, "--summary-json", summary, "--progress", "none", "--drain-timeout", "10s")
	cmd.Stdin = stdinR
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stdinR.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	exited := false
	defer func() {
		if !exited {
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	if _, err := stdinW.WriteString("one\ntwo\nthree\n"); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.txt")
	// In any order: the stage has several workers.
	want := "got one\ngot three\ngot two\n"
	sorted := func() string {
		data, _ := os.ReadFile(out)
		lines := strings.SplitAfter(string(data), "\n")
		slices.Sort(lines)
		return strings.Join(lines, "")
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if sorted() == want {
			break
		}
		if time.Now().After(deadline) {
			data, _ := os.ReadFile(out)
			t.Fatalf("the lines given on stdin did not reach the sink within 30s: %q\nstderr:\n%s", data, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-done:
		exited = true
	case <-time.After(40 * time.Second):
		t.Fatalf("still running 40s after SIGTERM (drain timeout 10s); stderr:\n%s", stderr.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitAborted {
		t.Fatalf("exit: %v, want status %d; stderr:\n%s", err, exitAborted, stderr.String())
	}
	if got := sorted(); got != want {
		t.Errorf("out.txt holds %q, want %q", got, want)
	}
	if s := readJSON(t, summary); s.Status != "interrupted" || s.RecordsIn != 3 || s.RecordsOut != 3 {
		t.Errorf("summary: status %q, %d in, %d out; want interrupted, 3 and 3\nstderr:\n%s", s.Status, s.RecordsIn, s.RecordsOut, stderr.String())
	}
}

// A files sink whose next file would pass the file size limit: the run aborts (exit 1) naming
// the file, leaves no temporary file, and counts as out exactly the files it wrote.
func TestFilesSinkHitsFileSizeLimit(t *testing.T) {
	bin := ioBinary(t)
	dir := t.TempDir()
	for i := range 20 {
		size := 100
		if i == 10 {
			size = 200_000 // past the limit, whatever the shell's block size
		}
		write(t, filepath.Join(dir, "in", fmt.Sprintf("%02d.txt", i)), strings.Repeat("x", size))
	}
	spec := write(t, filepath.Join(dir, "files.yaml"), `
name: files
source: {files: {dir: in}}
stages:
  - {name: same, builtin: format, workers: 1, options: {template: "{payload}"}}
sink: {files: {dir: out}}
`)
	summary := filepath.Join(dir, "s.json")
	cmd := exec.Command("sh", "-c", `ulimit -f 64 && exec "$0" "$@"`, bin, "run", spec, "--summary-json", summary, "--progress", "none")
	code, stderr := ioRunBinary(t, cmd)
	if code != exitAborted {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitAborted, stderr)
	}
	if !strings.Contains(stderr, "10.txt") || !strings.Contains(stderr, "file too large") {
		t.Errorf("stderr does not name 10.txt and the error:\n%s", stderr)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	var files int64
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".troupe-") {
			t.Errorf("temporary file %s left behind", e.Name())
			continue
		}
		files++
	}
	if s := readJSON(t, summary); s.Status != "aborted" || s.RecordsOut != files || s.DeadLetters != 0 {
		t.Errorf("summary: status %q, %d out, %d dead letters; %d files on disk", s.Status, s.RecordsOut, s.DeadLetters, files)
	}
}
