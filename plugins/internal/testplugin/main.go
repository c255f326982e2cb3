// Command testplugin is the plugin the plugins tests run: stage.Process behind sdk.Serve.
// TESTPLUGIN_SLOW_START=<duration> delays the handshake (startup deadline tests); hostile.go has
// the modes that break the start-up or the protocol. The performance baselines live in
// internal/bench (troupe bench).
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/troupe-dev/troupe"

	"github.com/troupe-dev/troupe/plugins/internal/testplugin/stage"
	"github.com/troupe-dev/troupe/plugins/sdk"
)

func main() {
	hostileStart()
	if d, err := time.ParseDuration(os.Getenv("TESTPLUGIN_SLOW_START")); err == nil {
		time.Sleep(d)
	}
	st := sdk.Stage{Process: stage.Process, Setup: stage.Setup}
	// TESTPLUGIN_SDK=batch uses ProcessBatch (stage.Process on each record, a panic failing only
	// its record); concurrent:N and batch-concurrent:N add Concurrency N.
	mode, n, _ := strings.Cut(os.Getenv("TESTPLUGIN_SDK"), ":")
	st.Concurrency, _ = strconv.Atoi(n)
	if mode == "batch" || mode == "batch-concurrent" {
		st.Process, st.ProcessBatch = nil, processBatch
	}
	sdk.Serve(st)
}

func processBatch(ctx context.Context, recs []troupe.Record) ([][]troupe.Record, []error) {
	outs := make([][]troupe.Record, len(recs))
	errs := make([]error, len(recs))
	for i, r := range recs {
		func() {
			defer func() {
				if v := recover(); v != nil {
					errs[i] = fmt.Errorf("panic: %v", v)
				}
			}()
			outs[i], errs[i] = stage.Process(ctx, r)
		}()
	}
	return outs, errs
}
