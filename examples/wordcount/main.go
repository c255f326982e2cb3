// Command wordcount counts the words of a tree of text files as a troupe map/reduce, the
// micro-task-platform shape: the source reads the files line by line, a map stage spreads the
// lines over its workers (the distributor hands each batch to the least-loaded worker), each
// worker turns a line into one record per distinct word (keyed by the word, its payload the
// word's count in the line), and a reduce stage sums the counts per word. It then counts the
// same files again in a plain single-threaded loop and checks that both agree, word by word.
//
// From the repository's root:
//
//	go run ./examples/wordcount                              # the Go source tree, $(go env GOROOT)/src
//	go run ./examples/wordcount -dir /usr/share/doc -glob '*' -top 20
//
// A word is a maximal run of letters, digits and '_'. The exit status is 0 when the counts
// agree, 1 when they do not or the run failed, 2 on bad usage.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("wordcount", flag.ContinueOnError)
	flags.SetOutput(stderr)
	dir := flags.String("dir", "", "the tree to count (default: $(go env GOROOT)/src)")
	glob := flags.String("glob", "*.go", "which file names to read (path/filepath.Match syntax)")
	workers := flags.Int("workers", runtime.NumCPU(), "map workers")
	top := flags.Int("top", 10, "how many of the most frequent words to print")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if flags.NArg() > 0 || *workers < 1 {
		flags.Usage()
		return 2
	}
	if *dir == "" {
		out, err := exec.Command("go", "env", "GOROOT").Output()
		if err != nil {
			fmt.Fprintf(stderr, "wordcount: go env GOROOT: %v (give -dir)\n", err)
			return 2
		}
		*dir = filepath.Join(strings.TrimSpace(string(out)), "src")
	}
	files, err := listFiles(*dir, *glob)
	if err != nil {
		fmt.Fprintln(stderr, "wordcount:", err)
		return 2
	}
	fmt.Fprintf(stderr, "counting the words of %d files under %s with %d map workers\n", len(files), *dir, *workers)

	counts, sum, err := Count(ctx, files, *workers)
	if err != nil {
		fmt.Fprintln(stderr, "wordcount:", err)
		return 1
	}
	for _, st := range sum.Stages {
		fmt.Fprintf(stderr, "stage %-7s in %d  out %d  p50 %s  p99 %s\n", st.Name, st.In, st.Out, st.P50.Round(time.Microsecond), st.P99.Round(time.Microsecond))
	}
	total := int64(0)
	for _, n := range counts {
		total += n
	}
	fmt.Fprintf(stderr, "troupe: %d lines, %d words, %d distinct, in %s (%.0f lines/s)\n",
		sum.RecordsIn, total, len(counts), sum.Elapsed.Round(time.Millisecond), float64(sum.RecordsIn)/sum.Elapsed.Seconds())

	start := time.Now()
	plain, err := PlainCount(files)
	if err != nil {
		fmt.Fprintln(stderr, "wordcount:", err)
		return 1
	}
	fmt.Fprintf(stderr, "plain single-threaded count: %s\n", time.Since(start).Round(time.Millisecond))
	if diff := Diff(counts, plain); diff != "" {
		fmt.Fprintf(stderr, "MISMATCH with the single-threaded count: %s\n", diff)
		return 1
	}
	fmt.Fprintf(stderr, "same counts as the single-threaded count, word by word\n")

	words := make([]string, 0, len(counts))
	for w := range counts {
		words = append(words, w)
	}
	slices.SortFunc(words, func(a, b string) int {
		if counts[a] != counts[b] {
			return int(counts[b] - counts[a])
		}
		return strings.Compare(a, b)
	})
	for _, w := range words[:min(*top, len(words))] {
		fmt.Fprintf(stdout, "%s\t%d\n", w, counts[w])
	}
	return 0
}

// listFiles returns the regular files under dir whose names match glob, in lexical order.
func listFiles(dir, glob string) ([]string, error) {
	if _, err := filepath.Match(glob, ""); err != nil {
		return nil, fmt.Errorf("-glob %q: %w", glob, err)
	}
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			if ok, _ := filepath.Match(glob, d.Name()); ok {
				files = append(files, path)
			}
		}
		return nil
	})
	if err == nil && len(files) == 0 {
		err = fmt.Errorf("no file matching %q under %s", glob, dir)
	}
	return files, err
}

// Count counts the words of files with a troupe pipeline: lines → map (workers) → reduce.
func Count(ctx context.Context, files []string, workers int) (map[string]int64, troupe.Summary, error) {
	sink := &countSink{counts: map[string]int64{}}
	p := &troupe.Pipeline{
		Name:   "wordcount",
		Source: &linesSource{files: files},
		Stages: []troupe.Stage{
			{Name: "map", Func: mapLine, Workers: workers, Credits: 256},
			{Name: "reduce", Reduce: sumCounts},
		},
		Sink: sink,
	}
	sum, err := actors.Run(ctx, p)
	if err == nil && sum.DeadLetters > 0 {
		err = fmt.Errorf("%d records went to dead letters", sum.DeadLetters)
	}
	return sink.counts, sum, err
}

