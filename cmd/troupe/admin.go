package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/admin"
	"github.com/troupe-dev/troupe/admin/ui"
)

// adminOptions are the flags of `troupe run` for the admin server and the events file.
type adminOptions struct {
	addr, token, events string
}

// adminShutdown bounds the admin server's shutdown at the end of a run.
const adminShutdown = 5 * time.Second

func (o *adminOptions) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.addr, "admin", "", "serve the admin server (observer page, /metrics, /api/tree, /api/stats, /api/events, /healthz, /readyz) on `ADDR` (host:port, e.g. 127.0.0.1:9090; a non-loopback address needs a token)")
	f.StringVar(&o.token, "admin-token", "", "require \"Authorization: Bearer `TOKEN`\" on every admin request (default $"+admin.TokenEnv+", which stays out of ps)")
	f.StringVar(&o.events, "events", "", "append the supervision events as JSON lines to `FILE`")
}

// check resolves the token from the environment and refuses what the server would refuse, before
// anything starts.
func (o *adminOptions) check() error {
	if o.token == "" {
		o.token = os.Getenv(admin.TokenEnv)
	}
	if o.addr == "" {
		return nil
	}
	if err := admin.CheckOptions(o.options(nil)); err != nil {
		return fmt.Errorf("--admin: %w", err)
	}
	return nil
}

func (o *adminOptions) options(logger *slog.Logger) admin.Options {
	return admin.Options{Addr: o.addr, Token: o.token, Events: o.events, Logger: logger}
}

// startAdmin starts the admin server (and with it the events file), or the events file alone,
// for job, as the options ask; stop ends them and reports an error of the events file.
func (e *env) startAdmin(o adminOptions, job *actors.Job, logger *slog.Logger) (stop func() error, err error) {
	obs := admin.ObserveJob(job)
	switch {
	case o.addr != "":
		srv, err := admin.New(o.options(logger), obs)
		if err != nil {
			return nil, err
		}
		srv.Handle("GET /", ui.Handler()) // the observer page
		if err := srv.Start(); err != nil {
			return nil, err
		}
		fmt.Fprintf(e.stderr, "troupe: admin server on %s\n", srv.URL())
		return func() error {
			ctx, cancel := context.WithTimeout(context.Background(), adminShutdown)
			defer cancel()
			return srv.Shutdown(ctx)
		}, nil
	case o.events != "":
		el, err := admin.OpenEventLog(obs, o.events)
		if err != nil {
			return nil, err
		}
		return func() error {
			ctx, cancel := context.WithTimeout(context.Background(), adminShutdown)
			defer cancel()
			return el.Close(ctx)
		}, nil
	}
	return func() error { return nil }, nil
}
