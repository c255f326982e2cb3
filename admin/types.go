package admin

import (
	"context"
	"strings"
	"time"
)

// Observed is what the server shows: one run (troupe run, see ObserveJob) or an engine (troupe
// serve).
type Observed interface {
	// Tree is the supervision tree as it is now.
	Tree() Node
	// Stats are the figures so far.
	Stats() Stats
	// Subscribe follows the supervision events from now on. The channel is closed when ctx
	// ends or the run ends. A subscriber that does not keep up loses events rather than slowing
	// the run.
	Subscribe(ctx context.Context) <-chan Event
	// Ready is nil when the source and the sink are open and the tree is not giving up, else
	// why not.
	Ready() error
}

// LatencyObserved is implemented by an Observed that keeps each stage's latency histogram;
// /metrics then has troupe_stage_latency_seconds.
type LatencyObserved interface {
	// Latency returns, for each of bounds (seconds, ascending), how many of the stage's records
	// took at most that long, with the count and the sum (seconds) of all; ok is false for an
	// unknown stage.
	Latency(stage string, bounds []float64) (cumulative []uint64, count uint64, sum float64, ok bool)
}

// Replayer is implemented by an Observed that keeps the events that came before a subscription:
// SubscribeReplay is Subscribe, preceded by those. The events file (Options.Events) uses it so
// that it holds the run's events from its start.
type Replayer interface {
	SubscribeReplay(ctx context.Context) <-chan Event
}

// Node kinds.
const (
	KindSupervisor = "supervisor"
	KindJob        = "job"
	KindStage      = "stage"
	KindWorker     = "worker"
	KindPlugin     = "plugin"
	KindSource     = "source"
	KindSink       = "sink"
)

// Node states.
const (
	StateRunning    = "running"
	StateRestarting = "restarting"
	StateBackoff    = "backoff"
	StateStopped    = "stopped"
)

// Node is one node of the supervision tree, as GET /api/tree shows it.
type Node struct {
	Name string `json:"name"`
	// Path names the node in the tree: "/" for the root, then "/stage:upper",
	// "/stage:upper/worker:2", "/stage:upper/worker:2/plugin", "/source", "/sink".
	Path       string  `json:"path"`
	Kind       string  `json:"kind"`  // KindSupervisor, KindStage, …
	State      string  `json:"state"` // StateRunning, StateRestarting, StateBackoff, StateStopped
	Restarts   int     `json:"restarts"`
	LastExit   string  `json:"last_exit"`
	PID        int     `json:"pid"`
	NodeAddr   string  `json:"node_addr,omitempty"` // the troupe node a worker runs on; "" here
	RSSBytes   uint64  `json:"rss_bytes"`
	CPUPercent float64 `json:"cpu_percent"`
	Mailbox    int     `json:"mailbox"`
	InFlight   int     `json:"in_flight"`
	Credits    int     `json:"credits"`
	Children   []Node  `json:"children"`
}

// Run states, as Stats.State says them.
const (
	RunRunning     = "running"
	RunCompleted   = "completed"
	RunDeadLetters = "dead_letters"
	RunInterrupted = "interrupted"
	RunAborted     = "aborted"
)

// RunStates are the values of Stats.State.
var RunStates = []string{RunRunning, RunCompleted, RunDeadLetters, RunInterrupted, RunAborted}

// Stats are the figures GET /api/stats shows.
type Stats struct {
	Time              time.Time    `json:"time"`
	State             string       `json:"state"` // one of RunStates
	RecordsIn         int64        `json:"records_in"`
	RecordsOut        int64        `json:"records_out"`
	DeadLetters       int64        `json:"dead_letters"`
	Dropped           int64        `json:"dropped"`
	Stages            []StageStats `json:"stages"`
	DeadLettersRecent []DeadLetter `json:"dead_letters_recent"`
}

// StageStats are one stage's figures.
type StageStats struct {
	Name       string  `json:"name"`
	In         int64   `json:"in"`
	Out        int64   `json:"out"`
	Failed     int64   `json:"failed"`
	Retried    int64   `json:"retried"`
	DeadLetter int64   `json:"dead_letter"`
	Dropped    int64   `json:"dropped"`
	InFlight   int     `json:"in_flight"`
	Credits    int     `json:"credits"`
	LatencyMS  Latency `json:"latency_ms"`
}

// Latency holds latency quantiles, in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
}

// DeadLetter is a record that went to the dead letters.
type DeadLetter struct {
	Key      string `json:"key"`
	Stage    string `json:"stage"`
	Reason   string `json:"reason"`
	Attempts int    `json:"attempts"`
}

// Event types.
const (
	EventStarted   = "started"
	EventExited    = "exited"
	EventRestarted = "restarted"
	EventGaveUp    = "gave_up"
	EventEscalated = "escalated"
)

// Event is a supervision event, as GET /api/events sends it and the events file holds it.
type Event struct {
	Time   time.Time `json:"time"`
	Type   string    `json:"type"` // EventStarted, EventExited, …
	Path   string    `json:"path"` // the node's Path
	Reason string    `json:"reason"`
	PID    int       `json:"pid"`
}

// normalize makes every Children non-nil, so that JSON shows [] rather than null.
func (n *Node) normalize() {
	if n.Children == nil {
		n.Children = []Node{}
	}
	for i := range n.Children {
		n.Children[i].normalize()
	}
}

// RebasePath puts prefix (e.g. "/job:3") before path: "/" becomes "/job:3", "/stage:s"
// becomes "/job:3/stage:s". An engine shows each job's tree and events so, under its own root.
func RebasePath(prefix, path string) string {
	prefix = strings.TrimSuffix(prefix, "/")
	if path == "/" || path == "" {
		if prefix == "" {
			return "/"
		}
		return prefix
	}
	return prefix + path
}

// Rebase returns n with RebasePath(prefix, …) applied to every path of its subtree.
func Rebase(n Node, prefix string) Node {
	n.Path = RebasePath(prefix, n.Path)
	if n.Children != nil {
		children := make([]Node, len(n.Children))
		for i, c := range n.Children {
			children[i] = Rebase(c, prefix)
		}
		n.Children = children
	}
	return n
}
