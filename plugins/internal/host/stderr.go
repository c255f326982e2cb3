package host

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

const (
	tailLines   = 20
	maxLineSize = 4096
)

// stderrLog turns the plugin's output into log records, one per line, tagged with the stage,
// worker, pid and stream, and keeps the last lines for crash reasons.
type stderrLog struct {
	log  *atomic.Pointer[slog.Logger] // shared by the process's streams; replaced when a spare is configured
	name string
	pid  atomic.Int64

	pidFrom *stderrLog // the stream whose pid this one reports, if not its own

	mu      sync.Mutex
	partial []byte
	tail    *tail
}

type tail struct {
	mu    sync.Mutex
	lines []string
	// header is the last line that starts a Go crash report ("panic: ...", "fatal error: ...",
	// "SIGSEGV: ..."): the register dump after it would push it out of the tail.
	header string
}

func isCrashHeader(line string) bool {
	for _, p := range []string{"panic: ", "fatal error: ", "runtime: ", "SIG"} {
		if strings.HasPrefix(line, p) {
			return p != "SIG" || strings.Contains(line, ": ")
		}
	}
	return false
}

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if isCrashHeader(line) {
		t.header = line
	}
	if len(t.lines) == tailLines {
		copy(t.lines, t.lines[1:])
		t.lines = t.lines[:tailLines-1]
	}
	t.lines = append(t.lines, line)
}

func newStderrLog(log *slog.Logger, name string) *stderrLog {
	l := &stderrLog{log: new(atomic.Pointer[slog.Logger]), name: name, tail: &tail{}}
	l.log.Store(log)
	return l
}

// setLogger replaces the logger of this stream and of the streams made from it.
func (l *stderrLog) setLogger(log *slog.Logger) { l.log.Store(log) }

// stream returns a writer for another stream of the same process sharing the tail.
func (l *stderrLog) stream(name string) *stderrLog {
	return &stderrLog{log: l.log, name: name, tail: l.tail, pidFrom: l}
}

func (l *stderrLog) setPid(pid int) { l.pid.Store(int64(pid)) }

// Write splits p into lines; it never fails.
func (l *stderrLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := maxLineSize - len(l.partial)
			if room > 0 {
				l.partial = append(l.partial, p[:min(room, len(p))]...)
			}
			break
		}
		line := p[:i]
		if len(l.partial) > 0 {
			l.partial = append(l.partial, line[:min(len(line), max(maxLineSize-len(l.partial), 0))]...)
			line = l.partial
		}
		l.emit(string(line[:min(len(line), maxLineSize)]))
		l.partial = l.partial[:0]
		p = p[i+1:]
	}
	return n, nil
}

func (l *stderrLog) emit(line string) {
	line = strings.TrimRight(line, "\r")
	l.tail.add(line)
	pid := l.pid.Load()
	if l.pidFrom != nil {
		pid = l.pidFrom.pid.Load()
	}
	l.log.Load().Info(line, "stream", l.name, "pid", pid)
}

// tailSuffix renders the last lines for an error message ("" when there are none).
func (l *stderrLog) tailSuffix() string {
	l.tail.mu.Lock()
	defer l.tail.mu.Unlock()
	if len(l.tail.lines) == 0 {
		return ""
	}
	lines := l.tail.lines
	if h := l.tail.header; h != "" && !slices.Contains(lines, h) {
		lines = append([]string{h, "..."}, lines...)
	}
	return "; last output:\n  " + strings.Join(lines, "\n  ")
}
