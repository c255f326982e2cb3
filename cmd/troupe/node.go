package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/troupe-dev/troupe/cluster"
)

// nodeTokenEnv is the environment variable a node reads its token from without --token.
const nodeTokenEnv = "TROUPE_CLUSTER_TOKEN"

// nodeCmd runs a cluster node: protoactor remote hosting stage workers for coordinators.
func (e *env) nodeCmd() *cobra.Command {
	var listen, advertise, token string
	var mtls cluster.TLS
	cmd := &cobra.Command{
		Use:   "node [--listen ADDR] [--advertise ADDR] [--token T] [--tls-cert F --tls-key F --tls-ca F]",
		Short: "Run a cluster node that hosts stage workers for coordinators",
		Long: `Runs a node: an actor system with protoactor remote that hosts the workers of
stages with placement: cluster, on behalf of the runs whose spec lists it under cluster.nodes.

Peers must present the cluster's token (--token, or the TROUPE_CLUSTER_TOKEN environment
variable); others are refused and logged. With --tls-cert, --tls-key and --tls-ca, every
connection is mutual TLS too. The node listens on loopback unless told otherwise.
It runs until SIGINT or SIGTERM, then stops its workers (and their plugin processes).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if token == "" {
				token = os.Getenv(nodeTokenEnv)
			}
			if token == "" {
				return &usageError{errors.New("no cluster token: give --token or set " + nodeTokenEnv)}
			}
			cfg := cluster.NodeConfig{Listen: listen, Advertise: advertise, Token: token}
			switch {
			case mtls == cluster.TLS{}:
			case mtls.Cert == "" || mtls.Key == "" || mtls.CA == "":
				return &usageError{errors.New("--tls-cert, --tls-key and --tls-ca go together")}
			default:
				cfg.TLS = &mtls
			}
			cfg.Logger = e.log.logger(e.stderr, "node", true)
			n, err := cluster.StartNode(cfg)
			if err != nil {
				fmt.Fprintf(e.stderr, "troupe: node: %v\n", err)
				return &exitError{code: exitAborted}
			}
			fmt.Fprintf(e.stdout, "troupe node listening on %s\n", n.Addr())
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			<-ctx.Done()
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := n.Close(cctx); err != nil {
				fmt.Fprintf(e.stderr, "troupe: node: %v\n", err)
				return &exitError{code: exitAborted}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:7946", "the `ADDR` (host:port) the node listens on")
	f.StringVar(&advertise, "advertise", "", "the `ADDR` coordinators reach the node by, when not --listen's")
	f.StringVar(&token, "token", "", "the cluster's token (default $"+nodeTokenEnv+")")
	f.StringVar(&mtls.Cert, "tls-cert", "", "mutual TLS: this node's certificate (PEM `FILE`), naming its advertised host")
	f.StringVar(&mtls.Key, "tls-key", "", "mutual TLS: this node's private key (PEM `FILE`)")
	f.StringVar(&mtls.CA, "tls-ca", "", "mutual TLS: the CA certificate (PEM `FILE`) every peer's certificate must be signed by")
	return cmd
}
