package plugins_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/plugins"
	"github.com/troupe-dev/troupe/supervisor"
)

// exactSink checks every record it gets against its source record: key r<i>, payload P<i> (the test plugin uppercases p<i>), and counts each key.
type exactSink struct {
	mu    sync.Mutex
	seen  map[string]int
	wrong []string
}

func (s *exactSink) Write(rec troupe.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[string]int{}
	}
	s.seen[rec.Key]++
	i, err := strconv.Atoi(strings.TrimPrefix(rec.Key, "r"))
	if err != nil || string(rec.Payload) != "P"+strconv.Itoa(i) || rec.Meta["by"] != "testplugin" {
		s.wrong = append(s.wrong, "key "+rec.Key+" payload "+string(rec.Payload))
	}
	return nil
}
func (s *exactSink) Flush() error { return nil }
func (s *exactSink) Close() error { return nil }

// check fails t unless the sink got each of the n records exactly once, each its own data.
func (s *exactSink) check(t *testing.T, n int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.wrong) > 0 {
		t.Fatalf("%d records reached the sink with another record's data, first: %s", len(s.wrong), s.wrong[0])
	}
	if len(s.seen) != n {
		t.Fatalf("sink saw %d distinct records, want %d", len(s.seen), n)
	}
	for k, c := range s.seen {
		if c != 1 {
			t.Fatalf("record %s reached the sink %d times", k, c)
		}
	}
}

