package host

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/internal/callctx"
	"github.com/troupe-dev/troupe/plugins/internal/testplugin/stage"
)

func start(t *testing.T, o Options, out *outcomes) *Backend {
	t.Helper()
	if len(o.Cmd) == 0 {
		o.Cmd = []string{testPlugin}
	}
	b, err := Start(context.Background(), o, Worker{Stage: "test", Index: 1}, out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Error(err)
		}
		if alive(b.Pid()) {
			t.Errorf("pid %d alive after Close", b.Pid())
		}
	})
	return b
}

func rec(seq uint64, payload string) troupe.Task {
	return troupe.Task{Record: troupe.Record{Key: "k" + strconv.FormatUint(seq, 10), Payload: []byte(payload)}, Attempt: 1}
}

// TestMatchesInProcess sends records through the plugin, within its credits, and checks that
// the outcomes equal the same function run in-process, in order.
func TestMatchesInProcess(t *testing.T) {
	for _, mode := range []string{"", "concurrent:3", "batch", "batch-concurrent:3"} {
		t.Run("sdk="+mode, func(t *testing.T) { testMatchesInProcess(t, mode) })
	}
}

// testMatchesInProcess runs TestMatchesInProcess with the test plugin's TESTPLUGIN_SDK mode.
func testMatchesInProcess(t *testing.T, mode string) {
	noStrays(t)
	out := newOutcomes()
	b := start(t, Options{Credits: 16, Env: map[string]string{"TESTPLUGIN_SDK": mode}}, out)
	attempt := 1
	if strings.HasPrefix(mode, "batch") {
		attempt = 0 // troupe.Attempt is 0 in ProcessBatch
	}
	payloads := []string{"hello", "error", "drop", "split:3", "", "panic", "x"}
	var input []troupe.Task
	for i := 0; i < 2000; i++ {
		input = append(input, rec(uint64(i), payloads[i%len(payloads)]+strconv.Itoa(i%3)))
	}
	for i := 0; i < len(input); i += len(payloads) {
		// exact command payloads too
		input[i].Record.Payload = []byte(payloads[(i/len(payloads))%len(payloads)])
	}
	sent := 0
	for sent < len(input) {
		out.waitFor(t, "credit", func() bool { return out.credit() > sent })
		n := min(out.credit()-sent, len(input)-sent, 5)
		batch := slices.Clone(input[sent : sent+n])
		if err := b.Submit(batch); err != nil {
			t.Fatal(err)
		}
		sent += n
	}
	out.waitFor(t, "all results", func() bool { return out.reported() == len(input) })

	i := 0
	for _, rs := range out.results {
		for _, r := range rs {
			in := input[i].Record
			want, werr := stageInProcess(in, attempt)
			if failed := r.Err != nil; failed != (werr != nil) {
				t.Fatalf("record %d (%q): plugin error %v, in-process error %v", i, in.Payload, r.Err, werr)
			} else if failed && r.Err.Error() != werr.Error() {
				t.Fatalf("record %d: plugin error %q, in-process %q", i, r.Err, werr)
			}
			if len(r.Outputs) != len(want) {
				t.Fatalf("record %d (%q): %d outputs, in-process %d", i, in.Payload, len(r.Outputs), len(want))
			}
			for k := range want {
				if o := r.Outputs[k]; o.Key != want[k].Key || !bytes.Equal(o.Payload, want[k].Payload) || !maps.Equal(o.Meta, want[k].Meta) {
					t.Fatalf("record %d output %d: %v, in-process %v", i, k, o, want[k])
				}
			}
			i++
		}
	}
	if out.credit() < len(input) {
		t.Fatalf("granted %d credits for %d records", out.credit(), len(input))
	}
}

func stageInProcess(r troupe.Record, attempt int) (outs []troupe.Record, err error) {
	defer func() {
		if v := recover(); v != nil {
			outs, err = nil, fmt.Errorf("panic: %v", v)
		}
	}()
	r.Payload = bytes.Clone(r.Payload)
	// What the SDK tells the plugin's Process about the call (see start): stage and attempt.
	return stage.Process(callctx.With(context.Background(), &callctx.Info{Stage: "test", Attempt: attempt}), r)
}

