package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/troupe-dev/troupe"
)

// screen is a small terminal: it applies what a program writes (text, \r, \n, and the erase
// sequences the bar uses, ESC[2K and ESC[K) to lines of width columns, wrapping as a terminal
// does, and keeps every line.
type screen struct {
	width int
	lines [][]rune
	row   int
	col   int
}

func newScreen(width int) *screen { return &screen{width: width, lines: [][]rune{nil}} }

func (s *screen) write(t *testing.T, out string) {
	t.Helper()
	for len(out) > 0 {
		switch {
		case strings.HasPrefix(out, "\x1b[2K"):
			s.lines[s.row] = nil
			out = out[4:]
		case strings.HasPrefix(out, "\x1b[K"):
			if s.col < len(s.lines[s.row]) {
				s.lines[s.row] = s.lines[s.row][:s.col]
			}
			out = out[3:]
		case out[0] == '\x1b':
			t.Fatalf("unexpected escape sequence %q", out[:min(len(out), 8)])
		case out[0] == '\r':
			s.col = 0
			out = out[1:]
		case out[0] == '\n':
			s.newline()
			out = out[1:]
		default:
			r, n := utf8.DecodeRuneInString(out)
			out = out[n:]
			if s.col == s.width {
				s.newline() // the terminal wraps
			}
			line := s.lines[s.row]
			for len(line) <= s.col {
				line = append(line, ' ')
			}
			line[s.col] = r
			s.lines[s.row] = line
			s.col++
		}
	}
}

func (s *screen) newline() {
	s.row++
	s.col = 0
	if s.row == len(s.lines) {
		s.lines = append(s.lines, nil)
	}
}

