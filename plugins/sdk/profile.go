package sdk

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// cpuProfileEnv names a path prefix: when the plugin's environment has it (a plugin's spec
// `env`, or troupe bench's TROUPE_BENCH_PLUGIN_CPUPROFILE), the plugin writes a CPU profile of
// its whole life to PREFIX.PID. It is a tool for measuring the SDK, not a feature of plugins.
const cpuProfileEnv = "TROUPE_PLUGIN_CPUPROFILE"

var profileFile *os.File

func startProfile() {
	prefix := os.Getenv(cpuProfileEnv)
	if prefix == "" {
		return
	}
	f, err := os.Create(fmt.Sprintf("%s.%d", prefix, os.Getpid()))
	if err != nil {
		return
	}
	if pprof.StartCPUProfile(f) != nil {
		f.Close()
		return
	}
	profileFile = f
}

func stopProfile() {
	if profileFile != nil {
		pprof.StopCPUProfile()
		profileFile.Close()
	}
}
