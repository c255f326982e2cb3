package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/troupe-dev/troupe"
)

// progress shows a run's progress until stop.
type progress interface {
	// stop ends the display; final is the run's summary.
	stop(final troupe.Summary)
}

// startProgress starts a display: "bar" (a progress bar for terminals, as wide as width says
// the terminal is), "plain" (a line every interval) or "none". poll returns the run's live
// figures.
func startProgress(mode string, w *lockedWriter, poll func() troupe.Summary, interval time.Duration, width func() int) progress {
	switch mode {
	case "bar":
		return startBar(w, poll, width)
	case "plain":
		return startPlain(w, poll, interval)
	}
	return noProgress{}
}

type noProgress struct{}

func (noProgress) stop(troupe.Summary) {}

// done is the number of source records complete.
func done(s troupe.Summary) int64 { return max(s.RecordsIn-s.InFlight, 0) }

// ticker runs f every interval until stop.
type ticker struct {
	quit chan struct{}
	wg   sync.WaitGroup
}

func startTicker(interval time.Duration, f func()) *ticker {
	t := &ticker{quit: make(chan struct{})}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for {
			select {
			case <-tk.C:
				f()
			case <-t.quit:
				return
			}
		}
	}()
	return t
}

func (t *ticker) halt() {
	close(t.quit)
	t.wg.Wait()
}

// plainProgress prints a line of figures every interval: for logs and pipes.
type plainProgress struct {
	w io.Writer
	t *ticker
}

func startPlain(w io.Writer, poll func() troupe.Summary, interval time.Duration) *plainProgress {
	p := &plainProgress{w: w}
	p.t = startTicker(interval, func() { fmt.Fprintln(w, plainLine(poll())) })
	return p
}

func (p *plainProgress) stop(troupe.Summary) { p.t.halt() }

// plainLine formats live figures: elapsed, done[/total (percent)], rate, out, dead letters,
// restarts.
func plainLine(s troupe.Summary) string {
	d := done(s)
	line := fmt.Sprintf("troupe: %6.1fs  %d", s.Elapsed.Seconds(), d)
	if s.Total >= 0 {
		pct := 100.0
		if s.Total > 0 {
			pct = 100 * float64(d) / float64(s.Total)
		}
		line += fmt.Sprintf("/%d records (%.1f%%)", s.Total, pct)
	} else {
		line += " records"
	}
	line += fmt.Sprintf("  %s/s  out %d  dead %d  restarts %d", formatRate(d, s.Elapsed), s.RecordsOut, s.DeadLetters, s.Restarts)
	return line
}

func formatRate(n int64, d time.Duration) string {
	if d <= 0 {
		return "0"
	}
	r := float64(n) / d.Seconds()
	if r >= 100 {
		return strconv.FormatFloat(r, 'f', 0, 64)
	}
	return strconv.FormatFloat(r, 'f', 1, 64)
}

// barProgress draws a progress bar on the last line of a terminal (a spinner when the total is
// unknown), redrawn every barInterval to the terminal's current width. Other writes to the
// same lockedWriter erase it first and it is drawn again below them. stop replaces it with a
// final line without spinner.
type barProgress struct {
	w     *lockedWriter
	poll  func() troupe.Summary
	width func() int
	t     *ticker
	frame int // touched only by the ticker's goroutine, then by stop after halt
}

const barInterval = 200 * time.Millisecond

func startBar(w *lockedWriter, poll func() troupe.Summary, width func() int) *barProgress {
	b := &barProgress{w: w, poll: poll, width: width}
	b.draw()
	b.t = startTicker(barInterval, b.draw)
	return b
}

func (b *barProgress) draw() {
	b.w.holdLine(barLine(b.poll(), b.width(), b.frame, false))
	b.frame++
}

func (b *barProgress) stop(final troupe.Summary) {
	b.t.halt()
	b.w.releaseLine(barLine(final, b.width(), 0, true))
}

// spinner is the frames shown while the total is unknown.
var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// minBar is the narrowest bar worth drawing; figures are left out to keep it.
const minBar = 10

