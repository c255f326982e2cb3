package supervisor

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// protoactor's dead-letter throttle starts a goroutine that waits
		// one throttle interval (1s by default) after a dead letter; it is
		// not stopped by ActorSystem.Shutdown.
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewThrottle.func1.1"),
	)
}

// waitTimeout bounds every wait in these tests; nothing should take near it.
const waitTimeout = 10 * time.Second

var (
	errBoom  = errors.New("boom")
	errStart = errors.New("cannot start")
)

func quietLogger(*actor.ActorSystem) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newSystem(t testing.TB) *actor.ActorSystem {
	system := actor.NewActorSystemWithConfig(actor.Configure(actor.WithLoggerFactory(quietLogger)))
	t.Cleanup(system.Shutdown)
	return system
}

// recorder is a shared, ordered log of what the children did.
type recorder struct {
	mu  sync.Mutex
	log []string
	ch  chan struct{}
}

func newRecorder() *recorder { return &recorder{ch: make(chan struct{}, 1)} }

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	r.log = append(r.log, fmt.Sprintf(format, args...))
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default:
	}
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.log)
}

func (r *recorder) since(i int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log[i:])
}

// waitFor waits until entry has been recorded at or after index from.
func (r *recorder) waitFor(t testing.TB, from int, entry string) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		if slices.Contains(r.since(from), entry) {
			return
		}
		select {
		case <-r.ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %q; log: %v", entry, r.since(0))
		}
	}
}

// eventLog collects supervisor events.
type eventLog struct {
	mu  sync.Mutex
	evs []Event
	ch  chan struct{}
}

func watchEvents(t testing.TB, system *actor.ActorSystem) *eventLog {
	l := &eventLog{ch: make(chan struct{}, 1)}
	unsubscribe := Subscribe(system, func(e Event) {
		l.mu.Lock()
		l.evs = append(l.evs, e)
		l.mu.Unlock()
		select {
		case l.ch <- struct{}{}:
		default:
		}
	})
	t.Cleanup(unsubscribe)
	return l
}

func (l *eventLog) matching(path string, kind EventKind) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Event
	for _, e := range l.evs {
		if e.Path == path && e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// waitN waits until at least n events of kind for path have been published
// and returns them.
func (l *eventLog) waitN(t testing.TB, path string, kind EventKind, n int) []Event {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		if evs := l.matching(path, kind); len(evs) >= n {
			return evs
		}
		select {
		case <-l.ch:
		case <-deadline:
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Fatalf("timed out waiting for %d %v events of %s; got: %v", n, kind, path, l.evs)
		}
	}
}

func (l *eventLog) wait(t testing.TB, path string, kind EventKind) Event {
	t.Helper()
	evs := l.waitN(t, path, kind, 1)
	return evs[len(evs)-1]
}

// Messages understood by test workers.
type (
	exitMsg  struct{ reason error }
	panicMsg struct{ value any }
	pingMsg  struct{ reply chan string }
)

// workerOpts configure a test worker.
type workerOpts struct {
	restart     RestartType
	shutdown    Shutdown
	significant bool
	// block, if set, makes the worker block in *actor.Stopping until it is
	// closed.
	block chan struct{}
	kill  func(pid *actor.PID)
}

// worker is a child that records "start:<name>" and "stop:<name>" and
// exits, panics or answers pings on request.
func worker(rec *recorder, name string, o workerOpts) ChildSpec {
	return ChildSpec{
		Name:        name,
		Restart:     o.restart,
		Shutdown:    o.shutdown,
		Significant: o.significant,
		Kill:        o.kill,
		Start: func() (*actor.Props, error) {
			return actor.PropsFromFunc(workerReceive(rec, name, o.block)), nil
		},
	}
}

func workerReceive(rec *recorder, name string, block chan struct{}) actor.ReceiveFunc {
	return func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *actor.Started:
			rec.add("start:%s", name)
		case *actor.Stopping:
			rec.add("stop:%s", name)
			if block != nil {
				<-block
				rec.add("released:%s", name)
			}
		case exitMsg:
			Exit(ctx, m.reason)
		case panicMsg:
			panic(m.value)
		case pingMsg:
			m.reply <- ctx.Self().Id
		}
	}
}

// flaky is a child whose first start succeeds and every later start fails;
// attempts records the time of every start attempt.
type flaky struct {
	mu       sync.Mutex
	attempts []time.Time
}

func (f *flaky) spec(rec *recorder, name string) ChildSpec {
	return ChildSpec{
		Name: name,
		Start: func() (*actor.Props, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.attempts = append(f.attempts, time.Now())
			if len(f.attempts) > 1 {
				return nil, errStart
			}
			return actor.PropsFromFunc(workerReceive(rec, name, nil)), nil
		},
	}
}

func (f *flaky) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.attempts)
}

func (f *flaky) times() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.attempts)
}

// send sends msg to the actor with PID id path.
func send(system *actor.ActorSystem, path string, msg any) {
	system.Root.Send(system.NewLocalPID(path), msg)
}

// ping asks the actor at path for its id.
func ping(t testing.TB, system *actor.ActorSystem, path string) string {
	t.Helper()
	reply := make(chan string, 1)
	send(system, path, pingMsg{reply: reply})
	select {
	case id := <-reply:
		return id
	case <-time.After(waitTimeout):
		t.Fatalf("no answer from %s", path)
		return ""
	}
}

func mustStart(t testing.TB, system *actor.ActorSystem, spec Spec) *Supervisor {
	t.Helper()
	sup, err := Start(system, spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		_ = sup.Stop()
	})
	return sup
}

func waitDone(t testing.TB, sup *Supervisor) {
	t.Helper()
	select {
	case <-sup.Done():
	case <-time.After(waitTimeout):
		t.Fatalf("supervisor %s did not end", sup.PID().Id)
	}
}

func flags(strategy Strategy, intensity int) Flags {
	return Flags{Strategy: strategy, Intensity: intensity, Period: time.Minute}
}

func childNames(t testing.TB, sup *Supervisor) []string {
	t.Helper()
	infos, err := sup.WhichChildren()
	if err != nil {
		t.Fatalf("WhichChildren: %v", err)
	}
	var names []string
	for _, i := range infos {
		names = append(names, i.Name)
	}
	return names
}

func childInfo(t testing.TB, sup *Supervisor, name string) (ChildInfo, bool) {
	t.Helper()
	infos, err := sup.WhichChildren()
	if err != nil {
		t.Fatalf("WhichChildren: %v", err)
	}
	for _, i := range infos {
		if i.Name == name {
			return i, true
		}
	}
	return ChildInfo{}, false
}

type counter struct{ n atomic.Int32 }

func (c *counter) inc()       { c.n.Add(1) }
func (c *counter) get() int32 { return c.n.Load() }

// scripted is a worker whose start attempt number n (1 for the first)
// fails with errStart, recording "fail:<name>", when fail(n) says so.
func scripted(rec *recorder, name string, fail func(n int) bool) ChildSpec {
	var attempts atomic.Int32
	return ChildSpec{
		Name: name,
		Start: func() (*actor.Props, error) {
			if fail(int(attempts.Add(1))) {
				rec.add("fail:%s", name)
				return nil, errStart
			}
			return actor.PropsFromFunc(workerReceive(rec, name, nil)), nil
		},
	}
}
