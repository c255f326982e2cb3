package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/plugins"
)

// pidOf returns the process id of a plugin backend.
func pidOf(b troupe.Backend) (int, error) {
	p, ok := b.(interface{ Pid() int })
	if !ok {
		return 0, fmt.Errorf("backend %T does not report its pid", b)
	}
	return p.Pid(), nil
}

// firstRecord waits for the backend's first grant, submits one record and waits for its outcome.
func firstRecord(b troupe.Backend, out *outcomes) error {
	if _, err := out.take(1); err != nil {
		return err
	}
	if err := b.Submit([]troupe.Task{{Record: troupe.Record{Key: "k", Payload: []byte("after the crash")}, Attempt: 1}}); err != nil {
		return err
	}
	return out.waitReported(1)
}

// failover measures, samples times, the way a worker recovers from its plugin being SIGKILLed,
// as the runtime does it: the kill is detected (Fail), the dead backend is closed, a new one is
// made by the factory, and the first record goes through it. Before each sample it waits until
// ready() says a spare is warm (always true without spares). Each sample is timed from the
// moment the host saw the process die (its Fail) to the first record's result; seen is the
// time from the kill to that moment (the kernel tearing the process down, the host noticing).
func failover(ctx context.Context, factory troupe.BackendFactory, ready func() bool, samples int) (took, seen []time.Duration, err error) {
	out := newOutcomes()
	b, err := factory(ctx, troupe.WorkerInfo{Stage: "upper"}, out)
	if err != nil {
		return nil, nil, err
	}
	defer func() { b.Close(context.Background()) }()
	if err := firstRecord(b, out); err != nil {
		return nil, nil, err
	}
	for i := range samples {
		for !ready() {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			time.Sleep(time.Millisecond)
		}
		pid, err := pidOf(b)
		if err != nil {
			return nil, nil, err
		}
		start := time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return nil, nil, err
		}
		select {
		case <-out.failCh:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		out.mu.Lock()
		failedAt := out.failedAt
		out.mu.Unlock()
		b.Close(ctx)
		out = newOutcomes()
		b, err = factory(ctx, troupe.WorkerInfo{Stage: "upper", Incarnation: i + 1}, out)
		if err != nil {
			b = nopBackend{}
			return nil, nil, err
		}
		if err := firstRecord(b, out); err != nil {
			return nil, nil, err
		}
		took = append(took, time.Since(failedAt))
		seen = append(seen, failedAt.Sub(start))
	}
	return took, seen, nil
}

// nopBackend stands in for a backend that could not be made, so the deferred Close is safe.
type nopBackend struct{}

func (nopBackend) Submit([]troupe.Task) error  { return errors.New("no backend") }
func (nopBackend) Close(context.Context) error { return nil }

// p50 is the median.
func p50(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (h *harness) restarts(ctx context.Context) []Figure {
	names := []string{"failover-warm-spare-p50", "failover-pipeline-p50", "cold-restart-p50"}
	cfg, err := pluginConfig()
	if err != nil {
		return failAll(err, names...)
	}
	k := h.sizes.restarts
	coldFactory, err := cfg.Factory()
	if err != nil {
		return failAll(err, names...)
	}
	cold, coldSeen, err := failover(ctx, coldFactory, func() bool { return true }, k)
	if err != nil {
		return failAll(fmt.Errorf("cold restarts: %w", err), names...)
	}
	cfg.Spares = 1
	pool, err := plugins.NewPool(cfg)
	if err != nil {
		return failAll(err, names...)
	}
	warm, warmSeen, err := failover(ctx, pool.Factory(), func() bool { return pool.Ready() > 0 }, k)
	if cerr := pool.Close(context.Background()); err == nil {
		err = cerr
	}
	var figs []Figure
	note := fmt.Sprintf("%d samples: the host sees the SIGKILLed process die (Fail) -> dead backend closed -> factory -> first record's result, on the factory alone (failover-pipeline-p50 measures it in a running pipeline)", k)
	if err != nil {
		figs = append(figs, failed(names[0], fmt.Errorf("failovers with a spare: %w", err)))
	} else {
		w, c := ms(p50(warm)), ms(p50(cold))
		met := w <= 1
		figs = append(figs, Figure{Name: names[0], Unit: "ms", Troupe: w, Baseline: c, Ratio: w / c, BaselineName: "cold",
			Target: "troupe <= 1 ms", Met: &met, Note: fmt.Sprintf("%s; baseline: the same without a spare; from the kill itself: p50 %.3g ms (the kill took p50 %.3g ms to be seen)",
				note, ms(p50(sum(warm, warmSeen))), ms(p50(warmSeen)))})
	}
	if pipe, pipeSeen, err := pipelineFailover(ctx, k); err != nil {
		figs = append(figs, failed(names[1], fmt.Errorf("failovers in a pipeline: %w", err)))
	} else {
		w := ms(p50(pipe))
		met := w <= 1
		figs = append(figs, Figure{Name: names[1], Unit: "ms", Troupe: w, Baseline: nan(), Ratio: nan(),
			Target: "troupe <= 1 ms", Met: &met,
			Note: fmt.Sprintf("%d samples: a running pipeline (steady source, 1 plugin stage of 1 worker with 1 spare, default restart policy with a 100 ms period): the host sees the SIGKILLed worker's process die -> the sink writes the first record a new process produced, restart and redelivery included; max %.3g ms; from the kill itself: p50 %.3g ms",
				k, ms(slices.Max(pipe)), ms(p50(sum(pipe, pipeSeen))))})
	}
	c := ms(p50(cold))
	met := c <= 10
	figs = append(figs, Figure{Name: names[2], Unit: "ms", Troupe: c, Baseline: nan(), Ratio: nan(),
		Target: "troupe <= 10 ms", Met: &met, Note: fmt.Sprintf("the host sees a plugin die -> its replacement's first result, no spare; max of %d samples: %.3g ms; from the kill itself: p50 %.3g ms",
			k, ms(slices.Max(cold)), ms(p50(sum(cold, coldSeen))))})
	return figs
}

// sum adds two series sample by sample.
func sum(a, b []time.Duration) []time.Duration {
	out := make([]time.Duration, len(a))
	for i := range a {
		out[i] = a[i] + b[i]
	}
	return out
}

// rssOf runs the slow-sink child over n records and returns its peak RSS in bytes, as the child
// reports it (see peakRSS), with what else it reports (see rssStats).
func rssOf(ctx context.Context, n, size int) (int64, rssStats, error) {
	var st rssStats
	hwm, out, err := runRSS(ctx, n, size)
	if err != nil {
		return 0, st, err
	}
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, rssDetailsLine+" "); ok {
			if _, err := fmt.Sscanf(rest, "%d %d %g", &st.File, &st.GCCycles, &st.GCShare); err != nil {
				return 0, st, fmt.Errorf("slow-sink run of %d records: reading %q: %w", n, line, err)
			}
		}
	}
	return hwm, st, nil
}

