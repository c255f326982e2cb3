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
