package admin

import (
	"sync"
	"time"

	"github.com/shirou/gopsutil/v3/process"
)

// procStats measures the plugin processes the tree names: RSS, CPU time, and CPU % since the
// previous measure (or, the first time, since the process started).
type procStats struct {
	mu    sync.Mutex
	procs map[int]*procEntry
}

type procEntry struct {
	p       *process.Process
	created time.Time
	lastCPU float64 // seconds
	lastAt  time.Time
	rss     uint64
	cpu     float64 // seconds, at the last measure
	percent float64
}

// measure returns pid's RSS, CPU seconds and CPU %; ok is false when the process is gone.
func (s *procStats) measure(pid int, now time.Time) (rss uint64, cpuSeconds, percent float64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.procs == nil {
		s.procs = map[int]*procEntry{}
	}
	e := s.procs[pid]
	if e == nil {
		p, err := process.NewProcess(int32(pid))
		if err != nil {
			return 0, 0, 0, false
		}
		e = &procEntry{p: p}
		if ms, err := p.CreateTime(); err == nil {
			e.created = time.UnixMilli(ms)
		}
		s.procs[pid] = e
	}
	mem, err := e.p.MemoryInfo()
	if err != nil {
		delete(s.procs, pid)
		return 0, 0, 0, false
	}
	t, err := e.p.Times()
	if err != nil {
		delete(s.procs, pid)
		return 0, 0, 0, false
	}
	cpu := t.User + t.System
	since, base := e.lastAt, e.lastCPU
	if since.IsZero() {
		since, base = e.created, 0
	}
	if wall := now.Sub(since).Seconds(); wall > 0.05 {
		e.percent = max(0, (cpu-base)/wall*100)
		e.lastCPU, e.lastAt = cpu, now
	}
	e.rss, e.cpu = mem.RSS, cpu
	return e.rss, e.cpu, e.percent, true
}

// forget drops the processes not in live.
func (s *procStats) forget(live map[int]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for pid := range s.procs {
		if !live[pid] {
			delete(s.procs, pid)
		}
	}
}

// enrich fills in the RSS and CPU % of the tree's plugin nodes (those that have a pid and no
// figures of their own), and returns the CPU seconds of each.
func (s *procStats) enrich(n *Node) map[int]float64 {
	cpu := map[int]float64{}
	live := map[int]bool{}
	now := time.Now()
	var walk func(n *Node)
	walk = func(n *Node) {
		if n.Kind == KindPlugin && n.PID > 0 {
			live[n.PID] = true
			if rss, secs, pct, ok := s.measure(n.PID, now); ok {
				if n.RSSBytes == 0 && n.CPUPercent == 0 {
					n.RSSBytes, n.CPUPercent = rss, pct
				}
				cpu[n.PID] = secs
			}
		}
		for i := range n.Children {
			walk(&n.Children[i])
		}
	}
	walk(n)
	s.forget(live)
	return cpu
}
