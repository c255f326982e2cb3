package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/spec"
)

// The word count: lines → split (words are runs of ASCII letters) → count (a reduce stage,
// with its map-side combine) → format, from a file of real text (Go's own source tree) to a
// file, against the shell pipeline a user would otherwise type, on the same input and cores:
//
//	tr -cs 'A-Za-z' '\n' < in | sort | uniq -c > out
//
// (LC_ALL=C for both tools: bytewise, their fastest). The counts must be identical.

// wordcountSpec is the troupe side, as a user would write it; %s are the input and output.
const wordcountSpec = `name: wordcount
source: {lines: {path: %q}}
stages:
  - {name: words, builtin: split, options: {letters: true}}
  - {name: count, builtin: count}
  - {name: format, builtin: format, workers: 1, options: {template: "{key}\t{payload}"}}
sink: {lines: {path: %q}}
`

func (h *harness) wordcount(ctx context.Context) []Figure {
	const name = "wordcount-vs-shell"
	for _, tool := range []string{"sh", "tr", "sort", "uniq"} {
		if _, err := exec.LookPath(tool); err != nil {
			return []Figure{skipped(name, "ratio >= 1", tool+" not found")}
		}
	}
	in := filepath.Join(h.tmp, "words.txt")
	size, err := writeGoSource(in, h.sizes.wordcount)
	if err != nil {
		return []Figure{failed(name, err)}
	}
	mb := float64(size) / 1e6

	outT := filepath.Join(h.tmp, "words.troupe.txt")
	s, err := spec.Parse([]byte(fmt.Sprintf(wordcountSpec, in, outT)), h.tmp)
	if err != nil {
		return []Figure{failed(name, err)}
	}
	var sum troupe.Summary
	outS := filepath.Join(h.tmp, "words.shell.txt")
	best, err := alternate(figureRounds,
		func() (time.Duration, error) {
			p, err := s.Pipeline(spec.BuildOptions{})
			if err != nil {
				return 0, err
			}
			start := time.Now()
			sum, err = actors.Run(ctx, p)
			return time.Since(start), err
		},
		func() (time.Duration, error) {
			sh := exec.CommandContext(ctx, "sh", "-c", `tr -cs 'A-Za-z' '\n' < "$1" | sort | uniq -c > "$2"`, "sh", in, outS)
			sh.Env = append(os.Environ(), "LC_ALL=C")
			start := time.Now()
			if out, err := sh.CombinedOutput(); err != nil {
				return 0, fmt.Errorf("shell pipeline: %v: %s", err, out)
			}
			return time.Since(start), nil
		})
	if err != nil {
		return []Figure{failed(name, err)}
	}
	dT, dS := best[0].wall, best[1].wall

	if err := sameCounts(outT, outS); err != nil {
		return []Figure{failed(name, err)}
	}
	note := fmt.Sprintf("%.0f MB of Go source, %d lines, %d distinct words, %d cores; baseline: LC_ALL=C tr -cs 'A-Za-z' '\\n' | sort | uniq -c; identical counts checked; best of %d alternating rounds each",
		mb, sum.RecordsIn, sum.RecordsOut, runtime.NumCPU(), figureRounds)
	return []Figure{higher(name, "MB/s", mb/dT.Seconds(), mb/dS.Seconds(), 1, note)}
}

// writeGoSource writes at least size bytes of Go source files from GOROOT to path (going round
// the tree again if it is smaller) and returns how many it wrote.
func writeGoSource(path string, size int64) (int64, error) {
	root := filepath.Join(runtime.GOROOT(), "src")
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var n int64
	size = max(size, 1)
	done := errors.New("done")
	for n < size {
		before := n
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || !d.Type().IsRegular() {
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			if len(data) > 0 && data[len(data)-1] != '\n' {
				data = append(data, '\n')
			}
			m, err := w.Write(data)
			n += int64(m)
			if err != nil {
				return err
			}
			if n >= size {
				return done
			}
			return nil
		})
		if err != nil && !errors.Is(err, done) {
			f.Close()
			return n, err
		}
		if n == before {
			f.Close()
			return n, fmt.Errorf("no Go source under %s", root)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return n, err
	}
	return n, f.Close()
}

// sameCounts checks that troupe's "word<TAB>count" lines and uniq -c's "count word" lines hold
// the same counts (uniq's empty word, from input that starts with a non-letter, is not a word).
func sameCounts(troupeOut, shellOut string) error {
	t, err := readCounts(troupeOut, func(line string) (string, string, bool) {
		return strings.Cut(line, "\t")
	})
	if err != nil {
		return err
	}
	s, err := readCounts(shellOut, func(line string) (string, string, bool) {
		c, w, ok := strings.Cut(strings.TrimLeft(line, " "), " ")
		return w, c, ok
	})
	if err != nil {
		return err
	}
	delete(s, "")
	if len(t) != len(s) {
		return fmt.Errorf("troupe counted %d distinct words, the shell pipeline %d", len(t), len(s))
	}
	for w, c := range s {
		if t[w] != c {
			return fmt.Errorf("word %q: troupe counted %d, the shell pipeline %d", w, t[w], c)
		}
	}
	return nil
}

func readCounts(path string, parse func(string) (word, count string, ok bool)) (map[string]int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	r := bufio.NewReader(bytes.NewReader(data))
	for {
		line, err := r.ReadString('\n')
		if line = strings.TrimSuffix(line, "\n"); line != "" {
			w, c, ok := parse(line)
			n, perr := strconv.ParseInt(c, 10, 64)
			if !ok || perr != nil {
				return nil, fmt.Errorf("%s: bad line %q", path, line)
			}
			out[w] += n
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
