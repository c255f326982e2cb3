package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/plugins"
	pysdk "github.com/troupe-dev/troupe/plugins/python"
)

// pyStageScript is the Python plugin of the python-plugin figures: the Pool baseline's transform
// (bytes.upper) as a troupe stage, per record (process) or per batch (process_batch), on the SDK
// of plugins/python written next to it.
const pyStageScript = `import sys
sys.path.insert(0, sys.argv[1])
from troupe_plugin import serve

def process(rec):
    rec.payload = rec.payload.upper()
    return [rec]

def process_batch(recs):
    for r in recs:
        r.payload = r.payload.upper()
    return [[r] for r in recs]

if sys.argv[2] == "batch":
    serve(batch=process_batch)
else:
    serve(process)
`

// poolDistinctScript is the Pool baseline of the python-plugin figures: poolScript with a
// distinct 64-byte payload per record, as troupe's range source makes (poolScript sends one
// bytes object n times, which pickle's memo sends once per chunk of 256).
const poolDistinctScript = `import sys, time, multiprocessing as mp

def upper(b):
    return b.upper()

def main():
    n, size, w = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    reps = max(size // 8, 1)
    t = time.perf_counter()
    got = 0
    with mp.Pool(w) as pool:
        for r in pool.imap(upper, (i.to_bytes(8, "little") * reps for i in range(n)), chunksize=256):
            got += 1
    el = time.perf_counter() - t
    if got != n:
        sys.exit("got %d results, want %d" % (got, n))
    print(el)

if __name__ == "__main__":
    main()
`

// pythonPlugin measures records/s through a Python stage (the SDK of plugins/python) against
// the same transform in multiprocessing.Pool(w).imap(chunksize=256), in the same run.
func (h *harness) pythonPlugin(ctx context.Context) []Figure {
	const batchName, eachName = "python-plugin-vs-pool", "python-plugin-process-vs-pool"
	python, version, why := findPython(ctx, "import grpc, google.protobuf, multiprocessing")
	if python == "" {
		return []Figure{skipped(batchName, "ratio >= 1", why), skipped(eachName, "ratio >= 1", why)}
	}
	dir := filepath.Join(h.tmp, "python")
	script := filepath.Join(dir, "stage.py")
	if err := pysdk.WriteSDK(dir); err != nil {
		return []Figure{failed(batchName, err), failed(eachName, err)}
	}
	if err := os.WriteFile(script, []byte(pyStageScript), 0o644); err != nil {
		return []Figure{failed(batchName, err), failed(eachName, err)}
	}
	n, w := h.sizes.pyplugin, workers()
	modes := []struct{ name, mode string }{{batchName, "batch"}, {eachName, "process"}}
	runs := []func() (time.Duration, error){func() (time.Duration, error) {
		return runPython(ctx, h.tmp, python, poolDistinctScript, "", strconv.Itoa(n), "64", strconv.Itoa(w))
	}}
	for _, v := range modes {
		runs = append(runs, func() (time.Duration, error) {
			return pythonPipeline(ctx, plugins.Config{Cmd: []string{python, script, dir, v.mode}}, n, 64, w)
		})
	}
	best, err := alternate(figureRounds, runs...)
	if err != nil {
		return []Figure{failed(batchName, err), failed(eachName, err)}
	}
	pool := best[0].wall
	var figs []Figure
	for i, v := range modes {
		d := best[1+i].wall
		api := "process_batch(records)"
		if v.mode == "process" {
			api = "process(record)"
		}
		f := higher(v.name, "rec/s", rate(n, d), rate(n, pool), 1,
			fmt.Sprintf("%d records of 64 B upper-cased by %d Python plugin processes (%s %s, %s) vs multiprocessing.Pool(%d).imap(chunksize=256) of distinct 64-byte records, process start included in both; best of %d alternating rounds each",
				n, w, python, version, api, w, figureRounds))
		f.BaselineName = "Python Pool"
		figs = append(figs, f)
	}
	return figs
}

// pythonPipeline runs n records of size bytes through one stage of w Python plugin workers and
// returns the time the run took (plugin start included).
func pythonPipeline(ctx context.Context, cfg plugins.Config, n, size, w int) (time.Duration, error) {
	factory, err := cfg.Factory()
	if err != nil {
		return 0, err
	}
	p := troupe.Pipeline{
		Source: actors.NewRangeSource(int64(n), size),
		Stages: []troupe.Stage{{Name: "upper", Backend: factory, Workers: w, Credits: 1024}},
		Sink:   actors.NewDiscardSink(),
	}
	start := time.Now()
	sum, err := actors.Run(ctx, &p)
	d := time.Since(start)
	if err == nil && sum.RecordsOut != int64(n) {
		err = fmt.Errorf("%d records reached the sink, want %d", sum.RecordsOut, n)
	}
	return d, err
}
