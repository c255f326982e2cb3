// Command run runs the image-conversion example: every image in a folder converted to JPEG, on
// every core, under troupe's supervision tree. It is also a small example of embedding troupe:
// it registers the image stage of package stages/imgconv as the builtin "imgconv", loads
// examples/imgconv/pipeline.yaml through the public API and runs it.
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
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/spec"
	"github.com/troupe-dev/troupe/stages"
	"github.com/troupe-dev/troupe/stages/imgconv"
)

// The spec's `builtin: imgconv` is the image stage of package stages/imgconv, with its options.
func init() { stages.Register("imgconv", imgconv.Builtin()) }

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// run runs the example with the command-line arguments args, writing its progress and summary to
// stderr, and returns the exit status: 0 every image converted, 3 some went to dead letters, 2
// bad usage or spec, 1 aborted.
func run(args []string, stderr io.Writer) int {
	flags := flag.NewFlagSet(filepath.Base(os.Args[0]), flag.ContinueOnError)
	flags.SetOutput(stderr)
	specPath := flags.String("spec", filepath.Join("examples", "imgconv", "pipeline.yaml"), "the job's spec")
	in := flags.String("in", "", "folder of images to convert (default: the spec's input, with samples generated when it is empty)")
	out := flags.String("out", "", "folder for the JPEGs (default: the spec's output)")
	samples := flags.Int("samples", 48, "how many sample images to generate when there is no input")
	workers := flags.Int("workers", 0, "workers for the convert stage (default: the spec's, else one per CPU)")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}

	s, err := spec.Load(*specPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintln(stderr, "run it from the repository's root, or give -spec")
		}
		return 2
	}
	if s.Source.Files == nil || s.Sink.Files == nil {
		fmt.Fprintf(stderr, "%s: this example expects a files source and a files sink\n", *specPath)
		return 2
	}
	if *in != "" {
		s.Source.Files.Dir = *in
	} else if err := ensureSamples(stderr, s.Source.Files.Dir, *samples); err != nil {
		fmt.Fprintln(stderr, err)
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
	p, err := s.Pipeline(spec.BuildOptions{})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stderr, "converting %s → %s\n", s.Source.Files.Dir, s.Sink.Files.Dir)
	r, err := actors.Start(ctx, p)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				g := r.Progress()
				fmt.Fprintf(stderr, "  %d/%d images, %d dead letters, %d restarts\n", g.RecordsOut+g.DeadLetters, g.Total, g.DeadLetters, g.Restarts)
			}
		}
	}()
	sum, err := r.Wait()
	close(done)
	<-stopped // no progress line after (or within) the summary
	for _, st := range sum.Stages {
		fmt.Fprintf(stderr, "stage %-10s in %d  out %d  failed %d  retries %d  restarts %d  p50 %s  p99 %s\n",
			st.Name, st.In, st.Out, st.Failed, st.Retries, st.Restarts, st.P50.Round(time.Microsecond), st.P99.Round(time.Microsecond))
	}
	rate := float64(sum.RecordsOut) / sum.Elapsed.Seconds()
	fmt.Fprintf(stderr, "%d images converted, %d dead letters, in %s (%.1f images/s)\n", sum.RecordsOut, sum.DeadLetters, sum.Elapsed.Round(time.Millisecond), rate)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\n", sum.Outcome, err) // interrupted or aborted
		return 1
	case sum.DeadLetters > 0:
		if s.DeadLetter != nil {
			fmt.Fprintf(stderr, "dead letters (with reasons) in %s\n", s.DeadLetter.Path)
		}
		return 3
	}
	return 0
}

// ensureSamples generates n sample images in dir when it holds nothing but hidden files (the
// repository keeps the folder with input/.gitkeep, which the specs' glob skips).
func ensureSamples(stderr io.Writer, dir string, n int) error {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			return nil
		}
	}
	fmt.Fprintf(stderr, "no input: generating %d sample images in %s\n", n, dir)
	_, err = imgconv.Generate(dir, n, 1)
	return err
}
