package host

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/internal/proctest"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// Binaries built once for the package's tests.
var (
	binDir     string
	testPlugin string // plugins/internal/testplugin
	pluginV2   string // the same, announcing protocol 2.0
	testHost   string // plugins/internal/testhost
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	binDir, err = os.MkdirTemp("", "troupe-host-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(binDir)
	testPlugin = filepath.Join(binDir, "testplugin")
	pluginV2 = filepath.Join(binDir, "testplugin-v2")
	testHost = filepath.Join(binDir, "testhost")
	builds := [][]string{
		{"-o", testPlugin, "../testplugin"},
		{"-o", pluginV2, "-ldflags=-X=github.com/troupe-dev/troupe/plugins/sdk.announcedVersion=2.0", "../testplugin"},
		{"-o", testHost, "../testhost"},
	}
	for _, args := range builds {
		cmd := exec.Command("go", append([]string{"build"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %v: %v\n%s", args, err, out)
			return 1
		}
	}
	// Orphaned plugin processes (the host-kill test) are reparented to us, so that we can check
	// their fate and reap them.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "PR_SET_CHILD_SUBREAPER:", err)
		return 1
	}
	code := m.Run()
	if err := WaitClosed(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	if code == 0 {
		// Every plugin is closed: the guardian has retired, and been reaped.
		if g := ownGuardians(); len(g) > 0 {
			fmt.Fprintf(os.Stderr, "plugin guardians left behind: %+v\n", g)
			code = 1
		}
		if strays := strayProcesses(); len(strays) > 0 {
			fmt.Fprintf(os.Stderr, "processes left behind: %v\n", strays)
			code = 1
		}
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
	}
	return code
}

// strayProcesses lists processes running one of the test binaries, and zombies we parent.
func strayProcesses() []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	me := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == me {
			continue
		}
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && strings.HasPrefix(exe, binDir) {
			out = append(out, fmt.Sprintf("%d (%s)", pid, exe))
			continue
		}
		if st, ok := procStat(pid); ok && st.ppid == me && st.state == 'Z' {
			out = append(out, fmt.Sprintf("%d (zombie)", pid))
		}
	}
	return out
}

type stat struct {
	state      byte
	ppid, pgrp int
}

func procStat(pid int) (stat, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return stat{}, false
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 3 {
		return stat{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	pgrp, _ := strconv.Atoi(f[2])
	return stat{state: f[0][0], ppid: ppid, pgrp: pgrp}, true
}

// alive says whether pid runs (a zombie is dead).
func alive(pid int) bool { return proctest.Alive(pid) }

// groupAlive says whether any live process is in process group pgid.
func groupAlive(pgid int) bool {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := procStat(pid); ok && st.pgrp == pgid && st.state != 'Z' && st.state != 'X' {
			return true
		}
	}
	return false
}

// reap waits (bounded) for an orphan that was reparented to us and reaps it.
func reap(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if got == pid || err == syscall.ECHILD {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("pid %d was not reaped", pid)
}

// noStrays fails the test if it left processes behind.
func noStrays(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for {
			s := strayProcesses()
			if len(s) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("processes left behind: %v", s)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// outcomes records what a backend reports.
type outcomes struct {
	mu      sync.Mutex
	results [][]troupe.Result
	grants  int
	failed  chan error
	changed chan struct{}
}

func newOutcomes() *outcomes {
	return &outcomes{failed: make(chan error, 2), changed: make(chan struct{}, 1)}
}

func (o *outcomes) Results(res []troupe.Result) {
	o.mu.Lock()
	o.results = append(o.results, res)
	o.mu.Unlock()
	o.poke()
}

func (o *outcomes) Grant(n int) {
	o.mu.Lock()
	o.grants += n
	o.mu.Unlock()
	o.poke()
}

func (o *outcomes) Fail(err error) { o.failed <- err }

func (o *outcomes) poke() {
	select {
	case o.changed <- struct{}{}:
	default:
	}
}

// reported is the number of input records reported so far.
func (o *outcomes) reported() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, r := range o.results {
		n += len(r)
	}
	return n
}

func (o *outcomes) credit() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.grants
}

// waitFor waits until cond holds.
func (o *outcomes) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(time.Minute)
	for !cond() {
		select {
		case <-o.changed:
		case <-time.After(10 * time.Millisecond):
		case err := <-o.failed:
			t.Fatalf("waiting for %s: backend failed: %v", what, err)
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (o *outcomes) waitFail(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case err := <-o.failed:
		select {
		case err2 := <-o.failed:
			t.Fatalf("Fail called twice: %v, then %v", err, err2)
		case <-time.After(100 * time.Millisecond):
		}
		return err
	case <-time.After(within):
		t.Fatalf("no Fail within %v", within)
		return nil
	}
}

// lineCollector is a slog handler keeping the messages it receives.
type lineCollector struct {
	mu   sync.Mutex
	msgs []string
}

func (c *lineCollector) logger() *slog.Logger { return slog.New(c) }

func (c *lineCollector) lines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.msgs...)
}

func (c *lineCollector) Enabled(context.Context, slog.Level) bool { return true }
func (c *lineCollector) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	c.msgs = append(c.msgs, r.Message)
	c.mu.Unlock()
	return nil
}
func (c *lineCollector) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *lineCollector) WithGroup(string) slog.Handler      { return c }
