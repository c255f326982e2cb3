package bench

import (
	"context"
	"testing"
)

// The plugin rows as Go benchmarks, for profiling the host side (go test -bench -cpuprofile;
// TROUPE_BENCH_PLUGIN_CPUPROFILE=prefix profiles the plugin processes too, see package sdk).

func BenchmarkPluginPipeline64Default(b *testing.B) {
	for range b.N {
		if _, err := pluginPipeline(context.Background(), 500_000, 64, 1, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPluginPipeline64Credits1024(b *testing.B) {
	for range b.N {
		if _, err := pluginPipeline(context.Background(), 500_000, 64, 1, 1024); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPluginBackend64(b *testing.B) {
	for range b.N {
		if _, err := backendRate(context.Background(), 500_000, 64); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPluginBackend64Batch(b *testing.B) {
	pluginRole = rolePluginBatch
	defer func() { pluginRole = rolePlugin }()
	for range b.N {
		if _, err := backendRate(context.Background(), 500_000, 64); err != nil {
			b.Fatal(err)
		}
	}
}

// The figure inproc-3stage-64B as Go benchmarks, for CPU profiles and user+sys per record: the
// runtime (actors.BenchmarkThreeStages is the same pipeline) against its baseline of plain
// channels, 64 records a message.
func BenchmarkThreeStages(b *testing.B) {
	if _, err := troupeThreeStages(context.Background(), b.N); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkThreeStagesChannels(b *testing.B) {
	if _, err := channelsThreeStages(b.N, 64); err != nil {
		b.Fatal(err)
	}
}
