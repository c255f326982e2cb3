package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// poolScript runs the Pool baseline: N records of SIZE bytes upper-cased by a Pool of W
// processes with imap(chunksize=256), consumed in order; it prints the seconds taken, Pool
// start included (troupe's figure includes starting its plugins too).
const poolScript = `import sys, time, multiprocessing as mp

def upper(b):
    return b.upper()

def main():
    n, size, w = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    rec = b"a" * size
    t = time.perf_counter()
    got = 0
    with mp.Pool(w) as pool:
        for r in pool.imap(upper, (rec for _ in range(n)), chunksize=256):
            got += 1
    el = time.perf_counter() - t
    if got != n:
        sys.exit("got %d results, want %d" % (got, n))
    print(el)

if __name__ == "__main__":
    main()
`

// pillowScript runs the image baseline: every file named on stdin converted to JPEG (quality
// 90, transparency composited on white, a GIF's first frame) by a Pool of W processes with
// Pillow, the bytes kept in memory as troupe's in-process run does; it prints the seconds taken.
const pillowScript = `import io, sys, time, multiprocessing as mp
from PIL import Image

def convert(path):
    with open(path, "rb") as f:
        data = f.read()
    im = Image.open(io.BytesIO(data))
    im.seek(0)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        bg = Image.new("RGB", im.size, (255, 255, 255))
        bg.paste(im, mask=im.getchannel("A"))
        im = bg
    elif im.mode not in ("RGB", "L"):
        im = im.convert("RGB")
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90)
    return len(out.getvalue())

def main():
    w = int(sys.argv[1])
    paths = [l for l in sys.stdin.read().split("\n") if l]
    t = time.perf_counter()
    with mp.Pool(w) as pool:
        sizes = pool.map(convert, paths, chunksize=1)
    el = time.perf_counter() - t
    if len(sizes) != len(paths) or min(sizes) <= 0:
        sys.exit("conversion failed")
    print(el)

if __name__ == "__main__":
    main()
`

// pythonCandidates are the interpreters tried, in order.
func pythonCandidates() []string {
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		if p == "" {
			return
		}
		if r, err := filepath.EvalSymlinks(p); err == nil && seen[r] {
			return
		} else if err == nil {
			seen[r] = true
		}
		out = append(out, p)
	}
	if p, err := exec.LookPath("python3"); err == nil {
		add(p)
	}
	for _, p := range []string{"/usr/bin/python3", "/usr/local/bin/python3"} {
		if _, err := os.Stat(p); err == nil {
			add(p)
		}
	}
	return out
}

// findPython returns the first python3 for which check (a Python statement) succeeds, with its
// version, or a reason why there is none.
func findPython(ctx context.Context, check string) (path, version, why string) {
	cands := pythonCandidates()
	if len(cands) == 0 {
		return "", "", "no python3 on PATH, /usr/bin or /usr/local/bin"
	}
	var tried []string
	for _, p := range cands {
		out, err := exec.CommandContext(ctx, p, "-c", check+"\nimport sys; print(sys.version.split()[0])").Output()
		if err == nil {
			return p, strings.TrimSpace(string(out)), ""
		}
		tried = append(tried, p)
	}
	return "", "", "none of " + strings.Join(tried, ", ") + " can run: " + check
}

// runPython runs script with args (and stdin) and returns the seconds it printed.
func runPython(ctx context.Context, dir, python, script string, stdin string, args ...string) (time.Duration, error) {
	path := filepath.Join(dir, fmt.Sprintf("bench-%d.py", time.Now().UnixNano()))
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		return 0, err
	}
	defer os.Remove(path)
	cmd := exec.CommandContext(ctx, python, append([]string{path}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("%s: %v: %s", python, err, strings.TrimSpace(stderr.String()))
	}
	secs, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		return 0, fmt.Errorf("%s printed %q: %v", python, out, err)
	}
	return time.Duration(secs * float64(time.Second)), nil
}

func (h *harness) pythonPool(ctx context.Context) []Figure {
	const name = "plugin-vs-python-pool"
	python, version, why := findPython(ctx, "import multiprocessing")
	if python == "" {
		return []Figure{skipped(name, "ratio >= 5", why)}
	}
	n, w := h.sizes.pool, workers()
	best, err := alternate(figureRounds,
		func() (time.Duration, error) {
			return runPython(ctx, h.tmp, python, poolScript, "", strconv.Itoa(n), "64", strconv.Itoa(w))
		},
		func() (time.Duration, error) { return pluginPipeline(ctx, n, 64, w, 0) }) // the default spec
	if err != nil {
		return []Figure{failed(name, err)}
	}
	py, tr := best[0].wall, best[1].wall
	f := higher(name, "rec/s", rate(n, tr), rate(n, py), 3,
		fmt.Sprintf("%d records of 64 B upper-cased by %d plugin workers vs %s %s multiprocessing.Pool(%d).imap(chunksize=256), process start included in both; best of %d alternating rounds each", n, w, python, version, w, figureRounds))
	f.BaselineName = "Python Pool"
	return []Figure{f}
}
