package spec

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe/internal/proctest"
	"go.uber.org/goleak"
)

// When Spec.Pipeline fails after it has started a plugin stage's warm spares, it stops them
// before it returns: no plugin process and no goroutine of the build outlives the error.
func TestPipelineFailureStopsSpares(t *testing.T) {
	dir := t.TempDir()
	bin := proctest.Build(t, dir, "upper", "github.com/troupe-dev/troupe/examples/plugins/upper")
	before := goleak.IgnoreCurrent()
	s, err := Parse([]byte(`source: {range: {count: 10}}
stages:
  - {name: up, plugin: {cmd: [./upper]}, spares: 2}
  - {name: keep, builtin: grep, options: {pattern: x}}
sink: {discard: {}}
`), filepath.Join(dir, "job.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The second stage fails to build once the first one's spares are starting (as when a
	// program edits a parsed spec, or a builtin's constructor fails on the outside world).
	s.Stages[1].Options = map[string]any{"colour": "red"}
	p, err := s.Pipeline(BuildOptions{})
	var pe *PosError
	if !errors.As(err, &pe) || p != nil || pe.Pos.Line != 4 || !strings.Contains(err.Error(), "stage keep") {
		t.Fatalf("Pipeline = %v, %v; want an error at stage keep (line 4)", p, err)
	}
	goleak.VerifyNone(t, before)
	if pids := proctest.Running(bin); len(pids) > 0 {
		t.Fatalf("plugin processes still running after Pipeline failed: %v", pids)
	}
}
