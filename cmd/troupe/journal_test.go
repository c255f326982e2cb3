package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/troupe-dev/troupe/internal/proctest"
)

// The journal tests run the real troupe binary over a lines source of journalN lines through
// the seen plugin (cmd/troupe/internal/seenplugin), which appends the key of every record it
// processes to a side file and fails the keys that are multiples of journalFailMod (so dead
// letters are journalled too). The host is killed with SIGKILL at several points, then run
// again with the same journal.
const (
	journalN       = 1000
	journalFailMod = 50
	// journalSlack bounds the records a killed run processed without journalling them: those in
	// flight (2 workers × 4 credits in the stage), and the last batch, written but not yet synced
	// to the journal: the collector batches up to 50 ms of finished records, ~50 here (the plugin
	// waits 2 ms a record, on 2 workers), and the journal's writer syncs what has come while it
	// synced the batch before.
	journalSlack = 200
)

type journalBins struct{ troupe, plugin string }

func buildJournalBins(t *testing.T) journalBins {
	t.Helper()
	dir := t.TempDir()
	return journalBins{
		troupe: proctest.Build(t, dir, "troupe", "github.com/troupe-dev/troupe/cmd/troupe"),
		plugin: proctest.Build(t, dir, "seenplugin", "github.com/troupe-dev/troupe/cmd/troupe/internal/seenplugin"),
	}
}

// journalSpec writes the spec of one run, whose plugin records what it sees in seen.
func journalSpec(t *testing.T, dir string, bins journalBins, seen string, failMod int) string {
	t.Helper()
	return write(t, filepath.Join(dir, "spec.yaml"), fmt.Sprintf(`name: durable
source: {lines: {path: in.txt}}
stages:
  - name: seen
    plugin: {cmd: [%q], env: {SEEN_FILE: %q, SEEN_DELAY: 2ms, SEEN_FAIL_MOD: %q}}
    workers: 2
    credits: 4
    attempts: 1
sink: {lines: {path: out.txt}}
dead_letter: {path: dead.jsonl}
journal: {path: state/run.journal}
`, bins.plugin, seen, strconv.Itoa(failMod)))
}

func journalInput(t *testing.T, dir string) {
	var in strings.Builder
	for i := 1; i <= journalN; i++ {
		fmt.Fprintf(&in, "record %d\n", i)
	}
	write(t, filepath.Join(dir, "in.txt"), in.String())
}

// startTroupe starts the binary; its stderr is read line by line into lines.
func startTroupe(t *testing.T, bin string, env []string, args ...string) (*exec.Cmd, <-chan string, *lockedBuffer) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 10 * time.Second
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	all := &lockedBuffer{}
	lines := make(chan string, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			all.add(sc.Text() + "\n")
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		pw.Close()
		<-done
	})
	return cmd, lines, all
}

// lockedBuffer collects a process's stderr while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// countLines counts the lines of a file ("" for a missing file counts 0).
func countLines(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(data, []byte("\n"))
}

