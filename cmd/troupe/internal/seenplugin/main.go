// Command seenplugin is the plugin of troupe run's journal tests: it appends the key of every
// record it processes to the file SEEN_FILE (one line per record, one write each), waits
// SEEN_DELAY per record, fails the records whose integer key is a multiple of SEEN_FAIL_MOD
// (when set and positive), and emits "out KEY" for the others.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/plugins/sdk"
)

func main() {
	delay, _ := time.ParseDuration(os.Getenv("SEEN_DELAY"))
	mod, _ := strconv.Atoi(os.Getenv("SEEN_FAIL_MOD"))
	var (
		mu   sync.Mutex
		seen *os.File
	)
	if p := os.Getenv("SEEN_FILE"); p != "" {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "seenplugin:", err)
			os.Exit(1)
		}
		seen = f
	}
	sdk.Serve(sdk.Stage{Process: func(ctx context.Context, rec troupe.Record) ([]troupe.Record, error) {
		if seen != nil {
			mu.Lock()
			_, err := seen.WriteString(rec.Key + "\n")
			mu.Unlock()
			if err != nil {
				return nil, err
			}
		}
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if n, err := strconv.Atoi(rec.Key); err == nil && mod > 0 && n%mod == 0 {
			return nil, fmt.Errorf("key %s fails (a multiple of %d)", rec.Key, mod)
		}
		return []troupe.Record{{Key: rec.Key, Payload: []byte("out " + rec.Key)}}, nil
	}})
}
