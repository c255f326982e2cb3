package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
	base, err := goroutineImages(paths)
	if err != nil {
		return failAll(err, names...)
	}
	tr, err := troupeImages(ctx, dir, n)
	if err != nil {
		return failAll(err, names...)
	}
	// Overhead <= 5% is troupe's rate at least 1/1.05 of the baseline's.
	f1 := higher(names[0], "img/s", rate(n, tr), rate(n, base), 0.952,
		fmt.Sprintf("%d generated images (JPEG, PNG, GIF; 64 px to 1600x1200) to JPEG q90, %d workers; ratio >= 0.952 is overhead <= 5%%", n, workers()))
	f1.BaselineName = "goroutines"
	figs := []Figure{f1}
	python, version, why := findPython(ctx, "import PIL, multiprocessing")
	if python == "" {
		return append(figs, skipped(names[1], "ratio >= 1.5", why+" (Debian: apt-get install python3-pil)"))
	}
	py, err := runPython(ctx, h.tmp, python, pillowScript, strings.Join(paths, "\n"), strconv.Itoa(workers()))
	if err != nil {
		return append(figs, failed(names[1], err))
	}
	f2 := higher(names[1], "img/s", rate(n, tr), rate(n, py), 1.5,
		fmt.Sprintf("the same images, troupe in-process vs %s %s Pillow in multiprocessing.Pool(%d)", python, version, workers()))
	f2.BaselineName = "Python Pillow"
	return append(figs, f2)
}
