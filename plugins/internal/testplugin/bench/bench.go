// Package bench holds the baselines the plugin benchmarks compare against: a raw frame echo over
// the inherited data socket, and a go-plugin gRPC service with one unary call per record.
package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"os"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/troupe-dev/troupe/ipc"
)

// Echo copies length-prefixed frames from fd 3 back to fd 3 with buffered I/O, flushing when
// no more input is buffered, until EOF.
func Echo() {
	f := os.NewFile(3, "data")
	r := bufio.NewReaderSize(f, 64<<10)
	w := bufio.NewWriterSize(f, 64<<10)
	var buf []byte
	for {
		n, err := binary.ReadUvarint(r)
		if err != nil {
			os.Exit(0)
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			os.Exit(0)
		}
		w.Write(binary.AppendUvarint(nil, n))
		w.Write(buf)
		if r.Buffered() == 0 {
			if w.Flush() != nil {
				os.Exit(0)
			}
		}
	}
}

// ServiceName and Method name the per-record RPC baseline.
const (
	ServiceName = "troupe.bench.Echo"
	Method      = "/troupe.bench.Echo/Process"
)

// RPCPlugin serves (plugin side) or dials (host side, returning the *grpc.ClientConn) a gRPC
// service whose one method runs process on one record per call.
type RPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Process func(context.Context, *ipc.Record) ([]*ipc.Record, error)
}

// GRPCServer registers the service.
func (p *RPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: ServiceName,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Process",
			Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				in := new(ipc.Record)
				if err := dec(in); err != nil {
					return nil, err
				}
				outs, err := p.Process(ctx, in)
				if err != nil {
					return nil, err
				}
				return &ipc.Results{Counts: []uint32{uint32(len(outs))}, Outputs: outs}, nil
			},
		}},
	}, struct{}{})
	return nil
}

// GRPCClient returns the connection.
func (p *RPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return c, nil
}
