// Package bench is troupe's performance harness: it measures every performance figure of the
// project in one process run, each side by side with its baseline on the same machine, and
// prints a table (figure, troupe, baseline, ratio, target, met?) or JSON.
//
// Baselines are implemented here: the same in-process pipeline shape on plain Go channels, a raw
// unix socketpair echo through a child process (the transport's ceiling), go-plugin with one gRPC
// unary call per record, Python's multiprocessing.Pool (and Pillow for the image job) when a
// python3 is available (and, against it, a Python stage on the SDK of plugins/python when
// /usr/bin/python3 has Debian's grpc), and plain goroutines running the image codec. Child processes are this
// executable run again with the environment variable ChildEnv naming their role, so nothing is
// compiled at run time; a program embedding the harness must let Main see that variable first
// (Main does the rest).
//
// The troupe CLI exposes it as `troupe bench [--json] [--quick] [--only REGEX] [--photos DIR]`.
//
// The image job is measured twice: on generated images (Generate in stages/imgconv), and on
// real photographs, the JPEG and PNG files found under --photos (default DefaultPhotos, where
// Debian's plasma-workspace-wallpapers installs its photos and wallpapers, up to 5120×2880).
// Without any there, that figure is skipped and says so.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// ChildEnv is the environment variable that makes Main act as one of the harness's child
// processes (a socket echo peer, an RPC plugin, a troupe plugin, a memory probe) instead of
// running the benchmarks.
const ChildEnv = "TROUPE_BENCH_CHILD"

// selfArgs is the command line that runs this executable again as the harness (Main), to which
// ChildEnv is added for a child. Tests replace it with the test binary.
var selfArgs = func() ([]string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bench: cannot find the running executable to start child processes: %w", err)
	}
	return []string{exe, "bench"}, nil
}

// Main runs the harness with command-line arguments args (those after "bench") and returns the
// process exit status: 0 when every figure was measured (whether or not it met its target), 1
// when a measurement failed, 2 for bad arguments. When the environment variable ChildEnv is set,
// it runs as that child process instead and ignores args.
func Main(args []string, stdout, stderr io.Writer) int {
	if role := os.Getenv(ChildEnv); role != "" {
		return runChild(role, stdout, stderr)
	}
	fs := flag.NewFlagSet("troupe bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the results as JSON")
	quick := fs.Bool("quick", false, "small sizes (a smoke run for CI; the figures are not meaningful)")
	only := fs.String("only", "", "run only the figures whose name matches this regular expression")
	photos := fs.String("photos", DefaultPhotos, "a `DIR` of real photographs (JPEG and PNG, searched recursively) for the image-photos figure")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: troupe bench [--json] [--quick] [--only REGEX] [--photos DIR]")
		fmt.Fprintln(stderr, "Measures troupe's performance figures next to their baselines, in this run, on this machine.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "troupe bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var filter *regexp.Regexp
	if *only != "" {
		var err error
		if filter, err = regexp.Compile(*only); err != nil {
			fmt.Fprintf(stderr, "troupe bench: --only: %v\n", err)
			return 2
		}
	}
	sizes := fullSizes
	if *quick {
		sizes = quickSizes
	}
	h := &harness{sizes: sizes, log: stderr, progress: !*asJSON, photoDir: *photos}
	rep := h.run(context.Background(), filter)
	rep.Quick = *quick
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, "troupe bench:", err)
			return 1
		}
	} else {
		rep.WriteTable(stdout)
	}
	for _, f := range rep.Figures {
		if f.Error != "" {
			return 1
		}
	}
	return 0
}

// Report is the result of one run of the harness.
type Report struct {
	GoVersion string    `json:"go_version"`
	OS        string    `json:"os"`
	Arch      string    `json:"arch"`
	CPUs      int       `json:"cpus"`
	Quick     bool      `json:"quick"`
	Started   time.Time `json:"started"`
	Elapsed   float64   `json:"elapsed_seconds"`
	Figures   []Figure  `json:"figures"`
}

// Figure is one row of the table: troupe's value next to its baseline's, measured in the same
// run.
type Figure struct {
	Name         string  `json:"name"`
	Unit         string  `json:"unit"`                    // of Troupe and Baseline
	Troupe       float64 `json:"troupe"`                  // NaN (null in JSON) when not measured
	Baseline     float64 `json:"baseline"`                // NaN (null in JSON) when there is none
	Ratio        float64 `json:"ratio"`                   // as Target states it; NaN when not applicable
	Target       string  `json:"target"`                  // e.g. "ratio >= 0.5", "troupe <= 1 ms"
	Met          *bool   `json:"met"`                     // nil when not measured or no target
	Note         string  `json:"note,omitempty"`          // how it was measured, what the baseline is
	Skipped      string  `json:"skipped,omitempty"`       // why it was not measured
	Error        string  `json:"error,omitempty"`         // the measurement failed
	BaselineName string  `json:"baseline_name,omitempty"` // what the baseline is, in short
}