// barLine renders a progress line: with a known total a bar, the percentage, done/total, the
// rate and the time left (the time taken when final); with an unknown total a spinner frame
// (none when final), the records done, the rate and the time so far; then out, dead letters
// and restarts. It fits in width columns less three: the terminal never wraps it, and the "^C"
// a terminal echoes at the cursor when the user interrupts stays on the bar's line, which is
// then erased. When it does not fit, the trailing figures are left out, then the line is cut.
func barLine(s troupe.Summary, width, frame int, final bool) string {
	if width < 4 {
		width = 80
	}
	room := width - 3
	d := done(s)
	rate := formatRate(d, s.Elapsed) + " rec/s"
	tail := []string{
		fmt.Sprintf("out %d", s.RecordsOut),
		fmt.Sprintf("dead %d", s.DeadLetters),
		fmt.Sprintf("restarts %d", s.Restarts),
	}
	var head string
	var fields []string
	known := s.Total >= 0
	if known {
		frac := 1.0
		if s.Total > 0 {
			frac = min(float64(d)/float64(s.Total), 1)
		}
		fields = []string{fmt.Sprintf("%3.0f%%", 100*frac), fmt.Sprintf("%d/%d", d, s.Total), rate}
		switch {
		case final:
			fields = append(fields, "in "+s.Elapsed.Round(100*time.Millisecond).String())
		case d > 0 && d < s.Total:
			left := time.Duration(float64(s.Elapsed) * float64(s.Total-d) / float64(d))
			fields = append(fields, "eta "+left.Round(time.Second).String())
		}
	} else {
		if !final {
			head = spinner[frame%len(spinner)] + " "
		}
		elapsed := s.Elapsed.Round(100 * time.Millisecond).String()
		if final {
			elapsed = "in " + elapsed
		}
		fields = []string{fmt.Sprintf("%d records", d), rate, elapsed}
	}
	for n := len(tail); n >= 0; n-- {
		text := strings.Join(append(slices.Clone(fields), tail[:n]...), "  ")
		if !known {
			line := head + text
			if utf8.RuneCountInString(line) <= room || n == 0 {
				return cut(line, room)
			}
			continue
		}
		bar := room - len(text) - 3 // brackets and a space
		if bar >= minBar || n == 0 {
			if bar < 1 {
				return cut(text, room)
			}
			filled := bar // an empty source is done
			if s.Total > 0 {
				filled = int(float64(bar) * min(float64(d)/float64(s.Total), 1))
			}
			return "[" + strings.Repeat("=", filled) + strings.Repeat(" ", bar-filled) + "] " + text
		}
	}
	return "" // not reached
}

// cut shortens s to n columns (its characters are one column each).
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:max(n, 0)])
}

// eraseLine erases the terminal's current line and returns to its start.
const eraseLine = "\r\x1b[2K"

// holdLine draws line as the last line of the terminal, without a newline, replacing the one
// drawn before: it stays there, below what others write, until releaseLine.
func (l *lockedWriter) holdLine(line string) {
	if line == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = io.WriteString(l.w, "\r"+line+"\x1b[K")
	l.bar = line
}

// releaseLine erases the held line and writes final (if any) with a newline in its place.
func (l *lockedWriter) releaseLine(final string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bar != "" {
		_, _ = io.WriteString(l.w, eraseLine)
		l.bar = ""
	}
	if final != "" {
		_, _ = io.WriteString(l.w, final+"\n")
	}
}

// terminalWidth returns a function reporting the width of the terminal w writes to, read at
// each call (the window may be resized), or 80 when it cannot be known.
func terminalWidth(w *lockedWriter) func() int {
	return func() int {
		if f, ok := w.w.(*os.File); ok {
			if width, _, err := termGetSize(int(f.Fd())); err == nil && width > 0 {
				return width
			}
		}
		return 80
	}
}

