package host

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/proctest"
)

// startOrphaning starts the test plugin in TESTPLUGIN_ORPHAN mode and returns the backend and
// the pid of the descendant that tries to outlive it, once that one runs.
func startOrphaning(t *testing.T, mode string, out *outcomes) (*Backend, int) {
	t.Helper()
	pidFile := filepath.Join(t.TempDir(), "pids")
	b := start(t, Options{Env: map[string]string{"TESTPLUGIN_ORPHAN": mode, "TESTPLUGIN_PIDFILE": pidFile}}, out)
	pids := proctest.WaitPIDs(t, pidFile, 1, nil)
	if !alive(pids[0]) {
		t.Fatalf("descendant %d not running", pids[0])
	}
	return b, pids[0]
}

func requireCgroups(t *testing.T) {
	t.Helper()
	if _, err := cgroupBase(); err != nil {
		t.Skipf("no cgroup v2 for plugins here: %v", err)
	}
}

// A plugin starts a daemon (setsid and a double fork), then is killed: the daemon, in no
// process group of the plugin's and reparented, dies with it, before the backend is closed.
func TestSetsidDescendantDiesWithKilledPlugin(t *testing.T) {
	requireCgroups(t)
	noStrays(t)
	out := newOutcomes()
	b, daemon := startOrphaning(t, "setsid", out)
	defer b.Close(context.Background())
	if st, _ := procStat(daemon); st.pgrp == b.Pid() {
		t.Fatalf("daemon %d is in the plugin's process group", daemon)
	}
	if err := syscall.Kill(b.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	out.waitFail(t, time.Minute)
	proctest.WaitGone(t, []int{daemon}, "the killed plugin's daemon")
	reap(t, daemon) // reparented to us (subreaper)
}

// A plugin that started a daemon is closed gracefully: once Close returns, the daemon is dead.
func TestSetsidDescendantDiesAtClose(t *testing.T) {
	noStrays(t)
	out := newOutcomes()
	b, daemon := startOrphaning(t, "setsid", out)
	submitOne(t, b, out, "x")
	out.waitFor(t, "result", func() bool { return out.reported() == 1 })
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if alive(daemon) {
		t.Errorf("daemon %d still running after Close returned", daemon)
	}
	proctest.WaitGone(t, []int{daemon}, "the closed plugin's daemon")
	reap(t, daemon)
}

// Each plugin process runs in a cgroup of its own, under one for the host process, and the
// cgroup is gone once the backend is closed.
func TestPluginRunsInItsOwnCgroup(t *testing.T) {
	requireCgroups(t)
	noStrays(t)
	out := newOutcomes()
	b := start(t, Options{}, out)
	data, err := os.ReadFile("/proc/" + strconv.Itoa(b.Pid()) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var cg string
	for line := range strings.SplitSeq(string(data), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			cg = p
		}
	}
	own, err := ownCgroup()
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Base(cgroups.base) + "/p"
	if !strings.HasPrefix(cg, filepath.Join(own, want)) || !strings.HasPrefix(filepath.Base(cgroups.base), "troupe-"+strconv.Itoa(os.Getpid())+"-") {
		t.Fatalf("plugin in cgroup %q, want %s<n>", cg, want)
	}
	mount, err := cgroup2Mount()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(mount, cg)
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("cgroup %s left after Close (stat: %v)", dir, err)
	}
}

// The guardian kills and removes the cgroups it guards once its pipe closes.
func TestGuardKillsOnEOF(t *testing.T) {
	requireCgroups(t)
	noStrays(t)
	out := newOutcomes()
	pidFile := filepath.Join(t.TempDir(), "pids")
	b := start(t, Options{Env: map[string]string{"TESTPLUGIN_ORPHAN": "group", "TESTPLUGIN_PIDFILE": pidFile}}, out)
	defer b.Close(context.Background())
	survivor := proctest.WaitPIDs(t, pidFile, 1, nil)[0]
	// A guardian of our own for the plugin's cgroup (the host's guardian watches the whole host).
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		guard(r, b.proc.cg.dir)
	}()
	w.Close()
	<-done
	r.Close()
	if alive(survivor) || alive(b.Pid()) {
		t.Fatalf("plugin %d or its child %d alive after the guard ran", b.Pid(), survivor)
	}
	if _, err := os.Stat(b.proc.cg.dir); !os.IsNotExist(err) {
		t.Errorf("cgroup %s left after the guard ran (stat: %v)", b.proc.cg.dir, err)
	}
	out.waitFail(t, time.Minute)
	reap(t, survivor)
}

