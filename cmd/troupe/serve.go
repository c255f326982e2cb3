package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

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
DELETE /api/jobs/{id}; GET /api/jobs/{id}/output; see package engine) on the admin address.
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
				token = os.Getenv("TROUPE_ADMIN_TOKEN")
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
			srv, err := startAPIServer(addr, token, func(mux engine.Mux) {
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
			fmt.Fprintf(e.stderr, "troupe: draining: new jobs refused, running jobs get %s\n", drain)
			dctx, cancel := context.WithTimeout(context.Background(), drain)
			defer cancel()
			outcomes, err := eng.Shutdown(dctx)
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

// startAPIServer serves the routes register adds on addr. It is the one place to swap for the
// admin server (admin.New, then Server.Handle through register, then Start) once it has landed:
// this one is a plain http.Server with the same address rule and bearer token.
func startAPIServer(addr, token string, register func(engine.Mux)) (apiServer, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("serve: --admin %q: %v", addr, err)
	}
	if ip := net.ParseIP(host); token == "" && host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("serve: --admin %s is not a loopback address: set a token (--admin-token or TROUPE_ADMIN_TOKEN) to serve on it", addr)
	}
	mux := http.NewServeMux()
	register(mux)
	var h http.Handler = mux
	if token != "" {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
				return
			}
			mux.ServeHTTP(w, r)
		})
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	s := &plainServer{srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, addr: ln.Addr().String()}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

type plainServer struct {
	srv  *http.Server
	addr string
}

func (s *plainServer) Addr() string                       { return s.addr }
func (s *plainServer) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }
