package actors

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/supervisor"
)

// Observation: what a running Job shows to whoever watches it (the admin server, a test), without
// knowing how it is shown. Job.Snapshot is the tree and its figures at one moment; Job.Subscribe
// follows the supervision events as they happen, each one placed in the pipeline (which stage,
// which worker, which backend process). Nothing here is on a record's path but a few atomic
// stores per message in the distributor.

// Node states, as Snapshot reports them.
const (
	StateRunning    = "running"
	StateRestarting = "restarting"
	StateBackoff    = "backoff"
	StateStopped    = "stopped"
)

// Parts of a run an Event is about.
const (
	PartRun         = "run"         // the run's root supervisor
	PartSource      = "source"      // the source actor
	PartSink        = "sink"        // the collector, which writes the sink and the dead letters
	PartStage       = "stage"       // a stage's supervisor (or a reduce stage's actor)
	PartDistributor = "distributor" // a stage's distributor
	PartWorkers     = "workers"     // the supervisor of a stage's workers
	PartWorker      = "worker"      // one worker
)

// historySize is how many events a Job keeps for Subscribe's replay.
const historySize = 1000

// recentDeadLetters is how many dead letters Snapshot lists.
const recentDeadLetters = 50

// Event is a supervision event of a run's tree, placed in the pipeline.
type Event struct {
	supervisor.Event
	// Part is the part of the run it is about (PartRun, PartSource, …).
	Part string
	// Stage is the stage concerned, when Part is a stage's, a distributor's, a workers' or a
	// worker's.
	Stage string
	// Worker is the worker's number (1 for "worker-1") when Part is PartWorker.
	Worker int
	// PID is the process the worker's Backend runs in, when it runs in one and says so (a
	// Backend with a method Pid() int); 0 otherwise. For an exit, the process that exited.
	PID int
}

// NodeInfo is the state of one node of the run's tree.
type NodeInfo struct {
	// State is StateRunning, StateRestarting (it exited and its supervisor restarts it),
	// StateBackoff (its restart waits for the backoff delay) or StateStopped.
	State string
	// Restarts is how many times it was restarted.
	Restarts int
	// Mailbox is how many messages wait in its actor's mailbox.
	Mailbox int
	// LastExit is the reason of its last exit not asked for by its supervisor ("" if none).
	LastExit string
}

// WorkerSnapshot is one worker of a stage.
type WorkerSnapshot struct {
	NodeInfo
	Name  string // "worker-1"
	Index int    // 1-based
	// PID is the process its Backend runs in (see Event.PID); 0 for a Func stage.
	PID int
	// Node is the cluster node its Backend runs on, when it says so (a Backend with a method
	// Node() string, as package cluster's do); "" when it runs here.
	Node string
	// InFlight is how many records it holds; Credits how many more it may be given.
	InFlight, Credits int
}

// StageSnapshot is one stage: its figures and its workers.
type StageSnapshot struct {
	NodeInfo
	Name   string
	Reduce bool
	// Figures since the start: records received, records output, records dead-lettered by
	// this stage (Failed counts them as the stage gives them up, DeadLetters as the collector
	// takes them), retries, records filtered out.
	In, Out, Failed, Retried, DeadLetters, Dropped int64
	// NodeInfo.Mailbox is the distributor's (or the reducer's) mailbox.
	//
	// Queued is how many records wait in the distributor for a worker; InFlight how many the
	// stage holds (queued and at its workers); Credits how many more its live workers may be
	// given. All three are 0 for a reduce stage.
	Queued, InFlight, Credits int
	// P50 and P99 are quantiles of the time its records spent at a worker.
	P50, P99 time.Duration
	Workers  []WorkerSnapshot
}

// DeadLetterInfo is a record that went to the dead letters.
type DeadLetterInfo struct {
	Time     time.Time
	Key      string
	Stage    string // the stage that gave it up, or "sink" (the sink refused it)
	Reason   string
	Attempts int
}

// Snapshot is a running (or ended) Job at one moment.
type Snapshot struct {
	// Name is the pipeline's name (its root supervisor's).
	Name string
	// Summary is Progress(), or the final summary once the run has ended; Summary.Outcome says
	// which (OutcomeRunning while it runs).
	Summary            troupe.Summary
	Root, Source, Sink NodeInfo
	Stages             []StageSnapshot
	// DeadLetters are the most recent records that went to the dead letters, oldest first.
	DeadLetters []DeadLetterInfo
	// Ready is nil while the source and the sink are open and the tree is not giving up, else
	// why not.
	Ready error
}