// writeTable prints the per-stage summary and the totals.
func writeTable(w io.Writer, s troupe.Summary) {
	// Numbers align right; the stage names, padded here, align left.
	width := len("stage")
	for _, st := range s.Stages {
		width = max(width, len(st.Name))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tin\tout\tfailed\tretries\trestarts\tp50\tp99\t\n", width, "stage")
	for _, st := range s.Stages {
		fmt.Fprintf(tw, "%-*s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t\n", width, st.Name, st.In, st.Out, st.Failed, st.Retries,
			st.Restarts, formatLatency(st.P50), formatLatency(st.P99))
	}
	_ = tw.Flush()
	unfinished := ""
	if s.InFlight > 0 {
		unfinished = fmt.Sprintf(", %d unfinished", s.InFlight)
	}
	fmt.Fprintf(w, "total: %d in, %d out, %d dead letters, %d dropped%s, %d restarts in %s (%s records/s)\n",
		s.RecordsIn, s.RecordsOut, s.DeadLetters, s.Dropped, unfinished, s.Restarts, s.Elapsed.Round(time.Millisecond),
		formatRate(s.RecordsIn, s.Elapsed))
	if s.Dropped > 0 {
		fmt.Fprintln(w, "  dropped: records a stage filtered out (it returned no output): done, not lost")
	}
	if s.InFlight > 0 {
		fmt.Fprintln(w, "  unfinished: records read but not complete when the run stopped")
	}
	if s.Skipped > 0 {
		fmt.Fprintf(w, "  skipped: %d records done by an earlier run (journal)\n", s.Skipped)
	}
}

func formatLatency(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// summaryJSON is the format of --summary-json.
type summaryJSON struct {
	Name        string             `json:"name"`
	Run         string             `json:"run"`    // the run's id, as in its log lines (attribute run)
	Status      string             `json:"status"` // ok, dead_letters, interrupted, incomplete, aborted
	Error       string             `json:"error,omitempty"`
	Total       int64              `json:"total"` // -1 when the source's size is unknown
	RecordsIn   int64              `json:"records_in"`
	RecordsOut  int64              `json:"records_out"`
	DeadLetters int64              `json:"dead_letters"`
	Dropped     int64              `json:"dropped"`
	Skipped     int64              `json:"skipped"` // records done by an earlier run (journal)
	Restarts    int64              `json:"restarts"`
	InFlight    int64              `json:"in_flight"`
	ElapsedS    float64            `json:"elapsed_s"`
	Stages      []stageSummaryJSON `json:"stages"`
}

type stageSummaryJSON struct {
	Name     string  `json:"name"`
	In       int64   `json:"in"`
	Out      int64   `json:"out"`
	Failed   int64   `json:"failed"`
	Retries  int64   `json:"retries"`
	Restarts int64   `json:"restarts"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
}

// writeSummaryJSON writes the summary to path atomically (a temporary file renamed into place).
func writeSummaryJSON(path, name, runID string, s troupe.Summary, status string, werr error) error {
	out := summaryJSON{
		Name: name, Run: runID, Status: status, Total: s.Total, RecordsIn: s.RecordsIn, RecordsOut: s.RecordsOut,
		DeadLetters: s.DeadLetters, Dropped: s.Dropped, Skipped: s.Skipped, Restarts: s.Restarts, InFlight: s.InFlight,
		ElapsedS: s.Elapsed.Seconds(), Stages: []stageSummaryJSON{},
	}
	if werr != nil {
		out.Error = werr.Error()
	}
	for _, st := range s.Stages {
		out.Stages = append(out.Stages, stageSummaryJSON{
			Name: st.Name, In: st.In, Out: st.Out, Failed: st.Failed, Retries: st.Retries, Restarts: st.Restarts,
			P50ms: float64(st.P50) / float64(time.Millisecond), P99ms: float64(st.P99) / float64(time.Millisecond),
		})
	}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	_, werr2 := tmp.Write(data)
	if werr2 == nil {
		werr2 = tmp.Chmod(0o644)
	}
	cerr := tmp.Close()
	if werr2 == nil {
		werr2 = cerr
	}
	if werr2 == nil {
		werr2 = os.Rename(tmp.Name(), path)
	}
	if werr2 != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("summary: %w", werr2)
	}
	return nil
}
