package host

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-dev/troupe"
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

func (o *benchOutcomes) Results(res []troupe.Result) {
	o.mu.Lock()
	o.reported += len(res)
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

func benchRecords(n, size int) []troupe.Task {
	recs := make([]troupe.Task, n)
	for i := range recs {
		recs[i] = troupe.Task{Record: troupe.Record{Key: "key", Payload: make([]byte, size)}, Attempt: 1}
	}
	return recs
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
