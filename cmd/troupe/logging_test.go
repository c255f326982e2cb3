package main

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe/internal/proctest"
)

// pluginLogRun runs a spec whose plugin stage writes to its stderr ("exiting with code 3") and
// dies on one record, with the given extra flags, and returns stderr and the run id of the
// summary.
func pluginLogRun(t *testing.T, flags ...string) (stderr, runID string) {
	t.Helper()
	dir := t.TempDir()
	plugin := proctest.Build(t, dir, "testplugin", "github.com/troupe-dev/troupe/plugins/internal/testplugin")
	write(t, filepath.Join(dir, "in.txt"), "a\nexit3\nb\n")
	spec := write(t, filepath.Join(dir, "spec.yaml"), `name: logs
source: {lines: {path: in.txt}}
stages:
  - name: up
    plugin: {cmd: [./testplugin]}
    workers: 2
    attempts: 2
sink: {lines: {path: out.txt}}
dead_letter: {path: dead.jsonl}
`)
	summary := filepath.Join(dir, "s.json")
	args := append([]string{"run", spec, "--progress", "none", "--summary-json", summary}, flags...)
	code, _, stderr := cli(t, "", args...)
	if code != exitDeadLetters {
		t.Fatalf("exit %d, want %d (the exit3 record dead-lettered)\n%s", code, exitDeadLetters, stderr)
	}
	if pids := proctest.Running(plugin); len(pids) > 0 {
		t.Fatalf("plugin processes still running after the run: %v", pids)
	}
	s := readJSON(t, summary)
	if !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(s.Run) {
		t.Fatalf("summary's run id %q", s.Run)
	}
	return stderr, s.Run
}

// With --log-format json every log line is a JSON object carrying the run's id (the one in the
// summary); the plugin's stderr lines come through tagged with stage, worker, pid and stream as
// attributes, the pid being that of a plugin process the host reports on, and the host's and
// runtime's lines about workers carry stage and worker too.
func TestJSONLogsCarryRunStageWorkerPid(t *testing.T) {
	stderr, runID := pluginLogRun(t, "--log-format", "json", "--log-level", "info")
	type line = map[string]any
	var logs []line
	for _, l := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
		if !strings.HasPrefix(l, "{") {
			if strings.HasPrefix(l, "time=") || strings.Contains(l, "level=") {
				t.Errorf("a text log line with --log-format json: %q", l)
			}
			continue
		}
		var m line
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %v\n%s", err, l)
		}
		logs = append(logs, m)
	}
	if len(logs) == 0 {
		t.Fatalf("no JSON log lines in:\n%s", stderr)
	}
	var pluginLines, failed []line
	for _, m := range logs {
		if m["run"] != runID {
			t.Errorf("line without run=%s: %v", runID, m)
		}
		switch msg, _ := m["msg"].(string); {
		case strings.HasSuffix(msg, "exiting with code 3"):
			pluginLines = append(pluginLines, m)
		case msg == "plugin failed":
			failed = append(failed, m)
		case msg == "actor exited" || msg == "supervision" && strings.Contains(m["path"].(string), "/worker-"):
			if m["stage"] != "up" || m["worker"] == nil {
				t.Errorf("a worker's line without stage and worker: %v", m)
			}
		}
	}
	if len(pluginLines) == 0 || len(failed) == 0 {
		t.Fatalf("%d lines from the plugin's stderr, %d 'plugin failed' lines; want some of both in:\n%s", len(pluginLines), len(failed), stderr)
	}
	failedPids := map[float64]bool{}
	for _, m := range failed {
		pid, _ := m["pid"].(float64)
		w, ok := m["worker"].(float64)
		if m["stage"] != "up" || !ok || w < 0 || w > 1 || pid <= 0 {
			t.Errorf("'plugin failed' line without stage up, worker 0 or 1, pid: %v", m)
		}
		if reason, _ := m["reason"].(string); !strings.Contains(reason, "(pid "+strconv.Itoa(int(pid))+")") {
			t.Errorf("'plugin failed' line's pid attribute is not the pid its reason names: %v", m)
		}
		failedPids[pid] = true
	}
	for _, m := range pluginLines {
		pid, _ := m["pid"].(float64)
		w, ok := m["worker"].(float64)
		if m["stage"] != "up" || !ok || w < 0 || w > 1 || m["stream"] != "stderr" || m["level"] != "INFO" {
			t.Errorf("plugin stderr line not tagged stage up, worker, stream stderr: %v", m)
		}
		if !failedPids[pid] {
			t.Errorf("plugin stderr line's pid %v is none of the failed plugins' %v: %v", pid, failedPids, m)
		}
		if n := strings.Count(mustJSON(t, m), `"pid"`); n != 1 {
			t.Errorf("pid appears %d times: %v", n, m)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The text format carries the same attributes as key=value pairs; below info (the default,
// warn) the plugin's stderr lines are not shown but its failures are.
func TestTextLogsCarryRunStageWorkerPid(t *testing.T) {
	stderr, runID := pluginLogRun(t, "--log-level", "info")
	re := regexp.MustCompile(`(?m)^time=\S+ level=INFO msg="\S+ \S+ exiting with code 3" run=` + runID + ` stage=up worker=[01] stream=stderr pid=[1-9][0-9]*$`)
	if !re.MatchString(stderr) {
		t.Errorf("no plugin stderr line matching %s in:\n%s", re, stderr)
	}
	stderr, runID = pluginLogRun(t)
	if strings.Contains(stderr, "exiting with code 3\" run=") {
		t.Errorf("plugin stderr lines at the default level (warn):\n%s", stderr)
	}
	re = regexp.MustCompile(`(?m)^time=\S+ level=WARN msg="plugin failed" run=` + runID + ` stage=up worker=[01] pid=[1-9][0-9]* reason=`)
	if !re.MatchString(stderr) {
		t.Errorf("no 'plugin failed' line matching %s in:\n%s", re, stderr)
	}
}

func TestLogFlagsRefuseBadValues(t *testing.T) {
	for _, args := range [][]string{
		{"--log-format", "xml", "version"},
		{"run", "--log-level", "loud", "x.yaml"},
		{"--log-level=", "validate", "x.yaml"},
	} {
		code, _, stderr := cli(t, "", args...)
		if code != exitUsage || !strings.HasPrefix(stderr, "troupe: --log-") {
			t.Errorf("troupe %q: exit %d, stderr %q", args, code, stderr)
		}
	}
	if code, _, stderr := cli(t, "", "--log-format", "json", "--log-level", "DEBUG", "version"); code != exitOK {
		t.Errorf("good values refused: exit %d, %s", code, stderr)
	}
}
