package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/proctest"
)

// No process started by a plugin outlives the run: not a grandchild that ignores SIGTERM when
// the host is killed with SIGKILL, not a daemon (setsid, double fork) after a successful run,
// not the daemons of plugin processes killed and restarted mid-run. The test plugin starts the
// hostile descendant (TESTPLUGIN_ORPHAN) and it writes its pid to TESTPLUGIN_PIDFILE.
func TestNoPluginDescendantOutlivesTheRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs binaries")
	}
	bin := t.TempDir()
	plugin := filepath.Join(bin, "testplugin")
	troupeBin := filepath.Join(bin, "troupe")
	for _, args := range [][]string{
		{"-o", plugin, "github.com/troupe-dev/troupe/plugins/internal/testplugin"},
		{"-o", troupeBin, "."},
	} {
		if out, err := exec.Command("go", append([]string{"build"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("go build %v: %v\n%s", args, err, out)
		}
	}
	spec := func(dir, mode, extra string) (specPath, pidFile string) {
		pidFile = filepath.Join(dir, "pids")
		specPath = write(t, filepath.Join(dir, "spec.yaml"), fmt.Sprintf(`name: orphans
source: {lines: {path: in.txt}}
stages:
  - name: p
    plugin: {cmd: [%q], env: {TESTPLUGIN_ORPHAN: %s, TESTPLUGIN_PIDFILE: %q}}
%s
sink: {lines: {path: out.txt}}
dead_letter: {path: dead.jsonl}
`, plugin, mode, pidFile, extra))
		return specPath, pidFile
	}

	t.Run("host SIGKILLed, grandchild in the plugin's group ignores SIGTERM", func(t *testing.T) {
		dir := t.TempDir()
		write(t, filepath.Join(dir, "in.txt"), "hang\nhang\n")
		specPath, pidFile := spec(dir, "group", "    workers: 2\n    timeout: 1h")
		cmd := exec.Command(troupeBin, "run", specPath, "--progress", "none")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		cmd.WaitDelay = 10 * time.Second
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pids := proctest.WaitPIDs(t, pidFile, 2, func() {
			cmd.Process.Kill()
			cmd.Wait()
			t.Logf("troupe stderr:\n%s", stderr.String())
		})
		guardians := guardiansOf(cmd.Process.Pid)
		if noCgroupV2() == "" {
			// The guardian names itself once its runtime has started: on a busy machine that
			// may come after the plugins' grandchildren have written their pids.
			deadline := time.Now().Add(30 * time.Second)
			for len(guardians) == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
				guardians = guardiansOf(cmd.Process.Pid)
			}
			if len(guardians) != 1 {
				t.Errorf("the host has guardians %v, want one", guardians)
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		proctest.WaitGone(t, pids, "a grandchild of the SIGKILLed host's plugin")
		proctest.WaitGone(t, guardians, "the SIGKILLed host's guardian")
		proctest.WaitNoneRunning(t, plugin)
	})

	t.Run("daemon of a plugin, successful run", func(t *testing.T) {
		dir := t.TempDir()
		write(t, filepath.Join(dir, "in.txt"), "a\nb\nc\n")
		specPath, pidFile := spec(dir, "setsid", "    workers: 2")
		// In-process: the run's own cleanup must do it (the guardian acts only when the
		// process that ran it exits).
		code, _, stderr := cli(t, "", "run", specPath, "--progress", "none")
		if code != exitOK {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		pids := proctest.WaitPIDs(t, pidFile, 2, nil)
		proctest.WaitGone(t, pids, "a daemon started by a plugin of a finished run")
		proctest.WaitNoneRunning(t, plugin)
	})

	t.Run("daemons of plugins killed and restarted mid-run", func(t *testing.T) {
		// A plugin that exits on its own (exit3) cannot kill its daemon; only a cgroup holds it.
		if why := noCgroupV2(); why != "" {
			t.Skip("without cgroup v2 this is the documented limit of the fallback: " + why)
		}
		dir := t.TempDir()
		write(t, filepath.Join(dir, "in.txt"), "a\nexit3\nb\n")
		specPath, pidFile := spec(dir, "setsid", "    workers: 1\n    attempts: 2\n    restart: {intensity: 10, period: 10s, backoff: {min: 1ms, max: 10ms}}")
		code, _, stderr := cli(t, "", "run", specPath, "--progress", "none")
		if code != exitDeadLetters {
			t.Fatalf("exit %d, want %d\n%s", code, exitDeadLetters, stderr)
		}
		// One daemon per plugin process: the first, the restart after each exit3, and so on.
		pids := proctest.WaitPIDs(t, pidFile, 3, nil)
		proctest.WaitGone(t, pids, "a daemon started by a plugin process killed mid-run")
		proctest.WaitNoneRunning(t, plugin)
	})
}

// noCgroupV2 says why plugins cannot run in cgroups here ("" when they can): no cgroup2 mount,
// or the process's own cgroup is not writable, or TROUPE_PLUGIN_CGROUP=off.
func noCgroupV2() string {
	if os.Getenv("TROUPE_PLUGIN_CGROUP") == "off" {
		return "TROUPE_PLUGIN_CGROUP=off"
	}
	mountinfo, _ := os.ReadFile("/proc/self/mountinfo")
	mount := ""
	for _, line := range strings.Split(string(mountinfo), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if f, g := strings.Fields(pre), strings.Fields(post); ok && len(f) >= 5 && len(g) > 0 && g[0] == "cgroup2" && f[3] == "/" {
			mount = f[4]
			break
		}
	}
	if mount == "" {
		return "no cgroup2 mount"
	}
	cgroup, _ := os.ReadFile("/proc/self/cgroup")
	for _, line := range strings.Split(string(cgroup), "\n") {
		if own, ok := strings.CutPrefix(line, "0::"); ok {
			probe := filepath.Join(mount, own, fmt.Sprintf("troupe-test-%d", os.Getpid()))
			if err := os.Mkdir(probe, 0o755); err != nil {
				return err.Error()
			}
			os.Remove(probe)
			return ""
		}
	}
	return "no cgroup v2 for this process"
}

// guardiansOf lists the plugin guardians whose parent is pid.
func guardiansOf(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		i := strings.LastIndexByte(string(stat), ')')
		if strings.TrimSpace(string(comm)) != "troupe-guardian" || i < 0 {
			continue
		}
		if f := strings.Fields(string(stat[i+1:])); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, p)
		}
	}
	return out
}