// hostileRun runs n records through a two-worker plugin stage with the given test plugin
// environment, credits per worker, attempts per record and timeout. With one attempt, a record
// wrongly blamed for its worker's fault is dead-lettered.
func hostileRun(t *testing.T, env map[string]string, n, credits, attempts int, timeout time.Duration) (troupe.Summary, *exactSink, *deadLetters, []supervisor.Event, error) {
	t.Helper()
	factory, err := plugins.Config{Cmd: []string{testPlugin}, Env: env}.Factory()
	if err != nil {
		t.Fatal(err)
	}
	sink, dead := &exactSink{}, &deadLetters{}
	var mu sync.Mutex
	var events []supervisor.Event
	p := troupe.Pipeline{
		Source: &payloadSource{count: n, payload: func(i int) string { return "p" + strconv.Itoa(i) }},
		Stages: []troupe.Stage{{Name: "upper", Backend: factory, Workers: 2, Credits: credits, Attempts: attempts, Timeout: timeout,
			Restart: troupe.Restart{Intensity: 100, Period: time.Second}}},
		Sink:        sink,
		DeadLetters: dead,
		Events: func(e supervisor.Event) {
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sum, err := actors.Run(ctx, &p)
	mu.Lock()
	defer mu.Unlock()
	return sum, sink, dead, append([]supervisor.Event(nil), events...), err
}

// exitReasons lists the abnormal exit reasons of the stage's workers.
func exitReasons(events []supervisor.Event) []string {
	var out []string
	for _, e := range events {
		if e.Kind == supervisor.Exited && e.Reason != nil && !errors.Is(e.Reason, supervisor.ErrShutdown) && strings.Contains(e.Path, "/worker-") {
			out = append(out, e.Reason.Error())
		}
	}
	return out
}

// TestProtocolViolations runs plugins whose first process breaks the protocol in one way each:
// the host must notice, kill the process, redeliver what it held without charging any record an
// attempt (one attempt each here), and the sink must get exactly the right data.
func TestProtocolViolations(t *testing.T) {
	// With one credit a worker holds one record, which a crash would charge: the violation
	// must not. dup needs two records in hand to shift one onto the other.
	for _, c := range []struct {
		mode, reason string
		credits      int
	}{
		{"dup", "seq", 16},
		{"foreign", "seq", 1},
		{"extra", "outstanding", 1},
		{"error-index", "error index", 1},
		{"flag", "flag", 1},
	} {
		t.Run(c.mode, func(t *testing.T) {
			const n = 500
			sum, sink, dead, events, err := hostileRun(t, map[string]string{"TESTPLUGIN_PROTOCOL": c.mode}, n, c.credits, 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			sink.check(t, n)
			if len(dead.letters) != 0 {
				t.Fatalf("%d dead letters (an innocent record was charged), first: %+v", len(dead.letters), dead.letters[0])
			}
			reasons := exitReasons(events)
			if sum.Restarts < 1 || len(reasons) == 0 {
				t.Fatalf("the faulty worker was not restarted: %d restarts, exits %q", sum.Restarts, reasons)
			}
			for _, r := range reasons {
				if !strings.Contains(r, "protocol") || !strings.Contains(r, c.reason) {
					t.Errorf("worker exit reason %q does not name the protocol violation (%q)", r, c.reason)
				}
			}
		})
	}
}

// startsFile returns a file the test plugin counts its starts in (TESTPLUGIN_STARTS).
func startsFile(t *testing.T) string {
	return filepath.Join(t.TempDir(), "starts")
}

func starts(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return len(b)
}

// TestPluginKilledBeforeHandshake: the plugin's first starts are SIGKILLed before their
// handshake, while the run starts. A start that failed because its process died is transient:
// the workers are restarted by the stage's policy and the run completes.
func TestPluginKilledBeforeHandshake(t *testing.T) {
	file := startsFile(t)
	const n = 300
	sum, sink, dead, _, err := hostileRun(t, map[string]string{"TESTPLUGIN_STARTS": file, "TESTPLUGIN_DIE_BEFORE_HANDSHAKE": "3"}, n, 16, 1, 0)
	if err != nil {
		t.Fatalf("run failed: %v", err)
	}
	sink.check(t, n)
	if len(dead.letters) != 0 {
		t.Fatalf("%d dead letters, first: %+v", len(dead.letters), dead.letters[0])
	}
	if got := starts(t, file); got < 5 || sum.Restarts < 3 {
		t.Fatalf("%d starts and %d restarts, want at least 5 and 3 (3 killed, 2 workers)", got, sum.Restarts)
	}
}

// TestForeignPluginFailsFast: a go-plugin plugin of another program (another magic cookie) can
// never work: the run fails at once, saying so, without retrying it.
func TestForeignPluginFailsFast(t *testing.T) {
	file := startsFile(t)
	_, _, _, _, err := hostileRun(t, map[string]string{"TESTPLUGIN_STARTS": file, "TESTPLUGIN_FOREIGN_COOKIE": "1"}, 10, 16, 1, 0)
	if err == nil || !strings.Contains(err.Error(), "not a troupe plugin") || !strings.Contains(err.Error(), "magic cookie") {
		t.Fatalf("err = %v, want a refusal naming the magic cookie", err)
	}
	if got := starts(t, file); got > 2 {
		t.Fatalf("the plugin was started %d times: a permanent failure was retried", got)
	}
}

// TestHungPlugins: a plugin process that stops granting credit (after 5) while records wait, or
// that takes records and never answers, is hung: after the stage's timeout its worker is killed
// and restarted, and the run completes with every record exactly once. Records that only waited
// for credit are not charged (one attempt each); records the silent process took ran past the
// timeout and may be charged once (two attempts).
func TestHungPlugins(t *testing.T) {
	for _, c := range []struct {
		mode, reason string
		attempts     int
	}{
		{"stingy:5", "no credit", 1},
		{"silent", "timeout", 2},
	} {
		t.Run(c.mode, func(t *testing.T) {
			const n = 200
			sum, sink, dead, events, err := hostileRun(t, map[string]string{"TESTPLUGIN_PROTOCOL": c.mode}, n, 16, c.attempts, 3*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			sink.check(t, n)
			if len(dead.letters) != 0 {
				t.Fatalf("%d dead letters, first: %+v", len(dead.letters), dead.letters[0])
			}
			reasons := exitReasons(events)
			if sum.Restarts < 1 || len(reasons) == 0 {
				t.Fatalf("the hung worker was not restarted: %d restarts, exits %q", sum.Restarts, reasons)
			}
			for _, r := range reasons {
				if !strings.Contains(r, c.reason) {
					t.Errorf("worker exit reason %q does not say %q", r, c.reason)
				}
			}
		})
	}
}

// TestPluginBrokenForGood: a plugin that breaks the protocol in every process aborts the run
// with the reason, rather than going round for ever with records nobody is charged for.
func TestPluginBrokenForGood(t *testing.T) {
	t0 := time.Now()
	_, _, _, _, err := hostileRun(t, map[string]string{"TESTPLUGIN_PROTOCOL": "foreign", "TESTPLUGIN_FAULTY": "1000"}, 100, 16, 1, 0)
	if err == nil || !strings.Contains(err.Error(), "protocol error") || !strings.Contains(err.Error(), "in a row") {
		t.Fatalf("err = %v, want the run aborted for protocol errors", err)
	}
	if d := time.Since(t0); d > time.Minute {
		t.Fatalf("the run took %v to give up", d)
	}
}
