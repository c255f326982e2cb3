package admin

import (
	"context"
	"fmt"
	"time"

	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/supervisor"
)

// ObserveJob adapts a running actors.Job to Observed (and LatencyObserved, Replayer).
func ObserveJob(job *actors.Job) Observed { return &jobObserved{job: job} }

type jobObserved struct{ job *actors.Job }

func stagePath(stage string) string { return "/stage:" + stage }

func workerPath(stage string, n int) string { return fmt.Sprintf("%s/worker:%d", stagePath(stage), n) }

func node(name, path, kind string, n actors.NodeInfo) Node {
	return Node{Name: name, Path: path, Kind: kind, State: n.State, Restarts: n.Restarts, LastExit: n.LastExit, Mailbox: n.Mailbox}
}

// Tree is the run's tree: its root supervisor with the source, the stages (each with its
// workers, and under a worker its plugin process, if it runs in one) and the sink, in the
// order records flow through them.
func (o *jobObserved) Tree() Node {
	s := o.job.Snapshot()
	root := node(s.Name, "/", KindSupervisor, s.Root)
	root.Children = append(root.Children, node("source", "/source", KindSource, s.Source))
	for _, st := range s.Stages {
		sn := node(st.Name, stagePath(st.Name), KindStage, st.NodeInfo)
		sn.InFlight, sn.Credits = st.InFlight, st.Credits
		for _, w := range st.Workers {
			wn := node(w.Name, workerPath(st.Name, w.Index), KindWorker, w.NodeInfo)
			wn.PID, wn.InFlight, wn.Credits, wn.NodeAddr = w.PID, w.InFlight, w.Credits, w.Node
			if w.PID != 0 {
				p := node("plugin", wn.Path+"/plugin", KindPlugin, actors.NodeInfo{State: w.State})
				p.PID = w.PID
				wn.Children = append(wn.Children, p)
			}
			sn.Children = append(sn.Children, wn)
		}
		root.Children = append(root.Children, sn)
	}
	root.Children = append(root.Children, node("sink", "/sink", KindSink, s.Sink))
	root.normalize()
	return root
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (o *jobObserved) Stats() Stats {
	s := o.job.Snapshot()
	sum := s.Summary
	st := Stats{
		Time: time.Now().UTC(), State: sum.Outcome.String(),
		RecordsIn: sum.RecordsIn, RecordsOut: sum.RecordsOut, DeadLetters: sum.DeadLetters, Dropped: sum.Dropped,
		Stages: []StageStats{}, DeadLettersRecent: []DeadLetter{},
	}
	for _, g := range s.Stages {
		st.Stages = append(st.Stages, StageStats{
			Name: g.Name, In: g.In, Out: g.Out, Failed: g.Failed, Retried: g.Retried,
			DeadLetter: g.DeadLetters, Dropped: g.Dropped, InFlight: g.InFlight, Credits: g.Credits,
			LatencyMS: Latency{P50: ms(g.P50), P99: ms(g.P99)},
		})
	}
	for _, d := range s.DeadLetters {
		st.DeadLettersRecent = append(st.DeadLettersRecent, DeadLetter{Key: d.Key, Stage: d.Stage, Reason: d.Reason, Attempts: d.Attempts})
	}
	return st
}

func (o *jobObserved) Ready() error { return o.job.Snapshot().Ready }

func (o *jobObserved) Latency(stage string, bounds []float64) ([]uint64, uint64, float64, bool) {
	ds := make([]time.Duration, len(bounds))
	for i, b := range bounds {
		ds[i] = time.Duration(b * float64(time.Second))
	}
	c, n, sum, ok := o.job.Latency(stage, ds)
	return c, n, sum.Seconds(), ok
}

func (o *jobObserved) Subscribe(ctx context.Context) <-chan Event {
	return o.subscribe(ctx, false, 256)
}

func (o *jobObserved) SubscribeReplay(ctx context.Context) <-chan Event {
	return o.subscribe(ctx, true, 4096)
}

func (o *jobObserved) subscribe(ctx context.Context, replay bool, buffer int) <-chan Event {
	ch := make(chan Event, buffer)
	unsub := o.job.Subscribe(func(e actors.Event) {
		ev, ok := eventOf(e)
		if !ok {
			return
		}
		select {
		case ch <- ev:
		default: // a subscriber that does not keep up loses events
		}
	}, replay)
	go func() {
		select {
		case <-ctx.Done():
		case <-o.job.Done():
		}
		unsub() // no call of the function above starts after this
		close(ch)
	}()
	return ch
}

// eventOf is the admin form of a run's event; false for those it does not show (a child that
// its supervisor stopped).
func eventOf(e actors.Event) (Event, bool) {
	ev := Event{Time: e.Time.UTC(), PID: e.PID}
	if e.Reason != nil {
		ev.Reason = firstLine(e.Reason.Error())
	}
	switch e.Kind {
	case supervisor.Started:
		ev.Type = EventStarted
	case supervisor.Exited:
		ev.Type = EventExited
	case supervisor.Abandoned:
		ev.Type = EventExited
		ev.Reason = "abandoned: " + ev.Reason
	case supervisor.Restarted:
		ev.Type = EventRestarted
	case supervisor.GaveUp:
		ev.Type = EventGaveUp
	case supervisor.Escalated:
		ev.Type = EventEscalated
	default:
		return Event{}, false
	}
	switch e.Part {
	case actors.PartRun:
		ev.Path = "/"
	case actors.PartSource:
		ev.Path = "/source"
	case actors.PartSink:
		ev.Path = "/sink"
	case actors.PartStage:
		ev.Path = stagePath(e.Stage)
	case actors.PartDistributor, actors.PartWorkers:
		// Parts of the stage's node: their start is the stage's, said once.
		if ev.Type == EventStarted {
			return Event{}, false
		}
		ev.Path = stagePath(e.Stage)
	case actors.PartWorker:
		ev.Path = workerPath(e.Stage, e.Worker)
	default:
		return Event{}, false
	}
	return ev, true
}

func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