// Snapshot returns the run's tree and figures as they are now.
func (j *Job) Snapshot() Snapshot { return j.r.observation() }

// Done is closed when the run has ended (Wait returns at once from then on).
func (j *Job) Done() <-chan struct{} { return j.r.endedCh }

// Subscribe calls fn for each supervision event of the run from now on, in order, from the
// goroutine publishing it: fn must not block. With replay, it is first called with the events
// that came before (the last 1000). Call the returned function to unsubscribe; no call of fn
// starts after it has returned. Events stop when the run ends.
func (j *Job) Subscribe(fn func(Event), replay bool) (unsubscribe func()) {
	o := &j.r.obs
	o.mu.Lock()
	defer o.mu.Unlock()
	if replay {
		for _, e := range o.history[max(0, len(o.history)-historySize):] {
			fn(e)
		}
	}
	if o.subs == nil {
		o.subs = map[int]func(Event){}
	}
	o.nextSub++
	id := o.nextSub
	o.subs[id] = fn
	return func() {
		o.mu.Lock()
		delete(o.subs, id)
		o.mu.Unlock()
	}
}

// Latency returns the stage's latency histogram (the time its records spent at a worker) as
// cumulative counts of the records that took at most each of bounds (ascending), with the count
// and the sum of all. Buckets are exact to within about 6%; the sum is estimated from them.
func (j *Job) Latency(stage string, bounds []time.Duration) (cumulative []uint64, count uint64, sum time.Duration, ok bool) {
	for _, st := range j.r.stages {
		if st.cfg.Name == stage {
			c, n, s := st.counters.latency.cumulative(bounds)
			return c, n, s, true
		}
	}
	return nil, 0, 0, false
}

// observer is a run's observation state.
type observer struct {
	mu      sync.Mutex
	nodes   map[string]*NodeInfo // by supervisor path
	history []Event
	subs    map[int]func(Event)
	nextSub int
	dead    []DeadLetterInfo
	// The mailboxes of the source and the collector (see counted).
	sourceMailbox, sinkMailbox atomic.Pointer[actor.Mailbox]
	gaveUp                     map[string]error // supervisors that gave up and were not restarted since, by path
}

// stageObs is what a stage's distributor publishes of its state after each message.
type stageObs struct {
	mailbox atomic.Pointer[actor.Mailbox] // the distributor's (or reducer's)
	queued  atomic.Int64
	dead    atomic.Int64
	dropped atomic.Int64
	workers []workerObs
}

type workerObs struct {
	mailbox atomic.Pointer[actor.Mailbox]
	held    atomic.Int64
	up      atomic.Bool
	pid     atomic.Int64
	node    atomic.Pointer[string]
}

// initObs sizes each stage's observation once its settings are final.
func (r *run) initObs() {
	r.obs.nodes = map[string]*NodeInfo{}
	for _, st := range r.stages {
		st.obs.workers = make([]workerObs, st.cfg.Workers)
	}
}

// observe publishes the distributor's state (called at the end of each message it handles).
func (d *distributor) observe() {
	o := &d.st.obs
	o.queued.Store(int64(d.pending.len() + d.suspects.len()))
	for i := range d.slots {
		if i < len(o.workers) {
			o.workers[i].held.Store(int64(d.slots[i].held.len()))
			o.workers[i].up.Store(d.slots[i].up)
		}
	}
}

var unbounded = actor.Unbounded()

// counted is the props option that gives an actor the default mailbox, kept in slot so that
// its depth can be read (each incarnation replaces it).
func counted(slot *atomic.Pointer[actor.Mailbox]) actor.PropsOption {
	return actor.WithMailbox(func() actor.Mailbox {
		m := unbounded()
		slot.Store(&m)
		return m
	})
}

// depth is the number of messages waiting in the mailbox in slot, 0 if none.
func depth(slot *atomic.Pointer[actor.Mailbox]) int {
	if m := slot.Load(); m != nil {
		return (*m).UserMessageCount()
	}
	return 0
}

// pidOf is the process a Backend runs in, if it says.
func pidOf(b troupe.Backend) int {
	if p, ok := b.(interface{ Pid() int }); ok {
		return p.Pid()
	}
	return 0
}