func (s *screen) text() []string {
	var out []string
	for _, l := range s.lines {
		out = append(out, strings.TrimRight(string(l), " "))
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

// syncBuffer is a bytes.Buffer that a test may read while the bar writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitFor polls cond until it holds, failing the test after 30 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var barDraw = regexp.MustCompile(`\r([^\r\n\x1b]*)\x1b\[K`)

// The bar on a terminal of 120 and 200 columns, with a known and an unknown total: each line
// drawn fills the width but three columns (the bar itself is not empty) and never wraps; a
// message written while the bar is up gets a line of its own, with the bar drawn again below
// it; at the end one final line with the final figures remains, and no spinner frame.
func TestBarAtTerminalWidths(t *testing.T) {
	const message = "troupe: interrupt: stopping, draining records in flight (signal again to exit at once)"
	for _, width := range []int{120, 200} {
		for _, total := range []int64{1000, -1} {
			t.Run(fmt.Sprintf("%d columns, total %d", width, total), func(t *testing.T) {
				var done atomic.Int64
				poll := func() troupe.Summary {
					n := done.Add(7)
					return troupe.Summary{Total: total, RecordsIn: n + 3, InFlight: 3, RecordsOut: n, Restarts: 1, Elapsed: time.Duration(n) * time.Millisecond}
				}
				out := &syncBuffer{}
				w := &lockedWriter{w: out}
				draws := func() int { return len(barDraw.FindAllString(out.String(), -1)) }
				b := startBar(w, poll, func() int { return width })
				waitFor(t, "two draws of the bar", func() bool { return draws() >= 2 })
				fmt.Fprintln(w, message)
				n := draws()
				waitFor(t, "a draw after the message", func() bool { return draws() > n })
				b.stop(troupe.Summary{Total: total, RecordsIn: 500, RecordsOut: 490, DeadLetters: 10, Elapsed: time.Second})
				fmt.Fprintln(w, "  stage  in  out")

				raw := out.String()
				for _, m := range barDraw.FindAllStringSubmatch(raw, -1) {
					line := m[1]
					if n := utf8.RuneCountInString(line); n != width-3 && total >= 0 || n > width-3 {
						t.Errorf("bar line of %d columns on a terminal of %d: %q", n, width, line)
					}
					if total >= 0 {
						inner := regexp.MustCompile(`^\[([= ]*)\] `).FindStringSubmatch(line)
						if inner == nil || len(inner[1]) < width/3 {
							t.Errorf("bar narrower than a third of the terminal (%d columns): %q", width, line)
						}
					} else if !strings.ContainsAny(line[:3], strings.Join(spinner, "")) {
						t.Errorf("no spinner at the start of %q", line)
					}
				}
				sc := newScreen(width)
				sc.write(t, raw)
				lines := sc.text()
				if len(lines) != 3 {
					t.Fatalf("screen shows %d lines, want the message, the final line and the table's:\n%s", len(lines), strings.Join(lines, "\n"))
				}
				if lines[0] != message {
					t.Errorf("message not on a line of its own: %q", lines[0])
				}
				final := lines[1]
				for _, f := range spinner {
					if strings.Contains(strings.Join(lines, "\n"), f) {
						t.Errorf("a spinner frame %q is left on the screen:\n%s", f, strings.Join(lines, "\n"))
					}
				}
				want := "500 records  500 rec/s  in 1s  out 490  dead 10  restarts 0"
				if total >= 0 {
					want = " 50%  500/1000  500 rec/s  in 1s  out 490  dead 10  restarts 0"
				}
				if !strings.HasSuffix(final, want) || utf8.RuneCountInString(final) > width-3 {
					t.Errorf("final line %q, want it to end with %q within %d columns", final, want, width-3)
				}
			})
		}
	}
}

// A narrow terminal keeps a bar by leaving out the trailing figures, and cuts what still does
// not fit.
func TestBarLineNarrow(t *testing.T) {
	s := troupe.Summary{Total: 100, RecordsIn: 50, RecordsOut: 50, Elapsed: time.Second}
	for _, width := range []int{10, 40, 60, 80} {
		line := barLine(s, width, 0, false)
		if n := utf8.RuneCountInString(line); n > width-3 || n == 0 {
			t.Errorf("width %d: %d columns: %q", width, n, line)
		}
	}
	if line := barLine(s, 60, 0, false); !strings.HasPrefix(line, "[=====") || strings.Contains(line, "restarts") {
		t.Errorf("width 60: %q, want a bar and the trailing figures left out", line)
	}
}

// Without a terminal (auto mode) the progress is plain lines: no carriage return, no escape
// sequence.
func TestPlainProgressHasNoTerminalControls(t *testing.T) {
	old := plainInterval
	plainInterval = 20 * time.Millisecond
	defer func() { plainInterval = old }()
	spec := write(t, filepath.Join(t.TempDir(), "slow.yaml"), `
source: {range: {count: 40}}
stages: [{name: nap, builtin: sleep, workers: 2, options: {duration: 10ms}}]
sink: {discard: {}}
`)
	code, _, stderr := cli(t, "", "run", spec)
	if code != exitOK || !strings.Contains(stderr, "troupe: ") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if strings.ContainsAny(stderr, "\r\x1b") {
		t.Errorf("terminal controls in plain output: %q", stderr)
	}
}

// The summary explains dropped when a stage filtered records out.
func TestSummaryExplainsDropped(t *testing.T) {
	var b bytes.Buffer
	writeTable(&b, troupe.Summary{RecordsIn: 10, RecordsOut: 4, Dropped: 6, Stages: []troupe.StageSummary{{Name: "keep", In: 10, Out: 4}}})
	if !strings.Contains(b.String(), "6 dropped") || !strings.Contains(b.String(), "\n  dropped: records a stage filtered out") {
		t.Errorf("no legend for dropped:\n%s", b.String())
	}
	b.Reset()
	writeTable(&b, troupe.Summary{RecordsIn: 10, RecordsOut: 10})
	if strings.Contains(b.String(), "dropped:") {
		t.Errorf("legend for dropped without any:\n%s", b.String())
	}
}

// The real thing in tmux, at 120 and 200 columns: the bar is drawn across the pane, ^C's
// message is on its own line (the echoed ^C erased with the bar), the final line shows no
// spinner, and the drain timeout is reported in the CLI's style with the table's count.
func TestBarInTmux(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it in tmux")
	}
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("SKIP: tmux is not installed (apt-get install tmux); the bar is tested with a fake terminal in TestBarAtTerminalWidths")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "troupe")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	write(t, filepath.Join(dir, "slow.yaml"), `name: slow
source: {range: {count: 100000, size: 8}}
stages:
  - {name: nap, builtin: sleep, workers: 4, options: {duration: 200ms}}
  - {name: keep, builtin: grep, options: {pattern: "[02468]$"}}
sink: {lines: {path: out.txt}}
`)
	// A record takes 200ms in nap and hundreds are in flight: a drain of 100ms cannot finish.
	for _, width := range []int{120, 200} {
		t.Run(fmt.Sprintf("%d columns", width), func(t *testing.T) {
			sock := fmt.Sprintf("troupe-test-%d-%d", os.Getpid(), width)
			tm := func(args ...string) string {
				t.Helper()
				out, err := exec.Command(tmux, append([]string{"-L", sock}, args...)...).CombinedOutput()
				if err != nil {
					t.Fatalf("tmux %v: %v\n%s", args, err, out)
				}
				return string(out)
			}
			// The shell ignores ^C itself (a trap, which the run does not inherit) so that it
			// lives on to print the exit status.
			script := fmt.Sprintf("trap : INT; cd %q && %q run slow.yaml --drain-timeout 100ms; echo EXIT=$?; sleep 600", dir, bin)
			tm("-f", "/dev/null", "new-session", "-d", "-x", fmt.Sprint(width), "-y", "40", "sh", "-c", script)
			t.Cleanup(func() { _ = exec.Command(tmux, "-L", sock, "kill-server").Run() })
			capture := func() string { return tm("capture-pane", "-p") }
			waitFor(t, "the bar", func() bool { return regexp.MustCompile(`(?m)^\[[= ]*\] `).MatchString(capture()) })
			pane := capture()
			for _, l := range strings.Split(pane, "\n") {
				if strings.HasPrefix(l, "[") {
					if n := utf8.RuneCountInString(l); n != width-3 {
						t.Errorf("bar line of %d columns in a pane of %d: %q", n, width, l)
					}
					if inner := regexp.MustCompile(`^\[([= ]*)\] `).FindStringSubmatch(l); inner == nil || len(inner[1]) < width/3 {
						t.Errorf("bar narrower than a third of the pane: %q", l)
					}
				}
			}
			tm("send-keys", "C-c")
			waitFor(t, "the run's end", func() bool { return strings.Contains(capture(), "EXIT=") })
			pane = capture()
			lines := strings.Split(strings.TrimRight(pane, "\n"), "\n")
			var msg, final, incomplete, total int
			for i, l := range lines {
				switch {
				case l == "troupe: interrupt: stopping, draining records in flight (signal again to exit at once)":
					msg = i + 1
				case strings.HasPrefix(l, "[") && strings.Contains(l, "] ") && strings.Contains(l, " in "):
					final = i + 1
				case strings.HasPrefix(l, "troupe: interrupted: "):
					incomplete = i + 1
				case strings.HasPrefix(l, "total: "):
					total = i + 1
				}
				if strings.Contains(l, "^C") || strings.Contains(l, "level=") {
					t.Errorf("line %d: %q", i+1, l)
				}
				for _, f := range spinner {
					if strings.Contains(l, f) {
						t.Errorf("spinner frame left on line %d: %q", i+1, l)
					}
				}
			}
			if msg == 0 || final <= msg || total <= final || incomplete <= total {
				t.Fatalf("want the interrupt message, the final bar line, the table and the drain-timeout message in that order:\n%s", pane)
			}
			// The message's count is the table's.
			m := regexp.MustCompile(`, (\d+) unfinished,`).FindStringSubmatch(lines[total-1])
			if m == nil || !strings.HasPrefix(lines[incomplete-1], "troupe: interrupted: "+m[1]+" record") ||
				!strings.HasSuffix(lines[incomplete-1], " unfinished (not drained within the drain timeout, 100ms)") {
				t.Errorf("the drain-timeout message does not give the table's count:\n%s", pane)
			}
			if !strings.Contains(pane, "EXIT=1") {
				t.Errorf("exit status not 1:\n%s", pane)
			}
		})
	}
}
