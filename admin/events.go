package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
)

// EventLog writes the supervision events of an Observed to a file, one JSON object (an Event)
// a line, from the start of the run when the Observed keeps its earlier events (Replayer),
// until the run ends or Close.
type EventLog struct {
	path   string
	f      *os.File
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// OpenEventLog opens (creates, or appends to) the file at path and writes obs's events to it.
func OpenEventLog(obs Observed, path string) (*EventLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("events file: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var ch <-chan Event
	if r, ok := obs.(Replayer); ok {
		ch = r.SubscribeReplay(ctx)
	} else {
		ch = obs.Subscribe(ctx)
	}
	l := &EventLog{path: path, f: f, cancel: cancel, done: make(chan struct{})}
	go l.write(ch)
	return l, nil
}

func (l *EventLog) write(ch <-chan Event) {
	defer close(l.done)
	w := bufio.NewWriter(l.f)
	enc := json.NewEncoder(w)
	for ev := range ch {
		if l.err != nil {
			continue // drain until the subscription closes
		}
		if err := enc.Encode(ev); err != nil {
			l.err = err
			continue
		}
		if len(ch) == 0 {
			if err := w.Flush(); err != nil {
				l.err = err
			}
		}
	}
	if err := w.Flush(); err != nil && l.err == nil {
		l.err = err
	}
}

// Close stops following events, writes what was received and closes the file. It waits for
// the writer until ctx ends.
func (l *EventLog) Close(ctx context.Context) error {
	l.cancel()
	select {
	case <-l.done:
	case <-ctx.Done():
		return fmt.Errorf("events file %s: %w", l.path, ctx.Err())
	}
	err := l.err
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("events file %s: %w", l.path, err)
	}
	return nil
}
