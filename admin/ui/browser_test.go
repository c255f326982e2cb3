package ui_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// deadline bounds every wait on the page: an upper bound for a loaded machine, never a measure.
const deadline = 60 * time.Second

// chromium returns the path of the browser, or skips the test when there is none and this is
// not CI (.ci/run installs Debian's chromium package; there its absence is a failure).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium on PATH in CI: .ci/run installs Debian's chromium package")
	}
	t.Skip("skipping the browser test: no chromium on PATH (apt-get install -y chromium)")
	return ""
}

// browser starts a headless Chromium with a fresh profile and returns a tab's context. When
// the test ends the browser is stopped and the test fails if any of its processes is left.
func browser(t *testing.T) context.Context {
	t.Helper()
	exe := chromium(t)
	profile := t.TempDir()
	var out bytes.Buffer
	opts := append(chromedp.DefaultExecAllocatorOptions[:], // headless, no first run, no background networking, no sync
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1500, 1000),
		chromedp.CombinedOutput(&out),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // kills the browser and waits for it
		if left := waitNoProcesses("--user-data-dir=" + profile); len(left) > 0 {
			t.Errorf("chromium processes left behind: %v (killed now)", left)
		}
		if t.Failed() && out.Len() > 0 {
			t.Logf("chromium's output:\n%s", lastBytes(out.Bytes(), 4000))
		}
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting %s: %v\n%s", exe, err, lastBytes(out.Bytes(), 4000))
	}
	return ctx
}

func lastBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// waitNoProcesses waits until no process has arg on its command line; those still there at the
// deadline are killed and returned.
func waitNoProcesses(arg string) []int {
	end := time.Now().Add(deadline)
	for {
		pids := processesWith(arg)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(end) {
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			return pids
		}
		<-time.After(50 * time.Millisecond)
	}
}

func processesWith(arg string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, a := range bytes.Split(cmdline, []byte{0}) {
			if string(a) == arg && alive(pid) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// alive says whether pid runs (a zombie does not).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	f := bytes.Fields(stat[i+1:])
	return len(f) > 0 && string(f[0]) != "Z" && string(f[0]) != "X"
}

// pageNode is what the page shows of a node, read from its element's data attributes.
type pageNode struct {
	Path     string `json:"path"`
	Kind     string `json:"kind"`
	State    string `json:"state"`
	PID      int    `json:"pid"`
	Restarts int    `json:"restarts"`
	Flashes  int    `json:"flashes"`
	Flash    bool   `json:"flash"`
	Text     string `json:"text"`
}

const readNodes = `Array.from(document.querySelectorAll('#tree [data-path]')).map(e => ({
	path: e.dataset.path, kind: e.dataset.kind, state: e.dataset.state,
	pid: Number(e.dataset.pid), restarts: Number(e.dataset.restarts),
	flashes: Number(e.dataset.flashes), flash: e.classList.contains('flash'), text: e.innerText}))`

// waitPage evaluates expr on the page until ok accepts its value, and fails the test at the
// deadline with the last value ok rejected.
func waitPage[T any](t *testing.T, ctx context.Context, what, expr string, ok func(T) error) T {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
		if err == nil {
			if err = ok(v); err == nil {
				return v
			}
		}
		if time.Now().After(end) {
			screenshot(t, ctx, "observer-failed.png")
			t.Fatalf("%s: not seen on the page within %v: %v", what, deadline, err)
		}
		<-time.After(100 * time.Millisecond)
	}
}

// waitNodes waits until the page's tree satisfies ok.
func waitNodes(t *testing.T, ctx context.Context, what string, ok func(map[string]pageNode) error) map[string]pageNode {
	t.Helper()
	list := waitPage(t, ctx, what, readNodes, func(list []pageNode) error {
		m := make(map[string]pageNode, len(list))
		var paths []string
		for _, n := range list {
			m[n.Path] = n
			paths = append(paths, n.Path)
		}
		if err := ok(m); err != nil {
			return fmt.Errorf("%w (the page shows %q)", err, paths)
		}
		return nil
	})
	m := make(map[string]pageNode, len(list))
	for _, n := range list {
		m[n.Path] = n
	}
	return m
}

// screenshot saves the whole page as a PNG under $TROUPE_ARTIFACTS (or the test's temporary
// directory) and logs where.
func screenshot(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("TROUPE_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
	return path
}

// watchFlashes records on the page, from now on, each node that takes the class "flash", with
// the CSS animation that the class gives it then: readFlashes returns them by path. (A flash
// lasts under two seconds; the record does not depend on looking at the right moment.)
const watchFlashes = `(() => {
	window.flashed = {};
	new MutationObserver((ms) => {
		for (const m of ms) {
			const e = m.target;
			if (e.dataset && e.dataset.path && e.classList.contains('flash')) {
				window.flashed[e.dataset.path] = getComputedStyle(e).animationName;
			}
		}
	}).observe(document.getElementById('tree'), {attributes: true, attributeFilter: ['class'], subtree: true});
	return true;
})()`

const readFlashes = `window.flashed || {}`
