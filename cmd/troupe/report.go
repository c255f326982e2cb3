package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/troupe-dev/troupe"
)

// progress shows a run's progress until stop.
type progress interface {
	// stop ends the display; final is the run's summary.
	stop(final troupe.Summary)
}

// startProgress starts a display: "bar" (a progress bar for terminals), "plain" (a line every
// interval) or "none". poll returns the run's live figures.
func startProgress(mode string, w io.Writer, poll func() troupe.Summary, interval time.Duration) progress {
	switch mode {
	case "bar":
		return startBar(w, poll)
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

// barProgress draws a progress bar (a spinner when the total is unknown).
type barProgress struct {
	w   io.Writer
	bar *progressbar.ProgressBar
	t   *ticker
	mu  sync.Mutex
}

func startBar(w io.Writer, poll func() troupe.Summary) *barProgress {
	s := poll()
	b := &barProgress{w: w, bar: progressbar.NewOptions64(s.Total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("records"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("rec"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionFullWidth(),
		progressbar.OptionSetRenderBlankState(true),
	)}
	b.t = startTicker(200*time.Millisecond, func() { b.update(poll()) })
	return b
}

func (b *barProgress) update(s troupe.Summary) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bar.Describe(fmt.Sprintf("out %d  dead %d  restarts %d", s.RecordsOut, s.DeadLetters, s.Restarts))
	_ = b.bar.Set64(done(s))
}

func (b *barProgress) stop(final troupe.Summary) {
	b.t.halt()
	b.update(final)
	b.mu.Lock()
	defer b.mu.Unlock()
	if final.Total >= 0 && done(final) >= final.Total {
		_ = b.bar.Finish()
	} else {
		_ = b.bar.Exit()
	}
	fmt.Fprintln(b.w)
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
	fmt.Fprintf(w, "total: %d in, %d out, %d dead letters, %d dropped, %d restarts in %s (%s records/s)\n",
		s.RecordsIn, s.RecordsOut, s.DeadLetters, s.Dropped, s.Restarts, s.Elapsed.Round(time.Millisecond),
		formatRate(s.RecordsIn, s.Elapsed))
	if s.Skipped > 0 {
		fmt.Fprintf(w, "skipped: %d records done by an earlier run (journal)\n", s.Skipped)
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
func writeSummaryJSON(path, name string, s troupe.Summary, status string, werr error) error {
	out := summaryJSON{
		Name: name, Status: status, Total: s.Total, RecordsIn: s.RecordsIn, RecordsOut: s.RecordsOut,
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