// workerStarting records the backend of a worker incarnation about to start (nil: none).
func (r *run) workerStarting(st *stageRun, i int, b troupe.Backend) {
	if i < len(st.obs.workers) {
		st.obs.workers[i].pid.Store(int64(pidOf(b)))
		node := ""
		if n, ok := b.(interface{ Node() string }); ok {
			node = n.Node()
		}
		st.obs.workers[i].node.Store(&node)
	}
}

// observeDeadLetter records a dead letter the collector took.
func (r *run) observeDeadLetter(f *failure) {
	for _, st := range r.stages {
		if st.cfg.Name == f.Stage {
			st.obs.dead.Add(1)
		}
	}
	o := &r.obs
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.dead) >= recentDeadLetters {
		o.dead = append(o.dead[:0], o.dead[1:]...)
	}
	o.dead = append(o.dead, DeadLetterInfo{Time: time.Now(), Key: f.Record.Key, Stage: f.Stage, Reason: firstLine(f.Error), Attempts: int(f.Attempts)})
}

// place says which part of the run a supervisor path is.
func (r *run) place(path string) (part, stage string, worker int) {
	if path == r.name {
		return PartRun, "", 0
	}
	rest := strings.TrimPrefix(path, r.name+"/")
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 1 && parts[0] == "source":
		return PartSource, "", 0
	case len(parts) == 1 && parts[0] == "collector":
		return PartSink, "", 0
	case len(parts) == 1:
		return PartStage, parts[0], 0
	case len(parts) == 2 && parts[1] == "dist":
		return PartDistributor, parts[0], 0
	case len(parts) == 2 && parts[1] == "workers":
		return PartWorkers, parts[0], 0
	case len(parts) == 3 && strings.HasPrefix(parts[2], "worker-"):
		n, _ := strconv.Atoi(strings.TrimPrefix(parts[2], "worker-"))
		return PartWorker, parts[0], n
	}
	return "", "", 0
}

// observeEvent keeps the state of the tree's nodes and passes the event on to subscribers.
func (r *run) observeEvent(e supervisor.Event) {
	ev := Event{Event: e}
	ev.Part, ev.Stage, ev.Worker = r.place(e.Path)
	var wo *workerObs
	if ev.Part == PartWorker {
		for _, st := range r.stages {
			if st.cfg.Name == ev.Stage && ev.Worker >= 1 && ev.Worker <= len(st.obs.workers) {
				wo = &st.obs.workers[ev.Worker-1]
				ev.PID = int(wo.pid.Load())
			}
		}
	}
	o := &r.obs
	o.mu.Lock()
	defer o.mu.Unlock()
	n := o.nodes[e.Path]
	if n == nil {
		n = &NodeInfo{State: StateRunning}
		o.nodes[e.Path] = n
	}
	reason := ""
	if e.Reason != nil {
		reason = firstLine(e.Reason.Error())
	}
	switch e.Kind {
	case supervisor.Started:
		n.State = StateRunning
		delete(o.gaveUp, e.Path)
	case supervisor.Exited, supervisor.Abandoned:
		n.State = StateRestarting
		n.LastExit = reason
		if wo != nil {
			wo.pid.Store(0)
		}
	case supervisor.BackingOff:
		n.State = StateBackoff
	case supervisor.Restarted:
		// Counted here rather than taken from the event: a worker whose supervisor was
		// restarted starts its count again there, but it is still the same worker.
		n.State = StateRunning
		n.Restarts++
		delete(o.gaveUp, e.Path)
	case supervisor.GaveUp, supervisor.Escalated:
		n.State = StateStopped
		n.LastExit = reason
		if o.gaveUp == nil {
			o.gaveUp = map[string]error{}
		}
		o.gaveUp[e.Path] = fmt.Errorf("the supervisor %s gave up: %s", e.Path, reason)
	case supervisor.Stopped:
		n.State = StateStopped
		if e.Reason != nil && !errors.Is(e.Reason, supervisor.ErrShutdown) && !errors.Is(e.Reason, supervisor.ErrKilled) {
			n.LastExit = reason
		}
	}
	if len(o.history) >= 2*historySize {
		// Keep the last historySize, moving them once every historySize events.
		o.history = append(o.history[:0], o.history[len(o.history)-historySize:]...)
	}
	o.history = append(o.history, ev)
	for _, fn := range o.subs {
		fn(ev)
	}
}

