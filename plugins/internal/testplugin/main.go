// Command testplugin is the plugin the plugins tests run: stage.Process behind sdk.Serve.
// TESTPLUGIN_SLOW_START=<duration> delays the handshake (startup deadline tests);
// TESTPLUGIN_MODE=echo and TESTPLUGIN_MODE=rpc run the benchmarks' baselines instead.
package main

import (
	"os"
	"time"

	"github.com/hashicorp/go-plugin"
	"github.com/troupe-dev/troupe/ipc"
	"github.com/troupe-dev/troupe/plugins/internal/pluginproto"
	"github.com/troupe-dev/troupe/plugins/internal/testplugin/bench"
	"github.com/troupe-dev/troupe/plugins/internal/testplugin/stage"
	"github.com/troupe-dev/troupe/plugins/sdk"
)

func main() {
	if d, err := time.ParseDuration(os.Getenv("TESTPLUGIN_SLOW_START")); err == nil {
		time.Sleep(d)
	}
	switch os.Getenv("TESTPLUGIN_MODE") {
	case "echo":
		bench.Echo()
	case "rpc":
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig: pluginproto.Handshake(ipc.ProtocolMajor),
			Plugins:         plugin.PluginSet{ipc.PluginName: &bench.RPCPlugin{Process: stage.Process}},
			GRPCServer:      plugin.DefaultGRPCServer,
		})
	default:
		sdk.Serve(sdk.Stage{Process: stage.Process, Setup: stage.Setup})
	}
}
