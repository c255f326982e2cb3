package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/plugins/sdk"
)

// Child roles (values of ChildEnv).
const (
	roleEcho   = "echo"   // copies frames from fd 3 back to fd 3
	roleRPC    = "rpc"    // go-plugin server with one unary call per record
	rolePlugin = "plugin" // a troupe plugin (sdk.Serve) upper-casing payloads
	// rolePluginBatch is the same plugin written with the SDK's batch API (sdk.ServeBatch).
	rolePluginBatch = "pluginbatch"
	// rolePidPlugin is a troupe plugin replacing payloads with its process id.
	rolePidPlugin = "pidplugin"
	roleRSS       = "rss" // runs the slow-sink pipeline over TROUPE_BENCH_N records
)

// countEnv carries the record count to the rss child.
const countEnv = "TROUPE_BENCH_N"

// sizeEnv carries the record size to the rss child (default 64 bytes).
const sizeEnv = "TROUPE_BENCH_SIZE"

// runChild runs this process as a child of the harness.
func runChild(role string, stdout, stderr io.Writer) int {
	switch role {
	case roleEcho:
		if err := echo(os.NewFile(3, "data")); err != nil {
			fmt.Fprintln(stderr, "bench echo:", err)
			return 1
		}
		return 0
	case roleRPC:
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig: rpcHandshake,
			Plugins:         plugin.PluginSet{rpcPluginName: &rpcPlugin{}},
			GRPCServer:      plugin.DefaultGRPCServer,
			Logger:          hclog.NewNullLogger(),
		})
		return 0
	case rolePlugin:
		sdk.Serve(sdk.Stage{Process: upperStage})
		return 0 // not reached: Serve exits
	case roleNode:
		return nodeChild(os.Stdin, stdout, stderr)
	case rolePluginBatch:
		sdk.ServeBatch(upperBatch)
		return 0 // not reached: Serve exits
	case rolePidPlugin:
		sdk.Serve(sdk.Stage{Process: pidStage()})
		return 0 // not reached: Serve exits
	case roleRSS:
		n, err := strconv.Atoi(os.Getenv(countEnv))
		if err != nil {
			fmt.Fprintf(stderr, "bench rss: %s: %v\n", countEnv, err)
			return 2
		}
		size := 64
		if v := os.Getenv(sizeEnv); v != "" {
			if size, err = strconv.Atoi(v); err != nil {
				fmt.Fprintf(stderr, "bench rss: %s: %v\n", sizeEnv, err)
				return 2
			}
		}
		if err := slowSinkRun(context.Background(), n, size); err != nil {
			fmt.Fprintln(stderr, "bench rss:", err)
			return 1
		}
		hwm, err := peakRSS()
		if err != nil {
			fmt.Fprintln(stderr, "bench rss:", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s %d\n", peakRSSLine, hwm)
		fmt.Fprintln(stdout, rssDetails())
		return 0
	}
	fmt.Fprintf(stderr, "bench: unknown child role %s=%q\n", ChildEnv, role)
	return 2
}

// upperStage is the plugin's work, and the Python baseline's: upper-case the payload (ASCII),
// in place.
// The payload is the plugin's own (decoded from the frame it received): nothing redelivers it
// from the plugin's memory, which is what lets this baseline skip a copy.
func upperStage(_ context.Context, rec troupe.Record) ([]troupe.Record, error) {
	upper(rec.Payload)
	return []troupe.Record{rec}, nil
}

// upper upper-cases p (ASCII) in place.
func upper(p []byte) {
	for i, c := range p {
		if 'a' <= c && c <= 'z' {
			p[i] = c - ('a' - 'A')
		}
	}
}

// upperBatch is upperStage for a batch: the outputs of the whole batch share one slice.
func upperBatch(_ context.Context, recs []troupe.Record) ([][]troupe.Record, []error) {
	outs := make([][]troupe.Record, len(recs))
	for i := range recs {
		upper(recs[i].Payload)
		outs[i] = recs[i : i+1 : i+1]
	}
	return outs, nil
}

// echo copies length-prefixed frames from f back to f with large buffers, flushing whenever no
// more input is buffered, until EOF: the cheapest a process can return frames.
func echo(f *os.File) error {
	r := bufio.NewReaderSize(f, 1<<20)
	w := bufio.NewWriterSize(f, 1<<20)
	var buf []byte
	var hdr [binary.MaxVarintLen64]byte
	for {
		n, err := binary.ReadUvarint(r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return w.Flush()
			}
			return err
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return err
		}
		w.Write(hdr[:binary.PutUvarint(hdr[:], n)])
		w.Write(buf)
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}