// describe says where a child's peak RSS was: the executable's mapped pages, the collector.
func (st rssStats) describe() string {
	return fmt.Sprintf("%.1f MB of it the executable's mapped pages (file-backed); %d GC cycles, %.0f%% of the CPU time in the GC",
		float64(st.File)/1e6, st.GCCycles, 100*st.GCShare)
}

// runRSS runs the slow-sink child over n records and returns its peak RSS and its whole output.
func runRSS(ctx context.Context, n, size int) (int64, string, error) {
	cmd, err := childCmd(roleRSS, countEnv+"="+strconv.Itoa(n), sizeEnv+"="+strconv.Itoa(size))
	if err != nil {
		return 0, "", err
	}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		return 0, "", err
	}
	stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
	err = cmd.Wait()
	stop()
	if err != nil {
		return 0, "", fmt.Errorf("slow-sink run of %d records: %w", n, err)
	}
	var hwm int64
	if _, err := fmt.Sscanf(strings.TrimSpace(out.String()), peakRSSLine+" %d", &hwm); err != nil {
		return 0, "", fmt.Errorf("slow-sink run of %d records: reading its peak RSS from %q: %w", n, out.String(), err)
	}
	return hwm, out.String(), nil
}

func (h *harness) rss(ctx context.Context) []Figure {
	const name = "slow-sink-rss"
	small, _, err := rssOf(ctx, h.sizes.rssSmall, 64)
	if err != nil {
		return []Figure{failed(name, err)}
	}
	large, largeStats, err := rssOf(ctx, h.sizes.rssLarge, 64)
	if err != nil {
		return []Figure{failed(name, err)}
	}
	mb := func(b int64) float64 { return float64(b) / 1e6 }
	f := Figure{Name: name, Unit: "MB", Troupe: mb(large), Baseline: mb(small), Ratio: float64(large) / float64(small),
		BaselineName: fmt.Sprintf("%d records", h.sizes.rssSmall),
		Target:       "ratio <= 1.1, troupe <= 64 MB",
		Note: fmt.Sprintf("peak RSS (its own VmHWM) of a child running %d vs %d records of 64 B through 1 stage into a sink slower than the pipeline; %s",
			h.sizes.rssLarge, h.sizes.rssSmall, largeStats.describe())}
	met := f.Ratio <= 1.1 && f.Troupe <= 64
	f.Met = &met

	// Large records: the byte credits, not the record credits, bound them.
	const big = 64 << 10
	n := h.sizes.rssLarge / 50
	bigRSS, bigStats, err := rssOf(ctx, n, big)
	if err != nil {
		return []Figure{f, failed(name+"-64KiB", err)}
	}
	g := Figure{Name: name + "-64KiB", Unit: "MB", Troupe: mb(bigRSS), Baseline: mb(small), Ratio: float64(bigRSS) / float64(small),
		BaselineName: fmt.Sprintf("%d records of 64 B", h.sizes.rssSmall), Target: "troupe <= 64 MB",
		Note: fmt.Sprintf("peak RSS of a child running %d records of 64 KiB (%.1f GB) through 1 stage into a slow sink, at the default credits; %s",
			n, float64(n)*big/1e9, bigStats.describe())}
	met2 := g.Troupe <= 64
	g.Met = &met2
	return []Figure{f, g}
}