// MarshalJSON writes NaN values as null.
func (f Figure) MarshalJSON() ([]byte, error) {
	type plain Figure
	num := func(v float64) *float64 {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return &v
	}
	return json.Marshal(struct {
		plain
		Troupe   *float64 `json:"troupe"`
		Baseline *float64 `json:"baseline"`
		Ratio    *float64 `json:"ratio"`
	}{plain(f), num(f.Troupe), num(f.Baseline), num(f.Ratio)})
}

// WriteTable prints the report as an aligned table.
func (r *Report) WriteTable(w io.Writer) {
	mode := ""
	if r.Quick {
		mode = ", --quick (smoke sizes: figures are not meaningful)"
	}
	fmt.Fprintf(w, "troupe bench: %s %s/%s, %d CPUs%s, %.1fs\n\n", r.GoVersion, r.OS, r.Arch, r.CPUs, mode, r.Elapsed)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\ttroupe\tbaseline\tratio\ttarget\tmet?\t")
	var notes []string
	for _, f := range r.Figures {
		met := "-"
		switch {
		case f.Error != "":
			met = "ERROR"
		case f.Skipped != "":
			met = "skipped"
		case f.Met != nil && *f.Met:
			met = "yes"
		case f.Met != nil:
			met = "NO"
		}
		base := formatValue(f.Baseline, f.Unit)
		if f.BaselineName != "" && !math.IsNaN(f.Baseline) {
			base += " (" + f.BaselineName + ")"
		}
		ratio := "-"
		if !math.IsNaN(f.Ratio) {
			ratio = fmt.Sprintf("%.3g×", f.Ratio)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", f.Name, formatValue(f.Troupe, f.Unit), base, ratio, f.Target, met)
		switch {
		case f.Error != "":
			notes = append(notes, f.Name+": error: "+f.Error)
		case f.Skipped != "":
			notes = append(notes, f.Name+": skipped: "+f.Skipped)
		}
		if f.Note != "" {
			notes = append(notes, f.Name+": "+f.Note)
		}
	}
	tw.Flush()
	if len(notes) > 0 {
		fmt.Fprintln(w, "\nnotes:")
		for _, n := range notes {
			fmt.Fprintln(w, "  "+n)
		}
	}
}

// formatValue renders v in unit with an SI prefix.
func formatValue(v float64, unit string) string {
	if math.IsNaN(v) {
		return "-"
	}
	switch unit {
	case "ms":
		return fmt.Sprintf("%.3g ms", v)
	case "MB":
		return fmt.Sprintf("%.1f MB", v)
	}
	prefix := ""
	switch a := math.Abs(v); {
	case a >= 1e9:
		v, prefix = v/1e9, "G"
	case a >= 1e6:
		v, prefix = v/1e6, "M"
	case a >= 1e3:
		v, prefix = v/1e3, "k"
	}
	return fmt.Sprintf("%.3g %s%s", v, prefix, unit)
}

// sizes are the work sizes of a run.
type sizes struct {
	inproc    int   // records through the in-process pipelines
	plugin64  int   // 64-byte records through one plugin process
	plugin4k  int   // 4 KiB records through one plugin process
	rpc       int   // records through go-plugin unary calls
	pool      int   // records for the Python Pool comparison
	pyplugin  int   // records for the Python plugin vs Pool comparison
	images    int   // images for the image job
	photos    int   // the most real photographs converted (0: all found)
	restarts  int   // failovers and cold restarts sampled
	rssSmall  int   // records in the smaller slow-sink run
	rssLarge  int   // records in the larger slow-sink run
	wordcount int64 // bytes of text for the word count
	timeLimit time.Duration
}

var fullSizes = sizes{
	inproc: 2_000_000, plugin64: 2_000_000, plugin4k: 300_000, rpc: 20_000, pool: 1_000_000, pyplugin: 1_000_000,
	images: 120, photos: 0, restarts: 40, rssSmall: 1_000_000, rssLarge: 10_000_000, wordcount: 90_000_000, timeLimit: 10 * time.Minute,
}

var quickSizes = sizes{
	inproc: 20_000, plugin64: 20_000, plugin4k: 2_000, rpc: 300, pool: 20_000, pyplugin: 20_000,
	images: 6, photos: 6, restarts: 3, rssSmall: 20_000, rssLarge: 200_000, wordcount: 2_000_000, timeLimit: 3 * time.Minute,
}

// harness runs the figures.
type harness struct {
	sizes    sizes
	log      io.Writer
	progress bool
	tmp      string // a temporary directory for the run
	photoDir string // the directory of real photographs (--photos)
}

// group measures one or more figures that share measurements.
type group struct {
	names []string // the figures it produces, in order
	run   func(h *harness, ctx context.Context) []Figure
}

func (h *harness) groups() []group {
	return []group{
		{[]string{"inproc-3stage-64B", "inproc-3stage-64B-vs-batch1"}, (*harness).inproc},
		{[]string{"plugin-64B", "plugin-64B-credits1024", "plugin-64B-backend", "plugin-vs-grpc-unary"}, (*harness).plugin64},
		{[]string{"plugin-4KiB"}, (*harness).plugin4k},
		{[]string{"plugin-vs-python-pool"}, (*harness).pythonPool},
		{[]string{"python-plugin-vs-pool", "python-plugin-process-vs-pool"}, (*harness).pythonPlugin},
		{[]string{"image-vs-goroutines", "image-vs-python-pillow"}, (*harness).images},
		{[]string{"image-photos-vs-python-pillow"}, (*harness).photos},
		{[]string{"failover-warm-spare-p50", "failover-pipeline-p50", "cold-restart-p50"}, (*harness).restarts},
		{[]string{"slow-sink-rss", "slow-sink-rss-64KiB"}, (*harness).rss},
		{[]string{"cluster-2node-64B", "cluster-vs-remote-per-message", "cluster-vs-local"}, (*harness).clusterFigures},
		{[]string{"wordcount-vs-shell"}, (*harness).wordcount},
		{[]string{"engine-warm-job-p50"}, (*harness).engineJobs},
	}
}

// Names lists the figures the harness measures, in order.
func Names() []string {
	var out []string
	for _, g := range (&harness{}).groups() {
		out = append(out, g.names...)
	}
	return out
}

func (h *harness) logf(format string, args ...any) {
	if h.progress {
		fmt.Fprintf(h.log, format+"\n", args...)
	}
}

func (h *harness) run(ctx context.Context, filter *regexp.Regexp) *Report {
	rep := &Report{GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), Started: time.Now()}
	tmp, err := os.MkdirTemp("", "troupe-bench-")
	if err != nil {
		rep.Figures = append(rep.Figures, Figure{Name: "setup", Troupe: math.NaN(), Baseline: math.NaN(), Ratio: math.NaN(), Error: err.Error()})
		return rep
	}
	defer os.RemoveAll(tmp)
	h.tmp = tmp
	for _, g := range h.groups() {
		want := map[string]bool{}
		for _, n := range g.names {
			if filter == nil || filter.MatchString(n) {
				want[n] = true
			}
		}
		if len(want) == 0 {
			continue
		}
		h.logf("measuring %s ...", strings.Join(g.names, ", "))
		gctx, cancel := context.WithTimeout(ctx, h.sizes.timeLimit)
		figs := g.run(h, gctx)
		cancel()
		for _, f := range figs {
			if want[f.Name] {
				rep.Figures = append(rep.Figures, f)
			}
		}
	}
	rep.Elapsed = time.Since(rep.Started).Seconds()
	return rep
}