// reapGuardians reaps the guardians of hosts that ran as our children and were killed: we are a
// subreaper, so they are reparented to us; each exits once it has killed its host's plugins.
// Our own guardian is left alone (it lives as long as our plugins do).
func reapGuardians(t *testing.T) {
	t.Helper()
	for _, g := range childGuardians() {
		if !g.ours {
			proctest.WaitGone(t, []int{g.pid}, "a killed host's guardian")
			reap(t, g.pid)
		}
	}
}

type guardianProc struct {
	pid    int
	ours   bool // guards this process's plugin cgroups
	zombie bool
}

// childGuardians lists the plugin guardians (live or zombie) whose parent is this process.
func childGuardians() []guardianProc {
	var out []guardianProc
	me := os.Getpid()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, ok := procStat(pid)
		if !ok || st.ppid != me {
			continue
		}
		comm, _ := os.ReadFile("/proc/" + e.Name() + "/comm")
		env, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
		// A zombie keeps its name, not its environment.
		if strings.TrimSpace(string(comm)) != "troupe-guardian" && !bytes.Contains(env, []byte(guardianEnv+"=")) {
			continue
		}
		ours := cgroups.base != "" && bytes.Contains(env, []byte(guardianEnv+"="+cgroups.base+"\x00"))
		out = append(out, guardianProc{pid: pid, ours: ours || pid == guardianPid(), zombie: st.state == 'Z'})
	}
	return out
}

// ownGuardians lists this process's own guardians, live or zombie.
func ownGuardians() []guardianProc {
	var out []guardianProc
	for _, g := range childGuardians() {
		if g.ours || g.zombie {
			out = append(out, g)
		}
	}
	return out
}

// waitNoOwnGuardian waits (up to a minute) until this process has no guardian, live or zombie.
func waitNoOwnGuardian(t *testing.T, what string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		g := ownGuardians()
		if len(g) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: guardians %+v still there a minute later", what, g)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitClosed calls WaitClosed (the background teardowns of dead backends) with a generous
// deadline.
func waitClosed(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := WaitClosed(ctx); err != nil {
		t.Fatal(err)
	}
}

// The guardian lives only while plugin cgroups do: it is gone (exited and reaped) once the last
// plugin is closed, and back with the next plugin.
func TestGuardianRetiresWithLastPlugin(t *testing.T) {
	requireCgroups(t)
	noStrays(t)
	oneGuardian := func(what string) int {
		t.Helper()
		g := ownGuardians()
		if len(g) != 1 || g[0].zombie || g[0].pid != guardianPid() {
			t.Fatalf("%s: guardians %+v, want one live guardian, pid %d", what, g, guardianPid())
		}
		return g[0].pid
	}
	out1, out2 := newOutcomes(), newOutcomes()
	b1 := start(t, Options{}, out1)
	first := oneGuardian("one plugin running")
	b2 := start(t, Options{}, out2)
	if g := oneGuardian("two plugins running"); g != first {
		t.Fatalf("a second plugin started guardian %d besides %d", g, first)
	}
	if err := b1.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	oneGuardian("one of two plugins closed")
	if err := b2.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitClosed(t)
	waitNoOwnGuardian(t, "every plugin closed")
	if _, err := os.Stat(cgroups.base); !os.IsNotExist(err) {
		t.Errorf("cgroup %s left after the guardian retired (stat: %v)", cgroups.base, err)
	}
	b3 := start(t, Options{}, newOutcomes())
	if g := oneGuardian("a plugin started again"); g == first {
		t.Fatalf("guardian %d, already retired, is back", g)
	}
	if err := b3.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitClosed(t)
	waitNoOwnGuardian(t, "the plugin started again closed")
}

// Plugins starting and closing concurrently always run under a live guardian: a start never
// goes without one while the previous guardian retires.
func TestGuardianAlwaysThereWhilePluginsRun(t *testing.T) {
	requireCgroups(t)
	noStrays(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 3; i++ {
				b, err := Start(context.Background(), Options{Cmd: []string{testPlugin}}, Worker{Stage: "test", Index: 1}, newOutcomes())
				if err != nil {
					errs <- err
					return
				}
				if b.proc.cg == nil {
					errs <- fmt.Errorf("plugin %d started without a cgroup", b.Pid())
				} else if g := guardianPid(); g == 0 || !alive(g) {
					errs <- fmt.Errorf("plugin %d runs with no live guardian (pid %d)", b.Pid(), g)
				}
				if err := b.Close(context.Background()); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	waitClosed(t)
	waitNoOwnGuardian(t, "every plugin closed")
}

// Without cgroups, the plugin SDK kills what the plugin started when it exits: a daemon that
// left the plugin's process group dies at a graceful close.
func TestFallbackSDKKillsDaemonOnExit(t *testing.T) {
	noCgroups.Store(true)
	defer noCgroups.Store(false)
	noStrays(t)
	out := newOutcomes()
	b, daemon := startOrphaning(t, "setsid", out)
	if b.proc.cg != nil {
		t.Fatal("plugin started in a cgroup")
	}
	submitOne(t, b, out, "x")
	out.waitFor(t, "result", func() bool { return out.reported() == 1 })
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	proctest.WaitGone(t, []int{daemon}, "the closed plugin's daemon")
	reap(t, daemon)
}

// Without cgroups, a host killed with SIGKILL: the plugin SDK gets its parent-death signal and
// kills its process group, where a child ignores SIGTERM.
func TestFallbackHostKilled(t *testing.T) {
	noStrays(t)
	pidFile := filepath.Join(t.TempDir(), "pids")
	cmd := exec.Command(testHost, "1", testPlugin, "orphan=group", "pidfile="+pidFile)
	cmd.Env = append(os.Environ(), CgroupEnv+"=off")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var plugin int
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "ready" {
		if s, ok := strings.CutPrefix(sc.Text(), "pid "); ok {
			plugin, _ = strconv.Atoi(s)
		}
	}
	if plugin == 0 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("the host started no plugin")
	}
	child := proctest.WaitPIDs(t, pidFile, 1, nil)[0]
	if st, _ := procStat(child); st.pgrp != plugin {
		t.Fatalf("child %d in process group %d, not the plugin's %d", child, st.pgrp, plugin)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	proctest.WaitGone(t, []int{plugin}, "the plugin of a SIGKILLed host")
	proctest.WaitGone(t, []int{child}, "the child of a SIGKILLed host's plugin")
	reap(t, plugin)
	reap(t, child)
}

// Without cgroups, a plugin the host has to SIGKILL (it hangs and ignores the graceful stop):
// the host kills the daemon it started too, found below the plugin (its subreaper) in /proc.
func TestFallbackHostKillsDaemonOfKilledPlugin(t *testing.T) {
	noCgroups.Store(true)
	defer noCgroups.Store(false)
	noStrays(t)
	reapLater := killAndReapAtEnd(t) // after the backend's Close (cleanups run last first)
	logs := &lineCollector{}
	out := newOutcomes()
	pidFile := filepath.Join(t.TempDir(), "pids")
	b := start(t, Options{Grace: time.Second, Logger: logs.logger(), Env: map[string]string{"TESTPLUGIN_ORPHAN": "setsid", "TESTPLUGIN_PIDFILE": pidFile}}, out)
	daemon := proctest.WaitPIDs(t, pidFile, 1, nil)[0]
	reapLater(daemon)
	// The plugin must be inside Process, hanging, when Close starts: a record still on its way
	// (in the socket or the plugin's queue) is dropped by the graceful Shutdown, and the plugin
	// exits with 0 instead of being killed. "child" logs once Process runs, then hangs.
	submitOne(t, b, out, "child")
	reapLater(waitChildLogged(t, logs))
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !b.proc.killedBySIGKILL() {
		t.Fatalf("plugin %s, want killed by SIGKILL (the case under test)", b.proc.exitReason())
	}
	proctest.WaitGone(t, []int{daemon}, "the daemon of a plugin killed by its host")
}

// waitChildLogged waits (up to a minute) until the plugin has logged "child <pid>" (the test
// stage's "child" record, which then hangs) and returns that pid.
func waitChildLogged(t *testing.T, logs *lineCollector) int {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		for _, l := range logs.lines() {
			if i := strings.Index(" "+l, " child "); i >= 0 {
				if pid, err := strconv.Atoi(strings.TrimSpace(l[i+6:])); err == nil {
					return pid
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the plugin logged no \"child <pid>\" within a minute (logs %q)", logs.lines())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// killAndReapAtEnd returns a function registering pids (descendants of a plugin, reparented to us
// once it dies) that the test's cleanup kills if still running and reaps, so that a test that
// fails halfway leaves no process and no zombie. Call it before start, so that its cleanup runs
// after the backend's Close.
func killAndReapAtEnd(t *testing.T) func(pid int) {
	t.Helper()
	var pids []int
	t.Cleanup(func() {
		for _, pid := range pids {
			if alive(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			proctest.WaitGone(t, []int{pid}, "a plugin's descendant")
			reap(t, pid)
		}
	})
	return func(pid int) { pids = append(pids, pid) }
}
