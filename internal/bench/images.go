package bench

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/stages/imgconv"
)

// troupeImages converts every file in dir with imgconv's stage, in-process, workers() workers.
func troupeImages(ctx context.Context, dir string, n int) (time.Duration, error) {
	src, err := actors.NewFilesSource(dir, "*", false)
	if err != nil {
		return 0, err
	}
	p := troupe.Pipeline{
		Source: src,
		Stages: []troupe.Stage{{Name: "convert", Func: troupe.Func(imgconv.Stage(imgconv.DefaultOptions())), Workers: workers(), Attempts: 1}},
		Sink:   actors.NewDiscardSink(),
	}
	start := time.Now()
	sum, err := actors.Run(ctx, &p)
	d := time.Since(start)
	if err == nil && (sum.RecordsOut != int64(n) || sum.DeadLetters != 0) {
		err = fmt.Errorf("%d images converted, %d failed, want %d", sum.RecordsOut, sum.DeadLetters, n)
	}
	return d, err
}

// goroutineImages is the image baseline: workers() goroutines reading the same files and
// converting them with the same codec.
func goroutineImages(paths []string) (time.Duration, error) {
	start := time.Now()
	next := make(chan string)
	errs := make(chan error, workers())
	var wg sync.WaitGroup
	for range workers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				data, err := os.ReadFile(p)
				if err == nil {
					_, _, err = imgconv.Convert(data, imgconv.DefaultOptions())
				}
				if err != nil {
					errs <- fmt.Errorf("%s: %w", p, err)
					return
				}
			}
		}()
	}
	for _, p := range paths {
		next <- p
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return 0, err
	default:
	}
	return time.Since(start), nil
}

// figureRounds is how many times each side of a throughput figure runs, alternating (troupe,
// then its baselines, then troupe again ...); each keeps its best time. On a shared machine a
// burst of load then hits one round of one side, not the figure.
const figureRounds = 3

// timing is the best of a side's rounds: wall-clock time, and CPU time (user and system, of this
// process and of the child processes it waited for), which load on the machine hardly changes.
type timing struct{ wall, cpu time.Duration }

// cpuTime is the CPU time used so far by this process and its waited-for children.
func cpuTime() time.Duration {
	var self, children syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(children.Utime) + tv(children.Stime)
}

// alternate runs each of fs rounds times in turn and returns each one's best wall-clock and
// best CPU time.
func alternate(rounds int, fs ...func() (time.Duration, error)) ([]timing, error) {
	best := make([]timing, len(fs))
	for r := range rounds {
		for i, f := range fs {
			c0 := cpuTime()
			d, err := f()
			c := cpuTime() - c0
			if err != nil {
				return nil, err
			}
			if r == 0 || d < best[i].wall {
				best[i].wall = d
			}
			if r == 0 || c < best[i].cpu {
				best[i].cpu = c
			}
		}
	}
	return best, nil
}

// cpuNote compares two sides' CPU time per image.
func cpuNote(n int, troupe, base timing, baseName string) string {
	per := func(d time.Duration) float64 { return d.Seconds() * 1e3 / float64(n) }
	return fmt.Sprintf("CPU time per image: troupe %.1f ms, %s %.1f ms (%.2f× less)", per(troupe.cpu), baseName, per(base.cpu), base.cpu.Seconds()/troupe.cpu.Seconds())
}

func (h *harness) images(ctx context.Context) []Figure {
	names := []string{"image-vs-goroutines", "image-vs-python-pillow"}
	n := h.sizes.images
	dir := filepath.Join(h.tmp, "images")
	paths, err := imgconv.Generate(dir, n, 1)
	if err != nil {
		return failAll(err, names...)
	}
	// Warm the page cache and the codec once, so that neither side pays for the first touch.
	if _, err := goroutineImages(paths[:min(len(paths), workers())]); err != nil {
		return failAll(err, names...)
	}
	runs := []func() (time.Duration, error){
		func() (time.Duration, error) { return troupeImages(ctx, dir, n) },
		func() (time.Duration, error) { return goroutineImages(paths) },
	}
	python, version, why := findPython(ctx, "import PIL, multiprocessing")
	if python != "" {
		runs = append(runs, h.pillowRun(ctx, python, paths))
	}
	best, err := alternate(figureRounds, runs...)
	if err != nil {
		return failAll(err, names...)
	}
	// Overhead <= 5% is troupe's rate at least 1/1.05 of the baseline's.
	f1 := higher(names[0], "img/s", rate(n, best[0].wall), rate(n, best[1].wall), 0.952,
		fmt.Sprintf("%d generated images (JPEG, PNG, GIF; 64 px to 1600x1200) to JPEG q90, %d workers; ratio >= 0.952 is overhead <= 5%%; codec: %s; best of %d alternating rounds each; %s",
			n, workers(), imgconv.Codec(), figureRounds, cpuNote(n, best[0], best[1], "goroutines")))
	f1.BaselineName = "goroutines"
	if python == "" {
		return []Figure{f1, skipped(names[1], "ratio >= 1.5", why+" (Debian: apt-get install python3-pil)")}
	}
	return []Figure{f1, pillowFigure(names[1], n, best[0], best[2], fmt.Sprintf("the same %d generated images", n), python, version)}
}