// The go-plugin unary baseline: one gRPC call per record, on go-plugin's own connection.
var rpcHandshake = plugin.HandshakeConfig{ProtocolVersion: 1, MagicCookieKey: "TROUPE_BENCH_RPC", MagicCookieValue: "unary-baseline"}

const (
	rpcPluginName = "unary"
	rpcMethod     = "/troupe.bench.Unary/Process"
)

// rpcPlugin serves (plugin side) a service whose one method runs upperStage on one record, and
// dials it (host side), returning the *grpc.ClientConn.
type rpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

func (p *rpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "troupe.bench.Unary",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Process",
			Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				in := new(wrapperspb.BytesValue)
				if err := dec(in); err != nil {
					return nil, err
				}
				outs, err := upperStage(ctx, troupe.Record{Key: "k", Payload: in.Value})
				if err != nil {
					return nil, err
				}
				return wrapperspb.Bytes(outs[0].Payload), nil
			},
		}},
	}, struct{}{})
	return nil
}

func (p *rpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return c, nil
}

// childCmd returns a command running this executable as a child in role.
func childCmd(role string, extraEnv ...string) (*exec.Cmd, error) {
	args, err := selfArgs()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(append(os.Environ(), ChildEnv+"="+role), extraEnv...)
	return cmd, nil
}

// slowSink is a sink slower than the pipeline before it: it pauses 1 ms every 4096 records, so
// the run is paced by the sink and memory depends only on flow control.
type slowSink struct{ n int }

func (s *slowSink) Write(troupe.Record) error {
	s.n++
	if s.n%4096 == 0 {
		time.Sleep(time.Millisecond)
	}
	return nil
}
func (s *slowSink) Flush() error { return nil }
func (s *slowSink) Close() error { return nil }

// slowSinkRun pushes n records of size bytes through one in-process stage into a slow sink,
// at the default credits.
func slowSinkRun(ctx context.Context, n, size int) error {
	sink := &slowSink{}
	p := troupe.Pipeline{
		Source: actors.NewRangeSource(int64(n), size),
		Stages: []troupe.Stage{{Name: "copy", Func: func(_ context.Context, r troupe.Record) ([]troupe.Record, error) {
			return []troupe.Record{{Key: r.Key, Payload: bytes.Clone(r.Payload)}}, nil
		}}},
		Sink: sink,
	}
	sum, err := actors.Run(ctx, &p)
	if err != nil {
		return err
	}
	if sum.RecordsOut != int64(n) || sink.n != n {
		return fmt.Errorf("%d records reached the sink, want %d", sink.n, n)
	}
	return nil
}

// peakRSSLine prefixes the rss child's report of its own peak RSS on stdout.
const peakRSSLine = "peak-rss-bytes"

// rssStats is what the rss child reports besides its peak RSS, to tell where the peak is: the
// pages of its executable mapped (file-backed RSS, which a larger binary or the kernel's large
// page-cache folios make larger, whatever the run does), and how hard its garbage collector
// worked.
type rssStats struct {
	File     int64   // file-backed RSS at the end (the executable's pages, mapped once touched)
	GCCycles uint64  // garbage collections during the run
	GCShare  float64 // the collector's share of the CPU time the process used
}

// rssDetailsLine prefixes the rss child's rssStats line.
const rssDetailsLine = "rss-details"

// rssDetails is the rss child's rssStats line.
func rssDetails() string {
	var st rssStats
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		st.File = statusKB(string(b), "RssFile:") << 10
	}
	ms := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/cpu/classes/gc/total:cpu-seconds"},
		{Name: "/cpu/classes/total:cpu-seconds"}, {Name: "/cpu/classes/idle:cpu-seconds"}}
	metrics.Read(ms)
	if ms[0].Value.Kind() == metrics.KindUint64 {
		st.GCCycles = ms[0].Value.Uint64()
	}
	if ms[1].Value.Kind() == metrics.KindFloat64 {
		if used := ms[2].Value.Float64() - ms[3].Value.Float64(); used > 0 {
			st.GCShare = ms[1].Value.Float64() / used
		}
	}
	return fmt.Sprintf("%s %d %d %.3f", rssDetailsLine, st.File, st.GCCycles, st.GCShare)
}

// statusKB reads a "Field:   123 kB" line of /proc/self/status; 0 if it is not there.
func statusKB(status, field string) int64 {
	for _, line := range strings.Split(status, "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}

// peakRSS is this process's peak resident set size (VmHWM). The parent cannot use the child's
// rusage for it: ru_maxrss survives execve, and Go forks with CLONE_VM, so a child's figure
// starts at its parent's peak. VmHWM belongs to the address space the exec made.
func peakRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM: %w", err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}
