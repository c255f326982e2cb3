package admin

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// latencyBounds are the buckets of troupe_stage_latency_seconds.
var latencyBounds = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Outcomes of troupe_stage_records_total.
var stageOutcomes = []string{"in", "out", "failed", "retried", "dead_letter", "dropped"}

var (
	descStageRecords = prometheus.NewDesc("troupe_stage_records_total",
		"Records a stage handled, by outcome: in (received), out (outputs emitted), failed (given up after its last attempt), retried, dead_letter (taken by the dead-letter output), dropped (filtered out).",
		[]string{"stage", "outcome"}, nil)
	descStageInFlight = prometheus.NewDesc("troupe_stage_in_flight",
		"Records a stage holds: queued in its distributor and at its workers.", []string{"stage"}, nil)
	descStageMailbox = prometheus.NewDesc("troupe_stage_mailbox_messages",
		"Messages waiting in the mailbox of a stage's distributor.", []string{"stage"}, nil)
	descStageCredits = prometheus.NewDesc("troupe_stage_credits_available",
		"How many more records a stage's live workers may be given.", []string{"stage"}, nil)
	descStageLatency = prometheus.NewDesc("troupe_stage_latency_seconds",
		"Time a stage's records spent at a worker.", []string{"stage"}, nil)
	descWorkerRestarts = prometheus.NewDesc("troupe_worker_restarts_total",
		"Restarts of a stage's worker.", []string{"stage", "worker"}, nil)
	descPluginRSS = prometheus.NewDesc("troupe_plugin_rss_bytes",
		"Resident memory of a worker's plugin process.", []string{"stage", "worker", "pid"}, nil)
	descPluginCPU = prometheus.NewDesc("troupe_plugin_cpu_seconds_total",
		"CPU time (user and system) of a worker's plugin process.", []string{"stage", "worker", "pid"}, nil)
	descRecordsIn = prometheus.NewDesc("troupe_records_in_total",
		"Records read from the source.", nil, nil)
	descRecordsOut = prometheus.NewDesc("troupe_records_out_total",
		"Records written to the sink (flushed).", nil, nil)
	descDeadLetters = prometheus.NewDesc("troupe_dead_letters_total",
		"Records written to the dead-letter output (flushed).", nil, nil)
	descDropped = prometheus.NewDesc("troupe_records_dropped_total",
		"Records a stage filtered out.", nil, nil)
	descRunState = prometheus.NewDesc("troupe_run_state",
		"The run's state: 1 for the current one, 0 for the others.", []string{"state"}, nil)
)

// collector reads the Observed at scrape time.
type collector struct{ s *Server }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStageRecords, descStageInFlight, descStageMailbox, descStageCredits, descStageLatency,
		descWorkerRestarts, descPluginRSS, descPluginCPU, descRecordsIn, descRecordsOut, descDeadLetters, descDropped, descRunState} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.obs.Stats()
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(descRecordsIn, float64(st.RecordsIn))
	counter(descRecordsOut, float64(st.RecordsOut))
	counter(descDeadLetters, float64(st.DeadLetters))
	counter(descDropped, float64(st.Dropped))
	for _, s := range RunStates {
		v := 0.0
		if s == st.State {
			v = 1
		}
		gauge(descRunState, v, s)
	}
	lat, _ := c.s.obs.(LatencyObserved)
	for _, g := range st.Stages {
		for i, v := range []int64{g.In, g.Out, g.Failed, g.Retried, g.DeadLetter, g.Dropped} {
			counter(descStageRecords, float64(v), g.Name, stageOutcomes[i])
		}
		gauge(descStageInFlight, float64(g.InFlight), g.Name)
		gauge(descStageCredits, float64(g.Credits), g.Name)
		if lat != nil {
			if cum, n, sum, ok := lat.Latency(g.Name, latencyBounds); ok {
				buckets := make(map[float64]uint64, len(latencyBounds))
				for i, b := range latencyBounds {
					buckets[b] = cum[i]
				}
				ch <- prometheus.MustNewConstHistogram(descStageLatency, n, sum, buckets, g.Name)
			}
		}
	}
	tree, cpu := c.s.tree()
	for _, sn := range tree.Children {
		if sn.Kind != KindStage {
			continue
		}
		gauge(descStageMailbox, float64(sn.Mailbox), sn.Name)
		for _, w := range sn.Children {
			if w.Kind != KindWorker {
				continue
			}
			counter(descWorkerRestarts, float64(w.Restarts), sn.Name, w.Name)
			for _, p := range w.Children {
				if p.Kind != KindPlugin || p.PID == 0 {
					continue
				}
				secs, ok := cpu[p.PID]
				if !ok {
					continue // gone since
				}
				pid := strconv.Itoa(p.PID)
				gauge(descPluginRSS, float64(p.RSSBytes), sn.Name, w.Name, pid)
				counter(descPluginCPU, secs, sn.Name, w.Name, pid)
			}
		}
	}
}
