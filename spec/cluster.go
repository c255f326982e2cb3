package spec

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/cluster"
)

// clusterStage turns stage, built to run locally from st, into a stage whose workers run on the
// spec's cluster nodes: st.Workers (the number of CPUs when absent) on each node. The local
// build is kept as the fallback when cluster.fallback is local.
func (s *Spec) clusterStage(st *StageSpec, stage troupe.Stage, logger *slog.Logger) (troupe.Stage, error) {
	c := s.Cluster
	fail := func(err error) (troupe.Stage, error) {
		if stage.Cleanup != nil {
			_ = stage.Cleanup()
		}
		return stage, err
	}
	token := os.Getenv(c.TokenEnv)
	if token == "" {
		return fail(fmt.Errorf("cluster: the token variable %s is not set", c.TokenEnv))
	}
	perNode := st.Workers
	if perNode <= 0 {
		perNode = runtime.NumCPU()
	}
	w := cluster.Work{Credits: st.Credits, Timeout: st.Timeout}
	switch {
	case st.Builtin != "":
		w.Builtin, w.Options = st.Builtin, st.Options
	case st.Plugin != nil:
		cfg := st.PluginConfig()
		w.PluginCmd, w.PluginSHA256, w.PluginEnv = cfg.Cmd, cfg.SHA256, cfg.Env
	default:
		return fail(errors.New("neither builtin nor plugin set"))
	}
	if c.Fallback == "local" {
		if stage.Func != nil {
			w.Fallback = cluster.FuncBackend(st.Name, stage.Func, st.Credits, st.Timeout)
		} else {
			w.Fallback = stage.Backend
		}
	}
	cfg := cluster.Config{Nodes: c.Nodes, Token: token, Heartbeat: c.Heartbeat,
		Listen: c.Listen, Advertise: c.Advertise, Logger: logger}
	if t := c.TLS; t != nil {
		cfg.TLS = &cluster.TLS{Cert: s.path(t.Cert), Key: s.path(t.Key), CA: s.path(t.CA)}
	}
	client, err := cluster.NewClient(cfg)
	if err != nil {
		return fail(err)
	}
	f, err := client.Factory(w)
	if err != nil {
		client.Close()
		return fail(err)
	}
	local := stage.Cleanup
	if w.Fallback == nil && local != nil {
		// Without a local fallback, nothing runs here: release what the local build started
		// (a plugin stage's warm spares; the nodes start their plugins cold).
		if err := local(); err != nil {
			client.Close()
			return stage, err
		}
		local = nil
	}
	stage.Func, stage.Backend = nil, f
	stage.Workers = perNode * len(c.Nodes)
	stage.Cleanup = func() error {
		err := client.Close()
		if local != nil {
			err = errors.Join(err, local())
		}
		return err
	}
	return stage, nil
}
