package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/plugins"
	"github.com/troupe-dev/troupe/supervisor"
)

// pidStage is the work of the rolePidPlugin child: it replaces each record's payload with the
// plugin process's id, so that the sink knows which process produced what it writes.
func pidStage() troupe.Func {
	pid := []byte(strconv.Itoa(os.Getpid()))
	return func(_ context.Context, rec troupe.Record) ([]troupe.Record, error) {
		rec.Payload = pid
		return []troupe.Record{rec}, nil
	}
}

// steadySource produces 64-byte records at a steady rate (one per every), without end, until
// its context is cancelled.
type steadySource struct {
	every time.Duration
	next  time.Time
	n     int64
}

func (s *steadySource) Read(ctx context.Context, max int) ([]troupe.Record, error) {
	if s.next.IsZero() {
		s.next = time.Now()
	}
	if d := time.Until(s.next); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, io.EOF
		case <-t.C:
		}
	}
	if ctx.Err() != nil {
		return nil, io.EOF
	}
	due := int(time.Since(s.next)/s.every) + 1
	recs := make([]troupe.Record, min(due, max))
	for i := range recs {
		recs[i] = troupe.Record{Key: strconv.FormatInt(s.n, 10), Payload: make([]byte, 64)}
		s.n++
	}
	s.next = s.next.Add(time.Duration(len(recs)) * s.every)
	return recs, nil
}

func (s *steadySource) Close() error { return nil }

// failoverSink timestamps writes: after arm(pid), the first record written that a process
// other than pid produced is reported on the channel arm returned, with the time it was written.
type failoverSink struct {
	mu     sync.Mutex
	killed string
	got    chan time.Time
	last   string // the pid of the last record written
}

func (s *failoverSink) arm(pid int) <-chan time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killed = strconv.Itoa(pid)
	s.got = make(chan time.Time, 1)
	return s.got
}

func (s *failoverSink) lastPid() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

func (s *failoverSink) Write(rec troupe.Record) error {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if string(rec.Payload) == s.last {
		return nil
	}
	s.last = string(rec.Payload)
	if s.got != nil && s.last != s.killed {
		s.got <- now
		s.got = nil
	}
	return nil
}

func (s *failoverSink) Flush() error { return nil }
func (s *failoverSink) Close() error { return nil }

// pipelineFailover measures failover inside a running pipeline, samples times: a steady source
// feeds one plugin stage of one worker with a warm spare into a sink that timestamps writes; the
// worker's plugin process is SIGKILLed and the time until the sink writes the first record a
// new process produced is one sample. The supervision is the runtime's default but for a short
// restart period, and the samples are spaced further apart than it, so that every kill is the
// first restart of its period (repeated restarts back off by design).
func pipelineFailover(ctx context.Context, samples int) (took, seen []time.Duration, err error) {
	const period = 100 * time.Millisecond
	args, err := selfArgs()
	if err != nil {
		return nil, nil, err
	}
	deaths := &deathLog{}
	pool, err := plugins.NewPool(plugins.Config{Cmd: args, Env: map[string]string{ChildEnv: rolePidPlugin}, Spares: 1,
		Logger: slog.New(deaths)})
	if err != nil {
		return nil, nil, err
	}
	defer pool.Close(context.Background())
	sink := &failoverSink{}
	rs := actors.DefaultRestart
	rs.Period = period
	p := troupe.Pipeline{
		Source: &steadySource{every: 100 * time.Microsecond},
		Stages: []troupe.Stage{{Name: "pid", Backend: pool.Factory(), Workers: 1, Credits: 16, Attempts: 1 << 20, Restart: rs}},
		Sink:   sink,
		// Every kill is an abnormal exit of the stage's worker; the root must not count them.
		Supervision: supervisor.Flags{Strategy: supervisor.OneForOne, Intensity: 1 << 20, Period: period},
	}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	run, err := actors.Start(rctx, &p)
	if err != nil {
		return nil, nil, err
	}
	var sampleErr error
	for range samples {
		// Wait past the restart period, for a warm spare, and for records from the live process.
		time.Sleep(period + 20*time.Millisecond)
		for pool.Ready() == 0 || sink.lastPid() == "" {
			if ctx.Err() != nil {
				sampleErr = ctx.Err()
				break
			}
			time.Sleep(time.Millisecond)
		}
		if sampleErr != nil {
			break
		}
		pid, err := strconv.Atoi(sink.lastPid())
		if err != nil {
			sampleErr = fmt.Errorf("sink got payload %q, not a pid", sink.lastPid())
			break
		}
		got := sink.arm(pid)
		start := time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			sampleErr = fmt.Errorf("killing the worker's plugin process %d: %w", pid, err)
			break
		}
		select {
		case at := <-got:
			died := deaths.since(start)
			if died.IsZero() {
				sampleErr = errors.New("a new process's record reached the sink, but the host logged no plugin death")
				break
			}
			took = append(took, at.Sub(died))
			seen = append(seen, died.Sub(start))
		case <-ctx.Done():
			sampleErr = ctx.Err()
		case <-time.After(10 * time.Second):
			sampleErr = errors.New("no record reached the sink within 10s of the kill")
		}
		if sampleErr != nil {
			break
		}
	}
	stop()
	_, err = run.Wait()
	if sampleErr != nil {
		return nil, nil, sampleErr
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return nil, nil, fmt.Errorf("the pipeline: %w", err)
	}
	return took, seen, nil
}

// deathLog is a log handler timestamping the host's "plugin failed" records: when the host saw
// a plugin process die.
type deathLog struct {
	mu   sync.Mutex
	last time.Time
}

func (d *deathLog) Enabled(context.Context, slog.Level) bool { return true }
func (d *deathLog) WithAttrs([]slog.Attr) slog.Handler       { return d }
func (d *deathLog) WithGroup(string) slog.Handler            { return d }

func (d *deathLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "plugin failed" {
		d.mu.Lock()
		d.last = r.Time
		d.mu.Unlock()
	}
	return nil
}

// since returns the time of the last death logged after t, or the zero time.
func (d *deathLog) since(t time.Time) time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.last.Before(t) {
		return time.Time{}
	}
	return d.last
}