func submitOne(t *testing.T, b *Backend, out *outcomes, payload string) {
	t.Helper()
	out.waitFor(t, "credit", func() bool { return out.credit() > 0 })
	if err := b.Submit([]troupe.Task{rec(1, payload)}); err != nil {
		t.Fatal(err)
	}
}

func TestCrashReasons(t *testing.T) {
	cases := []struct {
		payload string
		want    []string
	}{
		{"segv", []string{"killed by SIGSEGV"}},
		{"exit3", []string{"exited with code 3", "exiting with code 3"}},
	}
	for _, c := range cases {
		t.Run(c.payload, func(t *testing.T) {
			noStrays(t)
			out := newOutcomes()
			b := start(t, Options{}, out)
			submitOne(t, b, out, "ok")
			submitOne(t, b, out, c.payload)
			err := out.waitFail(t, time.Minute)
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("reason %q does not contain %q", err, w)
				}
			}
			if alive(b.Pid()) {
				t.Errorf("pid %d alive after Fail", b.Pid())
			}
		})
	}
}

func TestSIGKILL(t *testing.T) {
	noStrays(t)
	out := newOutcomes()
	b := start(t, Options{}, out)
	submitOne(t, b, out, "hang")
	t0 := time.Now()
	if err := syscall.Kill(b.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := out.waitFail(t, time.Minute)
	if !strings.Contains(err.Error(), "killed by SIGKILL") {
		t.Fatalf("reason %q", err)
	}
	t.Logf("crash detected in %v: %v", time.Since(t0), err)
	if err := b.Submit([]troupe.Task{rec(2, "x")}); err == nil {
		t.Fatal("Submit after Fail succeeded")
	}
}

func TestCloseKillsHangingPluginWithinGrace(t *testing.T) {
	noStrays(t)
	out := newOutcomes()
	b := start(t, Options{}, out)
	submitOne(t, b, out, "hang")
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 1500*time.Millisecond {
		t.Fatalf("Close took %v with a 600ms context", d)
	}
	if alive(b.Pid()) {
		t.Fatal("plugin alive after Close")
	}
	if err := b.Close(ctx); err != nil { // idempotent
		t.Fatal(err)
	}
	select {
	case err := <-out.failed:
		t.Fatalf("Close reported Fail: %v", err)
	default:
	}
}

func TestGracefulCloseExitsCleanly(t *testing.T) {
	noStrays(t)
	out := newOutcomes()
	b := start(t, Options{}, out)
	submitOne(t, b, out, "x")
	out.waitFor(t, "result", func() bool { return out.reported() == 1 })
	t0 := time.Now()
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("graceful Close took %v", d)
	}
	if r := b.proc.exitReason(); r != "exited with code 0" {
		t.Fatalf("plugin %s after a graceful close", r)
	}
}

