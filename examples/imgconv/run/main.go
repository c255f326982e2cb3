// Command run runs the image-conversion example: every image in a folder converted to JPEG, on
// every core, under troupe's supervision tree. It is also a small example of embedding troupe:
// it loads examples/imgconv/pipeline.yaml through the public API and runs it.
//
// From the repository's root:
//
//	go run ./examples/imgconv/run                 # input: examples/imgconv/input (samples made if empty)
//	go run ./examples/imgconv/run -in ~/photos -out /tmp/jpegs
//
// Without -in, it first writes a few dozen sample images to examples/imgconv/input, so the
// example works on a fresh machine with nothing else. Ctrl-C stops it gracefully: what is in
// flight is finished and written, nothing is half-written.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/stages/imgconv"
)

func main() {
	os.Exit(run())
}

func run() int {
	spec := flag.String("spec", filepath.Join("examples", "imgconv", "pipeline.yaml"), "the job's spec")
	in := flag.String("in", "", "folder of images to convert (default: the spec's input, with samples generated when it is empty)")
	out := flag.String("out", "", "folder for the JPEGs (default: the spec's output)")
	samples := flag.Int("samples", 48, "how many sample images to generate when there is no input")
	workers := flag.Int("workers", 0, "workers for the convert stage (default: the spec's, else one per CPU)")
	flag.Parse()

	troupe.Register("imgconv", troupe.Builtin{New: func(opts map[string]any) (troupe.Func, error) {
		o, err := imgconv.ParseOptions(opts)
		if err != nil {
			return nil, err
		}
		return imgconv.Stage(o), nil
	}})
	s, err := troupe.LoadSpec(*spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintln(os.Stderr, "run it from the repository's root, or give -spec")
		}
		return 2
	}
	if s.Source.Files == nil || s.Sink.Files == nil {
		fmt.Fprintf(os.Stderr, "%s: this example expects a files source and a files sink\n", *spec)
		return 2
	}
	if *in != "" {
		s.Source.Files.Dir = *in
	} else if err := ensureSamples(s.Source.Files.Dir, *samples); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if *out != "" {
		s.Sink.Files.Dir = *out
		if s.DeadLetter != nil {
			s.DeadLetter.Path = filepath.Join(*out, "dead.jsonl")
		}
	}
	for i := range s.Stages {
		if *workers > 0 {
			s.Stages[i].Workers = *workers
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p, err := s.Pipeline(troupe.BuildOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "converting %s → %s\n", s.Source.Files.Dir, s.Sink.Files.Dir)
	r, err := p.Start(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				g := r.Progress()
				fmt.Fprintf(os.Stderr, "  %d/%d images, %d dead letters, %d restarts\n", g.RecordsOut+g.DeadLetters, g.Total, g.DeadLetters, g.Restarts)
			}
		}
	}()
	sum, err := r.Wait()
	close(done)
	for _, st := range sum.Stages {
		fmt.Fprintf(os.Stderr, "stage %-10s in %d  out %d  failed %d  retries %d  restarts %d  p50 %s  p99 %s\n",
			st.Name, st.In, st.Out, st.Failed, st.Retries, st.Restarts, st.P50.Round(time.Microsecond), st.P99.Round(time.Microsecond))
	}
	rate := float64(sum.RecordsOut) / sum.Elapsed.Seconds()
	fmt.Fprintf(os.Stderr, "%d images converted, %d dead letters, in %s (%.1f images/s)\n", sum.RecordsOut, sum.DeadLetters, sum.Elapsed.Round(time.Millisecond), rate)
	switch {
	case err != nil:
		fmt.Fprintln(os.Stderr, "aborted:", err)
		return 1
	case sum.DeadLetters > 0:
		if s.DeadLetter != nil {
			fmt.Fprintf(os.Stderr, "dead letters (with reasons) in %s\n", s.DeadLetter.Path)
		}
		return 3
	}
	return 0
}

// ensureSamples generates n sample images in dir when it holds no file yet.
func ensureSamples(dir string, n int) error {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if len(entries) > 0 {
		return nil
	}
	fmt.Fprintf(os.Stderr, "no input: generating %d sample images in %s\n", n, dir)
	_, err = imgconv.Generate(dir, n, 1)
	return err
}