// mapLine is the map stage: one record per distinct word of the line, keyed by the word, its
// payload the word's count in the line.
func mapLine(_ context.Context, rec troupe.Record) ([]troupe.Record, error) {
	inLine := map[string]int{}
	var order []string
	eachWord(rec.Payload, func(w []byte) {
		if inLine[string(w)] == 0 {
			order = append(order, string(w))
		}
		inLine[string(w)]++
	})
	outs := make([]troupe.Record, len(order))
	for i, w := range order {
		outs[i] = troupe.Record{Key: w, Payload: strconv.AppendInt(nil, int64(inLine[w]), 10)}
	}
	return outs, nil
}

// sumCounts is the reduce stage: it adds a record's count to its word's.
func sumCounts(key string, acc []byte, rec troupe.Record) ([]byte, error) {
	n, err := strconv.ParseInt(string(rec.Payload), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("word %q: bad count %q", key, rec.Payload)
	}
	if acc != nil {
		m, err := strconv.ParseInt(string(acc), 10, 64)
		if err != nil {
			return nil, err
		}
		n += m
	}
	return strconv.AppendInt(acc[:0], n, 10), nil
}

// eachWord calls f with each word of line: maximal runs of letters, digits and '_'.
func eachWord(line []byte, f func([]byte)) {
	start := -1
	for i := 0; i < len(line); {
		r, size := utf8.DecodeRune(line[i:])
		inWord := r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)
		if inWord && start < 0 {
			start = i
		} else if !inWord && start >= 0 {
			f(line[start:i])
			start = -1
		}
		i += size
	}
	if start >= 0 {
		f(line[start:])
	}
}

// PlainCount counts the words of files in one goroutine: the reference the pipeline is checked
// against.
func PlainCount(files []string) (map[string]int64, error) {
	counts := map[string]int64{}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		eachWord(data, func(w []byte) { counts[string(w)]++ })
	}
	return counts, nil
}

// Diff describes the first differences between two counts, or returns "" when they are equal.
func Diff(got, want map[string]int64) string {
	var diffs []string
	for w, n := range want {
		if got[w] != n {
			diffs = append(diffs, fmt.Sprintf("%q: %d, want %d", w, got[w], n))
		}
	}
	for w, n := range got {
		if _, ok := want[w]; !ok {
			diffs = append(diffs, fmt.Sprintf("%q: %d, want none", w, n))
		}
	}
	if len(diffs) == 0 {
		return ""
	}
	slices.Sort(diffs)
	return fmt.Sprintf("%d words differ: %s", len(diffs), strings.Join(diffs[:min(5, len(diffs))], "; "))
}

// linesSource reads files one after the other, one record per line (its key "path:line").
type linesSource struct {
	files []string
	f     *os.File
	r     *bufio.Reader
	path  string
	line  int
}

func (s *linesSource) Read(ctx context.Context, max int) ([]troupe.Record, error) {
	var recs []troupe.Record
	for len(recs) < max {
		if err := ctx.Err(); err != nil {
			return recs, err
		}
		if s.r == nil {
			if len(s.files) == 0 {
				return recs, io.EOF
			}
			f, err := os.Open(s.files[0])
			if err != nil {
				return recs, err
			}
			s.f, s.r, s.path, s.line = f, bufio.NewReaderSize(f, 64<<10), s.files[0], 0
			s.files = s.files[1:]
		}
		line, err := s.r.ReadBytes('\n')
		if len(line) > 0 {
			s.line++
			recs = append(recs, troupe.Record{Key: s.path + ":" + strconv.Itoa(s.line), Payload: bytes.TrimSuffix(line, []byte("\n"))})
		}
		if err == io.EOF {
			s.f.Close()
			s.f, s.r = nil, nil
		} else if err != nil {
			return recs, fmt.Errorf("%s:%d: %w", s.path, s.line+1, err)
		}
	}
	return recs, nil
}

func (s *linesSource) Close() error {
	if s.f != nil {
		return s.f.Close()
	}
	return nil
}

// countSink collects the reduce stage's outputs: one record per word, its total as payload.
type countSink struct{ counts map[string]int64 }

func (s *countSink) Write(rec troupe.Record) error {
	n, err := strconv.ParseInt(string(rec.Payload), 10, 64)
	if err != nil {
		return fmt.Errorf("word %q: bad total %q", rec.Key, rec.Payload)
	}
	if _, dup := s.counts[rec.Key]; dup {
		return fmt.Errorf("word %q counted twice", rec.Key)
	}
	s.counts[rec.Key] = n
	return nil
}

func (s *countSink) Flush() error { return nil }
func (s *countSink) Close() error { return nil }
