package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/troupe-dev/troupe/plugins"
)

func TestMain(m *testing.M) {
	// The harness runs this test binary again as its children.
	if os.Getenv(ChildEnv) != "" {
		os.Exit(Main(nil, os.Stdout, os.Stderr))
	}
	selfArgs = func() ([]string, error) {
		exe, err := os.Executable()
		return []string{exe}, err
	}
	code := m.Run()
	// Reaps what the failover figures closed dead, and retires the plugin guardian, which
	// lingers a moment after the last plugin for a restart.
	if err := plugins.WaitClosed(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
		if left := children(); len(left) > 0 {
			fmt.Fprintln(os.Stderr, "child processes left behind:", left)
			code = 1
		}
	}
	os.Exit(code)
}

// children lists the processes whose parent is this process (the plugin host's guardian too:
// it lives only while plugins do).
func children() []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 && len(s) > i+3 {
			// ") <state> <ppid> ": any state.
			fields := strings.Fields(s[i+1:])
			if len(fields) > 1 && fields[1] == fmt.Sprint(os.Getpid()) {
				out = append(out, e.Name()+":"+fields[0])
			}
		}
	}
	return out
}

// tinySizes exercise every figure's code path in a few seconds; the values mean nothing.
var tinySizes = sizes{
	inproc: 2_000, plugin64: 2_000, plugin4k: 200, rpc: 20, pool: 2_000, pyplugin: 2_000,
	images: 2, photos: 2, restarts: 2, rssSmall: 2_000, rssLarge: 4_000, wordcount: 200_000, timeLimit: 2 * time.Minute,
}

func TestHarnessSmoke(t *testing.T) {
	h := &harness{sizes: tinySizes, log: &bytes.Buffer{}}
	rep := h.run(context.Background(), nil)
	var names []string
	for _, f := range rep.Figures {
		names = append(names, f.Name)
		if f.Error != "" {
			t.Errorf("%s: %s", f.Name, f.Error)
			continue
		}
		if f.Skipped != "" {
			t.Logf("%s skipped: %s", f.Name, f.Skipped)
			continue
		}
		if !(f.Troupe > 0) {
			t.Errorf("%s: troupe value %v", f.Name, f.Troupe)
		}
		if f.Target != "-" && f.Met == nil {
			t.Errorf("%s has target %q but no verdict", f.Name, f.Target)
		}
	}
	if got, want := strings.Join(names, ","), strings.Join(Names(), ","); got != want {
		t.Fatalf("figures %s, want %s", got, want)
	}

	var table bytes.Buffer
	rep.WriteTable(&table)
	lines := strings.Split(table.String(), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[2], "figure") {
		t.Fatalf("table has no header line:\n%s", table.String())
	}
	for _, col := range []string{"troupe", "baseline", "ratio", "target", "met?"} {
		if !strings.Contains(lines[2], col) {
			t.Errorf("table header %q lacks column %q", lines[2], col)
		}
	}
	for i, n := range Names() {
		if !strings.HasPrefix(lines[3+i], n+" ") {
			t.Errorf("table line %d is %q, want figure %s", 3+i, lines[3+i], n)
		}
	}

	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		CPUs    int `json:"cpus"`
		Figures []struct {
			Name     string   `json:"name"`
			Troupe   *float64 `json:"troupe"`
			Baseline *float64 `json:"baseline"`
			Ratio    *float64 `json:"ratio"`
			Target   string   `json:"target"`
			Met      *bool    `json:"met"`
		} `json:"figures"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("JSON does not decode: %v\n%s", err, b)
	}
	if back.CPUs <= 0 || len(back.Figures) != len(rep.Figures) {
		t.Fatalf("JSON lost data: %s", b)
	}
}

func TestMainFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main([]string{"--bogus"}, &out, &errb); code != 2 {
		t.Errorf("bad flag: exit %d, want 2", code)
	}
	if code := Main([]string{"--only", "("}, &out, &errb); code != 2 {
		t.Errorf("bad regexp: exit %d, want 2", code)
	}
	out.Reset()
	// A filter matching nothing runs nothing and still prints a well-formed document.
	if code := Main([]string{"--json", "--quick", "--only", "^nothing$"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || !rep.Quick || len(rep.Figures) != 0 {
		t.Fatalf("report %+v, err %v:\n%s", rep, err, out.String())
	}
	out.Reset()
	if code := Main([]string{"--quick", "--only", "^inproc-3stage-64B$"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "inproc-3stage-64B ") || strings.Contains(out.String(), "batch1") {
		t.Fatalf("--only did not select one figure:\n%s", out.String())
	}
}
