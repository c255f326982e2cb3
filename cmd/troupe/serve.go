package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/troupe-dev/troupe/admin"
	"github.com/troupe-dev/troupe/admin/ui"
	"github.com/troupe-dev/troupe/engine"
)

// cancelDrain bounds how long a job cancelled by a DELETE or at the end of the drain waits for
// its records in flight before it is stopped.
const cancelDrain = 5 * time.Second

func (e *env) serveCmd() *cobra.Command {
	var (
		addr, specDir, token string
		warmSpecs            []string
		maxJobs, maxQueue    int
		drain                time.Duration
	)
	cmd := &cobra.Command{
		Use:   "serve --admin ADDR [--max-jobs N] [--spec-dir DIR] [--warm SPEC]",
		Short: "Run an engine that takes jobs over HTTP",
		Long: `Run an engine that takes jobs over HTTP (POST /api/jobs with a spec and its input; GET,
DELETE /api/jobs/{id}; GET /api/jobs/{id}/output; see package engine) on the admin server, with
its own endpoints: / (the observer page), /healthz, /readyz (503 while draining), /metrics, /api/tree (the engine's
root, each running job under it as /job:ID), /api/stats (summed over the jobs kept, each stage
named JOB/STAGE) and /api/events (the jobs' supervision events).
At most --max-jobs jobs run at once and --max-queue wait (429 beyond). With --spec-dir, a
request may name a spec of that directory instead of sending one: {"spec_name": "x.yaml"}.
With --warm SPEC (repeatable), the plugin stages of SPEC are started once and kept between
jobs (as many processes as the stage's workers): a submitted spec's plugin stage of the same
name and command runs on them, without starting a process.

A specification submitted over HTTP can do what a spec run by 'troupe run' can (read and write
files, start plugin programs) as the user running troupe serve: the address is refused unless
it is a loopback one or a token is set (--admin-token, or TROUPE_ADMIN_TOKEN), which every
request must then give as "Authorization: Bearer TOKEN".

SIGINT or SIGTERM drains: new jobs are refused (503), running jobs go on for --drain-timeout,
then the rest are cancelled (each given 5s for its records in flight). Exit status 0 when every running job finished or was cancelled
at the deadline; 1 when something could not be stopped cleanly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if addr == "" {
				return &usageError{errors.New("serve: --admin ADDR is required")}
			}
			if token == "" {
				token = os.Getenv(admin.TokenEnv)
			}
			if specDir != "" {
				if st, err := os.Stat(specDir); err != nil || !st.IsDir() {
					return &usageError{fmt.Errorf("serve: --spec-dir %s is not a directory", specDir)}
				}
			}
			logger := e.log.logger(e.stderr, "serve-"+newRunID(), false) // --log-format, --log-level
			var warm []engine.WarmStage
			for _, path := range warmSpecs {
				s, err := e.loadSpec(path)
				if err != nil {
					return err
				}
				for _, st := range s.Stages {
					if st.Plugin == nil {
						continue
					}
					cfg := st.PluginConfig()
					cfg.Logger = logger
					warm = append(warm, engine.WarmStage{Name: st.Name, Plugin: cfg, Workers: st.Workers, Options: st.Options})
				}
			}
			eng, err := engine.New(engine.Options{MaxJobs: maxJobs, MaxQueue: maxQueue, Logger: logger, DrainTimeout: cancelDrain, Warm: warm})
			if err != nil {
				return &exitError{code: exitAborted, err: err}
			}
			obs := &engineObserved{e: eng, done: make(chan struct{})}
			srv, err := startAPIServer(admin.Options{Addr: addr, Token: token, Logger: logger}, obs, func(mux engine.Mux) {
				engine.Register(mux, eng, engine.HTTPOptions{SpecDir: specDir})
			})
			if err != nil {
				sctx, cancel := context.WithTimeout(context.Background(), drain)
				defer cancel()
				_, _ = eng.Shutdown(sctx)
				return &usageError{err}
			}
			fmt.Fprintf(e.stdout, "troupe: serving on http://%s\n", srv.Addr())
			<-cmd.Context().Done()
			obs.draining.Store(true)
			fmt.Fprintf(e.stderr, "troupe: draining: new jobs refused, running jobs get %s\n", drain)
			dctx, cancel := context.WithTimeout(context.Background(), drain)
			defer cancel()
			outcomes, err := eng.Shutdown(dctx)
			close(obs.done)
			counts := map[engine.Status]int{}
			for _, o := range outcomes {
				counts[o.Status]++
			}
			fmt.Fprintf(e.stderr, "troupe: stopped: %d done, %d failed, %d cancelled\n", counts[engine.Done], counts[engine.Failed], counts[engine.Cancelled])
			hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer hcancel()
			herr := srv.Shutdown(hctx)
			if err = errors.Join(err, herr); err != nil {
				return &exitError{code: exitAborted, err: err}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "admin", "", "the HTTP address to serve on (host:port; loopback unless a token is set)")
	f.StringVar(&token, "admin-token", "", "the bearer token every request must give (default $TROUPE_ADMIN_TOKEN)")
	f.IntVar(&maxJobs, "max-jobs", 0, "jobs run at once (default the number of CPUs)")
	f.IntVar(&maxQueue, "max-queue", engine.DefaultMaxQueue, "jobs that may wait (429 beyond)")
	f.StringVar(&specDir, "spec-dir", "", "a directory of specs requests may name ({\"spec_name\": \"x.yaml\"})")
	f.StringArrayVar(&warmSpecs, "warm", nil, "a spec whose plugin stages are kept warm between jobs (repeatable)")
	f.DurationVar(&drain, "drain-timeout", 30*time.Second, "how long running jobs may go on after SIGTERM before they are cancelled")
	return cmd
}

// apiServer is what serve needs of the HTTP server.
type apiServer interface {
	Addr() string
	Shutdown(ctx context.Context) error
}

// startAPIServer starts the admin server (health, readiness, metrics, the tree, the figures and
// the events of the engine's jobs, behind its address rule and token) with the routes register
// adds.
func startAPIServer(opts admin.Options, obs admin.Observed, register func(engine.Mux)) (apiServer, error) {
	srv, err := admin.New(opts, obs)
	if err != nil {
		return nil, err
	}
	srv.Handle("GET /", ui.Handler()) // the observer page
	register(srv)
	if err := srv.Start(); err != nil {
		return nil, err
	}
	return srv, nil
}

// engineObserved shows an engine on the admin server: its root, and under it the tree of each
// running job (admin.ObserveJob, rebased under /job:ID); the figures summed over the jobs it
// keeps, each stage named JOB/STAGE; the supervision events of its jobs.
type engineObserved struct {
	e        *engine.Engine
	draining atomic.Bool
	done     chan struct{} // closed when the engine has stopped
}

func jobPrefix(id string) string { return "/job:" + id }

func (o *engineObserved) running() []*engine.Job {
	var out []*engine.Job
	for _, j := range o.e.List() {
		if j.Run() != nil && !j.Finished() {
			out = append(out, j)
		}
	}
	return out
}

func (o *engineObserved) Tree() admin.Node {
	root := admin.Node{Name: "engine", Path: "/", Kind: admin.KindSupervisor, State: admin.StateRunning, Children: []admin.Node{}}
	if o.draining.Load() {
		root.State = admin.StateStopped
	}
	for _, j := range o.running() {
		n := admin.Rebase(admin.ObserveJob(j.Run()).Tree(), jobPrefix(j.ID()))
		n.Name, n.Kind = j.ID(), admin.KindJob
		root.Children = append(root.Children, n)
	}
	return root
}

func (o *engineObserved) Stats() admin.Stats {
	st := admin.Stats{Time: time.Now().UTC(), State: admin.RunRunning, Stages: []admin.StageStats{}, DeadLettersRecent: []admin.DeadLetter{}}
	if o.draining.Load() {
		st.State = admin.RunInterrupted
	}
	for _, j := range o.e.List() {
		c := j.Counts()
		st.RecordsIn += c.RecordsIn
		st.RecordsOut += c.RecordsOut
		st.DeadLetters += c.DeadLetters
		st.Dropped += c.Dropped
		if aj := j.Run(); aj != nil && !j.Finished() {
			js := admin.ObserveJob(aj).Stats()
			for _, s := range js.Stages {
				s.Name = j.ID() + "/" + s.Name
				st.Stages = append(st.Stages, s)
			}
			for _, d := range js.DeadLettersRecent {
				d.Stage = j.ID() + "/" + d.Stage
				st.DeadLettersRecent = append(st.DeadLettersRecent, d)
			}
		}
	}
	return st
}

func (o *engineObserved) Ready() error {
	if o.draining.Load() {
		return errors.New("draining: new jobs are refused")
	}
	return nil
}

// Subscribe follows the events of every job that runs from now on (from its start: a job's
// events are replayed when it is first seen), each path under /job:ID. The engine's jobs are
// looked for every 50 ms.
func (o *engineObserved) Subscribe(ctx context.Context) <-chan admin.Event {
	out := make(chan admin.Event, 256)
	go func() {
		defer close(out)
		seen := map[string]bool{}
		var wg sync.WaitGroup
		defer wg.Wait()
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, j := range o.running() {
				if seen[j.ID()] {
					continue
				}
				seen[j.ID()] = true
				obs := admin.ObserveJob(j.Run())
				var ch <-chan admin.Event
				if r, ok := obs.(admin.Replayer); ok {
					ch = r.SubscribeReplay(sctx)
				} else {
					ch = obs.Subscribe(sctx)
				}
				prefix := jobPrefix(j.ID())
				wg.Add(1)
				go func() {
					defer wg.Done()
					for ev := range ch {
						ev.Path = admin.RebasePath(prefix, ev.Path)
						select {
						case out <- ev:
						default: // a subscriber that does not keep up loses events
						}
					}
				}()
			}
			select {
			case <-ctx.Done():
				return
			case <-o.done:
				return
			case <-tick.C:
			}
		}
	}()
	return out
}
