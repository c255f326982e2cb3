package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
)

// The example runs its pipelines in this process: nothing may be left running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// expectedMotion computes the motion scores of the first n frames one after the other, with
// the stages' own functions: what the pipeline must report, in this order.
func expectedMotion(t *testing.T, n, w, h int) []string {
	var prev []byte
	var out []string
	for i := range n {
		cur := Frame(i, w, h)
		if prev == nil {
			prev = cur
		}
		rec := troupe.Record{Key: "f", Payload: append(append([]byte{}, prev...), cur...), Meta: map[string]string{"w": itoa(w), "h": itoa(h)}}
		for _, f := range []troupe.Func{grayStage, downscaleStage, motionStage} {
			outs, err := f(context.Background(), rec)
			if err != nil || len(outs) != 1 {
				t.Fatalf("frame %d: %v", i, err)
			}
			rec = outs[0]
		}
		out = append(out, rec.Meta["motion"])
		prev = cur
	}
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestFramesInOrderWithTheirMotion runs 120 small frames at full speed on several workers: all
// arrive, in order, each with the motion score a sequential computation gives.
func TestFramesInOrderWithTheirMotion(t *testing.T) {
	c := Config{Width: 64, Height: 48, Frames: 120, Workers: 3, Credits: 2}
	p, st := Build(c)
	sum, err := actors.Run(context.Background(), p)
	if err != nil || sum.RecordsOut != int64(c.Frames) {
		t.Fatalf("run: %v, %d out", err, sum.RecordsOut)
	}
	r := st.Report()
	if len(r.Errors) > 0 {
		t.Fatalf("the sink saw: %v", r.Errors)
	}
	want := expectedMotion(t, c.Frames, c.Width, c.Height)
	moving := 0
	for i, m := range r.Motion {
		if got := strconv.FormatFloat(m, 'f', 4, 64); got != want[i] {
			t.Fatalf("frame %d: motion %s, want %s", i, got, want[i])
		}
		if m > 0 {
			moving++
		}
	}
	if moving < c.Frames/2 {
		t.Errorf("only %d of %d frames show motion: the square does not move", moving, c.Frames)
	}
}

// TestSlowStageHoldsTheSourceBack stalls the first frame in an extra stage while the others
// flow, as a slow stage would: the source must stop making frames once the window is full (the
// frames behind the stalled one wait, in order, within it), not make frames the sink cannot take
// yet. It counts frames; it does not time anything.
func TestSlowStageHoldsTheSourceBack(t *testing.T) {
	c := Config{Width: 32, Height: 24, Frames: 400, Workers: 2, Credits: 4} // FPS 0: the source never waits on its own
	p, st := Build(c)
	release := make(chan struct{})
	var passed atomic.Int64 // frames through the gate
	gate := func(ctx context.Context, rec troupe.Record) ([]troupe.Record, error) {
		if rec.Meta["frame"] == "0" {
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		} else {
			passed.Add(1)
		}
		return []troupe.Record{rec}, nil
	}
	// One credit per gate worker: the one holding frame 0 holds nothing else.
	p.Stages = append(p.Stages, troupe.Stage{Name: "gate", Func: gate, Workers: 2, Credits: 1})
	window := int64(Window(p)) // 3 stages × 2 workers × 4 credits + 2 × 1
	job, err := actors.Start(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	// Wait until every frame made but the first has passed the gate: with the window full, the
	// source is blocked and nothing moves until frame 0 does. Without flow control this happens
	// only once the source has made all its frames.
	deadline := time.Now().Add(60 * time.Second)
	for {
		// (At least half the window: the first frames may all pass before the source reads more.)
		g := st.Generated.Load()
		if g >= window/2 && passed.Load() == g-1 {
			break
		}
		if time.Now().After(deadline) {
			close(release)
			job.Wait()
			t.Fatalf("frames never settled behind the stalled one: %d made, %d passed", g, passed.Load())
		}
		time.Sleep(time.Millisecond)
	}
	stalledAt := st.Generated.Load()
	close(release)
	sum, err := job.Wait()
	if err != nil || sum.RecordsOut != int64(c.Frames) {
		t.Fatalf("run: %v, %d out", err, sum.RecordsOut)
	}
	r := st.Report()
	if len(r.Errors) > 0 {
		t.Fatalf("the sink saw: %v", r.Errors)
	}
	t.Logf("window %d; the source stopped at %d frames while frame 0 was stalled; at most %d in flight", window, stalledAt, r.MaxAhead)
	if stalledAt > window || r.MaxAhead > window {
		t.Errorf("the source made %d frames while the first was stalled, at most %d in flight; want at most the window, %d", stalledAt, r.MaxAhead, window)
	}
}

// TestProgram runs the command as `go run ./examples/frames -frames 30 -fps 200` would.
func TestProgram(t *testing.T) {
	var stdout, stderr bytes.Buffer
	rc := run(context.Background(), []string{"-frames", "30", "-fps", "200", "-width", "64", "-height", "48"}, &stdout, &stderr)
	t.Logf("stdout: %s\nstderr:\n%s", stdout.String(), stderr.String())
	if rc != 0 || !strings.HasPrefix(stdout.String(), "30 frames, ") || !strings.Contains(stdout.String(), "frames/s, latency p50 ") {
		t.Fatalf("exit status %d, stdout %q", rc, stdout.String())
	}
	if rc := run(context.Background(), []string{"-width", "3"}, &stdout, &stderr); rc != 2 {
		t.Errorf("an odd width: exit status %d, want 2", rc)
	}
}
