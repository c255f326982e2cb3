package plugins_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/plugins"
	"github.com/troupe-dev/troupe/supervisor"
)

var testPlugin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "troupe-plugins-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testPlugin = filepath.Join(dir, "testplugin")
	out, err := exec.Command("go", "build", "-o", testPlugin, "./internal/testplugin").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building the test plugin: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	if err := plugins.WaitClosed(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
		if s := running(dir); len(s) > 0 {
			fmt.Fprintln(os.Stderr, "plugin processes left behind:", s)
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// running lists live processes executing a binary under dir.
func running(dir string) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if exe, err := os.Readlink("/proc/" + e.Name() + "/exe"); err == nil && strings.HasPrefix(exe, dir) {
			out = append(out, e.Name())
		}
	}
	return out
}

// countingSink counts how many times each key (each source record has its own) reaches it.
type countingSink struct {
	mu   sync.Mutex
	seen map[string]int
	bad  []string
}

func (s *countingSink) Write(rec troupe.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[string]int{}
	}
	s.seen[rec.Key]++
	// The plugin's Process saw the stage's name and the attempt through its context.
	if rec.Meta["by"] != "testplugin" || rec.Meta["stage"] != "upper" || rec.Meta["attempt"] == "" || rec.Meta["attempt"] == "0" {
		s.bad = append(s.bad, rec.Key)
	}
	return nil
}
func (s *countingSink) Flush() error { return nil }
func (s *countingSink) Close() error { return nil }

type deadLetters struct {
	mu      sync.Mutex
	letters []troupe.DeadLetter
}

func (d *deadLetters) Write(l troupe.DeadLetter) error {
	d.mu.Lock()
	d.letters = append(d.letters, l)
	d.mu.Unlock()
	return nil
}
func (d *deadLetters) Flush() error { return nil }
func (d *deadLetters) Close() error { return nil }

// payloadSource emits count records keyed r<i> whose payloads come from payload(i).
type payloadSource struct {
	count, next int
	payload     func(i int) string
}

func (s *payloadSource) Read(_ context.Context, max int) ([]troupe.Record, error) {
	var out []troupe.Record
	for ; s.next < s.count && len(out) < max; s.next++ {
		out = append(out, troupe.Record{Key: "r" + strconv.Itoa(s.next), Payload: []byte(s.payload(s.next))})
	}
	if s.next == s.count {
		return out, io.EOF
	}
	return out, nil
}
func (s *payloadSource) Close() error { return nil }

// pluginPids lists the live test plugin processes.
func pluginPids() []int {
	var pids []int
	for _, s := range running(filepath.Dir(testPlugin)) {
		pid, _ := strconv.Atoi(s)
		pids = append(pids, pid)
	}
	return pids
}

// TestChaos SIGKILLs a random plugin process every 200 ms during a 200k-record run, waiting
// after each kill until a worker has restarted (so that kills never outpace restarts, however
// loaded the machine): every record must still reach the sink exactly once, with no dead
// letters. A kill may land on a process that is still starting, the first start included.
func TestChaos(t *testing.T) {
	n := 200_000
	if testing.Short() {
		n = 20_000
	}
	factory, err := plugins.Config{Cmd: []string{testPlugin}}.Factory()
	if err != nil {
		t.Fatal(err)
	}
	sink, dead := &countingSink{}, &deadLetters{}
	restarted := make(chan struct{}, 1)
	p := troupe.Pipeline{
		Source:      &payloadSource{count: n, payload: func(i int) string { return "p" + strconv.Itoa(i) }},
		Stages:      []troupe.Stage{{Name: "upper", Backend: factory, Workers: 4, Attempts: 3, Restart: troupe.Restart{Intensity: 1000, Period: time.Second}}},
		Sink:        sink,
		DeadLetters: dead,
		Events: func(e supervisor.Event) {
			if e.Kind == supervisor.Restarted && strings.Contains(e.Path, "/worker-") {
				select {
				case restarted <- struct{}{}:
				default:
				}
			}
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	stop := make(chan struct{})
	var kills int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				select {
				case <-restarted: // drop a restart reported before this kill
				default:
				}
				pids := pluginPids()
				if len(pids) == 0 || syscall.Kill(pids[rand.IntN(len(pids))], syscall.SIGKILL) != nil {
					continue
				}
				kills++
				select {
				case <-restarted:
				case <-stop:
					return
				case <-time.After(time.Minute):
					// The kill hit nothing that restarts (a process already on its way out).
				}
			}
		}
	}()
	sum, err := actors.Run(ctx, &p)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d records, %d kills, %d restarts, %v", n, kills, sum.Restarts, sum.Elapsed)
	if kills == 0 {
		t.Fatal("no plugin was killed: the run was too short to test anything")
	}
	if len(dead.letters) != 0 {
		t.Fatalf("%d dead letters, first: %+v", len(dead.letters), dead.letters[0])
	}
	if len(sink.seen) != n {
		t.Fatalf("sink saw %d distinct records, want %d", len(sink.seen), n)
	}
	for k, c := range sink.seen {
		if c != 1 {
			t.Fatalf("record %s reached the sink %d times", k, c)
		}
	}
	if len(sink.bad) > 0 {
		t.Fatalf("records not processed by the plugin: %v", sink.bad[:min(5, len(sink.bad))])
	}
}

// TestPoisonRecords runs records that fail (an error, or a crash of the process) on every
// attempt among good ones: the poison is dead-lettered with its reason, the rest processed.
func TestPoisonRecords(t *testing.T) {
	factory, err := plugins.Config{Cmd: []string{testPlugin}}.Factory()
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	poison := map[int]string{100: "error", 700: "segv", 1500: "exit3"}
	sink, dead := &countingSink{}, &deadLetters{}
	p := troupe.Pipeline{
		Source: &payloadSource{count: n, payload: func(i int) string {
			if p, ok := poison[i]; ok {
				return p
			}
			return "ok"
		}},
		Stages:      []troupe.Stage{{Name: "upper", Backend: factory, Workers: 2, Attempts: 3, Restart: troupe.Restart{Intensity: 100, Period: time.Second}}},
		Sink:        sink,
		DeadLetters: dead,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := actors.Run(ctx, &p); err != nil {
		t.Fatal(err)
	}
	if len(sink.seen) != n-len(poison) {
		t.Fatalf("sink saw %d records, want %d", len(sink.seen), n-len(poison))
	}
	want := map[string]string{"r100": "bad record r100", "r700": "killed by SIGSEGV", "r1500": "exited with code 3"}
	if len(dead.letters) != len(want) {
		t.Fatalf("dead letters: %+v", dead.letters)
	}
	for _, l := range dead.letters {
		if !strings.Contains(l.Error, want[l.Key]) || l.Attempts != 3 {
			t.Errorf("dead letter %s: attempts %d, error %q, want %q", l.Key, l.Attempts, l.Error, want[l.Key])
		}
	}
}

func TestFactoryValidates(t *testing.T) {
	for _, c := range []plugins.Config{{}, {Cmd: []string{""}}, {Cmd: []string{"x"}, SHA256: "nothex"}, {Cmd: []string{"x"}, MaxFrame: -1}} {
		if _, err := c.Factory(); err == nil {
			t.Errorf("Factory accepted %+v", c)
		}
	}
}

func ExampleConfig_Factory() {
	factory, err := plugins.Config{
		Cmd:    []string{"./bin/imgconv-plugin"},
		Limits: plugins.Limits{RSS: 512 << 20, CPU: 150, Startup: 10 * time.Second},
	}.Factory()
	if err != nil {
		fmt.Println(err)
		return
	}
	stage := troupe.Stage{Name: "convert", Backend: factory, Workers: 4, Timeout: 30 * time.Second}
	fmt.Println(stage.Name)
	// Output: convert
}
