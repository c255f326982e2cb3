package host

import (
	"testing"
	"time"

	"github.com/troupe-dev/troupe/ipc"
)

// TestOptionsResolved checks that Resolved fills every zero value with its default and keeps
// every value that is set.
func TestOptionsResolved(t *testing.T) {
	got := Options{}.Resolved()
	want := Options{
		MaxFrame: ipc.DefaultMaxFrame, Credits: DefaultCredits, Grace: DefaultGrace,
		SampleInterval: DefaultSampleInterval,
		Limits:         Limits{Startup: DefaultStartup, CPUWindow: DefaultCPUWindow},
	}
	if got.MaxFrame != want.MaxFrame || got.Credits != want.Credits || got.Grace != want.Grace ||
		got.SampleInterval != want.SampleInterval || got.Limits != want.Limits {
		t.Fatalf("zero options resolved to %+v, want %+v", got, want)
	}
	set := Options{
		MaxFrame: 4096, Credits: 7, Grace: time.Second, SampleInterval: time.Millisecond,
		Limits: Limits{RSS: 1 << 20, CPU: 50, Startup: time.Minute, CPUWindow: 2 * time.Second},
	}
	got = set.Resolved()
	if got.MaxFrame != set.MaxFrame || got.Credits != set.Credits || got.Grace != set.Grace ||
		got.SampleInterval != set.SampleInterval || got.Limits != set.Limits {
		t.Fatalf("set options resolved to %+v, want them kept: %+v", got, set)
	}
}