func TestGrandchildrenDieWithThePlugin(t *testing.T) {
	noStrays(t)
	logs := &lineCollector{}
	out := newOutcomes()
	b := start(t, Options{Logger: logs.logger()}, out)
	submitOne(t, b, out, "child")
	var child int
	deadline := time.Now().Add(5 * time.Second)
	for child == 0 && time.Now().Before(deadline) {
		for _, l := range logs.lines() {
			if s, ok := strings.CutPrefix(l, "child "); ok {
				child, _ = strconv.Atoi(s)
			} else if i := strings.Index(l, " child "); i >= 0 {
				child, _ = strconv.Atoi(strings.TrimSpace(l[i+7:]))
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if child == 0 || !alive(child) {
		t.Fatalf("grandchild not seen running (logs %q)", logs.lines())
	}
	if err := syscall.Kill(b.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	out.waitFail(t, time.Minute)
	reap(t, child) // reparented to us (subreaper) once the plugin died
	if alive(child) {
		t.Fatal("grandchild survived the plugin")
	}
}

func TestRSSLimit(t *testing.T) {
	noStrays(t)
	out := newOutcomes()
	b := start(t, Options{Limits: Limits{RSS: 128 << 20}, SampleInterval: 50 * time.Millisecond}, out)
	submitOne(t, b, out, "leak")
	err := out.waitFail(t, time.Minute)
	if !strings.Contains(err.Error(), "> limit 128 MiB") || !strings.Contains(err.Error(), "rss ") {
		t.Fatalf("reason %q", err)
	}
	if alive(b.Pid()) {
		t.Fatal("plugin alive after the rss limit")
	}
}

func TestCPULimit(t *testing.T) {
	noStrays(t)
	out := newOutcomes()
	// A low limit, so that a spinning plugin crosses it even when other processes keep every core
	// busy (its share of a core may then be far below 100%); an idle one stays near 0%.
	b := start(t, Options{Limits: Limits{CPU: 20, CPUWindow: 700 * time.Millisecond}, SampleInterval: 50 * time.Millisecond}, out)
	submitOne(t, b, out, "x")
	out.waitFor(t, "result", func() bool { return out.reported() == 1 })
	time.Sleep(time.Second) // idle: under the limit
	select {
	case err := <-out.failed:
		t.Fatalf("idle plugin failed: %v", err)
	default:
	}
	submitOne(t, b, out, "spin")
	err := out.waitFail(t, time.Minute)
	if !strings.Contains(err.Error(), "> limit 20% for 700ms") {
		t.Fatalf("reason %q", err)
	}
}

func TestSHA256(t *testing.T) {
	noStrays(t)
	good, err := sha256File(testPlugin)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Repeat("ab", 32)
	_, err = Start(context.Background(), Options{Cmd: []string{testPlugin}, SHA256: bad}, Worker{}, newOutcomes())
	if err == nil || !strings.Contains(err.Error(), good) || !strings.Contains(err.Error(), bad) {
		t.Fatalf("mismatch error %v does not name both sums", err)
	}
	start(t, Options{SHA256: strings.ToUpper(good)}, newOutcomes())
}

func sha256File(path string) (string, error) {
	out, err := exec.Command("sha256sum", path).Output()
	if err != nil {
		return "", err
	}
	return strings.Fields(string(out))[0], nil
}

func TestOtherMajorVersionRefused(t *testing.T) {
	noStrays(t)
	_, err := Start(context.Background(), Options{Cmd: []string{pluginV2}}, Worker{}, newOutcomes())
	if err == nil || !strings.Contains(err.Error(), "major version 2") || !strings.Contains(err.Error(), "host speaks 1.0") {
		t.Fatalf("version mismatch error: %v", err)
	}
}

func TestStartupDeadline(t *testing.T) {
	noStrays(t)
	t0 := time.Now()
	_, err := Start(context.Background(), Options{
		Cmd: []string{testPlugin}, Env: map[string]string{"TESTPLUGIN_SLOW_START": "30s"},
		Limits: Limits{Startup: 300 * time.Millisecond},
	}, Worker{}, newOutcomes())
	if err == nil || !strings.Contains(err.Error(), "startup exceeded 300ms") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Fatalf("failed start took %v", d)
	}
}

func TestStartErrors(t *testing.T) {
	noStrays(t)
	_, err := Start(context.Background(), Options{Cmd: []string{testPlugin}}, Worker{Options: map[string]any{"fail_setup": true}}, newOutcomes())
	if err == nil || !strings.Contains(err.Error(), "setup refused: fail_setup is set") {
		t.Fatalf("setup error: %v", err)
	}
	_, err = Start(context.Background(), Options{Cmd: []string{"/bin/true"}}, Worker{}, newOutcomes())
	if err == nil || !strings.Contains(err.Error(), "handshake") && !strings.Contains(err.Error(), "exited") {
		t.Fatalf("non-plugin: %v", err)
	}
	_, err = Start(context.Background(), Options{Cmd: []string{binDir + "/missing"}}, Worker{}, newOutcomes())
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("missing binary: %v", err)
	}
	if err := (&Options{}).Validate(); err == nil {
		t.Fatal("empty command accepted")
	}
	if err := (&Options{Cmd: []string{"x"}, SHA256: "xyz"}).Validate(); err == nil {
		t.Fatal("bad sha256 accepted")
	}
	// Integral options arrive as int (Setup checks).
	start(t, Options{}, newOutcomes())
	b, err := Start(context.Background(), Options{Cmd: []string{testPlugin}}, Worker{Options: map[string]any{"n": 3}}, newOutcomes())
	if err != nil {
		t.Fatal(err)
	}
	b.Close(context.Background())
}

// TestForkThreadExit starts a plugin from a goroutine whose OS thread then exits. Were the
// process forked from that thread, its parent-death signal would kill it.
func TestForkThreadExit(t *testing.T) {
	noStrays(t)
	out := newOutcomes()
	var b *Backend
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread exits with this goroutine
		b, err = Start(context.Background(), Options{Cmd: []string{testPlugin}}, Worker{}, out)
	}()
	<-done
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	time.Sleep(300 * time.Millisecond)
	if !alive(b.Pid()) {
		t.Fatal("plugin died when the thread that called Start exited")
	}
	submitOne(t, b, out, "x")
	out.waitFor(t, "result", func() bool { return out.reported() == 1 })
}

// TestHostKilled SIGKILLs a host with running plugins: they must all be dead a second later.
func TestHostKilled(t *testing.T) {
	noStrays(t)
	cmd := exec.Command(testHost, "3", testPlugin)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pids []int
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "ready" {
		if s, ok := strings.CutPrefix(sc.Text(), "pid "); ok {
			pid, _ := strconv.Atoi(s)
			pids = append(pids, pid)
		}
	}
	if len(pids) != 3 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("host started %v", pids)
	}
	for _, pid := range pids {
		if st, _ := procStat(pid); st.pgrp != pid {
			t.Errorf("plugin %d is in process group %d, not its own", pid, st.pgrp)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	time.Sleep(time.Second)
	for _, pid := range pids {
		if alive(pid) || groupAlive(pid) {
			t.Errorf("plugin %d (or its group) alive 1s after its host was SIGKILLed", pid)
		}
	}
	for _, pid := range pids {
		reap(t, pid)
	}
	reapGuardians(t)
}

// TestNoLeaksOverCycles starts and kills plugins many times and checks that goroutines and file
// descriptors come back to where they were.
func TestNoLeaksOverCycles(t *testing.T) {
	noStrays(t)
	cycles := 1000
	if testing.Short() {
		cycles = 50
	}
	cycle := func(i int) {
		out := newOutcomes()
		b, err := Start(context.Background(), Options{Cmd: []string{testPlugin}}, Worker{Index: i}, out)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			syscall.Kill(b.Pid(), syscall.SIGKILL)
			out.waitFail(t, time.Minute)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := b.Close(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	for i := 0; i < 5; i++ { // warm up gRPC's and the runtime's lazily started goroutines
		cycle(i)
	}
	g0, fd0 := runtime.NumGoroutine(), countFDs(t)
	t0 := time.Now()
	const parallel = 4
	var wg sync.WaitGroup
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < cycles; i += parallel {
				cycle(i)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d start/kill cycles in %v", cycles, time.Since(t0))
	var g1, fd1 int
	for i := 0; i < 50; i++ {
		g1, fd1 = runtime.NumGoroutine(), countFDs(t)
		if g1 <= g0 && fd1 <= fd0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("goroutines %d -> %d, fds %d -> %d", g0, g1, fd0, fd1)
}

func countFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// Closing a backend whose process is dead returns at once and leaves the teardown to the
// background, which still reaps the process: WaitClosed waits for it.
func TestCloseOfDeadBackendReapsInBackground(t *testing.T) {
	noStrays(t)
	out := newOutcomes()
	b, err := Start(context.Background(), Options{Cmd: []string{testPlugin}}, Worker{Stage: "test"}, out)
	if err != nil {
		t.Fatal(err)
	}
	submitOne(t, b, out, "hang")
	if err := syscall.Kill(b.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := out.waitFail(t, time.Minute); !strings.Contains(err.Error(), "killed by SIGKILL") {
		t.Fatalf("reason %q", err)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := WaitClosed(ctx); err != nil {
		t.Fatal(err)
	}
	if !b.reaped() {
		t.Fatal("process not reaped after WaitClosed")
	}
	if _, ok := procStat(b.Pid()); ok {
		t.Errorf("pid %d still exists after WaitClosed", b.Pid())
	}
	if err := b.Close(context.Background()); err != nil { // idempotent
		t.Fatal(err)
	}
}
