package host

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestPreconfiguredSpare configures a spare ahead of need: handed to a worker of the same stage
// and options, it takes records at once (its Setup saw the options); handed to other options,
// it is refused and killed.
func TestPreconfiguredSpare(t *testing.T) {
	noStrays(t)
	ctx := context.Background()
	opts := map[string]any{"n": 3}
	s, err := Launch(ctx, Options{Cmd: []string{testPlugin}}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Preconfigure(ctx, Worker{Stage: "test", Options: opts}); err != nil {
		s.Close()
		t.Fatal(err)
	}
	out := newOutcomes()
	b, err := s.Configure(ctx, Worker{Stage: "test", Index: 2, Incarnation: 5, Options: map[string]any{"n": 3}}, out)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	submitOne(t, b, out, "hello")
	out.waitFor(t, "the result", func() bool { return out.reported() == 1 })
	if rs := out.results[0]; len(rs) != 1 || len(rs[0].Outputs) != 1 || string(rs[0].Outputs[0].Payload) != "HELLO" {
		t.Fatalf("results %+v", rs)
	}

	// Other options: the spare is refused, and dies.
	s2, err := Launch(ctx, Options{Cmd: []string{testPlugin}}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Preconfigure(ctx, Worker{Stage: "test", Options: opts}); err != nil {
		s2.Close()
		t.Fatal(err)
	}
	pid := s2.Pid()
	if _, err := s2.Configure(ctx, Worker{Stage: "test", Options: map[string]any{"n": 4}}, newOutcomes()); !errors.Is(err, ErrSpareMismatch) {
		t.Fatalf("Configure with other options: %v, want ErrSpareMismatch", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if alive(pid) {
		t.Fatalf("refused spare %d still alive", pid)
	}

	// A Setup that refuses the options fails Preconfigure, and kills the spare.
	s3, err := Launch(ctx, Options{Cmd: []string{testPlugin}}, "test")
	if err != nil {
		t.Fatal(err)
	}
	err = s3.Preconfigure(ctx, Worker{Stage: "test", Options: map[string]any{"fail_setup": true}})
	if err == nil || !strings.Contains(err.Error(), "fail_setup") {
		s3.Close()
		t.Fatalf("Preconfigure with refused options: %v", err)
	}
	if s3.Alive() {
		deadline := time.Now().Add(30 * time.Second)
		for s3.Alive() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if s3.Alive() {
			t.Fatal("spare alive after a failed Preconfigure")
		}
	}
}
