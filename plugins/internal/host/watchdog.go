package host

import (
	"fmt"
	"time"

	"github.com/shirou/gopsutil/v3/process"
)

// sample is one CPU-time reading.
type sample struct {
	at  time.Time
	cpu float64 // seconds of user+system time
}

// monitor reports the process's exit at once and, when limits are set, samples its RSS and CPU
// time every SampleInterval. RSS over the limit kills at once; CPU kills when its average over
// the last CPUWindow is over the limit.
func (b *Backend) monitor() {
	defer b.wg.Done()
	lim := b.opts.Limits
	var tick <-chan time.Time
	var ps *process.Process
	if lim.RSS > 0 || lim.CPU > 0 {
		var err error
		if ps, err = process.NewProcess(int32(b.proc.pid)); err == nil {
			t := time.NewTicker(b.opts.SampleInterval)
			defer t.Stop()
			tick = t.C
		} else {
			b.log.Warn("cannot watch the plugin's resources", "error", err)
		}
	}
	var window []sample
	for {
		select {
		case <-b.proc.exited:
			b.fail(nil, false)
			return
		case <-b.stop:
			return
		case <-b.failed:
			return
		case now := <-tick:
			if lim.RSS > 0 {
				if mem, err := ps.MemoryInfo(); err == nil && mem.RSS > uint64(lim.RSS) {
					b.fail(fmt.Errorf("rss %d MiB > limit %d MiB", mem.RSS>>20, lim.RSS>>20), false)
					return
				}
			}
			if lim.CPU > 0 {
				t, err := ps.Times()
				if err != nil {
					continue
				}
				window = append(window, sample{now, t.User + t.System})
				// Keep the oldest sample that still spans the window.
				for len(window) > 2 && now.Sub(window[1].at) >= lim.CPUWindow {
					window = window[1:]
				}
				first := window[0]
				if span := now.Sub(first.at); span >= lim.CPUWindow {
					pct := 100 * (window[len(window)-1].cpu - first.cpu) / span.Seconds()
					if pct > float64(lim.CPU) {
						b.fail(fmt.Errorf("cpu %.0f%% > limit %.0f%% for %v", pct, lim.CPU, lim.CPUWindow), false)
						return
					}
				}
			}
		}
	}
}