// Helpers to build figures.

func nan() float64 { return math.NaN() }

// higher is a figure where more is better: met when troupe/baseline >= min.
func higher(name, unit string, troupe, baseline, min float64, note string) Figure {
	f := Figure{Name: name, Unit: unit, Troupe: troupe, Baseline: baseline, Ratio: troupe / baseline,
		Target: fmt.Sprintf("ratio >= %g", min), Note: note}
	met := f.Ratio >= min
	f.Met = &met
	return f
}

// info is a figure with no target.
func info(name, unit string, troupe, baseline float64, note string) Figure {
	return Figure{Name: name, Unit: unit, Troupe: troupe, Baseline: baseline, Ratio: troupe / baseline, Target: "-", Note: note}
}

// failed is a figure whose measurement failed.
func failed(name string, err error) Figure {
	return Figure{Name: name, Troupe: nan(), Baseline: nan(), Ratio: nan(), Target: "-", Error: err.Error()}
}

// skipped is a figure that could not be measured here.
func skipped(name, target, why string) Figure {
	return Figure{Name: name, Troupe: nan(), Baseline: nan(), Ratio: nan(), Target: target, Skipped: why}
}

// failAll returns failed figures for every name.
func failAll(err error, names ...string) []Figure {
	out := make([]Figure, len(names))
	for i, n := range names {
		out[i] = failed(n, err)
	}
	return out
}

// rate is records (or bytes) per second.
func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }
