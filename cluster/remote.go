package cluster

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	// The cluster's messages must be in the protobuf registry for remote to decode them.
	_ "github.com/troupe-dev/troupe/cluster/clusterpb"
)

// NodeActor is the name of the actor every node runs to take Spawn requests.
const NodeActor = "troupe-node"

// tokenKey is the gRPC metadata key that carries the cluster's token on every connection.
const tokenKey = "troupe-cluster-token"

// endpoint is an actor system with protoactor remote, listening on an address, that accepts
// only peers presenting the token and presents it to the peers it dials.
type endpoint struct {
	system *actor.ActorSystem
	remote *remote.Remote
	addr   string // the advertised address
}

// startEndpoint starts an actor system with remote on listen ("host:port"; port 0 picks one),
// advertised as advertise when set. refused is called (from any goroutine) with the peer's
// address when a peer without the token is turned away.
func startEndpoint(listen, advertise, token string, mtls *TLS, logger *slog.Logger, refused func(peer string)) (ep *endpoint, err error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("listen address %q: bad port", listen)
	}
	if token == "" {
		return nil, fmt.Errorf("no cluster token: a node and its coordinators must share one")
	}
	serverCreds, clientCreds := grpc.EmptyServerOption{}, grpc.WithTransportCredentials(insecure.NewCredentials())
	var sopt grpc.ServerOption = serverCreds
	if mtls != nil {
		sc, cc, err := mtls.configs()
		if err != nil {
			return nil, err
		}
		sopt, clientCreds = grpc.Creds(credentials.NewTLS(sc)), grpc.WithTransportCredentials(credentials.NewTLS(cc))
	}
	// Remote.Start listens itself and panics when it cannot: check the address first.
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	if port == 0 {
		port = l.Addr().(*net.TCPAddr).Port
	}
	l.Close()

	check := func(ctx context.Context) error {
		md, _ := metadata.FromIncomingContext(ctx)
		for _, t := range md.Get(tokenKey) {
			if subtle.ConstantTimeCompare([]byte(t), []byte(token)) == 1 {
				return nil
			}
		}
		who := "unknown peer"
		if p, ok := peer.FromContext(ctx); ok {
			who = p.Addr.String()
		}
		if refused != nil {
			refused(who)
		}
		return status.Error(codes.Unauthenticated, "troupe cluster: wrong or missing cluster token")
	}
	// A record may be as large as the spec allows (1 GiB): lift gRPC's 4 MiB message limit, both
	// ways, so that a large record is not a broken connection.
	const maxMsg = math.MaxInt32
	opts := []remote.ConfigOption{
		remote.WithServerOptions(
			sopt, grpc.MaxRecvMsgSize(maxMsg), grpc.MaxSendMsgSize(maxMsg),
			grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
				if err := check(ss.Context()); err != nil {
					return err
				}
				return h(srv, ss)
			}),
			grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
				if err := check(ctx); err != nil {
					return nil, err
				}
				return h(ctx, req)
			}),
		),
		remote.WithDialOptions(
			clientCreds,
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsg), grpc.MaxCallSendMsgSize(maxMsg)),
			grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
				return streamer(metadata.AppendToOutgoingContext(ctx, tokenKey, token), desc, cc, method, opts...)
			}),
			grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				return invoker(metadata.AppendToOutgoingContext(ctx, tokenKey, token), method, req, reply, cc, opts...)
			}),
		),
		// Records travel in batches already: a small writer batch keeps latency low.
		remote.WithEndpointWriterBatchSize(64),
	}
	if advertise != "" {
		opts = append(opts, remote.WithAdvertisedHost(advertise))
	}
	system := actor.NewActorSystemWithConfig(actor.Configure(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }),
	))
	r := remote.NewRemote(system, remote.Configure(host, port, opts...))
	defer func() {
		if v := recover(); v != nil {
			system.Shutdown()
			ep, err = nil, fmt.Errorf("starting remote on %s: %v", listen, v)
		}
	}()
	r.Start()
	return &endpoint{system: system, remote: r, addr: system.Address()}, nil
}

// close stops the remote server and the actor system.
func (e *endpoint) close() {
	e.remote.Shutdown(false)
	e.system.Shutdown()
}
