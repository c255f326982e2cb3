// Command testplugin is the plugin the plugins tests run: stage.Process behind sdk.Serve.
// TESTPLUGIN_SLOW_START=<duration> delays the handshake (startup deadline tests); hostile.go has
// the modes that break the start-up or the protocol. The performance baselines live in
// internal/bench (troupe bench).
package main

import (
	"os"
	"time"

	"github.com/troupe-dev/troupe/plugins/internal/testplugin/stage"
	"github.com/troupe-dev/troupe/plugins/sdk"
)

func main() {
	hostileStart()
	if d, err := time.ParseDuration(os.Getenv("TESTPLUGIN_SLOW_START")); err == nil {
		time.Sleep(d)
	}
	sdk.Serve(sdk.Stage{Process: stage.Process, Setup: stage.Setup})
}
