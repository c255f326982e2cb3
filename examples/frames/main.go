// Command frames streams generated raw RGB video frames at a steady rate through three map
// stages, grayscale → downscale (half size) → motion score (mean absolute difference with the
// previous frame), with order: input so that the frames leave in the order they were made, and
// reports frames/s and the p50/p99 latency from a frame's making to the sink.
//
// Flow is credit-based: the source makes a frame only when the runtime asks for one, which it
// does only while fewer than the stages' credits are in flight. A stage slower than the frame
// rate (-slow) therefore holds the source back — it falls behind its schedule — instead of
// frames piling up in memory: the report's "in flight at most" stays within that window.
//
// From the repository's root:
//
//	go run ./examples/frames                        # 600 frames 320×240 at 60 fps
//	go run ./examples/frames -slow 40ms             # a stage slower than the frame rate
//	go run ./examples/frames -fps 0 -frames 2000    # as fast as it goes
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/troupe-dev/troupe/actors"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("frames", flag.ContinueOnError)
	flags.SetOutput(stderr)
	var c Config
	flags.IntVar(&c.Width, "width", 320, "frame width (even)")
	flags.IntVar(&c.Height, "height", 240, "frame height (even)")
	flags.Float64Var(&c.FPS, "fps", 60, "the source's frame rate; 0: as fast as the pipeline takes them")
	flags.IntVar(&c.Frames, "frames", 600, "how many frames")
	flags.IntVar(&c.Workers, "workers", 2, "workers per stage")
	flags.IntVar(&c.Credits, "credits", 4, "frames in flight per worker")
	flags.DurationVar(&c.Slow, "slow", 0, "extra time the motion stage spends on each frame")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if flags.NArg() > 0 || c.Width < 2 || c.Height < 2 || c.Width%2 != 0 || c.Height%2 != 0 || c.FPS < 0 || c.Frames < 1 || c.Workers < 1 || c.Credits < 1 || c.Slow < 0 {
		fmt.Fprintln(stderr, "frames: bad arguments (sizes even and ≥ 2, counts ≥ 1, rates and durations ≥ 0)")
		flags.Usage()
		return 2
	}
	p, st := Build(c)
	window := Window(p)
	frameBytes := 2 * c.Width * c.Height * 3
	fmt.Fprintf(stderr, "%d frames %d×%d at %s through grayscale → downscale → motion, %d workers each; window %d frames (%.1f MiB)\n",
		c.Frames, c.Width, c.Height, fpsText(c.FPS), c.Workers, window, float64(window*frameBytes)/(1<<20))
	sum, err := actors.Run(ctx, p)
	r := st.Report()
	for _, s := range sum.Stages {
		fmt.Fprintf(stderr, "stage %-9s in %d  out %d  p50 %s  p99 %s\n", s.Name, s.In, s.Out, s.P50.Round(time.Microsecond), s.P99.Round(time.Microsecond))
	}
	fmt.Fprintf(stdout, "%d frames, %.1f frames/s, latency p50 %s p99 %s, in flight at most %d frames = %.1f MiB (window %d)",
		r.Frames, r.Rate, r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.MaxAhead, float64(r.MaxAhead)*float64(frameBytes)/(1<<20), window)
	if c.FPS > 0 {
		fmt.Fprintf(stdout, ", source behind schedule by %s", max(0, r.Behind).Round(time.Millisecond))
	}
	fmt.Fprintln(stdout)
	for _, e := range r.Errors {
		fmt.Fprintln(stderr, "frames:", e)
	}
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "frames: %s: %v\n", sum.Outcome, err)
		return 1
	case sum.DeadLetters > 0 || len(r.Errors) > 0 || r.Frames != c.Frames:
		fmt.Fprintf(stderr, "frames: %d of %d frames arrived, %d dead letters\n", r.Frames, c.Frames, sum.DeadLetters)
		return 1
	}
	return 0
}

func fpsText(fps float64) string {
	if fps == 0 {
		return "full speed"
	}
	return fmt.Sprintf("%g fps", fps)
}