// node returns the state of the node at path (running if nothing was heard of it yet, stopped
// once the run has ended).
func (o *observer) node(path string, ended bool) NodeInfo {
	n := NodeInfo{State: StateRunning}
	if p := o.nodes[path]; p != nil {
		n = *p
	}
	if ended {
		n.State = StateStopped
	}
	return n
}

func (r *run) observation() Snapshot {
	ended := false
	select {
	case <-r.endedCh:
		ended = true
	default:
	}
	s := Snapshot{Name: r.name}
	if ended {
		s.Summary = r.summary
	} else {
		s.Summary = r.snapshot()
	}
	o := &r.obs
	o.mu.Lock()
	defer o.mu.Unlock()
	s.Root = o.node(r.name, ended)
	s.Source = o.node(r.name+"/source", ended)
	s.Source.Mailbox = depth(&o.sourceMailbox)
	s.Sink = o.node(r.name+"/collector", ended)
	s.Sink.Mailbox = depth(&o.sinkMailbox)
	s.DeadLetters = append([]DeadLetterInfo(nil), o.dead...)
	for _, st := range r.stages {
		c := &st.counters
		ss := StageSnapshot{
			NodeInfo: o.node(st.path, ended), Name: st.cfg.Name, Reduce: st.reduce != nil,
			In: c.in.Load(), Out: c.out.Load(), Failed: c.failed.Load(), Retried: c.retries.Load(),
			DeadLetters: st.obs.dead.Load(), Dropped: st.obs.dropped.Load(),
			P50: c.latency.quantile(0.50), P99: c.latency.quantile(0.99),
		}
		ss.Mailbox = depth(&st.obs.mailbox)
		if st.reduce == nil {
			ss.Queued = int(st.obs.queued.Load())
			ss.InFlight = ss.Queued
			for i := range st.obs.workers {
				w := &st.obs.workers[i]
				ws := WorkerSnapshot{
					NodeInfo: o.node(st.path+"/workers/"+workerName(i), ended),
					Name:     workerName(i), Index: i + 1, PID: int(w.pid.Load()),
					InFlight: int(w.held.Load()),
				}
				ws.Mailbox = depth(&w.mailbox)
				if w.up.Load() && !ended {
					ws.Credits = max(0, st.cfg.Credits-ws.InFlight)
				}
				if n := w.node.Load(); n != nil {
					ws.Node = *n
				}
				if ended {
					ws.PID, ws.Node = 0, ""
				}
				ss.InFlight += ws.InFlight
				ss.Credits += ws.Credits
				ss.Workers = append(ss.Workers, ws)
			}
		}
		s.Stages = append(s.Stages, ss)
	}
	s.Ready = r.readiness(ended, s)
	return s
}

// readiness is nil while the source and the sink are open and the tree is not giving up.
func (r *run) readiness(ended bool, s Snapshot) error {
	if ended {
		return fmt.Errorf("the run has ended (%s)", s.Summary.Outcome)
	}
	select {
	case <-r.aborted:
		r.mu.Lock()
		err := r.err
		r.mu.Unlock()
		return fmt.Errorf("the run is aborting: %v", err)
	default:
	}
	for _, err := range r.obs.gaveUp {
		return err
	}
	if r.source.Load() == nil || s.Source.State != StateRunning {
		return errors.New("the source is not open")
	}
	if s.Sink.State != StateRunning {
		return errors.New("the sink is not open")
	}
	return nil
}

// cumulative returns, for each bound, how many recorded values were at most it (a bucket
// counts below a bound when its midpoint does), with the total count and an estimate of the
// sum (each value taken at its bucket's midpoint).
func (h *histogram) cumulative(bounds []time.Duration) ([]uint64, uint64, time.Duration) {
	out := make([]uint64, len(bounds))
	var total uint64
	var sum float64
	b := 0
	for i := range h.buckets {
		n := h.buckets[i].Load()
		if n == 0 {
			continue
		}
		lo, hi := lowerBound(i), lowerBound(i+1)
		mid := lo + (hi-lo)/2
		for b < len(bounds) && int64(bounds[b]) < mid {
			out[b] = total
			b++
		}
		total += uint64(n)
		sum += float64(n) * float64(mid)
	}
	for ; b < len(bounds); b++ {
		out[b] = total
	}
	return out, total, time.Duration(sum)
}
