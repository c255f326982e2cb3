package host

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/troupe-dev/troupe"
)

// TestStartFailureKinds checks which failed starts are permanent (retrying cannot help: the run
// fails at once) and which are transient (retried under the restart policy, like a crash).
func TestStartFailureKinds(t *testing.T) {
	noStrays(t)
	good, err := sha256File(testPlugin)
	if err != nil {
		t.Fatal(err)
	}
	notExec := filepath.Join(t.TempDir(), "plain-file")
	if err := os.WriteFile(notExec, []byte("not a program\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	echo := filepath.Join(t.TempDir(), "echo.sh")
	if err := os.WriteFile(echo, []byte("#!/bin/sh\necho hello\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	starts := filepath.Join(t.TempDir(), "starts")
	for _, c := range []struct {
		name      string
		opts      Options
		w         Worker
		permanent bool
		want      string
	}{
		{"missing binary", Options{Cmd: []string{binDir + "/missing"}}, Worker{}, true, "no such file"},
		{"not executable", Options{Cmd: []string{notExec}}, Worker{}, true, "permission denied"},
		{"sha256 mismatch", Options{Cmd: []string{testPlugin}, SHA256: strings.Repeat("ab", 32)}, Worker{}, true, good},
		{"other major version", Options{Cmd: []string{pluginV2}}, Worker{}, true, "major version 2"},
		{"foreign cookie", Options{Cmd: []string{testPlugin}, Env: map[string]string{"TESTPLUGIN_FOREIGN_COOKIE": "1"}}, Worker{}, true, "not a troupe plugin"},
		{"prints something else", Options{Cmd: []string{echo}}, Worker{}, true, `"hello"`},
		{"killed before its handshake", Options{Cmd: []string{testPlugin}, Env: map[string]string{"TESTPLUGIN_STARTS": starts, "TESTPLUGIN_DIE_BEFORE_HANDSHAKE": "1"}}, Worker{}, false, "killed by SIGKILL"},
		{"exits before its handshake", Options{Cmd: []string{"/bin/true"}}, Worker{}, false, "exited with code 0"},
		{"setup refused", Options{Cmd: []string{testPlugin}}, Worker{Options: map[string]any{"fail_setup": true}}, false, "setup refused"},
		{"startup deadline", Options{Cmd: []string{testPlugin}, Env: map[string]string{"TESTPLUGIN_SLOW_START": "30s"}, Limits: Limits{Startup: 300 * time.Millisecond}}, Worker{}, false, "startup exceeded"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := Start(context.Background(), c.opts, c.w, newOutcomes())
			if err == nil {
				b.Close(context.Background())
				t.Fatal("started")
			}
			if IsPermanent(err) != c.permanent || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("permanent=%v, want %v; error %q should contain %q", IsPermanent(err), c.permanent, err, c.want)
			}
		})
	}
	// The start killed before its handshake was the first; the second succeeds.
	b, err := Start(context.Background(), Options{Cmd: []string{testPlugin}, Env: map[string]string{"TESTPLUGIN_STARTS": starts, "TESTPLUGIN_DIE_BEFORE_HANDSHAKE": "1"}}, Worker{}, newOutcomes())
	if err != nil {
		t.Fatal(err)
	}
	b.Close(context.Background())
}

// TestProtocolErrorIsTheBackendsFault: a plugin answering with another record's seq is killed,
// and the failure it reports blames the process (BackendFault), not the record.
func TestProtocolErrorIsTheBackendsFault(t *testing.T) {
	noStrays(t)
	out := newOutcomes()
	b := start(t, Options{Env: map[string]string{"TESTPLUGIN_PROTOCOL": "foreign"}}, out)
	out.waitFor(t, "credit", func() bool { return out.credit() > 0 })
	if err := b.Submit([]troupe.Task{rec(7, "a")}); err != nil {
		t.Fatal(err)
	}
	err := out.waitFail(t, time.Minute)
	f, ok := err.(interface{ BackendFault() bool })
	if !ok || !f.BackendFault() || !strings.Contains(err.Error(), "protocol error") || !strings.Contains(err.Error(), `key="k7"`) {
		t.Fatalf("failure %q (%T) is not a protocol error blaming the backend", err, err)
	}
	if out.reported() != 0 {
		t.Fatal("the bad results were passed on")
	}
	if alive(b.Pid()) {
		t.Fatal("the plugin is still alive")
	}
}