func linesOf(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(string(data), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// killRun starts a run and kills it with SIGKILL when kill says so (polled), then waits for
// the plugin's processes to be gone.
func killRun(t *testing.T, bins journalBins, dir string, env []string, kill func(stderr <-chan string) bool) {
	t.Helper()
	spec := journalSpec(t, dir, bins, filepath.Join(dir, "seen1"), journalFailMod)
	cmd, lines, all := startTroupe(t, bins.troupe, env, "run", spec, "--progress", "none")
	if !kill(lines) {
		t.Fatalf("the run ended before the kill point\n%s", all.String())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if cmd.ProcessState.ExitCode() != -1 {
		t.Fatalf("the run ended (%v) before the kill point\n%s", cmd.ProcessState, all.String())
	}
	proctest.WaitNoneRunning(t, bins.plugin)
}

// killAtCount kills when the plugin has seen at least n records.
func killAtCount(t *testing.T, seen string, n int) func(<-chan string) bool {
	return func(stderr <-chan string) bool {
		deadline := time.Now().Add(proctest.Deadline)
		for time.Now().Before(deadline) {
			if countLines(t, seen) >= n {
				return true
			}
			time.Sleep(time.Millisecond)
		}
		return false
	}
}

// killAtHook kills when the binary announces the test hook's point on stderr.
func killAtHook(name string) func(<-chan string) bool {
	return func(stderr <-chan string) bool {
		timeout := time.After(proctest.Deadline)
		for {
			select {
			case l, ok := <-stderr:
				if !ok {
					return false
				}
				if l == "troupe-test-hook: "+name {
					return true
				}
			case <-timeout:
				return false
			}
		}
	}
}

// resumeAndCheck runs the spec again with the same journal, to its end, and checks: every
// output once, every dead letter once, no record the journal named processed again, every
// record processed (once) by one run or the other.
func resumeAndCheck(t *testing.T, bins journalBins, dir string) (seen1, seen2 []string, sum summaryJSON, stderr string) {
	t.Helper()
	seen1 = linesOf(t, filepath.Join(dir, "seen1"))
	spec := journalSpec(t, dir, bins, filepath.Join(dir, "seen2"), journalFailMod)
	sumPath := filepath.Join(dir, "sum.json")
	cmd := exec.Command(bins.troupe, "run", spec, "--progress", "none", "--summary-json", sumPath)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != exitOK && code != exitDeadLetters {
		t.Fatalf("re-run: %v\n%s", err, errb.String())
	}
	proctest.WaitNoneRunning(t, bins.plugin)
	sum = readJSON(t, sumPath)
	seen2 = linesOf(t, filepath.Join(dir, "seen2"))

	// Complete outputs, each once.
	var want []string
	var wantDead []string
	for i := 1; i <= journalN; i++ {
		if i%journalFailMod == 0 {
			wantDead = append(wantDead, strconv.Itoa(i))
		} else {
			want = append(want, "out "+strconv.Itoa(i))
		}
	}
	slices.Sort(want)
	slices.Sort(wantDead)
	if got := sortedLines(t, filepath.Join(dir, "out.txt")); !slices.Equal(got, want) {
		t.Errorf("out.txt: %d lines, want %d, each once (first differences: %v)", len(got), len(want), firstDiff(got, want))
	}
	var dead []string
	for _, l := range linesOf(t, filepath.Join(dir, "dead.jsonl")) {
		var d struct{ Key string }
		if err := json.Unmarshal([]byte(l), &d); err != nil {
			t.Fatalf("dead.jsonl: %q: %v", l, err)
		}
		dead = append(dead, d.Key)
	}
	slices.Sort(dead)
	if !slices.Equal(dead, wantDead) {
		t.Errorf("dead letters %v, want %v, each once", dead, wantDead)
	}

	// The re-run did what was left, each record once, and nothing the journal named.
	if n := int64(len(seen2)); n != journalN-sum.Skipped {
		t.Errorf("the re-run processed %d records; %d were skipped of %d: want %d", n, sum.Skipped, journalN, journalN-sum.Skipped)
	}
	twice := map[string]bool{}
	for _, k := range seen2 {
		if twice[k] {
			t.Errorf("the re-run processed record %s twice", k)
		}
		twice[k] = true
	}
	union := map[string]bool{}
	for _, k := range append(slices.Clone(seen1), seen2...) {
		union[k] = true
	}
	if len(union) != journalN {
		t.Errorf("the two runs processed %d distinct records, want %d", len(union), journalN)
	}
	// What the killed run processed and the journal did not name: in flight, or in the last
	// unsynced batch.
	redone := 0
	for _, k := range seen1 {
		if twice[k] {
			redone++
		}
	}
	if redone > journalSlack {
		t.Errorf("the re-run redid %d records the killed run had processed, more than %d in flight or unsynced", redone, journalSlack)
	}
	if int(sum.Skipped) < len(seen1)-journalSlack {
		t.Errorf("the re-run skipped %d records; the killed run had processed %d", sum.Skipped, len(seen1))
	}
	t.Logf("killed run processed %d, re-run skipped %d and processed %d (%d again)", len(seen1), sum.Skipped, len(seen2), redone)
	return seen1, seen2, sum, errb.String()
}

func firstDiff(got, want []string) []string {
	var d []string
	g := map[string]int{}
	for _, s := range got {
		g[s]++
	}
	for _, s := range want {
		if g[s] != 1 {
			d = append(d, fmt.Sprintf("%q×%d", s, g[s]))
		}
		delete(g, s)
		if len(d) > 5 {
			return d
		}
	}
	for s, n := range g {
		d = append(d, fmt.Sprintf("unexpected %q×%d", s, n))
		if len(d) > 5 {
			break
		}
	}
	return d
}

// A run killed with SIGKILL resumes from its journal: at 50% and 80% of its records, while it
// writes a journal batch (a torn last entry), and while the sink flushes (the output holds
// records the journal does not name yet).
func TestJournalResumesAKilledRun(t *testing.T) {
	bins := buildJournalBins(t)
	for _, pct := range []int{50, 80} {
		t.Run(fmt.Sprintf("killed at %d%%", pct), func(t *testing.T) {
			dir := t.TempDir()
			journalInput(t, dir)
			killRun(t, bins, dir, nil, killAtCount(t, filepath.Join(dir, "seen1"), journalN*pct/100))
			_, seen2, sum, _ := resumeAndCheck(t, bins, dir)
			// The re-run's work is what was left: at most (100-pct)% and the slack.
			if max := journalN*(100-pct)/100 + journalSlack; len(seen2) > max {
				t.Errorf("the re-run processed %d records, more than the %d left after %d%%", len(seen2), max, pct)
			}
			if sum.Skipped == 0 {
				t.Error("nothing skipped")
			}
		})
	}
	t.Run("killed while writing the journal", func(t *testing.T) {
		dir := t.TempDir()
		journalInput(t, dir)
		killRun(t, bins, dir, []string{"TROUPE_TEST_HOOK=journal-torn:5"}, killAtHook("journal-torn"))
		_, _, _, stderr := resumeAndCheck(t, bins, dir)
		if !strings.Contains(stderr, "ignoring a torn last entry") {
			t.Errorf("the re-run did not report the torn entry:\n%s", stderr)
		}
	})
	t.Run("killed while the sink flushes", func(t *testing.T) {
		dir := t.TempDir()
		journalInput(t, dir)
		killRun(t, bins, dir, []string{"TROUPE_TEST_HOOK=sink-flush:6"}, killAtHook("sink-flush"))
		// The sink wrote records the journal does not name: the re-run cuts them off and does
		// them again, once.
		// Each record has one line in out.txt or dead.jsonl.
		written := countLines(t, filepath.Join(dir, "out.txt")) + countLines(t, filepath.Join(dir, "dead.jsonl"))
		_, _, sum, _ := resumeAndCheck(t, bins, dir)
		if int64(written) <= sum.Skipped {
			t.Errorf("the killed run's outputs held %d records, the journal %d: the kill did not land between the sink's flush and the journal", written, sum.Skipped)
		}
	})
}

// A journal belongs to one source: run over another count, it is refused (exit 2) with a
// message that names both; so is a journal over standard input, and --retry-dead-letters
// without a journal.
func TestJournalRefusals(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	specFor := func(name, source string) string {
		return write(t, filepath.Join(dir, name), `name: r
source: `+source+`
stages: [{name: id, builtin: identity, workers: 2}]
sink: {lines: {path: out.txt}}
journal: {path: run.journal}
`)
	}
	code, _, stderr := cli(t, "", "run", specFor("a.yaml", "{range: {count: 100}}"), "--progress", "none")
	if code != exitOK {
		t.Fatalf("first run: exit %d\n%s", code, stderr)
	}
	code, _, stderr = cli(t, "", "run", specFor("b.yaml", "{range: {count: 200}}"), "--progress", "none")
	if code != exitUsage || !strings.Contains(stderr, "range of 100 records") || !strings.Contains(stderr, "range of 200 records") ||
		!strings.Contains(stderr, "run.journal") {
		t.Errorf("mismatched journal: exit %d, want %d and a message naming the journal and both sources:\n%s", code, exitUsage, stderr)
	}
	if got := countLines(t, filepath.Join(dir, "out.txt")); got != 100 {
		t.Errorf("the refused run touched the output: %d lines, want 100", got)
	}

	code, _, stderr = cli(t, "a\nb\n", "run", specFor("c.yaml", "{lines: {path: '-'}}"), "--progress", "none")
	if code != exitUsage || !strings.Contains(stderr, "standard input cannot be resumed") {
		t.Errorf("journal over stdin: exit %d, want %d:\n%s", code, exitUsage, stderr)
	}
	stdinSpec := write(t, filepath.Join(dir, "d.yaml"), "source: {lines: {path: '-'}}\nsink: {discard: {}}\n")
	code, _, stderr = cli(t, "a\n", "run", stdinSpec, "--progress", "none", "--journal", "other.journal")
	if code != exitUsage || !strings.Contains(stderr, "standard input") {
		t.Errorf("--journal over stdin: exit %d, want %d:\n%s", code, exitUsage, stderr)
	}
	code, _, stderr = cli(t, "a\n", "run", stdinSpec, "--progress", "none", "--retry-dead-letters")
	if code != exitUsage || !strings.Contains(stderr, "needs a journal") {
		t.Errorf("--retry-dead-letters without a journal: exit %d, want %d:\n%s", code, exitUsage, stderr)
	}
}

// Dead letters count as done on a resume; --retry-dead-letters runs them again, and the lines
// sink, resumed, appends their outputs to what it holds. A torn last entry (garbage appended to
// the journal) is ignored, and --journal overrides the spec's.
func TestJournalRetryDeadLetters(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	var in strings.Builder
	for i := range 300 {
		if i%30 == 0 {
			fmt.Fprintf(&in, "poison %d\n", i)
		} else {
			fmt.Fprintf(&in, "line %d\n", i)
		}
	}
	write(t, filepath.Join(dir, "in.txt"), in.String())
	specWith := func(stage string) string {
		return write(t, filepath.Join(dir, "spec.yaml"), `name: retry
source: {lines: {path: in.txt}}
stages: [{name: s, builtin: `+stage+`, attempts: 1, workers: 2}]
sink: {lines: {path: out.txt}}
dead_letter: {path: dead.jsonl}
journal: {path: ignored.journal}
`)
	}
	spec := specWith("test-poison")
	code, _, stderr := cli(t, "", "run", spec, "--progress", "none", "--journal", "j")
	if code != exitDeadLetters {
		t.Fatalf("first run: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "ignored.journal")); !os.IsNotExist(err) {
		t.Errorf("--journal did not override the spec's journal: %v", err)
	}
	if got := countLines(t, "out.txt"); got != 290 {
		t.Fatalf("first run: %d outputs, want 290", got)
	}
	// A torn last entry: the first bytes of a frame, as a kill mid-write leaves them.
	f, err := os.OpenFile("j", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{200, 0, 0, 0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	f.Close()

	spec = specWith("identity") // the poison is gone
	code, _, stderr = cli(t, "", "run", spec, "--progress", "none", "--journal", "j", "--summary-json", "s1.json")
	if s := readJSON(t, "s1.json"); code != exitOK || s.Skipped != 300 || s.RecordsIn != 0 {
		t.Errorf("re-run without --retry-dead-letters: exit %d, skipped %d, in %d; want 0, 300, 0\n%s", code, s.Skipped, s.RecordsIn, stderr)
	}
	if !strings.Contains(stderr, "ignoring a torn last entry") {
		t.Errorf("the torn entry was not reported:\n%s", stderr)
	}
	code, _, stderr = cli(t, "", "run", spec, "--progress", "none", "--journal", "j", "--retry-dead-letters", "--summary-json", "s2.json")
	if s := readJSON(t, "s2.json"); code != exitOK || s.Skipped != 290 || s.RecordsIn != 10 || s.RecordsOut != 10 {
		t.Errorf("re-run with --retry-dead-letters: exit %d, skipped %d, in %d, out %d; want 0, 290, 10, 10\n%s", code, s.Skipped, s.RecordsIn, s.RecordsOut, stderr)
	}
	want := strings.Split(strings.TrimSuffix(in.String(), "\n"), "\n")
	slices.Sort(want)
	if got := sortedLines(t, "out.txt"); !slices.Equal(got, want) {
		t.Errorf("out.txt after the retry: %d lines, want the %d input lines once each (%v)", len(got), len(want), firstDiff(got, want))
	}
	// Every record is done now: a third run does nothing and keeps the output.
	code, _, stderr = cli(t, "", "run", spec, "--progress", "none", "--journal", "j", "--retry-dead-letters", "--summary-json", "s3.json")
	if s := readJSON(t, "s3.json"); code != exitOK || s.Skipped != 300 || s.RecordsIn != 0 {
		t.Errorf("third run: exit %d, skipped %d, in %d; want 0, 300, 0\n%s", code, s.Skipped, s.RecordsIn, stderr)
	}
	if got := countLines(t, "out.txt"); got != 300 {
		t.Errorf("third run: out.txt has %d lines, want 300", got)
	}
}

// A files source into a files sink, killed at 60%: the re-run skips the files the journal names
// (by path, size and time) and writes every output file, each with its content.
func TestJournalResumesAKilledFilesRun(t *testing.T) {
	bins := buildJournalBins(t)
	dir := t.TempDir()
	const n = 400
	for i := range n {
		write(t, filepath.Join(dir, "in", fmt.Sprintf("f%04d.txt", i)), fmt.Sprintf("file %d", i))
	}
	spec := func(seen string) string {
		return write(t, filepath.Join(dir, "spec.yaml"), fmt.Sprintf(`name: files
source: {files: {dir: in, glob: '*.txt'}}
stages:
  - name: seen
    plugin: {cmd: [%q], env: {SEEN_FILE: %q, SEEN_DELAY: 4ms}}
    workers: 2
    credits: 4
sink: {files: {dir: out, ext: .out}}
journal: {path: files.journal}
`, bins.plugin, seen))
	}
	seen1, seen2 := filepath.Join(dir, "seen1"), filepath.Join(dir, "seen2")
	cmd, _, all := startTroupe(t, bins.troupe, nil, "run", spec(seen1), "--progress", "none")
	if !killAtCount(t, seen1, n*60/100)(nil) {
		t.Fatalf("the run did not reach 60%%\n%s", all.String())
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if cmd.ProcessState.ExitCode() != -1 {
		t.Fatalf("the run ended (%v) before the kill\n%s", cmd.ProcessState, all.String())
	}
	proctest.WaitNoneRunning(t, bins.plugin)

	sumPath := filepath.Join(dir, "sum.json")
	rerun := exec.Command(bins.troupe, "run", spec(seen2), "--progress", "none", "--summary-json", sumPath)
	if out, err := rerun.CombinedOutput(); err != nil {
		t.Fatalf("re-run: %v\n%s", err, out)
	}
	proctest.WaitNoneRunning(t, bins.plugin)
	sum := readJSON(t, sumPath)
	done2 := linesOf(t, seen2)
	if int64(len(done2)) != n-sum.Skipped || sum.Skipped < int64(len(linesOf(t, seen1))-journalSlack) {
		t.Errorf("killed run processed %d; re-run skipped %d and processed %d of %d", len(linesOf(t, seen1)), sum.Skipped, len(done2), n)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != n {
		t.Errorf("%d output files, want %d", len(entries), n)
	}
	for i := range n {
		name := fmt.Sprintf("f%04d", i)
		data, err := os.ReadFile(filepath.Join(dir, "out", name+".out"))
		if err != nil || string(data) != "out "+name+".txt" {
			t.Errorf("%s.out = %q, %v", name, data, err)
		}
	}
	t.Logf("killed run processed %d, re-run skipped %d and processed %d", len(linesOf(t, seen1)), sum.Skipped, len(done2))
}