// pillowRun returns a run of the Pillow baseline over paths: Python's multiprocessing.Pool with
// workers() processes, each converting files with Pillow as troupe's stage does.
func (h *harness) pillowRun(ctx context.Context, python string, paths []string) func() (time.Duration, error) {
	return func() (time.Duration, error) {
		return runPython(ctx, h.tmp, python, pillowScript, strings.Join(paths, "\n"), strconv.Itoa(workers()))
	}
}

func pillowFigure(name string, n int, troupe, pillow timing, what, python, version string) Figure {
	f := higher(name, "img/s", rate(n, troupe.wall), rate(n, pillow.wall), 1.5,
		fmt.Sprintf("%s to JPEG q90, troupe in-process (codec: %s) vs %s %s Pillow in multiprocessing.Pool(%d); best of %d alternating rounds each; %s",
			what, imgconv.Codec(), python, version, workers(), figureRounds, cpuNote(n, troupe, pillow, "Pillow")))
	f.BaselineName = "Python Pillow"
	return f
}

// DefaultPhotos is where the image-photos figure looks for real photographs unless told
// otherwise (troupe bench --photos DIR): Debian's plasma-workspace-wallpapers installs its
// wallpapers there, photographs and artwork as JPEG and PNG up to 5120×2880.
const DefaultPhotos = "/usr/share/wallpapers"

// findPhotos lists the JPEG and PNG files under dir (recursively, by extension, in path order),
// at most limit of them when limit > 0.
func findPhotos(dir string, limit int) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			switch strings.ToLower(filepath.Ext(p)) {
			case ".jpg", ".jpeg", ".png":
				out = append(out, p)
			}
		}
		return nil
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, err
}

func (h *harness) photos(ctx context.Context) []Figure {
	const name = "image-photos-vs-python-pillow"
	const target = "ratio >= 1.5"
	found, err := findPhotos(h.photoDir, h.sizes.photos)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(found) == 0) {
		return []Figure{skipped(name, target, fmt.Sprintf("no JPEG or PNG photographs under %s (Debian: apt-get install plasma-workspace-wallpapers; or troupe bench --photos DIR)", h.photoDir))}
	}
	if err != nil {
		return []Figure{failed(name, err)}
	}
	// The files source reads one directory: link the photos into one, flat.
	dir := filepath.Join(h.tmp, "photos")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return []Figure{failed(name, err)}
	}
	var size int64
	for i, p := range found {
		if err := os.Symlink(p, filepath.Join(dir, fmt.Sprintf("%04d%s", i, strings.ToLower(filepath.Ext(p))))); err != nil {
			return []Figure{failed(name, err)}
		}
		if fi, err := os.Stat(p); err == nil {
			size += fi.Size()
		}
	}
	// Warm the page cache (and the codec) so that neither side pays for the first read.
	if _, err := goroutineImages(found); err != nil {
		return []Figure{failed(name, err)}
	}
	python, version, why := findPython(ctx, "import PIL, multiprocessing")
	if python == "" {
		return []Figure{skipped(name, target, why+" (Debian: apt-get install python3-pil)")}
	}
	n := len(found)
	best, err := alternate(figureRounds,
		func() (time.Duration, error) { return troupeImages(ctx, dir, n) },
		h.pillowRun(ctx, python, found))
	if err != nil {
		return []Figure{failed(name, err)}
	}
	return []Figure{pillowFigure(name, n, best[0], best[1],
		fmt.Sprintf("%d real photographs and wallpapers (JPEG and PNG, %.0f MB) from %s", n, float64(size)/1e6, h.photoDir),
		python, version)}
}
