package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/troupe-dev/troupe"
)

// Config is one run of the frames pipeline.
type Config struct {
	Width, Height int           // frame size in pixels (even)
	FPS           float64       // the source's rate; 0 means as fast as the pipeline takes them
	Frames        int           // how many frames
	Workers       int           // workers per stage
	Credits       int           // frames in flight per worker
	Slow          time.Duration // extra time the motion stage spends on each frame
}

// Stats is what the source and the sink saw, by counting.
type Stats struct {
	Generated atomic.Int64 // frames the source has made
	Written   atomic.Int64 // frames the sink has received
	MaxAhead  atomic.Int64 // the most frames made and not yet at the sink, at any time
	Behind    atomic.Int64 // how far (ns) the last frame was made behind its schedule

	mu        sync.Mutex
	latencies []time.Duration // per frame: from its making to the sink
	motion    []float64       // per frame, in the order the sink received them
	errs      []error         // what the sink found wrong (a frame out of order, a bad size)
	first     time.Time
	last      time.Time
}

// Window is the most frames the runtime lets be in flight for p: the sum of its stages' credits.
func Window(p *troupe.Pipeline) int {
	n := 0
	for _, s := range p.Stages {
		n += s.Workers * s.Credits
	}
	return n
}

// Build returns the pipeline for c and the statistics its source and sink fill in.
func Build(c Config) (*troupe.Pipeline, *Stats) {
	st := &Stats{}
	stage := func(name string, f troupe.Func) troupe.Stage {
		return troupe.Stage{Name: name, Func: f, Workers: c.Workers, Credits: c.Credits, Attempts: 2}
	}
	motion := motionStage
	if c.Slow > 0 {
		motion = func(ctx context.Context, rec troupe.Record) ([]troupe.Record, error) {
			select {
			case <-time.After(c.Slow):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return motionStage(ctx, rec)
		}
	}
	return &troupe.Pipeline{
		Name:   "frames",
		Source: &frameSource{c: c, st: st},
		Stages: []troupe.Stage{
			stage("grayscale", grayStage),
			stage("downscale", downscaleStage),
			stage("motion", motion),
		},
		Sink:  &frameSink{st: st},
		Order: troupe.OrderInput,
	}, st
}

// Frame returns frame i of a w×h stream as raw RGB: a dim gradient with a bright square that
// moves 4 pixels to the right at each frame.
func Frame(i, w, h int) []byte {
	f := make([]byte, w*h*3)
	side := max(8, h/4)
	x0, y0 := (i*4)%max(1, w-side), (h-side)/2
	for y := range h {
		row := f[y*w*3 : (y+1)*w*3]
		for x := range w {
			p := row[x*3 : x*3+3]
			if x >= x0 && x < x0+side && y >= y0 && y < y0+side {
				p[0], p[1], p[2] = 250, 240, 60
			} else {
				p[0], p[1], p[2] = byte(x*64/w), byte(y*64/h), 40
			}
		}
	}
	return f
}

// Each record carries its frame and the one before (the first frame's is itself), so that every
// stage is a pure function of its record: any worker may take it, a retry gives the same result,
// and the motion score does not depend on which frames a worker happened to see.
//
// Meta: "frame" its number, "w" and "h" the size of each image in the payload, "t" when the
// source made it (Unix nanoseconds).

// frameSource makes c.Frames frames, the i'th due at start + i/FPS. It makes a frame only when
// the runtime asks for one, which it does only while its window has room: a slow stage holds the
// source back (it falls behind its schedule) instead of frames piling up.
type frameSource struct {
	c     Config
	st    *Stats
	start time.Time
	next  int
	prev  []byte
}

func (s *frameSource) Read(ctx context.Context, max int) ([]troupe.Record, error) {
	if s.next >= s.c.Frames {
		return nil, io.EOF
	}
	if s.start.IsZero() {
		s.start = time.Now()
		s.st.mu.Lock()
		s.st.first = s.start
		s.st.mu.Unlock()
	}
	due := func(i int) time.Time { return s.start.Add(time.Duration(float64(i) * float64(time.Second) / s.c.FPS)) }
	if s.c.FPS > 0 { // wait for the next frame's time
		if d := time.Until(due(s.next)); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			}
		}
	}
	var recs []troupe.Record
	for len(recs) < max && s.next < s.c.Frames {
		if s.c.FPS > 0 && len(recs) > 0 && time.Now().Before(due(s.next)) {
			break // not due yet: hand over what is
		}
		cur := Frame(s.next, s.c.Width, s.c.Height)
		prev := s.prev
		if prev == nil {
			prev = cur
		}
		payload := make([]byte, 0, 2*len(cur))
		payload = append(append(payload, prev...), cur...)
		now := time.Now()
		if s.c.FPS > 0 {
			s.st.Behind.Store(int64(now.Sub(due(s.next))))
		}
		recs = append(recs, troupe.Record{
			Key:     fmt.Sprintf("frame-%06d", s.next),
			Payload: payload,
			Meta: map[string]string{
				"frame": strconv.Itoa(s.next),
				"w":     strconv.Itoa(s.c.Width), "h": strconv.Itoa(s.c.Height),
				"t": strconv.FormatInt(now.UnixNano(), 10),
			},
		})
		s.prev = cur
		s.next++
		made := s.st.Generated.Add(1)
		ahead := made - s.st.Written.Load()
		for m := s.st.MaxAhead.Load(); ahead > m && !s.st.MaxAhead.CompareAndSwap(m, ahead); m = s.st.MaxAhead.Load() {
		}
	}
	return recs, nil
}

func (s *frameSource) Close() error { return nil }

// Total makes the progress report know the count.
func (s *frameSource) Total() (int64, bool) { return int64(s.c.Frames), true }

// size reads a record's image size from its metadata and checks the payload holds n images of
// that size with bpp bytes per pixel.
func size(rec troupe.Record, n, bpp int) (w, h int, err error) {
	w, err1 := strconv.Atoi(rec.Meta["w"])
	h, err2 := strconv.Atoi(rec.Meta["h"])
	if err1 != nil || err2 != nil || w <= 0 || h <= 0 {
		return 0, 0, fmt.Errorf("%s: bad size %q×%q", rec.Key, rec.Meta["w"], rec.Meta["h"])
	}
	if len(rec.Payload) != n*w*h*bpp {
		return 0, 0, fmt.Errorf("%s: %d bytes, want %d for %d %d×%d images", rec.Key, len(rec.Payload), n*w*h*bpp, n, w, h)
	}
	return w, h, nil
}

// grayStage turns the two RGB images into luma (BT.601).
func grayStage(_ context.Context, rec troupe.Record) ([]troupe.Record, error) {
	if _, _, err := size(rec, 2, 3); err != nil {
		return nil, err
	}
	in := rec.Payload
	out := make([]byte, len(in)/3)
	for i := range out {
		r, g, b := int(in[3*i]), int(in[3*i+1]), int(in[3*i+2])
		out[i] = byte((299*r + 587*g + 114*b + 500) / 1000)
	}
	rec.Payload = out
	return []troupe.Record{rec}, nil
}

// downscaleStage halves both gray images in each direction (2×2 box filter).
func downscaleStage(_ context.Context, rec troupe.Record) ([]troupe.Record, error) {
	w, h, err := size(rec, 2, 1)
	if err != nil {
		return nil, err
	}
	w2, h2 := w/2, h/2
	out := make([]byte, 2*w2*h2)
	for k := range 2 {
		src, dst := rec.Payload[k*w*h:(k+1)*w*h], out[k*w2*h2:(k+1)*w2*h2]
		for y := range h2 {
			for x := range w2 {
				s := int(src[2*y*w+2*x]) + int(src[2*y*w+2*x+1]) + int(src[(2*y+1)*w+2*x]) + int(src[(2*y+1)*w+2*x+1])
				dst[y*w2+x] = byte((s + 2) / 4)
			}
		}
	}
	meta := maps(rec.Meta)
	meta["w"], meta["h"] = strconv.Itoa(w2), strconv.Itoa(h2)
	rec.Payload, rec.Meta = out, meta
	return []troupe.Record{rec}, nil
}

// motionStage scores the motion between the two images: the mean absolute difference of their
// pixels, 0 (still) to 255. It passes the current image on, the score in the metadata.
func motionStage(_ context.Context, rec troupe.Record) ([]troupe.Record, error) {
	w, h, err := size(rec, 2, 1)
	if err != nil {
		return nil, err
	}
	meta := maps(rec.Meta)
	meta["motion"] = strconv.FormatFloat(Motion(rec.Payload[:w*h], rec.Payload[w*h:]), 'f', 4, 64)
	rec.Payload, rec.Meta = rec.Payload[w*h:], meta
	return []troupe.Record{rec}, nil
}

// Motion is the mean absolute difference of two images of the same size.
func Motion(a, b []byte) float64 {
	var sum int64
	for i := range a {
		d := int64(a[i]) - int64(b[i])
		sum += max(d, -d)
	}
	return float64(sum) / float64(max(1, len(a)))
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// frameSink receives the frames in order (the pipeline's order is input), and records each
// one's latency and motion score.
type frameSink struct {
	st   *Stats
	next int
}

func (s *frameSink) Write(rec troupe.Record) error {
	now := time.Now()
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	n, err := strconv.Atoi(rec.Meta["frame"])
	if err != nil || n != s.next {
		st.errs = append(st.errs, fmt.Errorf("%s arrived when frame %d was next", rec.Key, s.next))
	}
	s.next = n + 1
	if t, err := strconv.ParseInt(rec.Meta["t"], 10, 64); err == nil {
		st.latencies = append(st.latencies, now.Sub(time.Unix(0, t)))
	}
	m, err := strconv.ParseFloat(rec.Meta["motion"], 64)
	if err != nil {
		st.errs = append(st.errs, fmt.Errorf("%s: no motion score", rec.Key))
	}
	st.motion = append(st.motion, m)
	st.last = now
	st.Written.Add(1)
	return nil
}

func (s *frameSink) Flush() error { return nil }
func (s *frameSink) Close() error { return nil }

// Report is a run's figures.
type Report struct {
	Frames   int
	Rate     float64 // frames per second, first frame made to last frame received
	P50, P99 time.Duration
	MaxAhead int64
	Behind   time.Duration
	Motion   []float64
	Errors   []error
}

// Report summarises what the sink saw.
func (st *Stats) Report() Report {
	st.mu.Lock()
	defer st.mu.Unlock()
	r := Report{Frames: len(st.motion), MaxAhead: st.MaxAhead.Load(), Behind: time.Duration(st.Behind.Load()),
		Motion: slices.Clone(st.motion), Errors: slices.Clone(st.errs)}
	if el := st.last.Sub(st.first); el > 0 {
		r.Rate = float64(r.Frames) / el.Seconds()
	}
	if l := slices.Sorted(slices.Values(st.latencies)); len(l) > 0 {
		r.P50, r.P99 = l[len(l)*50/100], l[min(len(l)-1, len(l)*99/100)]
	}
	return r
}
