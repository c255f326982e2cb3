package host

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/troupe-dev/troupe/ipc"
	"github.com/troupe-dev/troupe/plugins/internal/pluginproto"
	"github.com/troupe-dev/troupe/plugins/internal/testplugin/bench"
)

// benchOutcomes counts results and hands out credits.
type benchOutcomes struct {
	mu       sync.Mutex
	cond     *sync.Cond
	credits  int
	reported int
	firstRes chan struct{}
	once     sync.Once
	failed   chan error
}

func newBenchOutcomes() *benchOutcomes {
	o := &benchOutcomes{firstRes: make(chan struct{}), failed: make(chan error, 1)}
	o.cond = sync.NewCond(&o.mu)
	return o
}

func (o *benchOutcomes) Results(res *ipc.Results) {
	o.mu.Lock()
	o.reported += len(res.Counts)
	o.mu.Unlock()
	o.cond.Broadcast()
	o.once.Do(func() { close(o.firstRes) })
}

func (o *benchOutcomes) Grant(n int) {
	o.mu.Lock()
	o.credits += n
	o.mu.Unlock()
	o.cond.Broadcast()
}

func (o *benchOutcomes) Fail(err error) {
	select {
	case o.failed <- err:
	default:
	}
	o.cond.Broadcast()
}

// take waits for up to max credits and returns how many it took.
func (o *benchOutcomes) take(max int) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	for o.credits == 0 {
		o.cond.Wait()
	}
	n := min(o.credits, max)
	o.credits -= n
	return n
}

func (o *benchOutcomes) waitReported(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for o.reported < n {
		o.cond.Wait()
	}
}

func benchRecords(n, size int) []*ipc.Record {
	recs := make([]*ipc.Record, n)
	for i := range recs {
		recs[i] = &ipc.Record{Seq: uint64(i), Key: "key", Payload: make([]byte, size), Weight: 1}
	}
	return recs
}

// pluginRate pushes n records of size bytes through a plugin and returns records/s.
func pluginRate(tb testing.TB, n, size int) float64 {
	out := newBenchOutcomes()
	b, err := Start(context.Background(), Options{Cmd: []string{testPlugin}, Credits: 512}, Worker{}, out)
	if err != nil {
		tb.Fatal(err)
	}
	defer b.Close(context.Background())
	recs := benchRecords(128, size)
	t0 := time.Now()
	for sent := 0; sent < n; {
		k := out.take(min(len(recs), n-sent))
		if err := b.Submit(recs[:k]); err != nil {
			tb.Fatal(err)
		}
		sent += k
	}
	out.waitReported(n)
	return float64(n) / time.Since(t0).Seconds()
}

// rawRate pushes n records through a child process echoing frames over a socket pair, 128
// records per frame with a window of 4 frames: the transport's ceiling.
func rawRate(tb testing.TB, n, size int) float64 {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	for _, fd := range fds {
		_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, 1<<20)
		_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1<<20)
	}
	child := os.NewFile(uintptr(fds[1]), "child")
	hostF := os.NewFile(uintptr(fds[0]), "host")
	conn, _ := net.FileConn(hostF)
	hostF.Close()
	defer conn.Close()
	cmd := exec.Command(testPlugin)
	cmd.Env = []string{"TESTPLUGIN_MODE=echo"}
	cmd.ExtraFiles = []*os.File{child}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	child.Close()
	defer cmd.Wait()
	defer conn.Close()
	frame, _ := ipc.AppendBatch(nil, 0, 1, benchRecords(128, size))
	frames := (n + 127) / 128
	t0 := time.Now()
	done := make(chan error, 1)
	window := make(chan struct{}, 4)
	go func() {
		r := ipc.NewFrameReader(conn, 0)
		for i := 0; i < frames; i++ {
			f, err := r.Next()
			if err != nil {
				done <- err
				return
			}
			_ = f
			<-window
		}
		done <- nil
	}()
	for i := 0; i < frames; i++ {
		window <- struct{}{}
		if _, err := conn.Write(frame); err != nil {
			tb.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		tb.Fatal(err)
	}
	return float64(frames*128) / time.Since(t0).Seconds()
}

// rpcRate pushes n records through a go-plugin gRPC plugin with one unary call per record, from
// 4 goroutines.
func rpcRate(tb testing.TB, n, size int) float64 {
	cmd := exec.Command(testPlugin)
	cmd.Env = []string{"TESTPLUGIN_MODE=rpc"}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  pluginproto.Handshake(ipc.ProtocolMajor),
		Plugins:          plugin.PluginSet{ipc.PluginName: &bench.RPCPlugin{}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		SkipHostEnv:      true,
		Logger:           hclog.NewNullLogger(),
		Stderr:           io.Discard,
	})
	defer client.Kill()
	rpc, err := client.Client()
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := rpc.Dispense(ipc.PluginName)
	if err != nil {
		tb.Fatal(err)
	}
	conn := raw.(*grpc.ClientConn)
	var next atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := &ipc.Record{Key: "key", Payload: make([]byte, size)}
			out := new(ipc.Results)
			for next.Add(1) <= int64(n) {
				if err := conn.Invoke(context.Background(), bench.Method, in, out); err != nil {
					tb.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(t0).Seconds()
}

// BenchmarkThroughput measures records/s through one plugin process, next to the raw socket
// pair ceiling and to go-plugin with one RPC per record, run on the same number of records.
func BenchmarkThroughput(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"64B", 64}, {"4KiB", 4096}} {
		b.Run(size.name, func(b *testing.B) {
			n := max(b.N, 1000)
			b.ResetTimer()
			p := pluginRate(b, n, size.n)
			b.StopTimer()
			raw := rawRate(b, n, size.n)
			rpc := rpcRate(b, min(n, 50000), size.n)
			b.ReportMetric(p, "records/s")
			b.ReportMetric(raw, "raw-records/s")
			b.ReportMetric(rpc, "rpc-records/s")
			b.ReportMetric(p/raw, "plugin/raw")
			b.ReportMetric(p/rpc, "plugin/rpc")
			b.ReportMetric(p*float64(size.n)/(1<<20), "MiB/s")
		})
	}
}

// BenchmarkStart measures starting a plugin (fork, handshake, Configure) and closing it.
func BenchmarkStart(b *testing.B) {
	for i := 0; i < b.N; i++ {
		be, err := Start(context.Background(), Options{Cmd: []string{testPlugin}}, Worker{}, newBenchOutcomes())
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		be.Close(context.Background())
		b.StartTimer()
	}
}

// BenchmarkCrashToFirstRecord measures from SIGKILL of a plugin to the first result of its
// replacement: crash detection, Fail, a new process, one record.
func BenchmarkCrashToFirstRecord(b *testing.B) {
	var detect time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		out := newBenchOutcomes()
		be, err := Start(context.Background(), Options{Cmd: []string{testPlugin}}, Worker{}, out)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		syscall.Kill(be.Pid(), syscall.SIGKILL)
		<-out.failed
		detect += time.Since(t0)
		be.Close(context.Background())
		out2 := newBenchOutcomes()
		be2, err := Start(context.Background(), Options{Cmd: []string{testPlugin}}, Worker{}, out2)
		if err != nil {
			b.Fatal(err)
		}
		out2.take(1)
		be2.Submit(benchRecords(1, 64))
		<-out2.firstRes
		b.StopTimer()
		be2.Close(context.Background())
		b.StartTimer()
	}
	b.ReportMetric(float64(detect.Microseconds())/float64(b.N)/1000, "ms-to-Fail")
}
